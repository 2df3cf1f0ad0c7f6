"""Event data nodes: stratified splitting (streamed) and the train-only normaliser."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sweeplab.datasets.hdf5 import ArrayStream, H5File
from sweeplab.pipelines.events.format import (
    FEATURE_NAMES,
    MET,
    N_COLUMNS,
    PROCESSES,
    SPLITS,
    EventFormatError,
    check_labels,
    check_rows,
    object_features,
    object_types,
)

logger = logging.getLogger(__name__)


def assign_splits(y: np.ndarray, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Split index per event (0 train, 1 val, 2 test), stratified by label.

    Within each label, a seeded permutation takes ``round(fraction * count)`` events for
    train and val and leaves the rest to test, so the splits are disjoint and complete.
    """
    missing = [s for s in SPLITS if s not in fractions]
    if missing:
        raise ValueError(f"events.split.fractions: missing {missing}; expected {list(SPLITS)}")
    f = np.array([float(fractions[s]) for s in SPLITS])
    if (f <= 0).any() or abs(f.sum() - 1) > 1e-6:
        raise ValueError(f"events.split.fractions must be positive and sum to 1, got {dict(fractions)}")
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(y), np.int8)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_train = round(f[0] * len(members))
        n_val = round(f[1] * len(members))
        assignment[members[:n_train]] = 0
        assignment[members[n_train : n_train + n_val]] = 1
        assignment[members[n_train + n_val :]] = 2
    return assignment


def split_events(events: H5File, split: dict[str, Any]) -> ArrayStream:
    """Node: unsplit file (``X``, ``y``) -> split file in the real format, streamed in chunks.

    Only the labels and the split index are held in memory; event rows are read, checked and
    written ``split.step_size`` at a time, keeping their original order within each split.
    """
    x_key, y_key = events.find("X"), events.find("y")
    n = events.shape(x_key)[0]
    if len(events.shape(x_key)) != 2 or events.shape(x_key)[1] != N_COLUMNS:
        raise EventFormatError(f"{events.path}:{x_key}: expected {N_COLUMNS} columns per event, got shape {events.shape(x_key)}")
    y = check_labels(events.read(y_key), f"{events.path}:{y_key}")
    if len(y) != n:
        raise EventFormatError(f"{events.path}: {x_key} has {n} rows but {y_key} has {len(y)}")
    assignment = assign_splits(y, split["fractions"], int(split["seed"]))
    counts = np.bincount(assignment, minlength=len(SPLITS))
    for name, count in zip(SPLITS, counts, strict=True):
        if count == 0:
            raise EventFormatError(f"{events.path}: split '{name}' would be empty ({n} events, fractions {split['fractions']})")
    x_dtype = np.float32 if events.dtype(x_key) == np.float32 else np.float64
    step = int(split.get("step_size", 65536))

    def blocks():
        offsets = dict.fromkeys(SPLITS, 0)
        for start, rows in events.iter_chunks(x_key, step_size=step):
            check_rows(rows, f"{events.path}:{x_key}", first_row=start)
            part = assignment[start : start + len(rows)]
            labels = y[start : start + len(rows)]
            for i, name in enumerate(SPLITS):
                pick = part == i
                yield f"X_{name}", offsets[name], rows[pick].astype(x_dtype, copy=False)
                yield f"y_{name}", offsets[name], labels[pick]
                offsets[name] += int(pick.sum())

    shapes = {}
    for name, count in zip(SPLITS, counts, strict=True):
        shapes[f"X_{name}"] = ((int(count), N_COLUMNS), x_dtype)
        shapes[f"y_{name}"] = ((int(count),), np.int64)
    logger.info("Splitting %d events from %s: %s", n, events.path, dict(zip(SPLITS, counts.tolist(), strict=True)))
    attrs = {"fractions": str(dict(split["fractions"])), "seed": int(split["seed"])}
    return ArrayStream(shapes, blocks, attrs)


def split_keys(events: H5File) -> dict[str, tuple[str, str]]:
    """``{split: (X key, y key)}`` of a split file, checked for presence and shapes."""
    keys = {}
    for name in SPLITS:
        x_key, y_key = events.find(f"X_{name}"), events.find(f"y_{name}", f"Y_{name}")
        shape = events.shape(x_key)
        if len(shape) != 2 or shape[1] != N_COLUMNS:
            raise EventFormatError(f"{events.path}:{x_key}: expected {N_COLUMNS} columns per event, got shape {shape}")
        if shape[0] == 0:
            raise EventFormatError(f"{events.path}:{x_key}: the {name} split is empty")
        if events.shape(y_key)[0] != shape[0]:
            raise EventFormatError(f"{events.path}: {x_key} has {shape[0]} rows but {y_key} has {events.shape(y_key)[0]}")
        keys[name] = (x_key, y_key)
    return keys


def token_transform(features: np.ndarray) -> np.ndarray:
    """(…, 4) raw (E, pT, eta, phi) -> (log1p E, log1p pT, eta, phi): the steep tails tamed."""
    out = features.astype(np.float64, copy=True)
    out[..., :2] = np.log1p(np.maximum(out[..., :2], 0.0))
    return out


def fit_normaliser(events_split: H5File, split: dict[str, Any]) -> dict[str, Any]:
    """Node: per-feature mean and std of real objects and of log MET, from train only."""
    x_key, y_key = split_keys(events_split)["train"]
    total, total_sq, count = np.zeros(4), np.zeros(4), 0
    met_sum = met_sq = 0.0
    n_events = 0
    for start, rows in events_split.iter_chunks(x_key, step_size=int(split.get("step_size", 65536))):
        check_rows(rows, f"{events_split.path}:{x_key}", first_row=start)
        real = object_types(rows) > 0
        tokens = token_transform(object_features(rows))[real]
        total += tokens.sum(0)
        total_sq += (tokens**2).sum(0)
        count += len(tokens)
        log_met = np.log1p(rows[:, MET].astype(np.float64))
        met_sum += log_met.sum()
        met_sq += (log_met**2).sum()
        n_events += len(rows)
    if count == 0:
        raise EventFormatError(f"{events_split.path}:{x_key}: no real (non-padding) objects in the train split")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    met_mean = met_sum / n_events
    met_std = float(np.sqrt(max(met_sq / n_events - met_mean**2, 1e-12)))
    labels = check_labels(events_split.read(y_key), f"{events_split.path}:{y_key}")
    return {
        "features": ["log1p_" + FEATURE_NAMES[0], "log1p_" + FEATURE_NAMES[1], *FEATURE_NAMES[2:]],
        "mean": mean.tolist(),
        "std": std.tolist(),
        "log_met": {"mean": float(met_mean), "std": met_std},
        "fitted_on": {"split": "train", "events": n_events, "objects": int(count),
                      "events_per_process": {PROCESSES[int(k)]: int(v) for k, v in zip(*np.unique(labels, return_counts=True), strict=True)}},
    }
