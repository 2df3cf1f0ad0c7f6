"""The 4-tops event format (``4tops_splitted.h5``) and its checks.

Each row of ``X`` has 92 columns: 18 object type ids, then MET and METphi, then for each of
the 18 objects (E, pT, eta, phi). Labels (``y``) are the process ids below. A split file
holds ``X_train, Y_train, X_val, y_val, X_test, y_test`` (the real file mixes ``Y_``/``y_``;
either case is accepted); an unsplit file holds ``X`` and ``y``.
"""

from __future__ import annotations

import numpy as np

from sweeplab.errors import DataFileError

N_OBJECTS = 18
N_FEATURES = 4  # E, pT, eta, phi
N_COLUMNS = N_OBJECTS + 2 + N_OBJECTS * N_FEATURES  # 92
MET, METPHI = N_OBJECTS, N_OBJECTS + 1
FEATURE_NAMES = ("E", "pT", "eta", "phi")

OBJECT_TYPES = {0: "padding", 1: "jet", 2: "b-jet", 3: "e+", 4: "e-", 5: "mu-", 6: "mu+", 7: "photon"}
PROCESSES = {1: "tttt", 2: "ttH", 3: "ttW", 4: "ttWW", 5: "ttZ"}
SPLITS = ("train", "val", "test")


class EventFormatError(DataFileError):
    """Input that does not follow the 4-tops format; the message names file, key and rows."""


def object_types(X: np.ndarray) -> np.ndarray:
    return X[:, :N_OBJECTS]


def object_features(X: np.ndarray) -> np.ndarray:
    """(n, 92) rows -> (n, 18, 4) per-object (E, pT, eta, phi)."""
    return X[:, N_OBJECTS + 2 :].reshape(len(X), N_OBJECTS, N_FEATURES)


def check_rows(X: np.ndarray, where: str, first_row: int = 0) -> None:
    """Raise :class:`EventFormatError` unless ``X`` is a block of well-formed event rows."""
    if X.ndim != 2 or X.shape[1] != N_COLUMNS:
        raise EventFormatError(f"{where}: expected {N_COLUMNS} columns per event, got shape {X.shape}")
    if X.dtype.kind not in "iuf":
        raise EventFormatError(f"{where}: expected real numbers, got dtype {X.dtype}")
    finite = np.isfinite(X)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise EventFormatError(f"{where}: non-finite value {X[row, col]} at row {first_row + row}, column {col}")
    types = object_types(X)
    bad = (types != np.round(types)) | (types < 0) | (types > max(OBJECT_TYPES))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise EventFormatError(
            f"{where}: unknown object type id {types[row, col]} at row {first_row + row}, "
            f"slot {col}; expected one of {sorted(OBJECT_TYPES)}"
        )
    # energies and transverse momenta are magnitudes: a negative one is a corrupt row
    negative_met = X[:, MET] < 0
    if negative_met.any():
        row = int(np.argmax(negative_met))
        raise EventFormatError(f"{where}: negative MET ({X[row, MET]:g}) at row {first_row + row}; expected a value >= 0")
    for feature in (0, 1):  # E, pT: strided column views, so no copy of the block
        first_column = N_OBJECTS + 2 + feature
        negative = X[:, first_column::N_FEATURES] < 0  # (n, 18)
        if negative.any():
            row, slot = np.argwhere(negative)[0]
            raise EventFormatError(f"{where}: negative {FEATURE_NAMES[feature]} "
                                   f"({X[row, first_column + slot * N_FEATURES]:g}) of slot {slot} at row "
                                   f"{first_row + row}; expected a value >= 0")


def check_labels(y: np.ndarray, where: str) -> np.ndarray:
    """Labels as a flat int array; raise naming the row and value of the first bad one."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise EventFormatError(f"{where}: expected one label per event, got shape {y.shape}")
    if y.dtype.kind not in "iuf":
        raise EventFormatError(f"{where}: expected integer process labels, got dtype {y.dtype}")
    bad = ~np.isin(y, list(PROCESSES))  # a fraction (2.7), NaN and 1e308 are all bad, not truncated
    if bad.any():
        row = int(np.argmax(bad))
        raise EventFormatError(f"{where}: label {y[row].item()!r} at row {row}; expected a process id, "
                               f"one of {PROCESSES}")
    return y.astype(np.int64)
