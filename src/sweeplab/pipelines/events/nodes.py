"""Event data nodes: stratified splitting (streamed) and the train-only normaliser."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sweeplab.config import NonNegativeInt, PositiveInt, SplitFractions
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


@dataclass(frozen=True)
class SyntheticEventsConfig:
    n_events: PositiveInt
    seed: NonNegativeInt


@dataclass(frozen=True)
class SplitConfig:
    fractions: SplitFractions
    seed: NonNegativeInt
    step_size: PositiveInt = 65536  # events per streamed chunk


@dataclass(frozen=True)
class EventsConfig:
    """``events:`` in parameters: where the event data comes from and how it is split."""

    source: Literal["synthetic", "unsplit", "split"]
    synthetic: SyntheticEventsConfig
    split: SplitConfig


def assign_splits(y: np.ndarray, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Split index per event (0 train, 1 val, 2 test), stratified by label.

    Within each label, a seeded permutation takes ``round(fraction * count)`` events for
    train and val and leaves the rest to test, so the splits are disjoint and complete. A
    process too small to reach every split is named in a warning.
    """
    f = np.array([float(fractions[s]) for s in SPLITS])
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(y), np.int8)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_train = round(f[0] * len(members))
        n_val = round(f[1] * len(members))
        assignment[members[:n_train]] = 0
        assignment[members[n_train : n_train + n_val]] = 1
        assignment[members[n_train + n_val :]] = 2
        absent = [SPLITS[i] for i in range(len(SPLITS)) if not (assignment[members] == i).any()]
        if absent:
            logger.warning("events: process %s has %d event(s), too few to appear in every split; none in %s",
                           PROCESSES.get(int(label), label), len(members), ", ".join(absent))
    return assignment


def _unsplit_keys(events: H5File) -> tuple[str, str, int]:
    """The X and y keys of an unsplit file and its event count, checked before any read."""
    x_key, y_key = events.find("X"), events.find("y")
    n, columns = events.numeric(x_key, ndim=2)
    if columns != N_COLUMNS:
        raise EventFormatError(f"{events.path}:{x_key}: expected {N_COLUMNS} columns per event, got shape {(n, columns)}")
    return x_key, y_key, n


def split_events(events: H5File, split: dict[str, Any]) -> ArrayStream:
    """Node: unsplit file (``X``, ``y``) -> split file in the real format, streamed in chunks.

    Only the labels and the split index are held in memory; event rows are read, checked and
    written ``split.step_size`` at a time, keeping their original order within each split.
    """
    x_key, y_key, n = _unsplit_keys(events)
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
    """``{split: (X key, y key)}`` of a split file, checked for presence, shapes and dtypes."""
    keys = {}
    for name in SPLITS:
        x_key, y_key = events.find(f"X_{name}"), events.find(f"y_{name}", f"Y_{name}")
        shape = events.numeric(x_key, ndim=2)
        if shape[1] != N_COLUMNS:
            raise EventFormatError(f"{events.path}:{x_key}: expected {N_COLUMNS} columns per event, got shape {shape}")
        if shape[0] == 0:
            raise EventFormatError(f"{events.path}:{x_key}: the {name} split is empty")
        y_shape = events.shape(y_key)
        if not y_shape or y_shape[0] != shape[0]:
            raise EventFormatError(f"{events.path}: {x_key} has {shape[0]} rows but {y_key} has shape {y_shape}")
        keys[name] = (x_key, y_key)
    return keys


def token_transform(features: np.ndarray) -> np.ndarray:
    """(…, 4) raw (E, pT, eta, phi) -> (log1p E, log1p pT, eta, phi): the steep tails tamed."""
    out = features.astype(np.float64, copy=True)
    out[..., :2] = np.log1p(np.maximum(out[..., :2], 0.0))
    return out


class _Moments:
    """Mean and std per column from running sums over chunks (float64), remembering each
    column's most extreme value and its row, to name it when the statistics overflow."""

    def __init__(self, names: list[str]):
        self.names = names
        self.n, self.total, self.total_sq = 0, np.zeros(len(names)), np.zeros(len(names))
        self.extreme, self.extreme_row = np.zeros(len(names)), np.zeros(len(names), np.int64)

    def add(self, x: np.ndarray, rows: np.ndarray) -> None:
        """``x``: (n, columns), or (n,) for one column; ``rows``: the file row of each."""
        if not len(x):
            return
        with np.errstate(over="ignore", invalid="ignore"):
            self.total = self.total + x.sum(0)
            self.total_sq = self.total_sq + (x**2).sum(0)
        self.n += len(x)
        magnitude = np.abs(x).reshape(len(x), -1)
        big = magnitude.argmax(0)
        largest = magnitude[big, np.arange(magnitude.shape[1])]
        larger = largest > self.extreme
        self.extreme[larger], self.extreme_row[larger] = largest[larger], rows[big][larger]

    def result(self, where: str) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore"):
            mean = self.total / self.n
            std = np.sqrt(np.maximum(self.total_sq / self.n - mean**2, 1e-12))
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            i = int(np.argmax(bad))
            raise EventFormatError(f"{where}: the {self.names[i]} values are too large to normalise (the largest, "
                                   f"{self.extreme[i]:g}, at row {self.extreme_row[i]}); expected finite statistics")
        return mean, std


def fit_normaliser(events_split: H5File, split: dict[str, Any]) -> dict[str, Any]:
    """Node: per-feature mean and std of real objects and of log MET, from train only.

    Every split's rows and labels are checked first, so that no normaliser is saved for a
    file whose val or test split is malformed.
    """
    keys = split_keys(events_split)
    step = int(split.get("step_size", 65536))
    names = ["log1p_" + FEATURE_NAMES[0], "log1p_" + FEATURE_NAMES[1], *FEATURE_NAMES[2:]]
    labels = {name: check_labels(events_split.read(y_key), f"{events_split.path}:{y_key}")
              for name, (_, y_key) in keys.items()}
    tokens, met = _Moments(names), _Moments(["log1p_MET"])
    for name, (x_key, _) in keys.items():
        for start, rows in events_split.iter_chunks(x_key, step_size=step):
            check_rows(rows, f"{events_split.path}:{x_key}", first_row=start)
            if name != "train":
                continue
            real = object_types(rows) > 0
            tokens.add(token_transform(object_features(rows))[real], start + np.nonzero(real)[0])
            met.add(np.log1p(rows[:, MET].astype(np.float64)), start + np.arange(len(rows)))
    x_key = keys["train"][0]
    if tokens.n == 0:
        raise EventFormatError(f"{events_split.path}:{x_key}: no real (non-padding) objects in the train split")
    mean, std = tokens.result(f"{events_split.path}:{x_key}")
    met_mean, met_std = met.result(f"{events_split.path}:{x_key}")
    return {
        "features": names,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "log_met": {"mean": float(met_mean[0]), "std": float(met_std[0])},
        "fitted_on": {"split": "train", "events": met.n, "objects": int(tokens.n),
                      "events_per_process": {PROCESSES[int(k)]: int(v)
                                             for k, v in zip(*np.unique(labels["train"], return_counts=True), strict=True)}},
    }
