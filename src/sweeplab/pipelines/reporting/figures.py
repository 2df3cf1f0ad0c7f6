"""Figures from run records. Every function returns a new ``Figure``; the catalog saves it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _grid(n: int, size: float = 3.2) -> tuple[Figure, list]:
    """A figure of ``n`` panels, up to 3 a row.

    Margins are set by hand: the constrained layout engine costs more than drawing the
    panels, and a sweep draws two figures per variant.
    """
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(size * cols + 0.8, size * rows + 0.4))
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.1, top=0.88, wspace=0.3, hspace=0.45)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def metric_columns(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if c not in ("epoch", "split")]


def plot_history(history: pd.DataFrame, summary: dict) -> Figure:
    """Loss curves of one run: one panel per metric, train and val against epoch."""
    title = f"{summary['sweep']}.{summary['variant']} ({summary['status']})"
    metrics = metric_columns(history)
    if history.empty or not metrics:
        fig = Figure(figsize=(6, 2))
        fig.suptitle(f"{title}: no epoch finished. {summary['reason']}", fontsize=9)
        return fig
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        for split, rows in history.groupby("split", sort=False):
            ax.plot(rows["epoch"], rows[metric], marker="o", ms=3, label=split)
        if summary.get("best_epoch"):
            ax.axvline(summary["best_epoch"], color="grey", ls=":", lw=1)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
    axes[0].legend()
    fig.suptitle(title)
    return fig


def plot_heatmap(table: pd.DataFrame, metric: str, x: str, y: str, title: str) -> Figure:
    """Mean of ``metric`` over two grid axes; each cell annotated with the mean and n.

    Failed or missing runs leave a cell empty and are said so, never drawn as a value.
    """
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
    ax = fig.subplots()
    completed = table[table["status"] == "completed"]
    xs, ys = list(dict.fromkeys(table[x])), list(dict.fromkeys(table[y]))
    grouped = completed.groupby([y, x])[metric]
    means = grouped.mean().reindex(pd.MultiIndex.from_product([ys, xs])).to_numpy().reshape(len(ys), len(xs))
    counts = grouped.count().reindex(pd.MultiIndex.from_product([ys, xs]), fill_value=0).to_numpy().reshape(len(ys), len(xs))
    image = ax.imshow(np.ma.masked_invalid(means), cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label=metric)
    for i in range(len(ys)):
        for j in range(len(xs)):
            text = "failed" if counts[i, j] == 0 else f"{means[i, j]:.3g}\nn={counts[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if counts[i, j] else "red")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    return fig


def plot_curves(histories: dict[str, pd.DataFrame], metrics: list[str], split: str = "val") -> Figure:
    """Every run's ``split`` curves: one panel per metric, one line per variant."""
    fig, axes = _grid(len(metrics))
    fig.set_layout_engine("constrained")  # one figure per sweep: room for the outside legend
    for ax, metric in zip(axes, metrics, strict=True):
        for variant, history in histories.items():
            rows = history[history["split"] == split] if "split" in history else history.iloc[0:0]
            if metric in rows:
                ax.plot(rows["epoch"], rows[metric], marker=".", label=variant)
        ax.set_title(f"{split} {metric}")
        ax.set_xlabel("epoch")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=7)
    return fig
