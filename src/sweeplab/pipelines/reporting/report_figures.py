"""Which figures a sweep's report draws, by file name: from the ``report:`` config and the
shape of the sweep. The drawing itself is ``figures``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sweeplab import figures
from sweeplab.pipelines.reporting.config import (
    Heatmap,
    LinePlot,
    SweepLayout,
    condition_name,
    layout,
)
from sweeplab.pipelines.reporting.tables import compare_metric, conditions, shown_metrics
from sweeplab.run_records import has_result
from sweeplab.sweeps import Plan

MAX_CONDITION_ROWS = 60  # one row per condition stays legible up to about this many
MAX_PROFILED = 12  # conditions one performance profile tells apart
CURVES = "validation_curves.png"  # the one curves figure: per condition, mean over seeds


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


def categorical_axes(table: pd.DataFrame, sweep: SweepLayout) -> list[str]:
    """Axes whose values no line can join: named experiments, strings, booleans."""
    return [lab for lab in sweep.labels if not pd.api.types.is_numeric_dtype(table[lab])
            or pd.api.types.is_bool_dtype(table[lab])]


def report_figures(table: pd.DataFrame, stats: pd.DataFrame, curves: pd.DataFrame, sweep: SweepLayout,
                   ) -> dict[str, Figure]:
    """Every figure of the report, by file name, in the order the report shows them."""
    metrics = shown_metrics(table, sweep)
    lines, heatmaps = default_plots(table, sweep)
    confidence = sweep.report.confidence
    out: dict[str, Figure] = {"completion.png": figures.plot_completion(stats, sweep.labels)}
    if not metrics or stats.empty:
        return out
    if categorical_axes(table, sweep) and len(stats.drop_duplicates(sweep.labels)) <= MAX_CONDITION_ROWS:
        out["conditions.png"] = figures.plot_conditions(stats, metrics, sweep.labels, confidence)
    for metric in metrics:
        for plot in lines:
            out[f"{metric}_vs_{plot.x}.png"] = figures.plot_metric_vs_axis(
                stats, metric, plot.x, plot.hue, sweep.labels, confidence, reference=sweep.report.references.get(metric))
    for heat in heatmaps:
        for metric in sweep.report.heatmap_metrics or metrics:
            out[f"heatmap_{metric}_{heat.y}_x_{heat.x}.png"] = figures.plot_heatmap(stats, metric, heat.x, heat.y)
    if len(curves):
        out[CURVES] = figures.plot_aggregated_curves(curves, metrics, sweep.labels, "val", confidence)
    out |= performance_profiles(table, sweep)
    return out


def performance_profiles(table: pd.DataFrame, sweep: SweepLayout) -> dict[str, Figure]:
    """The compare metric's runs per condition, and each ``report.aggregates`` entry's scores
    over runs x tasks, as performance profiles; for at most ``MAX_PROFILED`` conditions, and
    only where a condition has two or more scores (else a profile says no more than a table)."""
    done = table[table["status"].map(has_result)]
    groups = [(condition_name(grid, sweep.labels), rows) for grid, rows in conditions(done, sweep.labels)]
    if not groups or len(groups) > MAX_PROFILED:
        return {}
    wanted = {}
    if (metric := compare_metric(table, sweep)) is not None:
        wanted[metric] = ([metric], "runs")
    wanted |= {name: ([m for m in metrics if m in table], "runs x tasks")
               for name, metrics in sweep.report.aggregates.items()}
    out = {}
    for name, (metrics, what) in wanted.items():
        scores = {label: rows[metrics].to_numpy(dtype=float).ravel() for label, rows in groups}
        if metrics and max(np.isfinite(v).sum() for v in scores.values()) >= 2:
            out[f"profile_{name}.png"] = figures.plot_performance_profile(scores, name, sweep.direction(metrics[0]),
                                                                          what)
    return out


def plot_report_figures(table: pd.DataFrame, stats: pd.DataFrame, curves: pd.DataFrame, spec: dict[str, Any],
                        *, sweep: Plan) -> dict[str, bytes]:
    """Every figure of the report as PNG, by file name.

    Rendered here rather than handed on as figures: Kedro deep-copies what passes between
    nodes in memory, and a figure of a thousand runs' curves took seconds to copy.
    """
    return {name: figures.png(fig) for name, fig in report_figures(table, stats, curves, layout(spec, sweep)).items()}
