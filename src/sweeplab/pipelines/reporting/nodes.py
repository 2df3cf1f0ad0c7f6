"""Reporting nodes: they read run records (summaries and histories) only, never a model."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sweeplab.pipelines.reporting import figures
from sweeplab.sweeps import axis_label, flatten_grid

logger = logging.getLogger(__name__)


def axis_columns(spec: dict[str, Any]) -> dict[str, str]:
    """Grid key -> its short column name in tables (``loss.globals_beta`` -> ``beta``)."""
    labels = spec.get("labels") or {}
    return {key: axis_label(key, labels) for key in flatten_grid(spec["grid"])}


def report_metrics(spec: dict[str, Any], summaries: list[dict[str, Any]]) -> list[str]:
    """The metrics to tabulate: ``report.metrics`` in the sweep spec, else every val metric."""
    configured = (spec.get("report") or {}).get("metrics")
    if configured:
        return list(configured)
    found: dict[str, None] = {}
    for s in summaries:
        found.update(dict.fromkeys(s.get("best", {}).get("val", {})))
    return list(found)


def results_table(spec: dict[str, Any], *summaries: dict[str, Any]) -> pd.DataFrame:
    """One row per run: variant, grid values, seed, status, and val metrics at the best epoch."""
    columns = axis_columns(spec)
    metrics = report_metrics(spec, list(summaries))
    rows = []
    for s in summaries:
        row = {"variant": s["variant"]}
        row |= {label: s["condition"].get(key) for key, label in columns.items()}
        row |= {"seed": s["seed"], "status": s["status"]}
        best = s.get("best", {}).get("val", {})
        row |= {m: best.get(m, np.nan) for m in metrics}
        row |= {"best_epoch": s.get("best_epoch"), "epochs_run": s.get("epochs_run"),
                "wall_s": s.get("wall_s"), "reason": s.get("reason"), "config_hash": s.get("config_hash")}
        rows.append(row)
    table = pd.DataFrame(rows)
    failed = table[table["status"] != "completed"]
    if len(failed):
        logger.warning("%d of %d runs failed: %s", len(failed), len(table), ", ".join(failed["variant"]))
    return table


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "–" if np.isnan(value) else format(value, floatfmt)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def results_markdown(table: pd.DataFrame, spec: dict[str, Any]) -> str:
    """The results table as Markdown, with a line counting completed and failed runs."""
    shown = table.drop(columns=["reason", "config_hash"], errors="ignore")
    n_failed = int((table["status"] != "completed").sum())
    lines = [f"# {spec.get('title', 'Sweep results')}", "",
             f"{len(table)} runs: {len(table) - n_failed} completed, {n_failed} failed. "
             "Metrics are validation values at each run's best epoch.", "", markdown_table(shown)]
    failed = table[table["status"] != "completed"]
    if len(failed):
        lines += ["", "## Failed runs", ""] + [f"- `{r.variant}`: {r.reason}" for r in failed.itertuples()]
    return "\n".join(lines) + "\n"


def heatmap_axes(spec: dict[str, Any]) -> tuple[str, str] | None:
    """(x, y) column names for heatmaps: ``report.heatmap`` or the first two grid axes."""
    columns = axis_columns(spec)
    configured = (spec.get("report") or {}).get("heatmap")
    if configured:
        return columns.get(configured["x"], configured["x"]), columns.get(configured["y"], configured["y"])
    names = list(columns.values())
    return (names[1], names[0]) if len(names) >= 2 else None


def plot_heatmaps(table: pd.DataFrame, spec: dict[str, Any]) -> dict[str, Figure]:
    """One heatmap per metric (``report.heatmap_metrics``, default all) over two grid axes."""
    axes = heatmap_axes(spec)
    if axes is None:
        return {}
    metrics = (spec.get("report") or {}).get("heatmap_metrics") or report_metrics(spec, [])
    return {f"{m}.png": figures.plot_heatmap(table, m, *axes, title=f"val {m}") for m in metrics if m in table}


def plot_validation_curves(spec: dict[str, Any], **histories: pd.DataFrame) -> Figure:
    """All variants' validation curves, one panel per reported metric."""
    metrics = (spec.get("report") or {}).get("metrics") or sorted(
        {c for h in histories.values() for c in figures.metric_columns(h)}
    )
    return figures.plot_curves(histories, list(metrics))
