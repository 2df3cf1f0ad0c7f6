"""TRM family nodes: its config, one variant's training setup, and the figure of its answers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import matplotlib.colors
import matplotlib.figure
import numpy as np
import torch

from sweeplab.config import from_dict
from sweeplab.families import Training
from sweeplab.figures import no_weights, run_title
from sweeplab.pipelines.arc.data import PAD, detokenise
from sweeplab.pipelines.trm.model import TRM, TRMModelConfig, trm_metrics
from sweeplab.training import TrainerConfig, evaluate

ROWS = ("inputs", "labels", "puzzle", "query_demo")  # what a batch holds per query


@dataclass(frozen=True)
class TRMConfig:
    model: TRMModelConfig
    trainer: TrainerConfig


def trm_training(cfg: TRMConfig, trm_inputs: dict[str, Any]) -> Training:
    """One variant's setup for the shared training node (``sweeplab.families.train_variant``)."""
    demos = trm_inputs["demos"]
    train_data, val_data = ({k: trm_inputs[split][k] for k in ROWS} for split in ("train", "eval"))
    own_lr = {"conditioning": cfg.model.puzzle_emb_lr} if cfg.model.conditioning == "puzzle_embedding" else {}
    # the original puzzles' demonstrations (the identity copies, whose test pairs are the
    # evaluation): trained on, so what they score says whether the model memorised the puzzles
    originals = np.isin(train_data["puzzle"], np.unique(val_data["puzzle"]))
    memorised = functools.partial(training_pair_metrics, train_data={k: v[originals] for k, v in train_data.items()},
                                  batch_size=cfg.trainer.eval_batch_size)
    return Training(
        build_model=functools.partial(TRM, cfg.model, length=train_data["inputs"].shape[1],
                                      n_puzzles=len(demos["mask"]), demos=demos["tokens"], demo_mask=demos["mask"]),
        batch_metrics=trm_metrics,
        train_data=train_data,
        val_data=val_data,
        parameter_groups=TRM.parameter_groups,
        group_lr=own_lr,
        split_metrics=memorised,
    )


def training_pair_metrics(model: TRM, _val: dict[str, torch.Tensor], *, train_data: dict[str, Any],
                          batch_size: int) -> dict[str, float]:
    """Pairs the model trained on, evaluated as the test pairs are (every step, the final
    answer): whether it memorised what it saw, the group's question before any
    generalisation. Logged beside the test pairs' metrics as ``train_pairs_<metric>``."""
    found = evaluate(model, trm_metrics, train_data, batch_size=batch_size)
    return {f"train_pairs_{k}": found[k] for k in ("accuracy", "exact_accuracy")}


# ----------------------------------------------------------------------------------------------
# the figure

ARC_COLOURS = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B",
               "#7FDBFF", "#870C25"]  # ARC's palette for colours 0-9
N_SHOWN = 8  # evaluation pairs in the figure


@torch.no_grad()
def predict(model: TRM, rows: dict[str, torch.Tensor]) -> torch.Tensor:
    """The answer after every supervision step, as evaluation runs it: (B, L) tokens."""
    x, _ = model.embed_inputs(rows)
    y, z = model.initial_state(x)
    for _ in range(model.cfg.halt_max_steps):
        y, z, logits, _ = model.step(y, z, x)
    return logits.argmax(-1)


def plot_predictions(weights: dict[str, torch.Tensor], config: dict[str, Any], summary: dict[str, Any],
                     trm_inputs: dict[str, Any]) -> matplotlib.figure.Figure:
    """Node: ``predictions.png``: evaluation pairs (test input, true output, the model's
    output), each puzzle's first test pair, with the share of cells right."""
    if not weights:
        return no_weights(config, summary)
    cfg = from_dict(TRMConfig, config["config"], where="trm")
    setup = trm_training(cfg, trm_inputs)
    model = setup.build_model()
    model.load_state_dict(weights)
    model.eval()
    rows = {k: torch.as_tensor(v) for k, v in setup.val_data.items()}
    first = np.unique(rows["puzzle"].numpy(), return_index=True)[1][:N_SHOWN]
    rows = {k: v[first] for k, v in rows.items()}
    predicted = predict(model, rows).numpy()
    size = int(round(rows["inputs"].shape[1] ** 0.5))
    cmap = matplotlib.colors.ListedColormap(ARC_COLOURS)
    fig = matplotlib.figure.Figure(figsize=(1.5 * len(first), 4.8), layout="constrained")
    axes = fig.subplots(3, len(first), squeeze=False)
    for c in range(len(first)):
        labels = rows["labels"][c].numpy()
        valid = labels != PAD
        right = float((predicted[c][valid] == labels[valid]).mean())
        grids = {"test input": rows["inputs"][c].numpy(), "true output": labels, f"model ({right:.0%})": predicted[c]}
        for r, (name, tokens) in enumerate(grids.items()):
            shown = detokenise(tokens, size)
            axes[r, c].imshow(shown if shown.size else np.zeros((1, 1)), cmap=cmap, vmin=0, vmax=9)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            axes[r, c].set_title(name, fontsize=7)
    fig.suptitle(f"{run_title(config)}: evaluation pairs, best epoch {summary['best_epoch']}", fontsize=9)
    return fig
