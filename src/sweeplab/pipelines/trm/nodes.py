"""TRM family nodes: its config and one variant's training setup."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sweeplab.families import Training
from sweeplab.pipelines.trm.model import TRM, TRMModelConfig, trm_metrics
from sweeplab.training import TrainerConfig

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
    return Training(
        build_model=functools.partial(TRM, cfg.model, length=train_data["inputs"].shape[1],
                                      n_puzzles=len(demos["mask"]), demos=demos["tokens"], demo_mask=demos["mask"]),
        batch_metrics=trm_metrics,
        train_data=train_data,
        val_data=val_data,
        parameter_groups=TRM.parameter_groups,
        group_lr=own_lr,
    )
