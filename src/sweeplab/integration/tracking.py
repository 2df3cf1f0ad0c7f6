"""Tracking UIs, optional and off by default: MLflow runs and TensorBoard event files of a sweep.

Switched on in parameters (``tracking:``, ``conf/base/parameters_tracking.yml``), with
``--params tracking.mlflow.enabled=true`` or in ``conf/local/parameters.yml``. Both trackers
are hooks that read the run record as the nodes return it, so no family knows about them:

- MLflow (:class:`MlflowHook`): per ``kedro run``, one parent run per sweep it trains; in it,
  one nested run per variant, opened when the variant's training node starts (params: its
  resolved config) and closed when it ends (per-epoch metrics from the history, the best
  metrics, and FINISHED or FAILED from the summary's status). The variant's figures are added
  as artefacts when their nodes end. The store is local (``sqlite:///``, beside the data).
- TensorBoard (:class:`TensorBoardHook`): one event-file folder per variant, the folder of
  its history (catalog ``{sweep}.{variant}.history``), so that
  ``tensorboard --logdir data/07_model_output/<sweep>`` names each run by its variant.

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from sweeplab.config import ConfigError, from_dict
from sweeplab.run_records import FAILED
from sweeplab.sweeps import find_sweeps, flatten_keys

logger = logging.getLogger(__name__)

SECTION = "tracking"  # the parameters section
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
class TrackingConfig:
    mlflow: MlflowSettings = field(default_factory=MlflowSettings)
    tensorboard: TensorBoardSettings = field(default_factory=TensorBoardSettings)


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


def epoch_metrics(history: Any) -> list[tuple[str, float, int]]:
    """``(split/metric, value, epoch)`` for every number in the history frame (a metric one
    split lacks is NaN there, and left out)."""
    columns = [c for c in history.columns if c not in ("epoch", "split")]
    points = []
    for row in history.to_dict("records"):
        for column in columns:
            value = row[column]
            if _is_number(value):
                points.append((f"{row['split']}/{column}", float(value), int(row["epoch"])))
    return points


def best_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The metrics of the best epoch, ``best/<split>/<metric>``."""
    return {f"best/{split}/{name}": float(value)
            for split, values in (summary.get("best") or {}).items() for name, value in values.items()
            if _is_number(value)}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------------------------


class _TrackingHook:
    """What both trackers share: the switch, the hand-over to ParallelRunner's workers, and
    errors that never fail a run."""

    ENV = ""  # where the process that starts a run leaves the settings for its workers
    TITLE = ""

    def __init__(self) -> None:
        self._state: dict[str, Any] | None = None  # None: off, or a worker that has not looked yet
        self._stopped = False  # an error switched this tracker off in this process

    def _start(self, state: dict[str, Any]) -> None:
        self._state = state
        os.environ[self.ENV] = json.dumps(state)

    def _end(self) -> None:
        self._state = None
        self._stopped = False
        os.environ.pop(self.ENV, None)

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

    @hook_impl
    def after_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        namespace = trained_variant(node) if self._settings() else None
        if namespace is None:
            return
        with self._guarded(namespace):
            folder = catalog.get(f"{namespace}{HISTORY}").filepath.parent
            write_events(folder, inputs.get(f"{namespace}{CONFIG}") or {}, outputs[f"{namespace}{HISTORY}"],
                         outputs[f"{namespace}{SUMMARY}"])


def write_events(folder: Path, resolved: Mapping[str, Any], history: Any, summary: Mapping[str, Any]) -> None:
    """One variant's event file: ``<split>/<metric>`` per epoch, the best metrics, and its
    config as hyperparameters (TensorBoard's HParams tab compares them across variants)."""
    from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - only when switched on
    from torch.utils.tensorboard.summary import hparams  # noqa: PLC0415

    best = best_metrics(summary)
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for tag, value, epoch in epoch_metrics(history):
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
        if not config.enabled or not trained:
            return
        with self._guarded("starting the sweep's runs"):
            from mlflow.entities import Param  # noqa: PLC0415

            uri, artifacts = local_store(config.tracking_uri, Path(run_params["project_path"]))
            self._state = {"tracking_uri": uri}
            client = self.client()
            experiment = client.get_experiment_by_name(config.experiment)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else client.create_experiment(config.experiment, artifact_location=artifacts))
            specs = find_sweeps(catalog.get("parameters").load())
            tags = {"kedro.session_id": run_params.get("run_id") or "", "kedro.env": run_params.get("env") or "",
                    "kedro.pipelines": ",".join(run_params.get("pipeline_names") or [])}
            parents = {}
            for sweep in trained:
                run_id = client.create_run(experiment_id, run_name=sweep, tags={**tags, "sweep": sweep}).info.run_id
                spec = {k: v for k, v in (specs.get(sweep) or {}).items() if k != "report"}
                client.log_batch(run_id, params=[Param(k, _param(v)) for k, v in flatten_keys(spec).items()])
                parents[sweep] = run_id
            self._start({"tracking_uri": uri, "experiment_id": experiment_id, "parents": parents})
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

    def _log_run_record(self, namespace: str, history: Any, summary: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric, RunTag  # noqa: PLC0415

        run_id = self._variant_runs.get(namespace)
        if run_id is None:  # its training started before tracking was on
            return
        now = int(time.time() * 1000)
        metrics = [Metric(_metric_key(key), value, now, epoch) for key, value, epoch in epoch_metrics(history)]
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
    def after_pipeline_run(self) -> None:
        self._close_parents(failed=False)
        self._end()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._close_parents(failed=True)
        self._end()

    def _close_parents(self, *, failed: bool) -> None:
        """A parent is FAILED when the run stopped or any of its variants failed; a variant
        left open by a stopped run is KILLED."""
        if self._settings() is None:
            return
        from mlflow.entities import Metric  # noqa: PLC0415 - only reached when switched on

        client, now = self.client(), int(time.time() * 1000)
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
                client.set_terminated(parent, status="FAILED" if failed or "FAILED" in statuses else "FINISHED")


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
