"""A toy family for the search tests: its val ``objective`` is a known function of its
settings, smallest (0) at x = 0.3, y = 0.01, kind = b, and it falls over the epochs, so that a
pruner has something to compare. Discovered when a test adds this folder to
``sweeplab.pipelines.__path__`` (``tests/test_search.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from kedro.pipeline import Node, Pipeline
from torch import nn

from sweeplab.families import Family
from sweeplab.training import TrainerConfig, Training, fingerprint


@dataclass(frozen=True)
class ToyConfig:
    x: float
    y: float
    kind: str
    trainer: TrainerConfig


def optimum_distance(x: float, y: float, kind: str) -> float:
    return (x - 0.3) ** 2 + (math.log10(y) + 2) ** 2 / 4 + (0.0 if kind == "b" else 0.5)


def make_inputs(defaults: dict) -> dict:
    rng = np.random.default_rng(0)
    splits = {split: {"x": rng.normal(size=(n, 1)).astype(np.float32)} for split, n in (("train", 64), ("val", 16))}
    return {**splits, "fingerprint": fingerprint(splits)}


def toy_training(cfg: ToyConfig, inputs: dict) -> Training:
    state = {"epoch": 1}
    target = optimum_distance(cfg.x, cfg.y, cfg.kind)

    def metrics(model: nn.Module, batch: dict) -> dict:
        fit = (model(batch["x"]) - batch["x"]).pow(2).mean()
        return {"total_loss": fit, "objective": torch.tensor(target * (1 + 2 / state["epoch"]))}

    def build_model() -> nn.Module:
        if cfg.x > 0.95:  # a corner of the space where the "code" breaks: a trial that raises
            raise RuntimeError("x above 0.95 is not supported")
        return nn.Linear(1, 1)

    return Training(build_model=build_model, batch_metrics=metrics, train_data=inputs["train"],
                    val_data=inputs["val"], on_epoch=lambda epoch: state.update(epoch=epoch))


FAMILY = Family(name="toy", config_type=ToyConfig, training=toy_training,
                data_prep=lambda params: Pipeline([Node(make_inputs, "params:toy", "toy_inputs", name="make_toy")]))
