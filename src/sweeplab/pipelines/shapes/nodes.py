"""Shapes data nodes: generate the two domains and split them; check a real dataset."""

from __future__ import annotations

from typing import Any

import numpy as np

from sweeplab.datasets.hdf5 import H5File
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


def generate_shapes(params: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Node: the synthetic two-domain dataset, split, and its metadata."""
    n, seed = int(params["n_samples"]), int(params["seed"])
    fractions = params["fractions"]
    if n < 10:
        raise ValueError(f"shapes.n_samples must be at least 10, got {n}")
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
    """The dataset per split, checked: every array present, rows agree, labels in 0..7."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for split in SPLITS:
        part = {name: shapes.read(shapes.find(f"{name}_{split}")) for name in ARRAYS}
        rows = {name: len(v) for name, v in part.items()}
        if len(set(rows.values())) != 1 or not rows["attr"]:
            raise ValueError(f"{shapes.path}: arrays of split '{split}' differ in rows or are empty: {rows}")
        if part["attr"].shape[1] != len(ATTR_COLUMNS):
            raise ValueError(f"{shapes.path}:attr_{split}: expected {len(ATTR_COLUMNS)} columns {list(ATTR_COLUMNS)}, "
                             f"got {part['attr'].shape[1]}")
        if part["features"].shape[1] != len(FEATURES):
            raise ValueError(f"{shapes.path}:features_{split}: expected columns {list(FEATURES)}")
        labels = part["synergy"]
        if labels.min() < 0 or labels.max() >= N_CLASSES:
            raise ValueError(f"{shapes.path}:synergy_{split}: labels must be in 0..{N_CLASSES - 1}")
        for name in ("attr", "v", "features"):
            if not np.isfinite(part[name]).all():
                raise ValueError(f"{shapes.path}:{name}_{split}: non-finite values")
        out[split] = part
    return out
