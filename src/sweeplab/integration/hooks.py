"""Project hooks: the sweep sees the run's parameters; a report is told its provenance; inputs
are checked before anything runs; what a run writes it reads back at that version; a failed
variant fails the command."""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines

from sweeplab import fail_fast, provenance, sweeps
from sweeplab.config import ConfigError, from_dict
from sweeplab.datasets._files import LocalVersionedDataset, atomic_path
from sweeplab.errors import InputError, SweepFailedError
from sweeplab.families import (
    CHECKPOINT_STORE,
    Family,
    OtherCode,
    discover,
    finished_by_other_code,
    keeps_older_code,
)
from sweeplab.integration import session, upstream
from sweeplab.run_records import FAILED
from sweeplab.training import devices, distributed

REGISTRY = f"{__name__.split('.')[0]}.pipeline_registry"
REPORT = "_report.report"  # the report folder of a sweep (catalog.yml: "{sweep}_report.report")
PROVENANCE = "_report.run_provenance"  # what a sweep's report is told of its run
logger = logging.getLogger(__name__)


class SweepConfigHook:
    """Hand the session's parameters to ``register_pipelines`` before it runs.

    The config loader already holds ``--env``, ``--conf-source`` and ``--params``. Reading
    ``config_loader["parameters"]`` (not ``context.params``) avoids building the pipelines
    here. When the parameters differ from those the cached pipelines were built from (a
    second session in one process), the cache is reset so the sweep is expanded again.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        params = dict(context.config_loader["parameters"])
        if session.record_parameters(params):
            pipelines.configure(REGISTRY)


class ProvenanceHook:
    """Hand each sweep report of a run its provenance: the command, ``--params``, environment,
    runner, code version and date (``sweeplab.provenance``), and the sweep's spec as the
    project configures it without ``--params`` with how many of its variants the run plans,
    so that a report of a subset can say so.

    Saved into ``<sweep>_report.run_provenance`` (held in memory) before any node runs, in the
    process that starts the run; ParallelRunner's workers receive it with the dataset, and a
    report run alone (``--pipelines=<sweep>_report``) gets it the same way.
    """

    def __init__(self) -> None:
        self._project_path: Path | None = None
        self._loader: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._project_path = Path(context.project_path)
        loader = copy.copy(context.config_loader)  # the same conf and env, without --params
        loader.runtime_params = {}
        self._loader = loader

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        names = sorted(name for name in pipeline.inputs() if name.endswith(PROVENANCE))
        if not names:
            return
        collected = provenance.collect(run_params, self._project_path)
        configured = dict(self._loader["parameters"]) if self._loader is not None else {}
        params = session.parameters()
        for name in names:
            sweep = name.removesuffix(PROVENANCE)
            spec = configured.get(sweep)
            catalog.save(name, {**collected, "sweep": sweep, "configured_spec": spec,
                                "configured": configured_coverage(sweep, spec, params.get(sweep))})


def configured_coverage(sweep: str, configured: Any, planned: Any) -> dict[str, int] | None:
    """How many variants the configured spec (without ``--params``) has, and how many of them
    this run plans: what the report needs to say "subset" or "widened". None: unknown."""
    if not (isinstance(configured, dict) and isinstance(planned, dict)):
        return None
    try:
        ours = {v.name for v in sweeps.expand(sweep, planned)}
        theirs = {v.name for v in sweeps.expand(sweep, configured)}
    except ConfigError:  # the configured spec may be one that only --params makes valid
        return None
    return {"variants": len(theirs), "planned": len(ours & theirs)}


def trained_configs(pipeline: Any) -> Iterator[tuple[str, Family, list[dict[str, Any]]]]:
    """Each sweep the pipeline trains variants of, with its family and those variants' resolved
    configs (a condition's config resolved once)."""
    planned: dict[str, set[str]] = {}
    for name in pipeline.all_outputs():
        if name.endswith(".summary") and name.count(".") == 2:
            sweep, variant, _ = name.split(".")
            planned.setdefault(sweep, set()).add(variant)
    params = session.parameters()
    specs = sweeps.find_sweeps(params)
    found = discover()
    for sweep in sorted(set(planned) & set(specs)):
        family = found[specs[sweep]["family"]]
        yield sweep, family, sweeps.resolve_variant_configs(
            params[family.name], family=family,
            variants=[v for v in sweeps.expand(sweep, specs[sweep]) if v.name in planned[sweep]])


def devices_read(pipeline: Any) -> Iterator[tuple[str, str]]:
    """``(parameter, device)`` for each ``device`` key in the parameters the pipeline's nodes
    read (``params:`` inputs), a family's own excepted: its variants' devices are their
    resolved configs' (a sweep may override the family's default)."""
    params, families = session.parameters(), discover()

    def walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(value, dict):
            for key, child in value.items():
                yield from walk(child, f"{path}.{key}")
        elif path.endswith(".device") and isinstance(value, str):
            yield path, value

    seen: set[str] = set()
    for name in sorted(pipeline.inputs()):
        path = name.removeprefix("params:")
        if name == path or path.split(".")[0] in families or any(path.startswith(f"{s}.") for s in seen):
            continue
        seen.add(path)
        value: Any = params
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        yield from walk(value, path)


class DevicesHook:
    """Before a run, every device it asks for must exist on this machine: each trained
    variant's ``trainer.device`` and any other ``device`` parameter a node reads (the splat
    fit's, say). A missing GPU is one line naming the parameter, not a fallback to CPU nor a
    failure after the data prep. (A cluster's login node plans without this check.)"""

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        for parameter, device in devices_read(pipeline):
            if (why := devices.unavailable(device)) is not None:
                raise devices.DeviceError(f"{parameter}: {why}")
        for _, family, configs in trained_configs(pipeline):
            for config in configs:
                trainer, variant = config["config"]["trainer"], f"variant {config['sweep']}.{config['variant']}"
                if (why := devices.unavailable(trainer["device"])) is not None:
                    raise devices.DeviceError(f"{family.name}.trainer.device ({variant}): {why}")
                try:  # as many GPUs as ranks, and not started by torchrun
                    distributed.world_size(from_dict(distributed.DistributedConfig, trainer["distributed"]),
                                           devices.pick_device(trainer["device"]))
                except distributed.DistributedError as exc:
                    raise distributed.DistributedError(f"{family.name}.{exc} ({variant})") from None


class CodeChangeHook:
    """Before a run, once per sweep: how many of its finished variants other code trained,
    which files changed since, and whether the run retrains them or keeps their results
    (``<sweep>.resume.code``); so that a re-run after an edit says what it will do."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        for sweep, family, configs in trained_configs(pipeline):
            other = finished_by_other_code(family, configs, catalog.load(CHECKPOINT_STORE))
            if other.variants:
                logger.warning(code_change_message(sweep, family.name, other, len(configs),
                                                   keep=keeps_older_code(configs[0])))


def code_change_message(sweep: str, family: str, other: OtherCode, planned: int, *, keep: bool) -> str:
    shown = ", ".join(other.changed[:6]) + (f" and {len(other.changed) - 6} more" if len(other.changed) > 6 else "")
    since = f"changed since: {shown}" if shown else "changed since"
    if other.unrecorded:
        since += f"; {other.unrecorded} trained before code identities were recorded"
    if keep:
        return (f"{sweep}: keeping the results of {len(other.variants)} of {planned} variants that earlier code "
                f"of family '{family}' finished ({since}); the report marks them. To retrain them: "
                f"--params {sweep}.resume.code=retrain")
    return (f"{sweep}: the code of family '{family}' changed since {len(other.variants)} of {planned} variants "
            f"finished ({since}); they are retrained. To keep their results instead: "
            f"--params {sweep}.resume.code=keep")


class InputFilesHook:
    """Before a run, open every file the pipeline reads but does not write itself (a real data
    file, saved run records) through its dataset, whose ``load`` checks the format.

    A malformed input then stops the run before any node has written anything. Only the
    project's own datasets are opened: their ``load`` is cheap (an HDF5 file's metadata, a
    summary) and says in one line what is wrong.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        check_pinned_versions(run_params.get("load_versions") or {}, pipeline, catalog)
        for name in sorted(pipeline.inputs()):
            dataset = None if name.startswith("params:") else catalog.get(name)
            if isinstance(dataset, LocalVersionedDataset) and dataset.exists():
                dataset.load()


class PinnedVersionError(InputError):
    """A ``--load-versions`` pin that names no saved version."""


def check_pinned_versions(load_versions: dict[str, str], pipeline: Any, catalog: Any) -> None:
    """Each version pinned with ``--load-versions`` that the run reads must be saved, else one
    line names the dataset and the versions it has, before any node runs (Kedro would stop at
    the node that loads it, after the nodes before it). A pin of a dataset the run does not
    read is let through: a cluster task is handed the pins of its whole submission."""
    read = {name for node in pipeline.nodes for name in node.inputs}
    for name, version in sorted(load_versions.items()):
        dataset = catalog.get(name) if name in read else None
        if upstream.load_version(dataset) is None or dataset.exists():
            continue
        folder, saved = upstream.saved_versions(dataset) or (Path(name), [])
        has = ("no version is saved there" if not saved else
               f"saved: {', '.join(saved[-3:])}" + (f" (newest of {len(saved)})" if len(saved) > 3 else ""))
        raise PinnedVersionError(f"--load-versions {name}:{version}: no such version in {shown_path(folder)}; {has}")


def shown_path(path: Path) -> Path:
    """``path`` as a user would type it from where the run started: relative below there."""
    return path.relative_to(Path.cwd()) if path.is_absolute() and path.is_relative_to(Path.cwd()) else path


class RunVersionsHook:
    """A dataset that a run writes and then reads is read back at the version this run wrote.

    Unpinned, a versioned load takes whatever is newest on disk, which is another run's output
    when two runs share a data folder. Pinned datasets are handed to ParallelRunner's workers
    with their versions, so every process reads the data prep of its own run.

    Across processes that do not share a catalog (a cluster's jobs), a run given
    ``SWEEPLAB_SAVED_VERSIONS=<file>`` writes there, as ``name:version`` lines, the versions
    it saved; later jobs pass them on with ``--load-versions``.
    """

    SAVED_VERSIONS_ENV = "SWEEPLAB_SAVED_VERSIONS"

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        produced_then_read = pipeline.all_outputs() & {name for node in pipeline.nodes for name in node.inputs}
        for name in sorted(produced_then_read):
            dataset = catalog.get(name)
            version = upstream.load_version(dataset)  # None: not versioned
            if version is not None and not version.load:
                upstream.pin_version(dataset, dataset.resolve_save_version())

    @hook_impl
    def after_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        target = os.environ.get(self.SAVED_VERSIONS_ENV)
        if not target:
            return
        lines = []
        for name in sorted(pipeline.all_outputs()):
            dataset = catalog.get(name)
            if upstream.load_version(dataset) is not None:
                lines.append(f"{name}:{dataset.resolve_save_version()}\n")
        with atomic_path(Path(target)) as tmp:
            tmp.write_text("".join(lines))


class FailedVariantsHook:
    """After a run: say where the sweep report it wrote is, and exit non-zero when any summary
    it wrote says ``failed``.

    Every output, the sweep report included, is saved first: only the exit status changes.
    Summaries are read back through their datasets (quietly: not one log line per variant), so
    this works under any runner.
    """

    @hook_impl
    def after_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        failed = []
        for name in sorted(pipeline.all_outputs()):
            dataset = catalog.get(name) if name.endswith(".summary") else None
            if dataset is not None and dataset.exists():
                summary = dataset.load()
                if summary.get("status") == FAILED:
                    failed.append(f"{name.removesuffix('.summary')}: {summary.get('reason')}")
        for name in sorted(o for o in pipeline.all_outputs() if o.endswith(REPORT)):
            logger.info("Report: %s", shown_path(catalog.get(name).load_path() / "report.md"))
        if failed:
            raise SweepFailedError(f"{len(failed)} variant(s) failed; see the sweep report.\n  " + "\n  ".join(failed))


class SweepProgressHook:
    """One line per finished variant: how many are done and failed, how many remain, the time
    so far and an estimate of the rest, so that a batch log shows where a sweep stands.

    The count is kept in the process that started the run; a node run in a worker process
    (ParallelRunner) is not counted there, and no line is written for it.
    """

    def __init__(self) -> None:
        self._planned: dict[str, int] = {}
        self._done: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._start = 0.0

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        summaries = [name for name in pipeline.all_outputs() if name.endswith(".summary")]
        self._planned = dict(Counter(name.split(".", 1)[0] for name in summaries))
        self._done.clear()
        self._failed.clear()
        self._start = time.monotonic()

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        for name, summary in outputs.items():
            sweep = name.split(".", 1)[0]
            if not name.endswith(".summary") or sweep not in self._planned:
                continue
            self._done[sweep] += 1
            self._failed[sweep] += isinstance(summary, dict) and summary.get("status") == FAILED
            done, planned = self._done[sweep], self._planned[sweep]
            elapsed = time.monotonic() - self._start
            left = elapsed / done * (planned - done)
            logger.info("%s: %d of %d variants done (%d failed), %d to go; %s elapsed, about %s left", sweep,
                        done, planned, self._failed[sweep], planned - done, _clock(elapsed), _clock(left))


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


class FailFastHook:
    """Gives each ``kedro run`` its own ledger, unless the process serves a run that already
    has one (a cluster task of a submission: then, once a sweep it trained has stopped, the
    submission's tasks still waiting are cancelled)."""

    def __init__(self) -> None:
        self._made: Path | None = None

    @hook_impl
    def before_pipeline_run(self) -> None:
        if fail_fast.ledger() is None:
            self._made = Path(tempfile.mkdtemp(prefix="sweeplab-fail-fast-"))
            os.environ[fail_fast.LEDGER_ENV] = str(self._made)

    @hook_impl
    def after_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        folder = fail_fast.ledger()
        submission = folder.parent if folder is not None and self._made is None else None
        if submission is not None and (submission / "manifest.json").exists():
            from sweeplab.cluster.submission import stop_waiting  # noqa: PLC0415 - only in a cluster task
            specs = sweeps.find_sweeps(catalog.get("parameters").load())
            trained = {name.split(".", 1)[0] for name in pipeline.all_outputs() if name.endswith(".summary")}
            if any(fail_fast.verdict(sweep, (specs.get(sweep) or {}).get("fail_fast")) for sweep in trained):
                stop_waiting(submission)
        self._end()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._end()

    def _end(self) -> None:
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)
            os.environ.pop(fail_fast.LEDGER_ENV, None)
            self._made = None
