"""Global-workspace nodes: model inputs from the shapes dataset, and training."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweeplab.config import NonNegativeFloat
from sweeplab.datasets.hdf5 import H5File
from sweeplab.families import Training
from sweeplab.pipelines.gw.model import (
    GlobalWorkspace,
    GWModelConfig,
    LossWeights,
    workspace_metrics,
)
from sweeplab.pipelines.shapes.nodes import load_shapes
from sweeplab.pipelines.shapes.synthetic import ATTR_COLUMNS, FEATURES, ROLES
from sweeplab.training import TrainerConfig, fingerprint

# the probes read these features from the fused state; unique = one domain only
PROBED = [f for f in FEATURES if f != "category"]
UNIQUE = [PROBED.index(f) for f in (*ROLES["unique"]["attr"], *ROLES["unique"]["v"])]
REDUNDANT = [PROBED.index(f) for f in ROLES["redundant"] if f in PROBED]


@dataclass(frozen=True)
class SynergyConfig:
    loss_scale: NonNegativeFloat  # weight of the synergy cross-entropy on the fused state: the prior


@dataclass(frozen=True)
class GWConfig:
    model: GWModelConfig
    loss: LossWeights
    synergy: SynergyConfig
    trainer: TrainerConfig


def build_gw_inputs(shapes: H5File) -> dict[str, Any]:
    """Node: per split, the two domains, the synergy label and standardised probe targets."""
    data = load_shapes(shapes)
    columns = [FEATURES.index(f) for f in PROBED]
    train_features = data["train"]["features"][:, columns]
    mean, std = train_features.mean(0), train_features.std(0) + 1e-8
    inputs: dict[str, Any] = {}
    for split, part in data.items():
        inputs[split] = {
            "attr": part["attr"].astype(np.float32), "v": part["v"].astype(np.float32),
            "synergy": part["synergy"].astype(np.int64),
            "probe_target": ((part["features"][:, columns] - mean) / std).astype(np.float32),
        }
    inputs["fingerprint"] = fingerprint(inputs)
    return inputs


def workspace_training(cfg: GWConfig, gw_inputs: dict[str, Any]) -> Training:
    """One variant's setup for the shared training node (``sweeplab.families.train_variant``)."""
    train_data = gw_inputs["train"]
    return Training(
        build_model=functools.partial(GlobalWorkspace, cfg.model, attr_dim=train_data["attr"].shape[1],
                                      v_dim=train_data["v"].shape[1], n_probe=len(PROBED)),
        batch_metrics=functools.partial(workspace_metrics, weights=cfg.loss, synergy_scale=cfg.synergy.loss_scale,
                                        synergy_column=ATTR_COLUMNS.index("u"), unique=UNIQUE, redundant=REDUNDANT),
        train_data=train_data,
        val_data=gw_inputs["val"],
    )
