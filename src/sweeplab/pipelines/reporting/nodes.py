"""Reporting nodes. They read run records (summaries and histories) and the sweep spec,
never a model, so one report serves every family.

Vocabulary: a *condition* is one combination of grid values (every sweep parameter but the
seed); its *runs* are its seeds. A planned run whose summary was never saved is *missing*.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sweeplab.config import OPEN_FRACTION, ConfigError, from_dict
from sweeplab.pipelines.reporting import decisions, figures
from sweeplab.pipelines.reporting.decisions import DecisionTree
from sweeplab.pipelines.reporting.stats import adjust_pvalues, compare, describe
from sweeplab.sweeps import Variant, expand, sweep_axes

logger = logging.getLogger(__name__)

RUN_COLUMNS = ("variant", "seed", "status", "reason")
# Runs without a result: counted and listed, never averaged. Every other run's metrics count:
# one that finished ("completed"), or one a family's stop rule ended with its own status (a
# collapsed model is a result, not an error).
NO_RESULT = ("failed", "missing")
SUMMARY_SCALARS = ("best_val_loss", "best_epoch", "epochs_run", "wall_s")  # flattened as they are


# ----------------------------------------------------------------------------------------------
# the report's configuration, ``report:`` in a sweep spec


@dataclass(frozen=True)
class LinePlot:
    x: str  # a numeric grid axis (dotted key or label)
    hue: str | None = None  # one line per value of this axis


@dataclass(frozen=True)
class Heatmap:
    x: str
    y: str


@dataclass(frozen=True)
class Criterion:
    """A target a metric's mean must meet: at least ``min``, at most ``max``, or both."""

    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.min is None and self.max is None:
            raise ConfigError("min: missing; expected min and/or max")

    def bounds(self) -> dict[str, float]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


@dataclass(frozen=True)
class ReportConfig:
    metrics: tuple[str, ...] = ()  # best-epoch val metrics to show; default: all found
    directions: dict[str, Literal["min", "max"]] = field(default_factory=dict)  # lower is better by default
    confidence: Annotated[float, OPEN_FRACTION] = 0.95
    correction: Literal["holm", "bonferroni", "none"] = "holm"
    compare_metric: str | None = None  # default: the first metric
    line_plots: tuple[LinePlot, ...] | None = None  # default: each numeric axis vs the next axis
    heatmaps: tuple[Heatmap, ...] | None = None  # default: the first two axes
    heatmap_metrics: tuple[str, ...] = ()  # default: metrics
    references: dict[str, float] = field(default_factory=dict)  # metric -> a level to draw (e.g. chance)
    criteria: dict[str, Criterion] = field(default_factory=dict)  # metric -> the target its mean must meet
    decision_tree: DecisionTree | None = None  # a plan over named experiments, walked on the results


@dataclass(frozen=True)
class SweepLayout:
    """What a report needs to know of a sweep: its axes (key -> label) and planned variants."""

    axes: dict[str, str]
    variants: list[Variant]
    report: ReportConfig

    @property
    def labels(self) -> list[str]:
        return list(self.axes.values())

    def label(self, axis: str, where: str = "report") -> str:
        """A grid key or a label -> the label, or an error naming ``where`` it was written."""
        if axis in self.axes.values():
            return axis
        if axis in self.axes:
            return self.axes[axis]
        raise ConfigError(f"{where}: got {axis!r}; expected a grid axis, one of {list(self.axes)}")

    def direction(self, metric: str) -> str:
        return self.report.directions.get(metric, "min")


def layout(spec: dict[str, Any], name: str = "sweep") -> SweepLayout:
    axes = sweep_axes(spec)
    report = from_dict(ReportConfig, spec.get("report") or {}, where=f"{name}.report")
    return SweepLayout(axes, expand(name, spec), report)


def check_report(name: str, spec: dict[str, Any]) -> None:
    """Fail before anything runs when a sweep's ``report:`` is malformed or names no axis."""
    sweep = layout(spec, name)
    if sweep.report.decision_tree is not None:
        experiments = [str(e) for e in spec.get("experiments") or {}]
        if not experiments:
            raise ConfigError(f"{name}.report.decision_tree: its nodes are named experiments, and the sweep lists none")
        sweep.report.decision_tree.check_experiments(experiments, f"{name}.report.decision_tree")
    for kind, plots in (("line_plots", sweep.report.line_plots), ("heatmaps", sweep.report.heatmaps)):
        for i, plot in enumerate(plots or ()):
            for key, axis in vars(plot).items():
                if axis is not None:
                    sweep.label(axis, f"{name}.report.{kind}[{i}].{key}")


def condition_name(row: pd.Series | dict, labels: list[str]) -> str:
    return ", ".join(f"{label}={row[label]}" for label in labels)


# ----------------------------------------------------------------------------------------------
# runs


def _flatten_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Summary metrics as flat columns: best-epoch val metrics under their own name, the rest
    prefixed (``final_val_``, ``best_train_``, ``final_train_``)."""
    out: dict[str, float] = {}
    for which, split in (("best", "val"), ("final", "val"), ("best", "train"), ("final", "train")):
        prefix = "" if (which, split) == ("best", "val") else f"{which}_{split}_"
        for metric, value in (summary.get(which, {}).get(split) or {}).items():
            out[prefix + metric] = float(value) if value is not None else np.nan
    for key in SUMMARY_SCALARS:
        value = summary.get(key)
        out[key] = float(value) if value is not None else np.nan
    return out


def results_table(spec: dict[str, Any], **summaries: dict[str, Any]) -> pd.DataFrame:
    """One row per planned run: variant, grid values, seed, status (completed, failed or
    missing), reason, then its metrics (val at the best epoch first)."""
    sweep = layout(spec)
    rows, found = [], {}
    for variant in sweep.variants:
        summary = summaries.get(variant.name) or {"status": "missing", "reason": "no summary given"}
        row: dict[str, Any] = {"variant": variant.name}
        row |= {sweep.axes[key]: value for key, value in variant.condition.items()}
        row |= {"seed": variant.seed, "status": summary.get("status", "missing"), "reason": summary.get("reason", "")}
        if row["status"] != "missing":
            row |= _flatten_metrics(summary)
            found |= dict.fromkeys(summary.get("best", {}).get("val") or {})
        rows.append(row)
    table = pd.DataFrame(rows)
    metrics = list(sweep.report.metrics) or list(found)
    for metric in metrics:
        if metric not in table:
            table[metric] = np.nan
    front = ["variant", *sweep.labels, "seed", "status", *metrics]
    table = table[front + [c for c in table.columns if c not in front and c != "reason"] + ["reason"]]
    not_done = table[table["status"].isin(NO_RESULT)]
    if len(not_done):
        logger.warning("%d of %d planned runs did not complete: %s", len(not_done), len(table),
                       ", ".join(f"{r.variant} ({r.status})" for r in not_done.itertuples()))
    return table


def report_metrics(table: pd.DataFrame, spec: dict[str, Any]) -> list[str]:
    """The metrics a report shows: ``report.metrics``, or every best-epoch val metric."""
    sweep = layout(spec)
    if sweep.report.metrics:
        return list(sweep.report.metrics)
    start = list(table.columns).index("status") + 1
    return [c for c in table.columns[start:] if c not in (*SUMMARY_SCALARS, "reason")
            and not c.startswith(("final_", "best_"))]


def numeric_metrics(table: pd.DataFrame, sweep: SweepLayout) -> list[str]:
    skip = {*RUN_COLUMNS, *sweep.labels}
    return [c for c in table.columns if c not in skip and pd.api.types.is_numeric_dtype(table[c])]


# ----------------------------------------------------------------------------------------------
# statistics per condition


def _conditions(table: pd.DataFrame, labels: list[str]):
    """(grid values, that condition's rows), in grid order."""
    for values, rows in table.groupby(labels, sort=False, dropna=False):
        yield dict(zip(labels, values if isinstance(values, tuple) else (values,), strict=True)), rows


def condition_statistics(table: pd.DataFrame, spec: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per condition and metric: completion counts, then n, mean, std (ddof=1), SEM, the
    t interval, median, min and max over runs with a result (completed or stopped by a rule)
    and finite values.

    Returns the flat table and the same as JSON-ready ``aggregated_results``.
    """
    sweep = layout(spec)
    confidence = sweep.report.confidence
    metrics = numeric_metrics(table, sweep)
    flat, conditions = [], []
    for grid, rows in _conditions(table, sweep.labels):
        counts = {
            "n_planned": len(rows),
            "n_completed": int((rows["status"] == "completed").sum()),
            "n_stopped": int((~rows["status"].isin(("completed", *NO_RESULT))).sum()),
            "n_failed": int((rows["status"] == "failed").sum()),
            "n_missing": int((rows["status"] == "missing").sum()),
        }
        counts["completion_rate"] = (counts["n_completed"] + counts["n_stopped"]) / counts["n_planned"]
        completed = rows[~rows["status"].isin(NO_RESULT)]
        excluded = [{"variant": r.variant, "seed": int(r.seed), "status": r.status, "reason": str(r.reason)}
                    for r in rows.itertuples() if r.status in NO_RESULT]
        per_metric = {}
        for metric in metrics:
            d = describe(completed[metric].to_numpy(dtype=float), confidence)
            per_metric[metric] = d.as_dict()
            note = "" if d.n >= 2 else f"n = {d.n}: no interval"
            flat.append({**grid, "metric": metric, **counts, **d.as_dict(), "note": note})
            for variant, seed, status, value in zip(completed["variant"], completed["seed"], completed["status"],
                                                    completed[metric], strict=True):
                if not np.isfinite(value):
                    excluded.append({"variant": variant, "seed": int(seed), "status": status,
                                     "reason": f"{metric} is {value}: excluded from its statistics"})
        conditions.append({
            "condition": condition_name(grid, sweep.labels),
            "grid": {key: _plain(grid[label]) for key, label in sweep.axes.items()},
            "n_runs": counts["n_planned"], **counts,
            "excluded": excluded,
            "metrics": {m: {k: _plain(v) for k, v in s.items()} for m, s in per_metric.items()},
        })
    aggregated = {"confidence": confidence, "interval": f"t, n-1 degrees of freedom, {confidence:.0%}",
                  "axes": sweep.axes, "conditions": conditions}
    return pd.DataFrame(flat), aggregated


def _plain(value: Any) -> Any:
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


def compare_conditions(table: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Every pair of conditions on ``report.compare_metric``: paired t-test when the same
    seeds completed in both, else Welch's; effect size; p-values corrected across the whole
    family of pairs (``report.correction``: holm, bonferroni or none)."""
    sweep = layout(spec)
    metric = sweep.report.compare_metric or report_metrics(table, spec)[0]
    if metric not in table:
        raise ConfigError(f"report.compare_metric: '{metric}' is not a metric of the runs")
    groups = list(_conditions(table, sweep.labels))
    rows = []
    for (grid_a, rows_a), (grid_b, rows_b) in itertools.combinations(groups, 2):
        a, b = _values_by_seed(rows_a, metric), _values_by_seed(rows_b, metric)
        c = compare(a, b)
        rows.append({"metric": metric, "condition_a": condition_name(grid_a, sweep.labels),
                     "condition_b": condition_name(grid_b, sweep.labels),
                     "mean_a": describe(list(a.values())).mean, "mean_b": describe(list(b.values())).mean,
                     **c.as_dict()})
    frame = pd.DataFrame(rows, columns=["metric", "condition_a", "condition_b", "mean_a", "mean_b", "test",
                                        "n_a", "n_b", "mean_diff", "statistic", "df", "pvalue", "effect_size"])
    frame["p_adjusted"] = adjust_pvalues(frame["pvalue"].to_numpy(dtype=float), sweep.report.correction)
    frame["correction"] = sweep.report.correction
    frame["significant"] = frame["p_adjusted"] < 1 - sweep.report.confidence
    return frame


def success_criteria(stats: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Per condition and ``report.criteria`` metric: the target, the mean and its interval,
    whether the mean meets the target and whether the whole interval does."""
    sweep = layout(spec)
    rows = []
    for metric, criterion in sweep.report.criteria.items():
        bounds = criterion.bounds()
        found = stats[stats["metric"] == metric]
        if found.empty:
            raise ConfigError(f"report.criteria names '{metric}', which no run reports; "
                             f"metrics: {sorted(stats['metric'].unique())}")
        target = " and ".join(f"{'>=' if k == 'min' else '<='} {v:g}" for k, v in bounds.items())
        for _, row in found.iterrows():
            rows.append({**{label: row[label] for label in sweep.labels}, "metric": metric, "target": target,
                         "n": int(row["n"]), "mean": row["mean"], "ci_lower": row["ci_lower"],
                         "ci_upper": row["ci_upper"], "met": _meets(row["mean"], bounds),
                         "met_by_interval": _meets(row["ci_lower"], bounds) and _meets(row["ci_upper"], bounds)})
    return pd.DataFrame(rows, columns=[*sweep.labels, "metric", "target", "n", "mean", "ci_lower", "ci_upper",
                                       "met", "met_by_interval"])


def _meets(value: float, bounds: dict[str, float]) -> bool:
    return bool(np.isfinite(value)) and all(value >= v if k == "min" else value <= v for k, v in bounds.items())


def criteria_markdown(criteria: pd.DataFrame, labels: list[str]) -> list[str]:
    """One row per condition, one column per criterion: mean [interval] and whether it is met."""
    if criteria.empty:
        return []
    cells = criteria.copy()
    cells["value"] = [f"{'yes' if met else 'no'}: {_interval(row)}" for met, (_, row) in
                      zip(cells["met"], cells.iterrows(), strict=True)]
    wide = cells.pivot_table(index=labels, columns="metric", values="value", aggfunc="first", sort=False)
    wide = wide.reindex(columns=list(dict.fromkeys(criteria["metric"]))).reset_index()
    wide.columns = [*labels, *(f"{m} ({t})" for m, t in dict(zip(criteria["metric"], criteria["target"],
                                                                  strict=True)).items())]
    return ["## Success criteria", "",
            "Met when the mean over seeds meets the target (yes/no), with the mean and its interval; "
            "criteria.csv also says whether the whole interval meets it.", "", markdown_table(wide), ""]


def best_per_axis(table: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """For each grid axis, metric and setting of the other axes: the best value of the axis
    (by mean; lower or higher is better per ``report.directions``), the runner-up, and whether
    the best is significantly better (paired or Welch t-test, p < 1 - confidence, uncorrected)."""
    sweep = layout(spec)
    alpha = 1 - sweep.report.confidence
    out = []
    for label in sweep.labels:
        others = [lab for lab in sweep.labels if lab != label]
        contexts = [({}, table)] if not others else _conditions(table, others)
        for context, rows in contexts:
            for metric in report_metrics(table, spec):
                sign = 1 if sweep.direction(metric) == "min" else -1
                options = []
                for value, group in rows.groupby(label, sort=False):
                    values = _values_by_seed(group, metric)
                    d = describe(list(values.values()))
                    if d.n:
                        options.append((sign * d.mean, value, values, d))
                options.sort(key=lambda o: o[0])
                record = {"axis": label, "context": condition_name(context, others) or "(all)",
                          "metric": metric, "direction": sweep.direction(metric)}
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


def aggregate_curves(spec: dict[str, Any], **histories: pd.DataFrame) -> pd.DataFrame:
    """Per condition, split, epoch and metric: n runs still going, mean and t interval.

    Runs that stopped early drop out of later epochs; ``n`` says so, and ``n_runs`` is the
    number of runs with any history in that condition.
    """
    sweep = layout(spec)
    confidence = sweep.report.confidence
    rows = []
    by_condition: dict[tuple, list[pd.DataFrame]] = {}
    for variant in sweep.variants:
        history = histories.get(variant.name)
        if history is not None and len(history):
            by_condition.setdefault(tuple(variant.condition.values()), []).append(history)
    for values, runs in by_condition.items():
        grid = dict(zip(sweep.labels, values, strict=True))
        stacked = pd.concat(runs, keys=range(len(runs)), names=["run", None])
        metrics = [c for c in stacked.columns if c not in ("epoch", "split")]
        for (split, epoch), at in stacked.groupby(["split", "epoch"], sort=True):
            for metric in metrics:
                if at[metric].isna().all():  # a train-only diagnostic (gradient norms) on val
                    continue
                d = describe(at[metric].to_numpy(dtype=float), confidence)
                rows.append({**grid, "split": split, "epoch": int(epoch), "metric": metric,
                             "n": d.n, "n_runs": len(runs), "mean": d.mean, "std": d.std,
                             "ci_lower": d.ci_lower, "ci_upper": d.ci_upper})
    return pd.DataFrame(rows, columns=[*sweep.labels, "split", "epoch", "metric", "n", "n_runs", "mean", "std",
                                       "ci_lower", "ci_upper"])


# ----------------------------------------------------------------------------------------------
# figures and the report


def default_plots(table: pd.DataFrame, sweep: SweepLayout) -> tuple[list[LinePlot], list[Heatmap]]:
    labels = sweep.labels
    numeric = [lab for lab in labels if table[lab].nunique() > 1 and pd.api.types.is_numeric_dtype(table[lab])
               and not pd.api.types.is_bool_dtype(table[lab])]
    lines = sweep.report.line_plots
    if lines is None:
        lines = tuple(LinePlot(x, next((h for h in labels if h != x), None)) for x in numeric)
    heatmaps = sweep.report.heatmaps
    if heatmaps is None:
        heatmaps = (Heatmap(labels[1], labels[0]),) if len(labels) >= 2 else ()
    return ([LinePlot(sweep.label(p.x), sweep.label(p.hue) if p.hue else None) for p in lines],
            [Heatmap(sweep.label(h.x), sweep.label(h.y)) for h in heatmaps])


MAX_CONDITION_ROWS = 60  # one row per condition stays legible up to about this many


def categorical_axes(table: pd.DataFrame, sweep: SweepLayout) -> list[str]:
    """Axes whose values no line can join: named experiments, strings, booleans."""
    return [lab for lab in sweep.labels if not pd.api.types.is_numeric_dtype(table[lab])
            or pd.api.types.is_bool_dtype(table[lab])]


# one line per run can be followed for a few dozen runs; beyond that the figure is unreadable
# and its drawing took most of a 1,000-run report: the curves per condition remain
MAX_RUN_CURVES = 60


def plot_report_figures(table: pd.DataFrame, stats: pd.DataFrame, curves: pd.DataFrame,
                        spec: dict[str, Any], **histories: pd.DataFrame) -> dict[str, bytes]:
    """Every figure of the report as PNG, by file name.

    Rendered here rather than handed on as figures: Kedro deep-copies what passes between
    nodes in memory, and a figure of a thousand runs' curves took seconds to copy.
    """
    sweep = layout(spec)
    metrics = report_metrics(table, spec)
    lines, heatmaps = default_plots(table, sweep)
    confidence = sweep.report.confidence
    out: dict[str, Figure] = {"completion.png": figures.plot_completion(stats, sweep.labels)}
    if categorical_axes(table, sweep) and len(stats.drop_duplicates(sweep.labels)) <= MAX_CONDITION_ROWS:
        out["conditions.png"] = figures.plot_conditions(stats, metrics, sweep.labels, confidence)
    for metric in metrics:
        for plot in lines:
            name = f"{metric}_vs_{plot.x}.png"
            out[name] = figures.plot_metric_vs_axis(stats, metric, plot.x, plot.hue, sweep.labels, confidence,
                                                    reference=sweep.report.references.get(metric))
    for heat in heatmaps:
        for metric in sweep.report.heatmap_metrics or metrics:
            out[f"heatmap_{metric}_{heat.y}_x_{heat.x}.png"] = figures.plot_heatmap(stats, metric, heat.x, heat.y)
    if len(curves):
        out["training_curves_val.png"] = figures.plot_aggregated_curves(curves, metrics, sweep.labels, "val", confidence)
    if len(histories) <= MAX_RUN_CURVES:
        out["validation_curves.png"] = figures.plot_curves(histories, metrics)
    return {name: figures.png(fig) for name, fig in out.items()}


def results_markdown(table: pd.DataFrame, spec: dict[str, Any]) -> str:
    """The per-run results table as Markdown, with a line counting run outcomes."""
    sweep = layout(spec)
    shown = table[["variant", *sweep.labels, "seed", "status", *report_metrics(table, spec),
                   "best_epoch", "epochs_run", "wall_s"]]
    counts = table["status"].value_counts()
    stopped = counts.drop(["completed", *NO_RESULT], errors="ignore")
    lines = [f"# {spec.get('title', 'Sweep results')}", "",
             f"{len(table)} runs: {counts.get('completed', 0)} completed, "
             + "".join(f"{n} {status}, " for status, n in stopped.items())
             + f"{counts.get('failed', 0)} failed, "
             f"{counts.get('missing', 0)} missing. Metrics are validation values at each run's best epoch.",
             "", markdown_table(shown)]
    not_done = table[table["status"] != "completed"]
    if len(not_done):
        lines += ["", "## Runs that did not complete all epochs", ""]
        lines += [f"- `{r.variant}` ({r.status}): {r.reason}" for r in not_done.itertuples()]
    return "\n".join(lines) + "\n"


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "–" if np.isnan(value) else format(value, floatfmt)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _interval(row: pd.Series) -> str:
    if row["n"] == 0:
        return "no completed run"
    if row["n"] < 2:
        return f"{row['mean']:.4g} (n = {row['n']}: no interval)"
    return f"{row['mean']:.4g} [{row['ci_lower']:.4g}, {row['ci_upper']:.4g}]"


def write_report(table: pd.DataFrame, stats: pd.DataFrame, comparisons: pd.DataFrame, best: pd.DataFrame,
                 criteria: pd.DataFrame, figures_by_name: dict[str, bytes], spec: dict[str, Any]) -> dict[str, Any]:
    """The report folder: ``report.md`` with every table, and the figures it links to."""
    sweep = layout(spec)
    metrics = report_metrics(table, spec)
    confidence = sweep.report.confidence
    completion = stats.drop_duplicates(sweep.labels)[[*sweep.labels, "n_planned", "n_completed", "n_stopped",
                                                      "n_failed", "n_missing", "completion_rate"]]
    if not completion["n_stopped"].any():
        completion = completion.drop(columns="n_stopped")
    main = stats[stats["metric"].isin(metrics)].copy()
    main["value"] = main.apply(_interval, axis=1)
    wide = main.pivot_table(index=sweep.labels, columns="metric", values="value", aggfunc="first", sort=False)
    wide = wide.reindex(columns=metrics).reset_index()
    lines = [f"# {spec.get('title', 'Sweep report')}", "",
             f"{len(table)} planned runs in {len(completion)} conditions: "
             f"{int(completion['n_completed'].sum())} completed, "
             + (f"{int(completion['n_stopped'].sum())} stopped by a rule, " if "n_stopped" in completion else "")
             + f"{int(completion['n_failed'].sum())} failed, "
             f"{int(completion['n_missing'].sum())} missing.", "",
             "## Completion", "", markdown_table(completion), "", "![completion](figures/completion.png)", "",
             "## Results per condition", "",
             f"Mean over the seeds with a result (completed or stopped by a rule) of each run's validation value at "
             f"its best epoch, with the "
             f"{confidence:.0%} confidence interval of the mean (Student's t, n - 1 degrees of freedom). "
             "With fewer than two runs there is no interval.", "", markdown_table(wide), ""]
    lines += criteria_markdown(criteria, sweep.labels)
    extra: dict[str, str] = {}
    if (tree := sweep.report.decision_tree) is not None:
        result = decisions.walk(tree, table)
        lines += decisions.walk_markdown(result, tree)
        extra["decision_tree.json"] = json.dumps(decisions.as_dict(result), indent=2, allow_nan=False)
    lines += [f"![{name}](figures/{name})" for name in figures_by_name if name != "completion.png"]
    if len(table) > MAX_RUN_CURVES:
        lines += ["", f"Curves of single runs are drawn for sweeps of up to {MAX_RUN_CURVES} runs; this one has "
                  f"{len(table)}, so the curves are per condition only (curves.csv has them all)."]
    metric = comparisons["metric"].iloc[0] if len(comparisons) else None
    lines += ["", f"## Comparisons on {metric}", ""]
    if len(comparisons):
        tested = comparisons[np.isfinite(comparisons["pvalue"])]
        lines += [f"{len(comparisons)} pairs, {len(tested)} tested (paired t-test when the same seeds completed "
                  f"in both, else Welch's); p-values corrected by {comparisons['correction'].iloc[0]} across "
                  f"the tested pairs; significant at p < {1 - confidence:.2g}.", ""]
        cols = ["condition_a", "condition_b", "mean_diff", "test", "pvalue", "p_adjusted", "effect_size", "significant"]
        if len(tested):
            lines += [markdown_table(tested.sort_values("p_adjusted")[cols]), "",
                      "Pairs without a test (a side with n < 2) are listed in comparisons.csv.", ""]
        else:
            lines += ["No pair had two completed runs on both sides, so none was tested: run more seeds "
                      "(`seeds` in the sweep, or `--params \"<sweep>.seeds=[0,1,2]\"`).", ""]
    lines += ["## Best setting per axis", "",
              "For each axis and setting of the others: the best value by mean, the runner-up, and whether "
              f"the best is significantly better (uncorrected p < {1 - confidence:.2g}).", ""]
    lines += [markdown_table(best) if len(best) else "No axis has two settings with a completed run to compare.", ""]
    stopped = table[~table["status"].isin(("completed", *NO_RESULT))]
    if len(stopped):
        lines += ["## Runs stopped by a rule (their metrics count)", ""]
        lines += [f"- `{r.variant}` ({r.status}): {r.reason}" for r in stopped.itertuples()] + [""]
    excluded = table[table["status"].isin(NO_RESULT)]
    if len(excluded):
        lines += ["## Runs left out", ""] + [f"- `{r.variant}` ({r.status}): {r.reason}" for r in excluded.itertuples()]
    return {"report.md": "\n".join(lines) + "\n", **extra, **{f"figures/{k}": v for k, v in figures_by_name.items()}}
