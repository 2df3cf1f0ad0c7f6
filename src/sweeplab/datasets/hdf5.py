"""HDF5 files of named arrays, read lazily and written by streaming.

``load`` returns an :class:`H5File`, a handle that opens the file per read, so a node can
stream a file far larger than memory in chunks. ``save`` takes either a mapping of arrays
or an :class:`ArrayStream` (array shapes up front, then blocks), so a node can describe an
output without holding it. The file is written under a temporary name and renamed at the
end: a failed write never leaves a torn file, and never replaces a good one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sweeplab.datasets._files import LocalVersionedDataset, atomic_path
from sweeplab.errors import DataFileError

WRITER = "sweeplab"  # the ``written_by`` attribute of every file this dataset writes


class H5File:
    """A lazy, read-only view of an HDF5 file of arrays; every error names the file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataFileError(f"{self.path}: no such file")
        try:
            with h5py.File(self.path, "r") as f:
                self._meta = {k: (v.shape, v.dtype) for k, v in f.items() if isinstance(v, h5py.Dataset)}
        except OSError as exc:  # not HDF5, truncated, or unreadable
            raise DataFileError(f"{self.path}: not a readable HDF5 file ({exc})") from None

    def keys(self) -> list[str]:
        return list(self._meta)

    def find(self, *names: str) -> str:
        """The stored key matching one of ``names``, ignoring case (``Y_train`` or ``y_train``)."""
        lowered = {k.lower(): k for k in self._meta}
        for name in names:
            if name.lower() in lowered:
                return lowered[name.lower()]
        raise DataFileError(f"{self.path}: missing dataset '{names[0]}' (found {sorted(self._meta)})")

    def shape(self, key: str) -> tuple[int, ...]:
        """The array's shape; () for a scalar, and an error for a dataspace with no shape."""
        shape = self._meta[key][0]
        if shape is None:
            raise DataFileError(f"{self.path}:{key}: holds an empty (null) dataspace; expected an array")
        return shape

    def dtype(self, key: str) -> np.dtype:
        return self._meta[key][1]

    def numeric(self, key: str, ndim: int) -> tuple[int, ...]:
        """Check that ``key`` is an ``ndim``-D array of real numbers (before reading it); its shape."""
        shape, dtype = self.shape(key), self.dtype(key)
        if len(shape) != ndim:
            raise DataFileError(f"{self.path}:{key}: expected a {ndim}-D array, got shape {shape}")
        if dtype.kind not in "iuf":
            raise DataFileError(f"{self.path}:{key}: expected real numbers, got dtype {dtype}")
        return shape

    def read(self, key: str, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """The whole array (a scalar's 0-d array too), or ``rows`` of it."""
        shape = self.shape(key)  # a null dataspace has nothing to read
        if rows is not None and not shape:
            raise DataFileError(f"{self.path}:{key}: holds a scalar; expected an array with rows")
        with h5py.File(self.path, "r") as f:
            return np.asarray(f[key][()] if rows is None else f[key][rows])

    def iter_chunks(self, key: str, *, step_size: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_row, rows)`` blocks of ``step_size`` rows, opening the file once."""
        if step_size < 1:
            raise ValueError(f"step_size must be at least 1, got {step_size}")
        if not self.shape(key):
            raise DataFileError(f"{self.path}:{key}: holds a scalar; expected an array with rows")
        with h5py.File(self.path, "r") as f:
            data = f[key]
            for start in range(0, data.shape[0], step_size):
                yield start, data[start : start + step_size]

    def __repr__(self) -> str:
        return f"H5File({str(self.path)!r})"


@dataclass
class ArrayStream:
    """An output described by its arrays' shapes and a generator of ``(key, first_row, rows)``."""

    shapes: dict[str, tuple[tuple[int, ...], Any]]  # key -> (shape, dtype)
    blocks: Callable[[], Iterator[tuple[str, int, np.ndarray]]]
    attrs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], attrs: dict | None = None) -> ArrayStream:
        def blocks():
            for key, value in arrays.items():
                yield key, 0, np.asarray(value)

        return cls({k: (np.shape(v), np.asarray(v).dtype) for k, v in arrays.items()}, blocks, attrs or {})


class H5ArraysDataset(LocalVersionedDataset):
    """Kedro dataset for an HDF5 file of arrays.

    Example catalog entry::

        events_split:
          type: sweeplab.datasets.H5ArraysDataset
          filepath: data/05_model_input/events_split.h5
          versioned: true
    """

    def load(self) -> H5File:
        return H5File(self._get_load_path())

    def save(self, data: ArrayStream | Mapping[str, np.ndarray]) -> None:
        stream = data if isinstance(data, ArrayStream) else ArrayStream.from_arrays(data)
        path = Path(self._get_save_path())
        if path.exists() and not _written_here(path):
            raise DataFileError(f"{path}: holds a file this project did not write; refusing to replace it "
                                "(point this catalog entry somewhere else)")
        with atomic_path(path, versioned=self._version is not None) as tmp, h5py.File(tmp, "w") as f:
            for key, (shape, dtype) in stream.shapes.items():
                f.create_dataset(key, shape=shape, dtype=dtype)
            for key, start, rows in stream.blocks():
                if np.ndim(rows) == 0:  # a scalar is written whole
                    f[key][()] = rows
                else:
                    f[key][start : start + len(rows)] = rows
            f.attrs.update(stream.attrs)
            f.attrs["written_by"] = WRITER


def _written_here(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("written_by") == WRITER
    except OSError:
        return False
