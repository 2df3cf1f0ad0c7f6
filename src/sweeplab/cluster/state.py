"""Where each variant of a sweep stands: what the runs saved (their run records and the
checkpoint store) joined with what the scheduler says of the newest submission's tasks.

A variant is
- ``completed``: its newest summary says so, for the config it has now (same config hash) and
  the code its family has now (same code identity), or, with ``<sweep>.resume.code: keep``,
  for other code;
- ``outdated``: its newest summary says completed for this config, but other code trained
  it; the next run retrains it, so ``submit`` puts it into the next array;
- ``pending``: its task waits in the queue (with the scheduler's reason);
- ``running``: its task runs (epoch N of M, from its checkpoint); where the scheduler cannot
  be asked, its checkpoint slot was written after its newest summary;
- ``killed``: the scheduler ended its task (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, CANCELLED, ...:
  the state's name); submitting again, or ``--retries``, continues it from its checkpoint;
- ``planned``: the newest submission holds it, nothing of it was saved since, and the
  scheduler says nothing of its task;
- ``failed``: its newest summary says so (with the reason), or its task failed before it
  saved one;
- ``missing``: none of these (never run, or run with another config).

The scheduler is asked once per ``status``, for every job of the newest submission: its queue,
then its accounting where that exists, else the job-completion file where readable.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.framework.project import configure_project
from kedro.framework.session import KedroSession

from sweeplab.cluster.schedulers import ACTIVE, SCHEDULERS, WAITING, TaskState, state_of
from sweeplab.families import CHECKPOINT_STORE, STUDIES, Family
from sweeplab.run_records import COMPLETED, FAILED, KEEP, MISSING, has_result
from sweeplab.search import BEST, StudyStore, newest_trials
from sweeplab.sweeps import Plan, Variant, resolve_variant_config, study_of
from sweeplab.training.checkpoints import CheckpointSlot

PACKAGE = __name__.split(".")[0]
# a cluster's own states, beside the run record's
RUNNING, PENDING, PLANNED, OUTDATED, KILLED = "running", "pending", "planned", "outdated", "killed"
STATES = (COMPLETED, OUTDATED, FAILED, KILLED, RUNNING, PENDING, PLANNED, MISSING)


@dataclass(frozen=True)
class VariantState:
    variant: str
    state: str  # one of STATES
    detail: str


@dataclass
class OpenSweep:
    """One sweep as a session with these options sees it: its variants and its saved records."""

    family: Family
    plan: Plan
    params: dict[str, Any]
    catalog: Any
    _trials: dict[str, dict[str, Any]] | None = field(default=None, repr=False)  # a search's, read once

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def variants(self) -> list[Variant]:
        return self.plan.variants

    def config(self, variant: Variant) -> dict[str, Any]:
        """The variant's resolved config (``<sweep>.<variant>.config``). A search's trial has
        the values its study holds for it, without asking for new ones; a trial not asked yet,
        or a re-evaluation, has no config hash (None) until it runs."""
        defaults = self.params[self.family.name]
        if variant.trial is None:
            return resolve_variant_config(defaults, family=self.family, variant=variant)
        unknown = {**resolve_variant_config(defaults, family=self.family, variant=variant), "config_hash": None}
        if variant.trial == BEST:
            return unknown
        values = self._asked().get(variant.trial)
        if values is None:
            return unknown
        chosen = dataclasses.replace(variant, overrides=tuple(values.items()))
        return resolve_variant_config(defaults, family=self.family, variant=chosen)

    def _asked(self) -> dict[str, dict[str, Any]]:
        """A search's trials asked so far, by name -> values: the study read once (each open
        replays its whole journal, so once per variant grew with the square of the trials)."""
        if self._trials is None:
            defaults = self.params[self.family.name]
            spec, _, key = study_of(defaults, self.params[self.name], self.name, self.family.code_identity().digest)
            studies: StudyStore = self.catalog.load(STUDIES)
            found = newest_trials(studies.open(self.name, key, spec)) if studies.journal(self.name, key).exists() else {}
            self._trials = {name: dict(trial.params) for name, trial in found.items()}
        return self._trials

    def config_hash(self, variant: Variant) -> str:
        return self.config(variant)["config_hash"]

    def states(self, submissions: Path | None = None, *, ask_scheduler: bool = True) -> list[VariantState]:
        """Every variant's state; with ``ask_scheduler``, joined with what the scheduler of
        the newest submission says of its tasks."""
        latest = latest_submission(submissions) if submissions else None
        scheduler = SCHEDULERS.get(latest["scheduler"]) if latest and ask_scheduler else None
        told = scheduler.task_states(submission_jobs(latest)) if scheduler else {}
        store = self.catalog.load(CHECKPOINT_STORE)
        return [self._state(v, store.root, latest, told) for v in self.variants]

    def _state(self, variant: Variant, store: Path, latest: dict | None, told: dict[str, TaskState]) -> VariantState:
        name = f"{variant.namespace}.summary"
        saved_at = self.catalog.get(name).saved_at()
        resolved = self.config(variant)
        config_hash, code = resolved["config_hash"], self.family.code_identity().digest
        recorded = self._recorded(variant, self.catalog.load(name), config_hash, code)
        if recorded.state == COMPLETED:
            return recorded
        slots = sorted((store / variant.sweep / variant.name).glob(f"{config_hash}-*-{code}"),
                       key=lambda p: (p / "last.pt").stat().st_mtime if (p / "last.pt").exists() else 0)
        done = CheckpointSlot(slots[-1]).epochs_done() if slots else None
        epochs = resolved["config"]["trainer"]["epochs"]
        progress = f"epoch {done} of {epochs}" if done is not None else f"no epoch of {epochs} checkpointed"
        tasks = tasks_of(latest, variant.name) if latest else []
        since = saved_at is None or latest is None or saved_at < latest["submitted_at_epoch"]
        if tasks and state_of(told, tasks[-1]):
            return self._told(variant.name, tasks, told, progress, since, recorded, latest)
        touched = max(((p / "last.pt").stat().st_mtime for p in slots if (p / "last.pt").exists()), default=None)
        if touched is not None and (saved_at is None or touched > saved_at):
            shown = f"{progress}, " if done is not None else ""  # a slot from before last.json
            return VariantState(variant.name, RUNNING, f"{shown}last checkpoint {_age(touched)} ago")
        if tasks and since:
            return VariantState(variant.name, PLANNED, f"submitted {latest['submitted_at']}, job {tasks[-1]}")
        return recorded

    @staticmethod
    def _told(name: str, tasks: list[str], told: dict[str, TaskState], progress: str, since: bool,
              recorded: VariantState, latest: dict) -> VariantState:
        """A variant's state where the scheduler knows its newest task."""
        task, now = tasks[-1], state_of(told, tasks[-1])
        earlier = [known.state for t in tasks[:-1] if (known := state_of(told, t))]
        attempt = f"; attempt {len(tasks)}, after {', '.join(earlier)}" if len(tasks) > 1 else ""
        if now.state in WAITING:
            return VariantState(name, PENDING, f"job {task}" + (f" ({now.reason})" if now.reason else "") + attempt)
        if now.state in ACTIVE:
            return VariantState(name, RUNNING, f"job {task}, {progress}{attempt}")
        if now.killed:
            return VariantState(name, KILLED, f"{now.state}: job {task}, {progress}{attempt}; "
                                "submitting again runs it on from its last checkpoint")
        if now.state != "COMPLETED" and since:  # it ended before it could save its record
            log = Path(latest["folder"]) / "logs" / f"train-{task}.log"
            return VariantState(name, FAILED, f"{now.state}: job {task} ended without a run record; see {log}")
        return recorded

    @staticmethod
    def _recorded(variant: Variant, summary: dict[str, Any], config_hash: str, code: str) -> VariantState:
        """What the newest summary says of the variant as configured now, and of its code."""
        # a re-evaluation's config follows the trials' results: its record's is the one it has
        same_config = summary.get("config_hash") == config_hash or (config_hash is None and variant.trial == BEST)
        trained_by = summary.get("code_identity") or "unrecorded"
        ended = has_result(summary["status"])  # completed, or a stop rule's end (a pruned trial)
        if ended and same_config and (trained_by == code or variant.resume_code == KEEP):
            best = summary.get("best_val_loss")
            detail = (f"{summary.get('monitor', 'val')} {best:.4g} at epoch {summary.get('best_epoch')}"
                      if isinstance(best, int | float) else COMPLETED)
            if summary["status"] != COMPLETED:
                detail = f"{summary['status']}: {summary.get('reason')}; {detail}"
            kept = f" (kept: trained by code {trained_by})" if trained_by != code else ""
            return VariantState(variant.name, COMPLETED, detail + kept)
        if ended and same_config:
            return VariantState(variant.name, OUTDATED, f"trained by code {trained_by}; the code is now {code} "
                                f"(keep it: --params {variant.sweep}.resume.code=keep)")
        if summary["status"] == FAILED and same_config:
            return VariantState(variant.name, FAILED, str(summary.get("reason")))
        if summary["status"] == MISSING:
            return VariantState(variant.name, MISSING, "no run record")
        return VariantState(variant.name, MISSING, "its record is of another config")


def _age(timestamp: float) -> str:
    seconds = max(0, time.time() - timestamp)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def array_task(variants: list[str], arrays: list[dict[str, Any]], jobs: list[str], variant: str) -> str | None:
    """``<array job>_<task>`` of a variant among ``variants``, split into ``arrays`` (a sweep
    larger than the array limit is several) submitted as ``jobs``; None if it is not there."""
    if variant not in variants:
        return None
    index = variants.index(variant)
    for job, array in zip(jobs, arrays or [{"first": 0, "tasks": len(variants)}], strict=False):
        if array["first"] <= index < array["first"] + array["tasks"]:
            return f"{job}_{index - array['first']}"
    return f"?_{index}"


def _first_arrays(manifest: dict[str, Any]) -> list[str]:
    train = manifest["jobs"].get("train", [])
    return [train] if isinstance(train, str) else train  # a manifest written before arrays were split


def variant_jobs(manifest: dict[str, Any]) -> list[str]:
    """The array jobs that ran a submission's variants: its arrays, then its retries'."""
    return [*_first_arrays(manifest), *(job for r in manifest.get("retries", []) for job in r["jobs"])]


def tasks_of(manifest: dict[str, Any], variant: str) -> list[str]:
    """Every task a submission ran a variant in: its array task, then its retries'."""
    rounds = [(manifest["variants"], manifest.get("arrays"), _first_arrays(manifest))]
    rounds += [(r["variants"], r["arrays"], r["jobs"]) for r in manifest.get("retries", [])]
    return [task for names, arrays, jobs in rounds if (task := array_task(names, arrays, jobs, variant))]


def submission_jobs(manifest: dict[str, Any]) -> list[str]:
    """Every job a submission queued: prep, the arrays, their retries, the reports."""
    jobs = manifest["jobs"]
    ids = [jobs.get("prep"), *variant_jobs(manifest), *jobs.get("reports", []), jobs.get("report")]
    return list(dict.fromkeys(i for i in ids if i))


def latest_submission(folder: Path) -> dict | None:
    """The newest submitted manifest (not a dry run) under a sweep's jobs folder, with its
    ``folder``, or None."""
    for path in sorted(Path(folder).glob("*/manifest.json"), reverse=True):
        manifest = json.loads(path.read_text())
        if not manifest.get("dry_run"):
            return {**manifest, "folder": str(path.parent.resolve())}
    return None


def open_sweep(sweep: str, *, env: str | None, conf_source: str | None, params: dict[str, Any]) -> OpenSweep:
    """The sweep as ``kedro run`` with these options would plan it, from the project folder or
    with a packaged project's ``--conf-source``; its parameters are checked the same way."""
    from sweeplab.errors import InputError  # noqa: PLC0415
    from sweeplab.integration.registry import plan  # noqa: PLC0415 - the families import torch
    from sweeplab.pipeline_registry import FAMILIES  # noqa: PLC0415

    configure_project(PACKAGE)
    with KedroSession.create(env=env, conf_source=conf_source, runtime_params=params) as session:
        context = session.load_context()
    run_params = dict(context.config_loader["parameters"])
    if sweep not in run_params or not isinstance(run_params[sweep], dict) or "family" not in run_params[sweep]:
        known = sorted(k for k, v in run_params.items() if isinstance(v, dict) and "family" in v)
        raise InputError(f"{sweep}: not a sweep of this project's parameters; sweeps are {known}")
    family, planned = plan(run_params, FAMILIES, only={sweep})[sweep]
    return OpenSweep(family, planned, run_params, context.catalog)
