"""The report's tables, from run records: one row per planned run, statistics per condition,
comparisons, success criteria, the best setting per axis and curves across seeds.

Vocabulary: a *condition* is one combination of grid values (every sweep parameter but the
seed); its *runs* are its seeds. A planned run whose summary was never saved is *missing*.
Metrics are found by name, from the summary's schema (``sweeplab.run_records``), never by the
position of a column.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.config import ConfigError
from sweeplab.pipelines.reporting.config import SweepLayout, condition_name, layout
from sweeplab.pipelines.reporting.stats import (
    adjust_pvalues,
    bootstrap_difference,
    compare,
    describe,
    minimum_detectable,
    probability_of_improvement,
    seeds_needed,
    stratified_iqm,
)
from sweeplab.run_records import (
    CODE_KEPT,
    COMPLETED,
    FAILED,
    METRIC_SETS,
    MISSING,
    NO_RESULT,
    SCALAR_KEYS,
    THROUGHPUT,
    is_metric_column,
    metric_column,
    missing_record,
    stopped_by_rule,
)
from sweeplab.run_records import metrics as summary_metrics
from sweeplab.sweeps import Plan

logger = logging.getLogger(__name__)

CODE_COLUMNS = ("code", CODE_KEPT)  # the code identity that made a run's numbers; kept from other code
SETUP_COLUMNS = ("device", "precision", "world_size")  # what a run's numbers were computed on, and in
RUN_COLUMNS = ("variant", "seed", "status", *SETUP_COLUMNS, *CODE_COLUMNS, "reason")


# ----------------------------------------------------------------------------------------------
# runs


def _flatten_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Summary metrics as flat columns (``records.metric_column``), then the scalars."""
    out: dict[str, float] = {}
    for which, split in METRIC_SETS:
        for metric, value in summary_metrics(summary, which, split).items():
            out[metric_column(which, split, metric)] = float(value) if value is not None else np.nan
    for key in SCALAR_KEYS:
        value = summary.get(key)
        out[key] = float(value) if value is not None else np.nan
    return out


def results_table(spec: dict[str, Any], *, sweep: Plan, **summaries: dict[str, Any]) -> pd.DataFrame:
    """One row per planned run: variant, grid values, seed, status (completed, failed,
    missing, or a stop rule's own), its best-epoch val metrics, the other metric sets
    (``final.val.<metric>`` ...), the scalars, and the reason last."""
    plan = layout(spec, sweep)
    rows, found = [], {}
    for variant in plan.variants:
        summary = summaries.get(variant.name) or missing_record("no summary given")
        row: dict[str, Any] = {"variant": variant.name}
        row |= {plan.axes[key]: value for key, value in variant.condition.items()}
        row |= {"seed": variant.seed, "status": summary.get("status", MISSING), "reason": summary.get("reason", "")}
        if row["status"] != MISSING:
            row |= {k: summary.get(k) for k in SETUP_COLUMNS}
            row |= {"code": summary.get("code_identity"), CODE_KEPT: bool(summary.get(CODE_KEPT))}
            row |= _flatten_metrics(summary)
            found |= dict.fromkeys(summary_metrics(summary))
        rows.append(row)
    table = pd.DataFrame(rows)
    metrics = list(plan.report.metrics) or list(found)
    for metric in metrics:
        if metric not in table:
            table[metric] = np.nan
    for column, empty in (("code", None), (CODE_KEPT, False)):  # a sweep none of whose runs has a record
        if column not in table:
            table[column] = empty
    front, back = ["variant", *plan.labels, "seed", "status", *metrics], [*CODE_COLUMNS, "reason"]
    table = table[front + [c for c in table.columns if c not in front + back] + back]
    not_done = table[table["status"].isin(NO_RESULT)]
    if len(not_done):
        logger.warning("%s: %d of %d planned runs did not complete: %s", sweep.name, len(not_done), len(table),
                       ", ".join(f"{r.variant} ({r.status})" for r in not_done.itertuples()))
    return table


def kept_code(table: pd.DataFrame) -> pd.Series:
    """Per run: whether its result was kept from other code than its run's (``resume.code: keep``)."""
    return table.get(CODE_KEPT, pd.Series(False, index=table.index)).fillna(False).astype(bool)


def code_versions(table: pd.DataFrame) -> dict[str, list[str]]:
    """Each code identity of the runs with a record -> their variants (runs from before code
    identities were recorded under "unrecorded")."""
    runs = table[table["status"] != MISSING]
    found: dict[str, list[str]] = {}
    for variant, code in zip(runs["variant"], runs.get("code", pd.Series(None, index=runs.index)), strict=True):
        found.setdefault(code if isinstance(code, str) and code else "unrecorded", []).append(variant)
    return found


def mixed_code(table: pd.DataFrame) -> str | None:
    """How the runs' code differs, for a report's title (``runs of 2 code versions, 3 kept from
    earlier code``), or None when the code of this run made every result."""
    versions, kept = len(code_versions(table)), int(kept_code(table).sum())
    if versions < 2 and not kept:
        return None
    mixed = f"runs of {versions} code versions" if versions > 1 else "runs of earlier code"
    return mixed + (f", {kept} kept from earlier code" if kept else "")


def mixed_setups(table: pd.DataFrame) -> list[str]:
    """The setup columns (device, precision, world size) in which the recorded runs differ, for a report's
    title and its results table; none when every run was computed alike."""
    runs = table[table["status"] != MISSING]
    return [c for c in SETUP_COLUMNS if c in runs and runs[c].fillna("unrecorded").nunique() > 1]


def setup_note(table: pd.DataFrame) -> str | None:
    """``runs on 2 devices (cpu: 3, cuda:0: 6)``, or None when every run was computed alike."""
    runs = table[table["status"] != MISSING]
    notes = []
    for column in mixed_setups(table):
        counts = runs[column].fillna("unrecorded").value_counts()
        plural = {"device": "devices", "precision": "precisions", "world_size": "world sizes"}[column]
        notes.append(f"runs on {len(counts)} {plural} ({', '.join(f'{k}: {n}' for k, n in counts.items())})")
    return "; ".join(notes) or None


def shown_metrics(table: pd.DataFrame, sweep: SweepLayout) -> list[str]:
    """The metrics a report shows: ``report.metrics``, or every best-epoch val metric the runs
    recorded, by name: each column that is not a run's identity, an axis, a scalar of the
    summary or a metric of another set (``final.val.<metric>`` ...)."""
    if sweep.report.metrics:
        return list(sweep.report.metrics)
    skip = {*RUN_COLUMNS, *sweep.labels, *SCALAR_KEYS}
    return [c for c in table.columns if c not in skip and not is_metric_column(c)
            and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])]


def report_metrics(table: pd.DataFrame, spec: dict[str, Any], *, sweep: Plan) -> list[str]:
    return shown_metrics(table, layout(spec, sweep))


def numeric_metrics(table: pd.DataFrame, sweep: SweepLayout) -> list[str]:
    """Every numeric column of a run's results: the statistics cover them all."""
    skip = {*RUN_COLUMNS, *sweep.labels}
    return [c for c in table.columns if c not in skip and pd.api.types.is_numeric_dtype(table[c])]


def compare_metric(table: pd.DataFrame, sweep: SweepLayout) -> str | None:
    """``report.compare_metric``, else the first metric shown (None when no run has any)."""
    metric = sweep.report.compare_metric or next(iter(shown_metrics(table, sweep)), None)
    if metric is not None:
        _check_metric(table, metric, sweep, "compare_metric")
    return metric


def ranking_metrics(table: pd.DataFrame, sweep: SweepLayout) -> list[str]:
    """The metrics that rank each axis's settings: ``report.best_by``, else the compare metric."""
    if sweep.report.best_by:
        for i, metric in enumerate(sweep.report.best_by):
            _check_metric(table, metric, sweep, f"best_by[{i}]")
        return list(sweep.report.best_by)
    metric = compare_metric(table, sweep)
    return [metric] if metric is not None else []


def _check_metric(table: pd.DataFrame, metric: str, sweep: SweepLayout, key: str) -> None:
    if metric not in table:
        raise ConfigError(f"{sweep.where(key)}: '{metric}' is not a metric of the runs; "
                          f"metrics: {shown_metrics(table, sweep)}")


# ----------------------------------------------------------------------------------------------
# statistics per condition


def conditions(table: pd.DataFrame, labels: list[str]):
    """(grid values, that condition's rows), in grid order."""
    for values, rows in table.groupby(labels, sort=False, dropna=False):
        yield dict(zip(labels, values if isinstance(values, tuple) else (values,), strict=True)), rows


def outcome_counts(rows: pd.DataFrame) -> dict[str, float]:
    """Planned, completed, stopped by a rule, failed and missing runs, and the share with a result."""
    status = rows["status"]
    counts: dict[str, float] = {
        "n_planned": len(rows),
        "n_completed": int((status == COMPLETED).sum()),
        "n_stopped": int(status.map(stopped_by_rule).sum()),
        "n_failed": int((status == FAILED).sum()),
        "n_missing": int((status == MISSING).sum()),
    }
    counts["completion_rate"] = (counts["n_completed"] + counts["n_stopped"]) / counts["n_planned"]
    return counts


def condition_statistics(table: pd.DataFrame, spec: dict[str, Any], *, sweep: Plan,
                         ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per condition and metric: completion counts, then n, mean, std (ddof=1), SEM, the
    t interval, median, min and max over runs with a result (completed or stopped by a rule)
    and finite values.

    Returns the flat table and the same as JSON-ready ``aggregated_results``.
    """
    plan = layout(spec, sweep)
    confidence = plan.report.confidence
    metrics = numeric_metrics(table, plan)
    flat, out = [], []
    for grid, rows in conditions(table, plan.labels):
        counts = outcome_counts(rows)
        done = rows[~rows["status"].isin(NO_RESULT)]
        excluded = [{"variant": r.variant, "seed": int(r.seed), "status": r.status, "reason": str(r.reason)}
                    for r in rows.itertuples() if r.status in NO_RESULT]
        per_metric = {}
        for metric in metrics:
            d = describe(done[metric].to_numpy(dtype=float), confidence)
            per_metric[metric] = d.as_dict()
            note = "" if d.n >= 2 else f"n = {d.n}: no interval"
            flat.append({**grid, "metric": metric, **counts, **d.as_dict(), "note": note})
            for variant, seed, status, value in zip(done["variant"], done["seed"], done["status"], done[metric],
                                                    strict=True):
                if not np.isfinite(value):
                    excluded.append({"variant": variant, "seed": int(seed), "status": status,
                                     "reason": f"{metric} is {value}: excluded from its statistics"})
        out.append({
            "condition": condition_name(grid, plan.labels),
            "grid": {key: plain(grid[label]) for key, label in plan.axes.items()},
            "n_runs": counts["n_planned"], **counts,
            "excluded": excluded,
            "metrics": {m: {k: plain(v) for k, v in s.items()} for m, s in per_metric.items()},
        })
    aggregated = {"confidence": confidence, "interval": f"t, n-1 degrees of freedom, {confidence:.0%}",
                  "axes": plan.axes, "conditions": out}
    return pd.DataFrame(flat), aggregated


def plain(value: Any) -> Any:
    """numpy scalars -> Python; NaN and inf -> None (strict JSON has neither)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------------------------
# comparisons


def _values_by_seed(rows: pd.DataFrame, metric: str) -> dict[int, float]:
    done = rows[~rows["status"].isin(NO_RESULT)]
    return {int(s): float(v) for s, v in zip(done["seed"], done[metric], strict=True)}


COMPARISON_COLUMNS = ["metric", "condition_a", "condition_b", "mean_a", "mean_b", "test", "n_a", "n_b", "mean_diff",
                      "diff_ci_lower", "diff_ci_upper", "p_improvement", "statistic", "df", "pvalue", "effect_size"]


def _failed_as_worst(rows: pd.DataFrame, metric: str, worst: float) -> dict[int, float]:
    """A condition's values by seed, with each failed run scored as ``worst``."""
    values = _values_by_seed(rows, metric)
    return values | {int(s): worst for s in rows.loc[rows["status"] == FAILED, "seed"]}


def compare_conditions(table: pd.DataFrame, spec: dict[str, Any], *, sweep: Plan) -> pd.DataFrame:
    """Every pair of conditions on ``report.compare_metric``: paired t-test when the same
    seeds completed in both, else Welch's; effect size; p-values corrected across the whole
    family of pairs (``report.correction``: holm, bonferroni or none).

    Beside the test: the mean difference with a bootstrap interval (seeded by the pair's
    place), the probability that a run of A beats a run of B, and whether the difference
    reaches ``report.min_effect``: ``significant`` needs the corrected test and that effect.
    When a run of the sweep failed, each pair is tested again with every failed run scored as
    the worst value observed (``*_failed_as_worst``): how much the conclusion leans on the
    failures being left out."""
    plan = layout(spec, sweep)
    metric = compare_metric(table, plan)
    groups = list(conditions(table, plan.labels)) if metric is not None else []
    direction = plan.direction(metric) if metric is not None else "min"
    confidence, min_effect = plan.report.confidence, plan.report.min_effect
    done = table.loc[~table["status"].isin(NO_RESULT), metric] if metric is not None else pd.Series(dtype=float)
    done = done[np.isfinite(done.to_numpy(dtype=float))]
    failures = metric is not None and bool((table["status"] == FAILED).any()) and len(done) > 0
    worst = float(done.max() if direction == "min" else done.min()) if failures else np.nan
    rows, sensitivity = [], []
    for i, ((grid_a, rows_a), (grid_b, rows_b)) in enumerate(itertools.combinations(groups, 2)):
        a, b = _values_by_seed(rows_a, metric), _values_by_seed(rows_b, metric)
        c = compare(a, b)
        diff = bootstrap_difference(a, b, confidence, seed=i)
        rows.append({"metric": metric, "condition_a": condition_name(grid_a, plan.labels),
                     "condition_b": condition_name(grid_b, plan.labels),
                     "mean_a": describe(list(a.values())).mean, "mean_b": describe(list(b.values())).mean,
                     **c.as_dict(), "diff_ci_lower": diff.ci_lower, "diff_ci_upper": diff.ci_upper,
                     "p_improvement": probability_of_improvement(a.values(), b.values(), direction)})
        if failures:
            worse = compare(_failed_as_worst(rows_a, metric, worst), _failed_as_worst(rows_b, metric, worst))
            sensitivity.append({"mean_diff_failed_as_worst": worse.mean_diff, "pvalue_failed_as_worst": worse.pvalue})
    frame = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    alpha = 1 - confidence
    frame["p_adjusted"] = adjust_pvalues(frame["pvalue"].to_numpy(dtype=float), plan.report.correction)
    frame["correction"] = plan.report.correction
    frame["meets_min_effect"] = _meets_effect(frame["mean_diff"], min_effect)
    frame["significant"] = (frame["p_adjusted"] < alpha) & frame["meets_min_effect"]
    if failures:
        extra = pd.DataFrame(sensitivity, index=frame.index)
        frame["worst_value"] = worst
        frame["mean_diff_failed_as_worst"] = extra["mean_diff_failed_as_worst"]
        frame["p_adjusted_failed_as_worst"] = adjust_pvalues(extra["pvalue_failed_as_worst"].to_numpy(dtype=float),
                                                             plan.report.correction)
        frame["significant_failed_as_worst"] = ((frame["p_adjusted_failed_as_worst"] < alpha)
                                                & _meets_effect(frame["mean_diff_failed_as_worst"], min_effect))
    return frame


def _meets_effect(differences: pd.Series, min_effect: float | None) -> pd.Series:
    """Whether each difference is at least ``report.min_effect`` in size (all, when it is off)."""
    if min_effect is None:
        return pd.Series(True, index=differences.index)
    return differences.abs() >= min_effect


def success_criteria(stats: pd.DataFrame, spec: dict[str, Any], *, sweep: Plan) -> pd.DataFrame:
    """Per condition and ``report.criteria`` metric: the target, the mean and its interval,
    whether the mean meets the target and whether the whole interval does."""
    plan = layout(spec, sweep)
    rows = []
    for metric, criterion in plan.report.criteria.items():
        bounds = criterion.bounds()
        found = stats[stats["metric"] == metric] if len(stats) else stats
        if found.empty:
            known = sorted(stats["metric"].unique()) if len(stats) else []
            raise ConfigError(f"{plan.where('criteria')} names '{metric}', which no run reports; metrics: {known}")
        target = " and ".join(f"{'>=' if k == 'min' else '<='} {v:g}" for k, v in bounds.items())
        for _, row in found.iterrows():
            rows.append({**{label: row[label] for label in plan.labels}, "metric": metric, "target": target,
                         "n": int(row["n"]), "mean": row["mean"], "ci_lower": row["ci_lower"],
                         "ci_upper": row["ci_upper"], "met": _meets(row["mean"], bounds),
                         "met_by_interval": _meets(row["ci_lower"], bounds) and _meets(row["ci_upper"], bounds)})
    return pd.DataFrame(rows, columns=[*plan.labels, "metric", "target", "n", "mean", "ci_lower", "ci_upper",
                                       "met", "met_by_interval"])


def _meets(value: float, bounds: dict[str, float]) -> bool:
    return bool(np.isfinite(value)) and all(value >= v if k == "min" else value <= v for k, v in bounds.items())


def best_per_axis(table: pd.DataFrame, spec: dict[str, Any], *, sweep: Plan) -> pd.DataFrame:
    """For each grid axis, ranking metric (``report.best_by``, default the compare metric) and
    setting of the other axes: the best value of the axis (by mean; lower or higher is better
    per ``report.directions``), the runner-up, and whether the best is significantly better
    (paired or Welch t-test, p < 1 - confidence, uncorrected)."""
    plan = layout(spec, sweep)
    alpha = 1 - plan.report.confidence
    ranked = ranking_metrics(table, plan)
    out = []
    for label in plan.labels:
        others = [lab for lab in plan.labels if lab != label]
        contexts = [({}, table)] if not others else conditions(table, others)
        for context, rows in contexts:
            for metric in ranked:
                sign = 1 if plan.direction(metric) == "min" else -1
                options = []
                for value, group in rows.groupby(label, sort=False):
                    values = _values_by_seed(group, metric)
                    d = describe(list(values.values()))
                    if d.n:
                        options.append((sign * d.mean, value, values, d))
                options.sort(key=lambda o: o[0])
                record = {"axis": label, "context": condition_name(context, others) or "(all)",
                          "metric": metric, "direction": plan.direction(metric)}
                if not options:
                    out.append({**record, "best": None, "note": "no completed run"})
                    continue
                _, best, best_values, best_d = options[0]
                record |= {"best": best, "best_mean": best_d.mean, "best_n": best_d.n}
                if len(options) == 1:
                    out.append({**record, "note": "only one value has completed runs"})
                    continue
                _, second, second_values, second_d = options[1]
                c = compare(best_values, second_values)
                better = c.pvalue < alpha and sign * c.mean_diff < 0
                out.append({**record, "runner_up": second, "runner_up_mean": second_d.mean,
                            "runner_up_n": second_d.n, "test": c.test, "pvalue": c.pvalue,
                            "significantly_better": bool(better),
                            "note": "" if np.isfinite(c.pvalue) else "n < 2: no test"})
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------------------------
# training curves across seeds

CURVE_COLUMNS = ["split", "epoch", "metric", "n", "n_runs", "mean", "std", "ci_lower", "ci_upper"]


def aggregate_curves(spec: dict[str, Any], *, sweep: Plan, **histories: pd.DataFrame) -> pd.DataFrame:
    """Per condition, split, epoch and metric: n runs still going, mean and t interval.

    Runs that stopped early drop out of later epochs; ``n`` says so, and ``n_runs`` is the
    number of runs with any history in that condition.
    """
    plan = layout(spec, sweep)
    confidence = plan.report.confidence
    rows = []
    by_condition: dict[tuple, list[pd.DataFrame]] = {}
    for variant in plan.variants:
        history = histories.get(variant.name)
        if history is not None and len(history):
            by_condition.setdefault(tuple(variant.condition.values()), []).append(history)
    for values, runs in by_condition.items():
        grid = dict(zip(plan.labels, values, strict=True))
        stacked = pd.concat(runs, keys=range(len(runs)), names=["run", None])
        metrics = [c for c in stacked.columns if c not in ("epoch", "split", *THROUGHPUT)]
        for (split, epoch), at in stacked.groupby(["split", "epoch"], sort=True):
            for metric in metrics:
                if at[metric].isna().all():  # a train-only diagnostic (gradient norms) on val
                    continue
                d = describe(at[metric].to_numpy(dtype=float), confidence)
                rows.append({**grid, "split": split, "epoch": int(epoch), "metric": metric,
                             "n": d.n, "n_runs": len(runs), "mean": d.mean, "std": d.std,
                             "ci_lower": d.ci_lower, "ci_upper": d.ci_upper})
    return pd.DataFrame(rows, columns=[*plan.labels, *CURVE_COLUMNS])


# ----------------------------------------------------------------------------------------------
# how many seeds; aggregates over tasks

POWER = 0.8  # the power the seed counts are sized for


def power_table(stats: pd.DataFrame, spec: dict[str, Any], *, sweep: Plan) -> pd.DataFrame:
    """Per metric: the runs' spread within a condition (the pooled standard deviation, from the
    conditions with two or more runs), the seeds a two-sided two-sample t-test at the report's
    level needs to detect a difference of 1 and 2 of those deviations with 80% power, and the
    smallest difference the sweep's seeds detect so (in deviations and in the metric's units)."""
    plan = layout(spec, sweep)
    alpha = 1 - plan.report.confidence
    columns = ["metric", "pooled_std", "seeds", "seeds_for_1sd", "seeds_for_2sd", "detectable_sd", "detectable"]
    rows = []
    found = dict.fromkeys(stats["metric"]) if "metric" in stats else {}
    # the metrics the report shows: report.metrics, else the best-epoch val metrics it found
    shown = plan.report.metrics or [m for m in found if not is_metric_column(m) and m not in SCALAR_KEYS]
    for metric in (m for m in shown if m in found):
        per = stats[(stats["metric"] == metric) & (stats["n"] >= 2)]
        if per.empty:
            continue
        pooled = float(np.sqrt(np.average(per["std"] ** 2, weights=per["n"] - 1)))
        seeds = int(stats.loc[stats["metric"] == metric, "n_planned"].median())  # the sweep's seeds per condition
        detectable = minimum_detectable(seeds, alpha, POWER)
        rows.append({"metric": metric, "pooled_std": pooled, "seeds": seeds,
                     "seeds_for_1sd": seeds_needed(1.0, alpha, POWER), "seeds_for_2sd": seeds_needed(2.0, alpha, POWER),
                     "detectable_sd": detectable, "detectable": detectable * pooled})
    return pd.DataFrame(rows, columns=columns)


def aggregate_scores(table: pd.DataFrame, spec: dict[str, Any], *, sweep: Plan) -> pd.DataFrame:
    """Per ``report.aggregates`` entry and condition: the interquartile mean of every score of
    its metrics (the tasks) over the runs with a result, with a bootstrap interval that
    resamples runs within each task."""
    plan = layout(spec, sweep)
    rows = []
    for name, metrics in plan.report.aggregates.items():
        present = [m for m in metrics if m in table]
        if missing := [m for m in metrics if m not in table]:
            logger.warning("%s: no run recorded %s; the aggregate's other tasks are used",
                           plan.where(f"aggregates.{name}"), missing)
        for grid, group in conditions(table, plan.labels):
            done = group[~group["status"].isin(NO_RESULT)]
            result = stratified_iqm([done[m].to_numpy(dtype=float) for m in present], plan.report.confidence)
            rows.append({**grid, "aggregate": name, "tasks": ", ".join(present), **vars(result)})
    return pd.DataFrame(rows, columns=[*plan.labels, "aggregate", "tasks", "iqm", "ci_lower", "ci_upper", "n_runs",
                                       "n_tasks"])
