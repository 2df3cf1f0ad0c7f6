"""The run record's vocabulary, in one place: the statuses a run can end with and the keys
of its summary. The training loop writes them, the run-record datasets read them back,
reporting and the cluster's status read them; each imports the names from here.

A summary (``sweeplab.training.loop``)::

    {"sweep", "variant", "condition", "seed", "status", "reason",
     "best_epoch", "epochs_run", "best_val_loss", "wall_s", "monitor", "threads", "config_hash",
     "code_identity", "code_version", "torch_version", "device", "precision", "world_size",
     "best":  {"val": {metric: value}, "train": {...}},     # at the best epoch
     "final": {"val": {...}, "train": {...}}}              # at the last epoch

A record restored from a checkpoint also holds ``restored: true``; one restored although
its code differs from the code of the run that restored it (``<sweep>.resume.code: keep``)
holds ``code_kept: true`` too.

A metric is any key of those four mappings, whatever its name (``best_f1`` and ``final_acc``
are metric names like any other); ``best.val`` holds the values a report shows.
"""

from __future__ import annotations

from typing import Any

# statuses a summary can hold
COMPLETED = "completed"  # finished its epochs, or early stopping ended it: a result
FAILED = "failed"  # an exception or a non-finite metric: no result, the reason says why
# a family's stop rule ends a run with a status of its own (the G-code family's "collapsed"):
# a result, whose metrics count; the report counts these runs as "stopped"
STOPPED = "stopped"
# never saved: what the run-record dataset loads for a planned run without a summary
MISSING = "missing"

NO_RESULT = (FAILED, MISSING)  # runs that are counted and listed, never averaged

# the summary's schema: the keys every summary holds (a missing run's record holds two)
IDENTITY_KEYS = ("sweep", "variant", "condition", "seed", "config_hash")
OUTCOME_KEYS = ("status", "reason")
SCALAR_KEYS = ("best_val_loss", "best_epoch", "epochs_run", "wall_s")  # one number each, tabulated as they are
# which code made the numbers (``sweeplab.code_identity``), its git commit, torch, the device chosen
CODE_KEYS = ("code_identity", "code_version", "torch_version", "device", "precision", "world_size")
SUMMARY_KEYS = (*IDENTITY_KEYS, *OUTCOME_KEYS, *SCALAR_KEYS, *CODE_KEYS, "monitor", "threads", "best", "final")
CODE_KEPT = "code_kept"  # a restored record of other code than the run's, kept on request
# per epoch in a history's train rows: how fast and in how much memory it ran. Timings, not
# results: kept out of the summary's metrics, the curves and the tables
THROUGHPUT = ("samples_per_s", "peak_memory_mb")
KEEP, RETRAIN = "keep", "retrain"  # <sweep>.resume.code: what a re-run does with records other code made
# where metrics sit: summary[which][split][metric]
METRIC_SETS = (("best", "val"), ("final", "val"), ("best", "train"), ("final", "train"))
SHOWN = ("best", "val")  # the values a report shows under the metric's own name


def make_summary(**values: Any) -> dict[str, Any]:
    """A summary with exactly the schema's keys (the training loop's one way to write one);
    a key missing or unknown is a bug in the writer."""
    missing, unknown = [k for k in SUMMARY_KEYS if k not in values], [k for k in values if k not in SUMMARY_KEYS]
    if missing or unknown:
        raise TypeError(f"a run summary must hold exactly run_records.SUMMARY_KEYS: missing {missing}, unknown {unknown}")
    return values


def has_result(status: str) -> bool:
    """Whether a run's metrics count: completed, or ended by a family's stop rule."""
    return status not in NO_RESULT


def stopped_by_rule(status: str) -> bool:
    """A status of a family's own stop rule (neither completed, failed nor missing)."""
    return status not in (COMPLETED, *NO_RESULT)


def missing_record(reason: str) -> dict[str, Any]:
    """The record of a planned run whose summary was never saved."""
    return {"status": MISSING, "reason": reason}


def metric_column(which: str, split: str, metric: str) -> str:
    """A summary metric's column in the results table: the shown set under its own name, the
    others as ``final.val.<metric>``, ``best.train.<metric>``, ``final.train.<metric>``."""
    return metric if (which, split) == SHOWN else f"{which}.{split}.{metric}"


def is_metric_column(column: str) -> bool:
    """Whether a results-table column holds a metric from another set than the shown one."""
    return column.startswith(tuple(f"{which}.{split}." for which, split in METRIC_SETS if (which, split) != SHOWN))


def metrics(summary: dict[str, Any], which: str = "best", split: str = "val") -> dict[str, Any]:
    return (summary.get(which) or {}).get(split) or {}


def missing_keys(summary: dict[str, Any]) -> list[str]:
    """The schema's keys a summary lacks (a missing run's record lacks all but two)."""
    if summary.get("status") == MISSING:
        return [k for k in OUTCOME_KEYS if k not in summary]
    return [k for k in SUMMARY_KEYS if k not in summary]
