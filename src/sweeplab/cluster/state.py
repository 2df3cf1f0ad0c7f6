"""Where each variant of a sweep stands, read from what the runs saved: their run records and
the checkpoint store, never the scheduler's accounting (many clusters switch it off).

A variant is
- ``completed``: its newest summary says so, for the config it has now (same config hash) and
  the code its family has now (same code identity), or, with ``<sweep>.resume.code: keep``,
  for other code;
- ``outdated``: its newest summary says completed for this config, but other code trained
  it; the next run retrains it, so ``submit`` puts it into the next array;
- ``running``: its checkpoint slot for that config and code was written after its newest summary;
- ``planned``: the newest submission holds it and nothing of it was saved since;
- ``failed``: its newest summary says so (with the reason);
- ``missing``: none of these (never run, or run with another config).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework.project import configure_project
from kedro.framework.session import KedroSession

from sweeplab.families import CHECKPOINT_STORE, Family
from sweeplab.run_records import COMPLETED, FAILED, KEEP, MISSING
from sweeplab.sweeps import Plan, Variant, resolve_variant_config

PACKAGE = __name__.split(".")[0]
RUNNING, PLANNED, OUTDATED = "running", "planned", "outdated"  # a cluster's own states, beside the run record's
STATES = (COMPLETED, OUTDATED, FAILED, RUNNING, PLANNED, MISSING)


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

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def variants(self) -> list[Variant]:
        return self.plan.variants

    def config(self, variant: Variant) -> dict[str, Any]:
        """The variant's resolved config (``<sweep>.<variant>.config``)."""
        return resolve_variant_config(self.params[self.family.name], family=self.family, variant=variant)

    def config_hash(self, variant: Variant) -> str:
        return self.config(variant)["config_hash"]

    def states(self, submissions: Path | None = None) -> list[VariantState]:
        latest = latest_submission(submissions) if submissions else None
        planned = set(latest["variants"]) if latest else set()
        store = self.catalog.load(CHECKPOINT_STORE)
        return [self._state(v, store.root, planned, latest) for v in self.variants]

    def _state(self, variant: Variant, store: Path, planned: set[str], latest: dict | None) -> VariantState:
        name = f"{variant.namespace}.summary"
        saved_at = self.catalog.get(name).saved_at()
        config_hash, code = self.config_hash(variant), self.family.code_identity().digest
        recorded = self._recorded(variant, self.catalog.load(name), config_hash, code)
        if recorded.state == COMPLETED:
            return recorded
        slots = sorted((store / variant.sweep / variant.name).glob(f"{config_hash}-*-{code}/last.pt"))
        touched = max((p.stat().st_mtime for p in slots), default=None)
        if touched is not None and (saved_at is None or touched > saved_at):
            return VariantState(variant.name, RUNNING, f"last checkpoint {_age(touched)} ago")
        if variant.name in planned and (saved_at is None or saved_at < latest["submitted_at_epoch"]):
            return VariantState(variant.name, PLANNED, f"submitted {latest['submitted_at']}, "
                                f"job {array_task(latest, variant.name)}")
        return recorded

    @staticmethod
    def _recorded(variant: Variant, summary: dict[str, Any], config_hash: str, code: str) -> VariantState:
        """What the newest summary says of the variant as configured now, and of its code."""
        same_config = summary.get("config_hash") == config_hash
        trained_by = summary.get("code_identity") or "unrecorded"
        if summary["status"] == COMPLETED and same_config and (trained_by == code or variant.resume_code == KEEP):
            best = summary.get("best_val_loss")
            detail = (f"{summary.get('monitor', 'val')} {best:.4g} at epoch {summary.get('best_epoch')}"
                      if isinstance(best, int | float) else COMPLETED)
            kept = f" (kept: trained by code {trained_by})" if trained_by != code else ""
            return VariantState(variant.name, COMPLETED, detail + kept)
        if summary["status"] == COMPLETED and same_config:
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


def array_task(manifest: dict[str, Any], variant: str) -> str:
    """``<array job>_<task>`` of a variant in a submitted manifest: the array that holds it
    (a sweep larger than the array limit is several) and its index there."""
    index = manifest["variants"].index(variant)
    arrays = manifest.get("arrays") or [{"first": 0, "tasks": len(manifest["variants"])}]
    jobs = manifest["jobs"].get("train", [])
    jobs = [jobs] if isinstance(jobs, str) else jobs  # a manifest written before arrays were split
    for job, array in zip(jobs, arrays, strict=False):
        if array["first"] <= index < array["first"] + array["tasks"]:
            return f"{job}_{index - array['first']}"
    return f"?_{index}"


def latest_submission(folder: Path) -> dict | None:
    """The newest submitted manifest (not a dry run) under a sweep's jobs folder, or None."""
    for path in sorted(Path(folder).glob("*/manifest.json"), reverse=True):
        manifest = json.loads(path.read_text())
        if not manifest.get("dry_run"):
            return manifest
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
