"""Tracking UIs, optional and off by default: MLflow runs and TensorBoard event files of a sweep.

Switched on in parameters (``tracking:``, ``conf/base/parameters_tracking.yml``), with
``--params tracking.mlflow.enabled=true`` or in ``conf/local/parameters.yml``. Both trackers
are hooks that read the run record as the nodes return it, so no family knows about them:

- MLflow (:class:`MlflowHook`): per ``kedro run``, one parent run per sweep it trains (per
  sweep and submission for a cluster's tasks); in it, one nested run per variant, opened when
  the variant's training node starts (params: its resolved config), given each epoch's metrics
  as the epoch ends, and closed when it ends (the best metrics, and FINISHED or FAILED from the
  summary's status). The variant's figures are added as artefacts when their nodes end. The
  store is local (``sqlite:///``, beside the data, on the filesystem a cluster shares).
- TensorBoard (:class:`TensorBoardHook`): one event-file folder per variant, the folder of
  its history (catalog ``{sweep}.{variant}.history``), so that
  ``tensorboard --logdir data/07_model_output/<sweep>`` names each run by its variant; each
  epoch is written and flushed as it ends.

Epochs reach the trackers live through the training loop's epoch listeners
(:func:`sweeplab.training.loop.add_epoch_listener`); a run restored from its checkpoint, or
trained on several ranks, gives its epochs when it ends. A run stopped by Ctrl-C or by the
scheduler's SIGTERM (``sweeplab.errors.Interrupted``) marks its open runs KILLED.

Tracking never fails a run: an error is logged as a warning, and that tracker stays off for
the rest of the run in that process. Off, a tracker costs a run nothing: mlflow and
tensorboard are imported only when one is switched on.

Under ParallelRunner, node hooks run in the worker processes, on copies of these hooks that
never saw the run start. The process that started the run leaves its settings (and MLflow's
parent runs) in an environment variable that the workers inherit; a variant's figure node
that runs in another worker than its training node finds the variant's run by its tags.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
import os
import re
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from sweeplab.config import ConfigError, from_dict
from sweeplab.run_records import FAILED
from sweeplab.sweeps import find_sweeps, flatten_keys
from sweeplab.training import loop

logger = logging.getLogger(__name__)

SECTION = "tracking"  # the parameters section
SUBMISSION_ENV = "SWEEPLAB_SUBMISSION"  # set in a cluster submission's jobs: its folder
HISTORY, SUMMARY, CONFIG, FIGURE = ".history", ".summary", ".config", "_plot"  # a variant's datasets


@dataclass(frozen=True)
class MlflowSettings:
    enabled: bool = False
    tracking_uri: str = "sqlite:///data/09_tracking/mlflow.db"  # a relative sqlite path: from the project folder
    experiment: str = "sweeplab"

    def __post_init__(self) -> None:
        if not self.experiment.strip():
            raise ConfigError(f"experiment: got {self.experiment!r}; expected an experiment name")


@dataclass(frozen=True)
class TensorBoardSettings:
    enabled: bool = False


@dataclass(frozen=True)
class WandbSettings:
    enabled: bool = False
    project: str = "sweeplab"
    entity: str | None = None  # a team or user; None: the account's default
    mode: str = "offline"  # cluster nodes have no internet: `wandb sync` uploads the runs later
    dir: str = "data/09_tracking"  # offline runs in <dir>/wandb/offline-run-*; relative: from the project

    def __post_init__(self) -> None:
        if self.mode not in ("offline", "online"):
            raise ConfigError(f"mode: got {self.mode!r}; expected offline or online")
        if not self.project.strip():
            raise ConfigError(f"project: got {self.project!r}; expected a project name")


@dataclass(frozen=True)
class TrackingConfig:
    mlflow: MlflowSettings = field(default_factory=MlflowSettings)
    tensorboard: TensorBoardSettings = field(default_factory=TensorBoardSettings)
    wandb: WandbSettings = field(default_factory=WandbSettings)


def tracking_config(catalog: Any) -> TrackingConfig:
    """The run's ``tracking`` section (checked with every other section before the run)."""
    params = catalog.get("parameters").load()
    return from_dict(TrackingConfig, params.get(SECTION) or {}, where=SECTION)


# ----------------------------------------------------------------------------------------------
# what a variant's nodes return, as tracking needs it


def trained_variant(node: Any) -> str | None:
    """``<sweep>.<variant>`` when ``node`` is a variant's training node (it writes the summary)."""
    namespace = node.namespace
    return namespace if namespace and f"{namespace}{SUMMARY}" in node.outputs else None


def config_params(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config as flat parameters: the family config's dotted keys, and the seed."""
    return {**flatten_keys(resolved.get("config") or {}), "seed": resolved.get("seed")}


def epoch_metrics(rows: list[dict[str, Any]], skip: set[int] | frozenset[int] = frozenset()
                  ) -> list[tuple[str, float, int]]:
    """``(split/metric, value, epoch)`` for every number in history rows (a metric one split
    lacks is NaN there, and left out), but for the epochs in ``skip`` (already given live)."""
    return [(f"{row['split']}/{column}", float(value), int(row["epoch"]))
            for row in rows if int(row["epoch"]) not in skip
            for column, value in row.items() if column not in ("epoch", "split") and _is_number(value)]


def best_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The metrics of the best epoch, ``best/<split>/<metric>``."""
    return {f"best/{split}/{name}": float(value)
            for split, values in (summary.get("best") or {}).items() for name, value in values.items()
            if _is_number(value)}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------------------------


_open: list[_TrackingHook] = []  # the trackers with runs open in this process


def interrupted() -> None:
    """The run stopped by Ctrl-C or SIGTERM: every open tracker marks its runs KILLED. (Kedro's
    error hooks see only an ``Exception``; the project's ``run`` calls this.)"""
    for tracker in list(_open):
        tracker.close_interrupted()


class _TrackingHook(ABC):
    """What both trackers share: the switch, the hand-over to ParallelRunner's workers, the
    live epochs, and errors that never fail a run."""

    ENV = ""  # where the process that starts a run leaves the settings for its workers
    TITLE = ""

    def __init__(self) -> None:
        self._state: dict[str, Any] | None = None  # None: off, or a worker that has not looked yet
        self._stopped = False  # an error switched this tracker off in this process
        self._live: dict[str, set[int]] = {}  # <sweep>.<variant> -> the epochs given as they ended

    def _start(self, state: dict[str, Any]) -> None:
        self._state = state
        os.environ[self.ENV] = json.dumps(state)
        if self not in _open:
            _open.append(self)

    def _end(self) -> None:
        self._state = None
        self._stopped = False
        self._live.clear()
        loop.remove_epoch_listener(self._epoch)
        os.environ.pop(self.ENV, None)
        if self in _open:
            _open.remove(self)

    def _listen(self, namespace: str) -> None:
        """Take the variant's epochs as they end."""
        self._live[namespace] = set()
        loop.add_epoch_listener(self._epoch)
        if self not in _open:
            _open.append(self)

    def _epoch(self, name: str, epoch: int, rows: list[dict[str, Any]]) -> None:
        if name in self._live and self._settings() is not None:
            with self._guarded(name):
                self._log_epoch(name, epoch, rows)
                self._live[name].add(epoch)

    @abstractmethod
    def _log_epoch(self, namespace: str, epoch: int, rows: list[dict[str, Any]]) -> None:
        """Give one epoch's history rows of a variant this tracker listens to."""

    def _interrupted(self) -> None:
        """Mark what this tracker has open as stopped."""

    def close_interrupted(self) -> None:
        with self._guarded("closing after an interruption"):
            self._interrupted()
        self._end()

    def _settings(self) -> dict[str, Any] | None:
        if self._stopped:
            return None
        if self._state is None and self.ENV in os.environ:  # a worker: the settings of the run it serves
            self._state = json.loads(os.environ[self.ENV])
        return self._state

    @contextlib.contextmanager
    def _guarded(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # tracking is a view of the run, never a reason for it to fail
            self._stopped = True
            logger.warning("%s tracking is off for the rest of this run in this process: %s failed with "
                           "%s: %s", self.TITLE, what, type(exc).__name__, exc)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._end()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._end()


class TensorBoardHook(_TrackingHook):
    """Each variant's per-epoch metrics and hyperparameters as TensorBoard event files, in the
    folder of its history."""

    ENV = "SWEEPLAB_TENSORBOARD"
    TITLE = "TensorBoard"

    @hook_impl
    def before_pipeline_run(self, catalog: Any) -> None:
        self._end()
        if tracking_config(catalog).tensorboard.enabled:
            self._start({"enabled": True})

    def __init__(self) -> None:
        super().__init__()
        self._writers: dict[str, Any] = {}  # <sweep>.<variant> -> its open SummaryWriter

    def _end(self) -> None:
        for writer in self._writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        self._writers.clear()
        super()._end()

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any) -> None:
        namespace = trained_variant(node) if self._settings() else None
        if namespace is None:
            return
        with self._guarded(namespace):
            from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - only when switched on

            folder = catalog.get(f"{namespace}{HISTORY}").filepath.parent
            self._writers[namespace] = SummaryWriter(log_dir=str(folder))
            self._listen(namespace)

    def _log_epoch(self, namespace: str, epoch: int, rows: list[dict[str, Any]]) -> None:
        writer = self._writers[namespace]
        for tag, value, step in epoch_metrics(rows):
            writer.add_scalar(tag, value, step)
        writer.flush()  # on disk now: TensorBoard shows the epoch while the next one trains

    @hook_impl
    def after_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        namespace = trained_variant(node) if self._settings() else None
        if namespace is None:
            return
        with self._guarded(namespace):
            writer = self._writers.pop(namespace, None)
            if writer is None:  # tracking came on during the node: a writer of its own
                from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415

                writer = SummaryWriter(log_dir=str(catalog.get(f"{namespace}{HISTORY}").filepath.parent))
            write_events(writer, inputs.get(f"{namespace}{CONFIG}") or {}, outputs[f"{namespace}{HISTORY}"],
                         outputs[f"{namespace}{SUMMARY}"], skip=self._live.pop(namespace, set()))

    @hook_impl
    def on_node_error(self, node: Any) -> None:
        namespace = trained_variant(node) if self._settings() else None
        writer = self._writers.pop(namespace or "", None)
        if writer is not None:
            with self._guarded(namespace):
                writer.close()


def write_events(writer: Any, resolved: Mapping[str, Any], history: Any, summary: Mapping[str, Any], *,
                 skip: set[int]) -> None:
    """The rest of one variant's event file, then closed: ``<split>/<metric>`` of the epochs
    not given live (``skip``), the best metrics, and its config as hyperparameters
    (TensorBoard's HParams tab compares them across variants)."""
    from torch.utils.tensorboard.summary import hparams  # noqa: PLC0415 - only when switched on

    best = best_metrics(summary)
    try:
        for tag, value, epoch in epoch_metrics(history.to_dict("records"), skip):
            writer.add_scalar(tag, value, epoch)
        for tag, value in best.items():
            writer.add_scalar(tag, value, summary.get("best_epoch") or 0)
        # into this folder: SummaryWriter.add_hparams would open a sub-folder, a run of its own
        scalars = {k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in config_params(resolved).items()}
        for event in hparams(scalars, best):
            writer.file_writer.add_summary(event)
    finally:
        writer.close()


class MlflowHook(_TrackingHook):
    """A parent MLflow run per sweep and ``kedro run``, a nested run per variant.

    The runs are addressed by id through ``MlflowClient``, never through mlflow's active-run
    stack, so that several variants (in several processes) can be open at once.
    """

    ENV = "SWEEPLAB_MLFLOW"
    TITLE = "MLflow"

    def __init__(self) -> None:
        super().__init__()
        self._client: Any = None
        self._client_for: tuple[int, str] = (0, "")  # the process and store it was opened for
        self._variant_runs: dict[str, str] = {}  # <sweep>.<variant> -> run id, in this process

    def _end(self) -> None:
        super()._end()
        self._variant_runs.clear()

    def client(self) -> Any:
        # a forked worker opens its own; so does the next session in this process, at its own store
        wanted = (os.getpid(), self._state["tracking_uri"])
        if self._client is None or self._client_for != wanted:
            from mlflow.tracking import MlflowClient  # noqa: PLC0415 - only when switched on

            self._client, self._client_for = MlflowClient(tracking_uri=wanted[1]), wanted
        return self._client

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._end()
        config = tracking_config(catalog).mlflow
        trained = sorted({name.split(".", 1)[0] for name in pipeline.all_outputs() if name.endswith(SUMMARY)})
        submission = os.environ.get(SUBMISSION_ENV)
        if not config.enabled or not (trained or submission):
            return
        with self._guarded("starting the sweep's runs"):
            from mlflow.entities import Param  # noqa: PLC0415

            uri, artifacts = local_store(config.tracking_uri, Path(run_params["project_path"]))
            self._state = {"tracking_uri": uri}
            client = self.client()
            experiment = client.get_experiment_by_name(config.experiment)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else client.create_experiment(config.experiment, artifact_location=artifacts))
            if not trained:
                # a submission's prep job: the store and experiment are made here, before the
                # tasks, which would otherwise race to set up a new database at once
                self._state = None
                return
            specs = find_sweeps(catalog.get("parameters").load())
            tags = {"kedro.session_id": run_params.get("run_id") or "", "kedro.env": run_params.get("env") or "",
                    "kedro.pipelines": ",".join(run_params.get("pipeline_names") or [])}
            parents = {}
            for sweep in trained:
                def parent(sweep: str = sweep) -> str:
                    run_id = client.create_run(experiment_id, run_name=sweep, tags={**tags, "sweep": sweep}).info.run_id
                    spec = {k: v for k, v in (specs.get(sweep) or {}).items() if k != "report"}
                    client.log_batch(run_id, params=[Param(k, _param(v)) for k, v in flatten_keys(spec).items()])
                    return run_id
                parents[sweep] = shared_parent(Path(submission), sweep, parent) if submission else parent()
            self._start({"tracking_uri": uri, "experiment_id": experiment_id, "parents": parents,
                         "shared": bool(submission)})
            logger.info("MLflow: runs of %s in experiment '%s' at %s", ", ".join(trained), config.experiment, uri)

    @hook_impl
    def before_node_run(self, node: Any, inputs: dict[str, Any]) -> None:
        namespace = trained_variant(node) if self._settings() else None
        if namespace is None:
            return
        sweep, variant = namespace.split(".", 1)
        parent = self._state["parents"].get(sweep)
        if parent is None:
            return
        with self._guarded(namespace):
            from mlflow.entities import Param  # noqa: PLC0415
            from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID  # noqa: PLC0415

            resolved = inputs.get(f"{namespace}{CONFIG}") or {}
            tags = {MLFLOW_PARENT_RUN_ID: parent, "sweep": sweep, "variant": variant,
                    "family": str(resolved.get("family")), "config_hash": str(resolved.get("config_hash"))}
            run_id = self.client().create_run(self._state["experiment_id"], run_name=variant, tags=tags).info.run_id
            self.client().log_batch(run_id, params=[Param(k, _param(v)) for k, v in config_params(resolved).items()])
            self._variant_runs[namespace] = run_id
            self._listen(namespace)

    def _log_epoch(self, namespace: str, epoch: int, rows: list[dict[str, Any]]) -> None:
        from mlflow.entities import Metric  # noqa: PLC0415

        now = int(time.time() * 1000)
        metrics = [Metric(_metric_key(key), value, now, step) for key, value, step in epoch_metrics(rows)]
        self.client().log_batch(self._variant_runs[namespace], metrics=metrics)

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        namespace = node.namespace if self._settings() else None
        if not namespace or namespace.split(".", 1)[0] not in self._state["parents"]:
            return
        with self._guarded(namespace):
            if f"{namespace}{SUMMARY}" in outputs:
                self._log_run_record(namespace, outputs[f"{namespace}{HISTORY}"], outputs[f"{namespace}{SUMMARY}"])
            figures = {name.removeprefix(f"{namespace}.").removesuffix(FIGURE): figure
                       for name, figure in outputs.items() if name.endswith(FIGURE) and hasattr(figure, "savefig")}
            if figures:
                self._log_figures(namespace, figures)

    @hook_impl
    def on_node_error(self, error: Exception, node: Any) -> None:
        namespace = trained_variant(node) if self._settings() else None
        run_id = self._variant_runs.get(namespace or "")
        if run_id is None:
            return
        with self._guarded(namespace):
            self.client().set_tag(run_id, "reason", f"{type(error).__name__}: {error}"[:5000])
            self.client().set_terminated(run_id, status="FAILED")

    def _interrupted(self) -> None:
        self._close_parents(failed=True, killed=True)

    def _log_run_record(self, namespace: str, history: Any, summary: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric, RunTag  # noqa: PLC0415

        run_id = self._variant_runs.get(namespace)
        if run_id is None:  # its training started before tracking was on
            return
        now = int(time.time() * 1000)
        live = self._live.pop(namespace, set())
        metrics = [Metric(_metric_key(key), value, now, epoch)
                   for key, value, epoch in epoch_metrics(history.to_dict("records"), live)]
        best_epoch = summary.get("best_epoch") or 0
        metrics += [Metric(_metric_key(key), value, now, best_epoch) for key, value in best_metrics(summary).items()]
        metrics += [Metric(key, float(summary[key]), now, 0) for key in ("best_epoch", "epochs_run", "wall_s")
                    if isinstance(summary.get(key), int | float)]
        tags = [RunTag("status", str(summary.get("status"))), RunTag("reason", str(summary.get("reason"))[:5000])]
        if summary.get("restored"):
            tags.append(RunTag("restored", "true"))
        self.client().log_batch(run_id, metrics=metrics, tags=tags)
        self.client().set_terminated(run_id, status="FAILED" if summary.get("status") == FAILED else "FINISHED")

    def _log_figures(self, namespace: str, figures: Mapping[str, Any]) -> None:
        run_id = self._variant_runs.get(namespace) or self._find_run(namespace)
        if run_id is None:
            return
        with tempfile.TemporaryDirectory() as folder:
            for name, figure in figures.items():
                path = Path(folder) / f"{name}.png"  # as the catalog names it
                figure.savefig(path, dpi=80)
                self.client().log_artifact(run_id, str(path), artifact_path="figures")

    def _find_run(self, namespace: str) -> str | None:
        """The variant's run in this sweep's parent, opened by another worker process."""
        sweep, variant = namespace.split(".", 1)
        runs = self.client().search_runs(
            [self._state["experiment_id"]], max_results=1,
            filter_string=f"tags.`mlflow.parentRunId` = '{self._state['parents'][sweep]}' and tags.variant = '{variant}'")
        return runs[0].info.run_id if runs else None

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._close_parents(failed=False)
        self._end()
        submission = os.environ.get(SUBMISSION_ENV)
        if submission and self._settings() is None and tracking_config(catalog).mlflow.enabled:
            self._close_submission(Path(submission), pipeline, catalog, Path(run_params["project_path"]))

    def _close_submission(self, folder: Path, pipeline: Any, catalog: Any, project: Path) -> None:
        """In a submission's report job: its tasks' shared parent runs end, as one run's do."""
        outputs = pipeline.all_outputs()
        markers = {m.name.removeprefix("mlflow-").removesuffix(".txt"): m.read_text().strip()
                   for m in folder.glob("mlflow-*.txt")}
        parents = {sweep: run_id for sweep, run_id in markers.items() if f"{sweep}_report.report" in outputs and run_id}
        if not parents:
            return
        with self._guarded("closing the submission's runs"):
            self._state = {"tracking_uri": local_store(tracking_config(catalog).mlflow.tracking_uri, project)[0]}
            experiment = self.client().get_run(next(iter(parents.values()))).info.experiment_id
            self._state.update(experiment_id=experiment, parents=parents)
            self._close_parents(failed=False)
        self._end()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._close_parents(failed=True)
        self._end()

    def _close_parents(self, *, failed: bool, killed: bool = False) -> None:
        """A parent is FAILED when the run stopped or any of its variants failed, KILLED when
        it was interrupted; a variant left open by a stopped run is KILLED."""
        if self._settings() is None:
            return
        from mlflow.entities import Metric  # noqa: PLC0415 - only reached when switched on

        client, now = self.client(), int(time.time() * 1000)
        if self._state.get("shared"):
            # a cluster task shares its parent with the submission's other tasks: it ends only
            # its own variant's run (KILLED when it was stopped part-way); the report job ends the parent
            for run_id in self._variant_runs.values():
                with self._guarded("closing a variant's run"):
                    if killed and client.get_run(run_id).info.status == "RUNNING":
                        client.set_terminated(run_id, status="KILLED")
            return
        for sweep, parent in self._state["parents"].items():
            with self._guarded(f"closing {sweep}"):
                children = client.search_runs([self._state["experiment_id"]],
                                              filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
                statuses = [run.info.status for run in children]
                for run in children:
                    if run.info.status == "RUNNING":
                        client.set_terminated(run.info.run_id, status="KILLED")
                client.log_batch(parent, metrics=[Metric("variants_run", len(statuses), now, 0),
                                                  Metric("variants_failed", statuses.count("FAILED"), now, 0)])
                client.set_terminated(parent, status="KILLED" if killed else "FAILED" if failed or "FAILED" in statuses
                                      else "FINISHED")


class WandbHook(_TrackingHook):
    """A Weights & Biases run per variant, grouped by sweep (W&B's ``group``): its config, each
    epoch's metrics as the epoch ends, the summary (best metrics, status), and the figures its
    nodes draw in the same process (always sequentially and in a cluster task; under
    ParallelRunner, where the same worker draws them).

    Offline by default: the runs are files under ``<dir>/wandb/``, uploaded with ``wandb sync``.
    A variant's run stays open after its training for its figures, and ends when they are
    drawn, when more than ``MAX_OPEN`` runs are open in the process, or when the run ends.
    """

    ENV = "SWEEPLAB_WANDB"
    TITLE = "W&B"
    # runs left open for their figures: Kedro's own runners draw every variant's figures after
    # all training; the project's draw them right after (see sweeplab.integration.runners)
    MAX_OPEN = 8

    def __init__(self) -> None:
        super().__init__()
        self._runs: dict[str, Any] = {}  # <sweep>.<variant> -> its open wandb run
        self._figures_left: dict[str, int] = {}
        self._failed: set[str] = set()

    def _end(self) -> None:
        self._finish_all(exit_code=0)
        super()._end()

    def _finish_all(self, exit_code: int) -> None:
        for namespace in list(self._runs):
            with self._guarded(f"ending {namespace}"):
                self._runs.pop(namespace).finish(exit_code=exit_code or int(namespace in self._failed))

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._end()
        config = tracking_config(catalog).wandb
        if not config.enabled:
            return
        folder = Path(config.dir)
        folder = folder if folder.is_absolute() else Path(run_params["project_path"]) / folder
        figures: dict[str, int] = {}
        for node in pipeline.nodes:
            if node.namespace and any(name.endswith(FIGURE) for name in node.outputs):
                figures[node.namespace] = figures.get(node.namespace, 0) + 1
        self._start({"project": config.project, "entity": config.entity, "mode": config.mode, "dir": str(folder),
                     "figures": figures})

    @hook_impl
    def before_node_run(self, node: Any, inputs: dict[str, Any]) -> None:
        namespace = trained_variant(node) if self._settings() else None
        if namespace is None:
            return
        while len(self._runs) >= self.MAX_OPEN:  # the oldest's figures were drawn elsewhere, or come late
            oldest = next(iter(self._runs))
            with self._guarded(f"ending {oldest}"):
                self._runs.pop(oldest).finish(exit_code=1 if oldest in self._failed else 0)
        with self._guarded(namespace):
            import wandb  # noqa: PLC0415 - only when switched on

            sweep, variant = namespace.split(".", 1)
            resolved = inputs.get(f"{namespace}{CONFIG}") or {}
            Path(self._state["dir"]).mkdir(parents=True, exist_ok=True)
            self._runs[namespace] = wandb.init(
                project=self._state["project"], entity=self._state["entity"], mode=self._state["mode"],
                dir=self._state["dir"], group=sweep, name=variant, job_type="train", reinit="create_new",
                config=config_params(resolved), tags=[str(resolved.get("family"))],
                settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
            self._figures_left[namespace] = self._state["figures"].get(namespace, 0)
            self._listen(namespace)

    def _log_epoch(self, namespace: str, epoch: int, rows: list[dict[str, Any]]) -> None:
        self._runs[namespace].log({key: value for key, value, _ in epoch_metrics(rows)}, step=epoch)

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        namespace = node.namespace if self._settings() else None
        run = self._runs.get(namespace or "")
        if run is None:
            return
        with self._guarded(namespace):
            if f"{namespace}{SUMMARY}" in outputs:
                summary, live = outputs[f"{namespace}{SUMMARY}"], self._live.pop(namespace, set())
                by_epoch: dict[int, dict[str, float]] = {}
                for key, value, epoch in epoch_metrics(outputs[f"{namespace}{HISTORY}"].to_dict("records"), live):
                    by_epoch.setdefault(epoch, {})[key] = value
                for epoch in sorted(by_epoch):  # a restored run's epochs, or those of several ranks
                    run.log(by_epoch[epoch], step=epoch)
                if summary.get("status") == FAILED:
                    self._failed.add(namespace)
                run.summary.update({**best_metrics(summary), "status": str(summary.get("status")),
                                    "reason": str(summary.get("reason")),
                                    **{k: summary[k] for k in ("best_epoch", "epochs_run", "wall_s")
                                       if isinstance(summary.get(k), int | float)}})
            figures = {name.removeprefix(f"{namespace}.").removesuffix(FIGURE): figure
                       for name, figure in outputs.items() if name.endswith(FIGURE) and hasattr(figure, "savefig")}
            if figures:
                import wandb  # noqa: PLC0415

                run.log({f"figures/{name}": wandb.Image(figure) for name, figure in figures.items()})
                self._figures_left[namespace] -= 1
            if self._figures_left.get(namespace, 0) <= 0:
                self._runs.pop(namespace).finish(exit_code=1 if namespace in self._failed else 0)

    @hook_impl
    def on_node_error(self, node: Any) -> None:
        run = self._runs.pop(node.namespace or "", None) if self._settings() else None
        if run is not None:
            with self._guarded(node.namespace):
                run.finish(exit_code=1)

    def _interrupted(self) -> None:
        self._finish_all(exit_code=1)


def shared_parent(folder: Path, sweep: str, create: Any, wait_s: float = 60) -> str:
    """The parent run of ``sweep`` that every task of a cluster submission shares: the first
    task to ask makes it and names it in ``<submission>/mlflow-<sweep>.txt`` (created whole or
    not at all, even over NFS); the others read it there."""
    marker = folder / f"mlflow-{sweep}.txt"
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        deadline = time.monotonic() + wait_s
        while not (run_id := marker.read_text().strip()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{marker} names no MLflow run after {wait_s:.0f} s") from None
            time.sleep(0.5)
        return run_id
    with os.fdopen(fd, "w") as out:
        run_id = create()
        out.write(run_id)
    return run_id


def local_store(uri: str, project: Path) -> tuple[str, str | None]:
    """The tracking URI and where a new experiment keeps its artefacts: a relative
    ``sqlite:///`` path is taken from the project folder (made if missing), with the artefacts
    beside the database; any other URI is used as it is, its server choosing the place."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == f"{prefix}:memory:":
        return uri, None
    path = Path(uri.removeprefix(prefix))  # "sqlite:////abs/mlflow.db" leaves an absolute path
    path = path if path.is_absolute() else project / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"{prefix}{path}", str(path.parent / "artifacts")


def _param(value: Any) -> str:
    return str(value)[:6000]  # MLflow's longest parameter value


def _metric_key(key: str) -> str:
    return re.sub(r"[^\w\-./ ]", "_", key)[:250]  # the characters and length MLflow accepts in a name
