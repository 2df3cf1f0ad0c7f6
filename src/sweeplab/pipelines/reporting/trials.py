"""A search's part of the report, from its run records: one row per trial, the history
figure, parameter importances and the re-evaluation of the best trial on fresh seeds.

Like the rest of the report it reads summaries only: each trial's values are in its record's
``condition``. The study itself is the sampler's memory, not the report's source, so a report
of pinned versions (``--load-versions``) describes those runs.
"""

from __future__ import annotations

import logging
import math
import statistics
import warnings
from typing import Any

import pandas as pd

from sweeplab import figures, search
from sweeplab.pipelines.reporting.stats import describe
from sweeplab.run_records import FAILED, MISSING, SHOWN, has_result
from sweeplab.run_records import metrics as summary_metrics
from sweeplab.sweeps import Plan, search_of

logger = logging.getLogger(__name__)

STATES = ("completed", "pruned", "failed", "missing")
MIN_FOR_IMPORTANCE = 8  # completed trials below which importances say little, and are not shown
TRIAL_COLUMNS = ["trial", "state", "objective", "last_value", "epochs_run", "wall_s", "reason"]


def _trial_state(runs: list[dict[str, Any]]) -> str:
    statuses = [r.get("status", MISSING) for r in runs]
    if search.PRUNED in statuses:
        return "pruned"
    if any(has_result(s) for s in statuses):
        return "completed"
    return FAILED if FAILED in statuses else MISSING


def search_trials(spec: dict[str, Any], *, sweep: Plan, **summaries: dict[str, Any]) -> pd.DataFrame:
    """One row per trial, in the order its values were asked: its state (pruned if any seed
    was, completed if any gave a result, else failed or missing), the objective (mean of its
    seeds' best-epoch values), the last value a pruned trial reported, epochs and time spent,
    and its values (one column per key of the space)."""
    searched, _ = search_of(sweep.name, spec)
    metric, prune_metric = searched.objective.metric, searched.prune_metric
    by_trial: dict[str, list[dict[str, Any]]] = {}
    for variant in sweep.variants:
        if variant.trial not in (None, search.BEST):
            by_trial.setdefault(variant.trial, []).append(summaries.get(variant.name) or {"status": MISSING})
    rows = []
    for trial, runs in by_trial.items():
        found = [r for r in runs if r.get("status", MISSING) != MISSING]
        values = search.trial_results(searched, {str(i): r for i, r in enumerate(found)}).get(trial, [])
        last = [summary_metrics(r, "final", "val").get(prune_metric) for r in found if r.get("status") == search.PRUNED]
        condition = next((r.get("condition") or {} for r in found), {})
        rows.append({"trial": trial, "state": _trial_state(runs),
                     "objective": statistics.fmean(values) if values else math.nan,
                     "last_value": next((v for v in last if v is not None), math.nan),
                     "epochs_run": sum(int(r.get("epochs_run") or 0) for r in found),
                     "wall_s": sum(float(r.get("wall_s") or 0) for r in found),
                     "reason": "; ".join(sorted({str(r.get("reason")) for r in found
                                                  if r.get("status") in (FAILED, search.PRUNED)})),
                     **{k: condition.get(k) for k in searched.params}})
    frame = pd.DataFrame(rows, columns=[*TRIAL_COLUMNS, *searched.params])
    if metric not in {m for r in summaries.values() for m in summary_metrics(r, *SHOWN)} and (frame["state"] ==
                                                                                             "completed").any():
        logger.warning("%s: no run recorded the objective metric %r", sweep.name, metric)
    return frame


def plot_search(trials: pd.DataFrame, spec: dict[str, Any], *, sweep: Plan) -> dict[str, bytes]:
    """The search's history figure, as PNG by file name."""
    searched, _ = search_of(sweep.name, spec)
    fig = figures.plot_search_history(trials, searched.objective.metric, searched.objective.direction)
    return {"search_history.png": figures.png(fig)}


def importances(trials: pd.DataFrame, searched: search.SearchSpec) -> dict[str, float] | None:
    """Each key's share of the objective's variation among the completed trials (Optuna's
    default evaluator, PED-ANOVA), or None below ``MIN_FOR_IMPORTANCE`` completed trials."""
    done = trials[(trials["state"] == "completed") & trials["objective"].notna()]
    if len(done) < MIN_FOR_IMPORTANCE:
        return None
    optuna = search.optuna_module()
    study = optuna.create_study(direction="minimize" if searched.objective.direction == "min" else "maximize")
    for _, row in done.iterrows():
        values = {k: _plain(row[k]) for k in searched.params if present(row[k])}
        study.add_trial(optuna.trial.create_trial(
            params=values, distributions={k: searched.params[k].distribution() for k in values},
            value=float(row["objective"])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its note that few trials make rough estimates: the report says so
        return dict(optuna.importance.get_param_importances(study))


def present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def reevaluation(table: pd.DataFrame, metric: str, confidence: float) -> Any:
    """The best trial's config on fresh seeds: the description of the objective over them."""
    rows = table[(table.get("trial") == search.BEST) & table["status"].map(has_result)] if "trial" in table else table[:0]
    if metric not in rows:
        return None
    values = rows[metric].dropna().to_list()
    return describe(values, confidence) if values else None


def planned_epochs(variants: list[Any], table: pd.DataFrame, found: pd.DataFrame) -> tuple[int, int]:
    """(epochs the trials trained, epochs they would have trained unpruned): each trial run's
    epochs against its config's full count, taken as the most any trial run reached."""
    runs = table[table["variant"].isin([v.name for v in variants if v.trial not in (None, search.BEST)])]
    full = int(runs["epochs_run"].max()) if len(runs) and runs["epochs_run"].notna().any() else 0
    return int(found["epochs_run"].sum()), full * len(runs)
