"""Fail fast: a sweep whose first variants all fail the same way starts no more.

With ``<sweep>.fail_fast: K`` (off by default), once the first K variants of the sweep to
finish in a run have all failed with the same reason, a variant that has not started yet is
not trained: its record says ``failed`` with the reason ``FailFast: not started ...``. A typo
in a family's code then costs K runs, not the whole sweep. Reasons count as the same when they
differ only in their numbers (the epoch or the value in ``non-finite loss at epoch 3``).

The variants that finish are noted in a ledger folder, one small file per variant (created
whole, so that processes on several machines can write it at once over a shared filesystem):

- ``kedro run``: a temporary folder made for the run
  (:class:`~sweeplab.integration.hooks.FailFastHook`), inherited by
  ParallelRunner's workers through ``SWEEPLAB_FAIL_FAST``;
- on a cluster: ``<submission folder>/finished``, which every task of the submission shares; a
  task that finds the rule broken cancels the submission's tasks still waiting
  (:func:`sweeplab.cluster.submission.stop_waiting`), and the report says why.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# what a family's training imports: kept free of the cluster and Kedro (see code_identity)
from sweeplab.run_records import FAILED

LEDGER_ENV = "SWEEPLAB_FAIL_FAST"  # the ledger folder of the run this process serves
STOPPED = "STOPPED"  # in a sweep's ledger: why it stopped starting variants
GOING = "GOING"  # in a sweep's ledger: its first K finished without tripping the rule; it never will


class FailFast(RuntimeError):
    """Why a variant was not started."""


def ledger() -> Path | None:
    folder = os.environ.get(LEDGER_ENV)
    return Path(folder) if folder else None


def _same(reason: str) -> str:
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", reason)


def note(config: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
    """A variant of a sweep with ``fail_fast`` finished (completed, stopped or failed)."""
    folder = ledger()
    if folder is None or not config.get("fail_fast"):
        return
    sweep = folder / config["sweep"]
    sweep.mkdir(parents=True, exist_ok=True)
    entry = {"variant": config["variant"], "status": summary.get("status"), "reason": str(summary.get("reason")),
             "finished_at": time.time()}
    # written whole under a temporary name, then renamed: a reader never sees half an entry
    tmp = sweep / f".{config['variant']}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(entry))
    tmp.replace(sweep / f"{config['variant']}.json")


def verdict(sweep: str, k: int | None) -> str | None:
    """Why ``sweep`` starts no more variants in this run, or None while it may."""
    folder = ledger()
    if folder is None or not k:
        return None
    stopped = folder / sweep / STOPPED
    if stopped.exists():
        return stopped.read_text()
    if (folder / sweep / GOING).exists():  # settled: no need to read every finished variant again
        return None
    entries = []
    for path in (folder / sweep).glob("*.json"):
        try:
            entries.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # a foreign file: not a finished variant
            continue
    first = sorted(entries, key=lambda e: (e.get("finished_at", 0), e.get("variant", "")))[:k]
    if len(first) < k:
        return None
    if any(e.get("status") != FAILED for e in first) or len({_same(e["reason"]) for e in first}) > 1:
        (folder / sweep / GOING).touch()  # later variants finish later: the first K are these for good
        return None
    why = f"the first {k} variant(s) of {sweep} to finish all failed with: {first[0]['reason']}"
    stopped.write_text(why)
    return why


def not_started(config: Mapping[str, Any]) -> FailFast | None:
    """The error a variant's record gives when fail fast keeps it from starting, or None."""
    why = verdict(config["sweep"], config.get("fail_fast"))
    return FailFast(f"not started (fail_fast: {config['fail_fast']}): {why}") if why else None


def stopped(sweep: str) -> str | None:
    """Why fail fast stopped ``sweep`` in the run this process serves; None if it did not."""
    folder = ledger()
    path = folder / sweep / STOPPED if folder else None
    return path.read_text() if path is not None and path.exists() else None
