"""Figures from run records and their statistics. Each function returns a new ``Figure``;
the catalog saves it. Where a condition has fewer than two runs there is no interval, and
the figure says so (a hollow marker, explained once in the legend), never a zero-width bar.
A metric whose values in a figure span more than a decade gets a log axis (``log_scale``).

Every text of a figure stays inside it and clear of the others
(tests/pipelines/reporting/test_figure_layout.py checks each figure the report draws).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter

from sweeplab.run_records import THROUGHPUT

DECADE = 10  # values spanning more than this factor are drawn on a log axis
MAX_LEGEND_ENTRIES = 40  # one legend entry per condition is read up to about this many


def png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def run_title(config: dict) -> str:
    return f"{config['sweep']}.{config['variant']}"


def no_weights(config: dict, summary: dict, fig: Figure | None = None) -> Figure:
    """What a family's figure node draws for a run that left no weights: the run and why."""
    fig = fig if fig is not None else Figure(figsize=(6, 2))
    fig.suptitle(f"{run_title(config)}: no weights ({summary['status']}: {summary['reason']})")
    return fig


def _grid(n: int, size: float = 3.2) -> tuple[Figure, list]:
    """A figure of ``n`` panels, up to 3 a row, room above for a one-line ``suptitle``.

    Margins are set by hand, in inches (tick labels and an axis label need the same room
    whatever the figure's size): the constrained layout engine costs more than drawing the
    panels, and a sweep draws two figures per variant.
    """
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    # inches: left of a panel its y tick labels; below, the x tick labels and label; above,
    # the panel's title; above the top row, the figure's title
    left, right, bottom, top, gap_w, gap_h = 0.7, 0.2, 0.6, 0.75, 0.75, 0.95
    width, height = size * cols + 0.8, size * rows + 0.5
    panel_w = (width - left - right - gap_w * (cols - 1)) / cols
    panel_h = (height - bottom - top - gap_h * (rows - 1)) / rows
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=gap_w / panel_w, hspace=gap_h / panel_h)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[:n]:
        ax.locator_params(nbins=4)  # fewer tick labels: drawing text is most of a figure's cost
    return fig, axes[:n]


def metric_columns(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if c not in ("epoch", "split", *THROUGHPUT)]


def _scale_x(ax, values) -> None:
    """Log x for an axis whose values span more than a factor of 20 (symlog if 0 is among them)."""
    positive = [v for v in values if v > 0]
    if len(positive) < 2 or max(positive) / min(positive) <= 20 or any(v < 0 for v in values):
        return
    if any(v == 0 for v in values):
        ax.set_xscale("symlog", linthresh=min(positive))
    else:
        ax.set_xscale("log")


def log_scale(values) -> bool:
    """Whether values (all positive) span more than a decade: a linear axis would flatten the
    small ones."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    return len(x) >= 2 and bool((x > 0).all()) and x.max() / x.min() > DECADE


def _scale_y(ax, values) -> None:
    if log_scale(values):
        ax.set_yscale("log")


def plot_history(history: pd.DataFrame, summary: dict) -> Figure:
    """Loss curves of one run: one panel per metric, train and val against epoch; the
    gradient norms of every parameter group share one panel (log scale), and the learning
    rate's factor gets one when it changes."""
    title = f"{summary['sweep']}.{summary['variant']} ({summary['status']})"
    columns = metric_columns(history)
    norms = [c for c in columns if c.startswith("grad_norm/")]
    metrics = [c for c in columns if c not in norms and c != "lr_factor"]
    if "lr_factor" in history and history["lr_factor"].nunique() > 1:
        metrics.append("lr_factor")
    if history.empty or not metrics:
        fig = Figure(figsize=(6, 2))
        fig.suptitle(f"{title}: no epoch finished.\n{summary['reason']}", fontsize=9, wrap=True)
        return fig
    fig, axes = _grid(len(metrics) + bool(norms))
    for ax, metric in zip(axes, metrics, strict=False):
        for split, rows in history.groupby("split", sort=False):
            if rows[metric].notna().any():
                ax.plot(rows["epoch"], rows[metric], marker="o", ms=3, label=split)
        _scale_y(ax, history[metric])
        if summary.get("best_epoch"):
            ax.axvline(summary["best_epoch"], color="grey", ls=":", lw=1)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    if norms:
        ax = axes[-1]
        rows = history[history["split"] == "train"]
        for column in norms:
            ax.plot(rows["epoch"], rows[column], marker=".", label=column.removeprefix("grad_norm/"))
        ax.set_yscale("log")
        ax.set_title("gradient norm per group (train)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        ax.legend(fontsize=6)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig


def plot_heatmap(stats: pd.DataFrame, metric: str, x: str, y: str) -> Figure:
    """Mean of ``metric`` over two grid axes, each cell annotated with the mean and n.

    A condition with no completed run is an empty cell that says so. With more than two
    axes, each cell pools the other axes' conditions (n counts them all).
    """
    rows = stats[stats["metric"] == metric]
    xs, ys = list(dict.fromkeys(rows[x])), list(dict.fromkeys(rows[y]))
    weighted = rows.assign(total=rows["mean"].fillna(0) * rows["n"])
    cells = weighted.groupby([y, x], sort=False).agg(total=("total", "sum"), n=("n", "sum"))
    cells = cells.reindex(pd.MultiIndex.from_product([ys, xs]))
    n = cells["n"].fillna(0).to_numpy().reshape(len(ys), len(xs)).astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (cells["total"].to_numpy() / cells["n"].to_numpy()).reshape(len(ys), len(xs))
    means[n == 0] = np.nan
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
    ax = fig.subplots()
    norm = LogNorm() if log_scale(means[n > 0]) else None
    image = ax.imshow(np.ma.masked_invalid(means), cmap="viridis", aspect="auto", norm=norm)
    fig.colorbar(image, ax=ax, label=metric)
    for i in range(len(ys)):
        for j in range(len(xs)):
            text = "no completed\nrun" if n[i, j] == 0 else f"{means[i, j]:.3g}\nn={n[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if n[i, j] else "red",
                    bbox={"facecolor": "black", "alpha": 0.25, "lw": 0} if n[i, j] else None)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"val {metric} (mean over seeds)" + (", log colour scale" if norm else ""), fontsize=10)
    return fig


def _single_runs() -> Line2D:
    """The legend's one explanation of a hollow marker."""
    return Line2D([], [], marker="o", mfc="white", color="grey", ls="none", label="hollow: n=1, no interval")


def plot_metric_vs_axis(stats: pd.DataFrame, metric: str, x: str, hue: str | None, labels: list[str],
                        confidence: float, reference: float | None = None) -> Figure:
    """``metric`` against a numeric axis, one line per value of ``hue``, with CI bars.

    Other axes (beyond x and hue) get a panel per combination of their values. A
    ``reference`` level (chance, say) is drawn as a dashed line. A condition with one run is a
    hollow marker, explained once in the legend. Means spanning more than a decade get a log
    y axis, so that a 77-fold rise and a change of 0.15 to 0.35 both show.
    """
    rows = stats[stats["metric"] == metric]
    facets = [lab for lab in labels if lab not in (x, hue)]
    groups = list(rows.groupby(facets, sort=False)) if facets else [((), rows)]
    fig, axes = _grid(len(groups), size=3.8)
    fig.set_layout_engine("constrained")  # a few figures per sweep: worth the layout cost
    log_y = log_scale(rows.loc[rows["n"] > 0, "mean"])
    for ax, (facet_values, facet) in zip(axes, groups, strict=True):
        lines = facet.groupby(hue, sort=False) if hue else [(None, facet)]
        if facet["n"].sum() == 0:
            ax.text(0.5, 0.5, "no completed run", transform=ax.transAxes, ha="center", color="red")
        single = False
        for value, group in lines:
            line = group[group["n"] > 0].sort_values(x)
            if line.empty:
                continue
            color = ax.plot(line[x], line["mean"], marker="o", label=f"{hue}={value}" if hue else None)[0].get_color()
            has_ci = line["n"] >= 2
            err = np.vstack([line["mean"] - line["ci_lower"], line["ci_upper"] - line["mean"]])[:, has_ci.to_numpy()]
            ax.errorbar(line[x][has_ci], line["mean"][has_ci], yerr=err, fmt="none", ecolor=color, capsize=3)
            ax.plot(line[x][~has_ci], line["mean"][~has_ci], ls="none", marker="o", mfc="white", color=color)
            single |= bool((~has_ci).any())
        if reference is not None:
            ax.axhline(reference, color="grey", ls="--", lw=1, label=f"reference {reference:g}")
        _scale_x(ax, sorted(rows[x].unique()))
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(f"val {metric}" + (" (log)" if log_y else ""))
        if facets:
            values = facet_values if isinstance(facet_values, tuple) else (facet_values,)
            ax.set_title(", ".join(f"{f}={v}" for f, v in zip(facets, values, strict=True)), fontsize=9)
        handles = ax.get_legend_handles_labels()[0] + ([_single_runs()] if single else [])
        if handles:
            ax.legend(handles=handles, fontsize=7)
    fig.suptitle(f"val {metric} vs {x}\nmean and {confidence:.0%} t interval over seeds", fontsize=10)
    return fig

def plot_aggregated_curves(curves: pd.DataFrame, metrics: list[str], labels: list[str], split: str,
                           confidence: float) -> Figure:
    """Per-epoch mean over seeds with t-interval bands, one line per condition; below each
    panel, the runs left per epoch (runs that stopped early drop out, and the band is drawn
    only where n >= 2). With one seed, each line is that run's curve. A metric spanning more
    than a decade gets a log axis. Up to ``MAX_LEGEND_ENTRIES`` conditions are named in the
    legend; beyond that the lines are unlabelled (curves.csv has them all)."""
    rows = curves[curves["split"] == split]
    names = [_condition_name(key, labels) for key, _ in rows.groupby(labels, sort=False, dropna=False)]
    legend = 0 < len(names) <= MAX_LEGEND_ENTRIES
    columns = math.ceil(len(names) / 20) if legend else 0  # about 20 entries fit the figure's height
    fig = Figure(figsize=(4.2 * len(metrics) + 0.5 + 2.6 * columns, 5.4), layout="constrained")
    grid = fig.add_gridspec(2, len(metrics), height_ratios=[3, 1])
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(grid[0, i])
        ax_n = fig.add_subplot(grid[1, i], sharex=ax)
        at = rows[rows["metric"] == metric]
        for key, group in at.groupby(labels, sort=False, dropna=False):
            name = _condition_name(key, labels)
            line = group.sort_values("epoch")
            color = ax.plot(line["epoch"], line["mean"], label=name)[0].get_color()
            band = line["n"] >= 2
            ax.fill_between(line["epoch"], line["ci_lower"], line["ci_upper"], where=band, color=color, alpha=0.2,
                            interpolate=False)
            ax_n.step(line["epoch"], line["n"], where="mid", color=color)
        _scale_y(ax, at["mean"])
        ax.set_title(f"{split} {metric}" + (" (log)" if ax.get_yscale() == "log" else ""), fontsize=10)
        ax.tick_params(axis="x", labelbottom=False)  # the panel below carries the epochs
        ax_n.set_xlabel("epoch")
        ax_n.set_ylabel("runs (n)")
        ax_n.set_ylim(bottom=0)
        ax_n.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_n.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=3))
    if legend and fig.axes and (found := fig.axes[0].get_legend_handles_labels())[0]:
        fig.legend(*found, loc="outside right upper", fontsize=7, ncols=columns)
    note = "" if legend or not names else f"; {len(names)} conditions, unlabelled"
    fig.suptitle(f"{split} curves: mean over seeds, {confidence:.0%} t band where n >= 2{note}", fontsize=10)
    return fig


def _condition_name(key, labels: list[str]) -> str:
    """A condition's name (``latent=vq, beta=1``) from its groupby key."""
    values = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{lab}={v}" for lab, v in zip(labels, values, strict=True))


def plot_completion(stats: pd.DataFrame, labels: list[str]) -> Figure:
    """Planned runs per condition, split into completed, stopped by a rule, failed and missing."""
    per = stats.drop_duplicates(labels)
    names = [", ".join(f"{lab}={row[lab]}" for lab in labels) for _, row in per.iterrows()]
    fig = Figure(figsize=(7, 0.3 * len(per) + 1.6), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(len(per))
    for column, color in (("n_completed", "tab:green"), ("n_stopped", "tab:orange"), ("n_failed", "tab:red"),
                          ("n_missing", "lightgrey")):
        if column not in per or (column == "n_stopped" and not per[column].any()):
            continue
        counts = per[column].to_numpy()
        ax.barh(names, counts, left=left, color=color, label=column.removeprefix("n_"))
        left += counts
    ax.invert_yaxis()
    ax.set_xlabel("runs (planned = full bar)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", labelsize=8 if len(per) <= 30 else 6)
    # below the axes, in the layout's own room (a legend anchored outside by hand was cut off)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=4, fontsize=8)
    ax.set_title("completion per condition", fontsize=10)
    return fig

def plot_conditions(stats: pd.DataFrame, metrics: list[str], labels: list[str], confidence: float) -> Figure:
    """Each condition's mean and interval, one panel per metric, conditions down the side: the
    view of a sweep with a categorical axis (named experiments), where no line joins them."""
    conditions = stats.drop_duplicates(labels)
    names = [", ".join(str(row[lab]) for lab in labels) for _, row in conditions.iterrows()]
    y = np.arange(len(names))
    cols = min(len(metrics), 4)
    rows_of_panels = math.ceil(len(metrics) / cols)
    fig = Figure(figsize=(3.2 * cols + 2.6, (0.32 * len(names) + 1.0) * rows_of_panels + 0.6), layout="constrained")
    grid = fig.subplots(rows_of_panels, cols, sharey=True, squeeze=False)
    for ax in grid.ravel()[len(metrics):]:
        ax.set_visible(False)
    for ax, metric in zip(grid.ravel(), metrics, strict=False):
        rows = conditions[labels].merge(stats[stats["metric"] == metric], on=labels, how="left")
        done, has_ci = (rows["n"] > 0).to_numpy(), (rows["n"] >= 2).to_numpy()
        err = np.vstack([rows["mean"] - rows["ci_lower"], rows["ci_upper"] - rows["mean"]])
        ax.errorbar(rows["mean"][has_ci], y[has_ci], xerr=err[:, has_ci], fmt="o", color="tab:blue", capsize=3)
        ax.plot(rows["mean"][done & ~has_ci], y[done & ~has_ci], "o", mfc="white", color="tab:blue")
        ax.set_title(metric, fontsize=9)
        ax.locator_params(axis="x", nbins=4)
        if log_scale(rows["mean"][done]):  # means spanning decades: linear would put the small ones on 0
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # a narrow panel: decades only
        ax.grid(axis="y", color="0.9")
    grid[0, 0].set_yticks(y, names)
    grid[0, 0].invert_yaxis()
    for ax in grid[:, 0]:
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"val metrics per condition: mean and {confidence:.0%} t interval over seeds "
                 "(hollow: one run, no interval)", fontsize=9)
    return fig


def plot_search_history(trials: pd.DataFrame, metric: str, direction: str) -> Figure:
    """A search's objective per trial in the order asked, the best so far as a step line, and
    the pruned trials at their last reported value (where the pruner stopped them)."""
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(trials))
    done = trials["state"] == "completed"
    pruned = trials["state"] == "pruned"
    ax.scatter(x[done], trials.loc[done, "objective"], color="tab:blue", s=22, label="completed", zorder=3)
    ax.scatter(x[pruned], trials.loc[pruned, "last_value"], color="tab:orange", marker="x", s=22,
               label="pruned (value when stopped)", zorder=3)
    values = trials["objective"].where(done)
    best = values.cummin() if direction == "min" else values.cummax()
    ax.step(x, best, where="post", color="black", linewidth=1.2, label="best so far")
    _scale_y(ax, pd.concat([trials.loc[done, "objective"], trials.loc[pruned, "last_value"]]).dropna())
    ax.set_xticks(x, trials["trial"], rotation=90, fontsize=7 if len(trials) <= 40 else 5)
    ax.set_xlabel("trial (in the order asked)")
    ax.set_ylabel(f"val {metric}")
    ax.set_title(f"search history: {metric} ({'lower' if direction == 'min' else 'higher'} is better)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_performance_profile(scores: dict[str, np.ndarray], metric: str, direction: str, what: str) -> Figure:
    """Per condition, the share of its scores at least as good as each threshold (Agarwal et
    al. 2021's performance profile): a step curve each, so that one diverged run shows as a
    step far from the others rather than hiding in a mean."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    finite = {name: np.sort(v[np.isfinite(v)]) for name, v in scores.items()}
    pooled = np.concatenate([v for v in finite.values() if len(v)])  # the caller has some
    thresholds = np.linspace(pooled.min(), pooled.max(), 200)
    for name, values in finite.items():
        if not len(values):
            continue
        better = (values[None, :] <= thresholds[:, None]) if direction == "min" else (values[None, :] >= thresholds[:, None])
        ax.step(thresholds, better.mean(axis=1), where="post", label=f"{name} (n = {len(values)})")
    if log_scale(pooled):
        ax.set_xscale("log")
    ax.set_xlabel(f"threshold on {metric} ({'lower' if direction == 'min' else 'higher'} is better)")
    ax.set_ylabel(f"share of {what} at least as good")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"performance profile: {metric}", fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=7)
    return fig
