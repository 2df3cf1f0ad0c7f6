"""Results too costly to recompute, kept by a key of their inputs and parameters.

A node that fits or simulates something slow asks the cache first; running the same command
again then reuses the result instead of recomputing it. The key must cover everything the
result depends on (inputs, parameters, the code's version): the cache does not know.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py

from sweeplab.datasets._files import atomic_path
from sweeplab.datasets.checkpoints import FolderStoreDataset
from sweeplab.datasets.hdf5 import WRITER
from sweeplab.datasets.model_inputs import _read, _write

_KEY = re.compile(r"[0-9a-f]{8,64}")


class ResultsCache:
    """A folder of ``<key>.h5`` files, each a nested mapping of arrays (as model inputs are)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"cache key {key!r}: expected a hexadecimal hash")
        return self.root / f"{key}.h5"

    def get(self, key: str) -> dict[str, Any] | None:
        """The result saved under ``key``, or None; an unreadable entry counts as absent."""
        path = self._path(key)
        try:
            with h5py.File(path, "r") as f:
                return _read(f) if f.attrs.get("written_by") == WRITER else None
        except OSError:  # absent, truncated or not HDF5: compute it again
            return None

    def put(self, key: str, result: Mapping[str, Any]) -> None:
        path = self._path(key)
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            _write(f, result, str(path))
            f.attrs["written_by"] = WRITER

    def __repr__(self) -> str:
        return f"ResultsCache({str(self.root)!r})"


class ResultsCacheDataset(FolderStoreDataset):
    """Loads a :class:`ResultsCache` rooted at ``path``; the node that computes writes into it."""

    store = ResultsCache
