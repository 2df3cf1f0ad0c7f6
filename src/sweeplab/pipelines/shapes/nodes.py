"""Shapes data nodes: generate the two domains and split them; check a real dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np

from sweeplab.config import NonNegativeFloat, NonNegativeInt, PositiveInt, Range, SplitFractions
from sweeplab.datasets.hdf5 import H5File
from sweeplab.errors import DataFileError
from sweeplab.pipelines.shapes.synthetic import (
    ATTR_COLUMNS,
    FEATURES,
    N_CLASSES,
    ROLES,
    attr_domain,
    draw_attributes,
    synergy_target,
    visual_domain,
)

SPLITS = ("train", "val", "test")
ARRAYS = ("attr", "v", "synergy", "features")  # per split: <array>_<split>


class ShapesDataError(DataFileError):
    """A shapes dataset that does not hold what the family expects; names file and key."""


@dataclass(frozen=True)
class SyntheticShapesConfig:
    n_samples: Annotated[int, Range(low=10)]
    seed: NonNegativeInt
    fractions: SplitFractions
    visual_dim: PositiveInt
    embedding_seed: NonNegativeInt  # the fixed visual code: part of the data's definition
    noise: NonNegativeFloat


@dataclass(frozen=True)
class ShapesConfig:
    """``shapes:`` in parameters: generate the two domains, or read a real dataset."""

    source: Literal["synthetic", "file"]
    synthetic: SyntheticShapesConfig


def generate_shapes(params: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Node: the synthetic two-domain dataset, split, and its metadata."""
    n, seed = int(params["n_samples"]), int(params["seed"])
    fractions = params["fractions"]
    rng = np.random.default_rng(seed)
    a = draw_attributes(n, rng)
    arrays = {
        "attr": attr_domain(a),
        "v": visual_domain(a, int(params["visual_dim"]), int(params["embedding_seed"]), float(params["noise"]), rng),
        "synergy": synergy_target(a),
        "features": np.stack([a[f] for f in FEATURES], 1).astype(np.float32),
    }
    order = rng.permutation(n)
    n_train, n_val = round(fractions["train"] * n), round(fractions["val"] * n)
    parts = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    out = {f"{name}_{split}": values[idx] for split, idx in parts.items() for name, values in arrays.items()}
    metadata = {
        "source": "sweeplab synthetic shapes", "seed": seed,
        "domains": {"attr": list(ATTR_COLUMNS), "v": f"{params['visual_dim']} columns, fixed non-linear code"},
        "features": list(FEATURES), "roles": ROLES,
        "synergy": {"classes": N_CLASSES, "chance": 1 / N_CLASSES},
        "sizes": {split: len(idx) for split, idx in parts.items()},
    }
    return out, metadata


def load_shapes(shapes: H5File) -> dict[str, dict[str, np.ndarray]]:
    """The dataset per split, checked before use: every array present, 2-D real numbers (1-D
    whole-number labels in 0..7), rows that agree, finite values; errors name key and row."""
    widths = {"attr": len(ATTR_COLUMNS), "v": None, "features": len(FEATURES)}
    out: dict[str, dict[str, np.ndarray]] = {}
    for split in SPLITS:
        keys = {name: shapes.find(f"{name}_{split}") for name in ARRAYS}
        for name, width in widths.items():
            shape = shapes.numeric(keys[name], ndim=2)
            if width is not None and shape[1] != width:
                columns = list(ATTR_COLUMNS) if name == "attr" else list(FEATURES)
                raise ShapesDataError(f"{shapes.path}:{keys[name]}: expected {width} columns {columns}, got {shape[1]}")
        shapes.numeric(keys["synergy"], ndim=1)
        part = {name: shapes.read(key) for name, key in keys.items()}
        rows = {name: len(v) for name, v in part.items()}
        if len(set(rows.values())) != 1 or not rows["attr"]:
            raise ShapesDataError(f"{shapes.path}: arrays of split '{split}' differ in rows or are empty: {rows}")
        labels = part["synergy"]
        bad = ~np.isin(labels, np.arange(N_CLASSES))  # a fraction (2.7) is an error, never truncated
        if bad.any():
            row = int(np.argmax(bad))
            raise ShapesDataError(f"{shapes.path}:{keys['synergy']}: label {labels[row].item()!r} at row {row}; "
                                  f"expected a whole number in 0..{N_CLASSES - 1}")
        for name in widths:
            finite = np.isfinite(part[name])
            if not finite.all():
                row, col = np.argwhere(~finite)[0]
                raise ShapesDataError(f"{shapes.path}:{keys[name]}: non-finite value at row {row}, column {col}")
        out[split] = dict(part, synergy=labels.astype(np.int64))
    return out
