"""Every figure of a small report, drawn: no text leaves the figure, no two texts overlap.

The texts checked are those the Agg canvas actually draws (titles, axis labels, tick labels,
legend entries, annotations, cell labels), recorded while it draws them.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from sweeplab import figures
from sweeplab.pipelines.reporting import tables
from sweeplab.pipelines.reporting.config import layout
from sweeplab.pipelines.reporting.report_figures import report_figures
from tests.conftest import REPO, planned

TOLERANCE = 1.0  # pixels: antialiasing at an edge is not a clipped label


def drawn_texts(fig: Figure) -> list[tuple[str, object]]:
    """(text, window extent) of every non-empty text the canvas draws, as it draws it."""
    canvas = FigureCanvasAgg(fig)
    found: list[tuple[str, object]] = []
    original = Text.draw

    def record(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            found.append((self.get_text(), self.get_window_extent(renderer)))

    Text.draw = record
    try:
        canvas.draw()
    finally:
        Text.draw = original
    return found


def layout_problems(fig: Figure) -> list[str]:
    """Texts that leave the figure, and pairs of texts that overlap."""
    bounds = fig.bbox
    texts = drawn_texts(fig)
    problems = [f"{text!r} leaves the figure: {box.bounds} outside {bounds.bounds}" for text, box in texts
                if box.x0 < bounds.x0 - TOLERANCE or box.y0 < bounds.y0 - TOLERANCE
                or box.x1 > bounds.x1 + TOLERANCE or box.y1 > bounds.y1 + TOLERANCE]
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        overlap_w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if overlap_w > TOLERANCE and overlap_h > TOLERANCE:
            problems.append(f"{a!r} overlaps {b!r}")
    return problems


# ----------------------------------------------------------------------------------------------
# a small report: the ae_sweep's shape (latent x beta), one seed, and the none latent's
# reconstruction rising 77-fold with beta while VQ's stays within 0.15-0.35

LATENTS = ("none", "linear", "vq")
BETAS = (0, 1, 10)
SPEC = {"family": "ae", "grid": {"model.latent_space": list(LATENTS), "loss.globals_beta": list(BETAS)},
        "labels": {"model.latent_space": "latent", "loss.globals_beta": "beta"}, "seeds": [0],
        "title": "ae_sweep: latent space x globals weight",
        "report": {"metrics": ["rec_tokens", "rec_globals", "total_loss"], "compare_metric": "rec_tokens",
                   "line_plots": [{"x": "loss.globals_beta", "hue": "model.latent_space"}],
                   "heatmaps": [{"x": "loss.globals_beta", "y": "model.latent_space"}],
                   "heatmap_metrics": ["rec_tokens", "rec_globals"]}}
REC_TOKENS = {"none": (0.013, 0.2, 1.0), "linear": (0.17, 0.22, 0.3), "vq": (0.15, 0.25, 0.35)}


def _summary(latent: str, beta: int, failed: bool = False) -> dict:
    tokens = REC_TOKENS[latent][BETAS.index(beta)]
    val = {"rec_tokens": tokens, "rec_globals": 0.5 / (1 + beta), "total_loss": tokens + beta * 0.5 / (1 + beta)}
    return {"status": "failed" if failed else "completed", "reason": "non-finite loss" if failed else "done",
            "best_epoch": 3, "epochs_run": 3, "wall_s": 1.0, "best": {"val": {} if failed else val, "train": val},
            "final": {"val": val, "train": val}}


def _history(latent: str, beta: int, epochs: int = 6) -> pd.DataFrame:
    tokens = REC_TOKENS[latent][BETAS.index(beta)]
    rows = []
    for epoch in range(1, epochs + 1):
        scale = 1 + 20 / epoch  # from 21x the final value down: more than a decade
        for split in ("train", "val"):
            rows.append({"epoch": epoch, "split": split, "rec_tokens": tokens * scale,
                         "rec_globals": 0.5 / (1 + beta) * scale, "total_loss": (tokens + beta) * scale,
                         "grad_norm/encoder": 1e-3 * scale if split == "train" else np.nan})
    return pd.DataFrame(rows)


def small_report(spec: dict, failed: tuple[str, ...] = ()) -> dict[str, Figure]:
    sweep = layout(spec, planned(spec, "ae_sweep"))
    summaries = {v.name: _summary(v.condition["model.latent_space"], v.condition["loss.globals_beta"],
                                  failed=v.name in failed) for v in sweep.variants}
    histories = {v.name: _history(v.condition["model.latent_space"], v.condition["loss.globals_beta"])
                 for v in sweep.variants}
    table = tables.results_table(spec, sweep=planned(spec, "ae_sweep"), **summaries)
    stats, _ = tables.condition_statistics(table, spec, sweep=planned(spec))
    curves = tables.aggregate_curves(spec, **histories, sweep=planned(spec))
    return report_figures(table, stats, curves, sweep)


def all_figures() -> dict[str, Figure]:
    out = {f"ae/{k}": v for k, v in small_report(SPEC, failed=("vq_beta10_s0",)).items()}
    # one line per condition in the curves' legend, and long condition names down the side
    named = {**SPEC, "experiments": {f"experiment_with_a_long_name_{i}": {} for i in range(4)},
             "grid": {"model.latent_space": ["none", "vq"], "loss.globals_beta": [0, 10]}}
    out |= {f"named/{k}": v for k, v in small_report(named).items()}
    # a run's own figure (the family's losses.png): one row of panels (no VQ, no gradient
    # norms), two, and VQ's three
    for name, latent, extra in (("plain", "none", False), ("none", "none", True), ("vq", "vq", True)):
        history = _history(latent, 1)
        if not extra:
            history = history.drop(columns="grad_norm/encoder")
        if latent == "vq":
            history = history.assign(perplex=history["rec_tokens"] * 100, commit=history["rec_tokens"] / 10)
        summary = {"sweep": "ae_sweep", "variant": f"{latent}_beta1_s0", "status": "completed", "reason": "done",
                   "best_epoch": 5}
        out[f"history/{name}_losses.png"] = figures.plot_history(history, summary)
    return out


FIGURES = all_figures()


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_no_text_leaves_the_figure_or_overlaps_another(name):
    assert layout_problems(FIGURES[name]) == []


def test_the_report_draws_each_kind_of_figure():
    assert {"ae/completion.png", "ae/rec_tokens_vs_beta.png", "ae/heatmap_rec_tokens_latent_x_beta.png",
            "ae/validation_curves.png", "named/conditions.png", "named/validation_curves.png",
            "history/plain_losses.png", "history/none_losses.png",
            "history/vq_losses.png"} <= set(FIGURES)
    assert not [n for n in FIGURES if n.endswith("training_curves_val.png")], "one curves figure"


def test_a_metric_spanning_a_decade_gets_a_log_axis():
    fig = FIGURES["ae/rec_tokens_vs_beta.png"]
    assert {ax.get_yscale() for ax in fig.axes if ax.get_visible()} == {"log"}, "0.013 to 1.0: 77-fold"
    curves = FIGURES["ae/validation_curves.png"]
    assert "log" in {ax.get_yscale() for ax in curves.axes}
    conditions = {ax.get_title(): ax.get_xscale() for ax in FIGURES["named/conditions.png"].axes if ax.get_visible()}
    assert conditions["rec_tokens"] == "log", conditions


def test_single_runs_are_explained_once_in_the_legend():
    fig = FIGURES["ae/rec_tokens_vs_beta.png"]
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert texts.count("hollow: n=1, no interval") == 1
    assert not [t for t in texts if "no CI" in t], "no label per point"


def test_the_notebook_names_only_figures_the_report_draws():
    text = (REPO / "notebooks/explore_sweep.ipynb").read_text()
    named = set(re.findall(r"`(\w+\.png)`", text))
    assert named and named <= {name.rsplit("/", 1)[-1] for name in FIGURES}, named
