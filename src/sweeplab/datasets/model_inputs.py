"""A family's shared model inputs as one versioned HDF5 file, so that any process can load them.

Data prep writes them once; every variant loads them: in the same run, in a ParallelRunner
worker, or in a Slurm task on another node. A nested mapping maps to HDF5 groups, its arrays
to datasets, and every other leaf (a fingerprint, a vocabulary) to a JSON attribute.

Within one process the last version loaded is kept, so the variants of a sequential run
share one copy, as they did when the inputs lived in memory. Loaded arrays are shared, not
copied: nodes must not modify them. The cache is not pickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sweeplab.datasets._files import LocalVersionedDataset, atomic_path
from sweeplab.datasets.hdf5 import WRITER
from sweeplab.errors import DataFileError

_ATTRIBUTE = "json:"  # prefix of an attribute that holds a non-array leaf


def _write(group: h5py.Group, data: Mapping[str, Any], where: str) -> None:
    for key, value in data.items():
        if not isinstance(key, str) or "/" in key or key.startswith(_ATTRIBUTE):
            raise DataFileError(f"{where}: key {key!r} cannot name an HDF5 member")
        if isinstance(value, Mapping):
            _write(group.create_group(key), value, f"{where}/{key}")
        elif isinstance(value, np.ndarray):
            group.create_dataset(key, data=value)
        else:
            group.attrs[_ATTRIBUTE + key] = json.dumps(value)


def _read(group: h5py.Group) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, member in group.items():
        data[key] = _read(member) if isinstance(member, h5py.Group) else member[()]
    for key, value in group.attrs.items():
        if key.startswith(_ATTRIBUTE):
            data[key.removeprefix(_ATTRIBUTE)] = json.loads(value)
    return data


class ModelInputsDataset(LocalVersionedDataset):
    """Kedro dataset for a nested mapping of arrays (and JSON-able leaves).

    Example catalog entry::

        ae_inputs:
          type: sweeplab.datasets.model_inputs.ModelInputsDataset
          filepath: data/05_model_input/ae_inputs.h5
          versioned: true
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._cache: tuple[str, dict[str, Any]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": None}

    def load(self) -> dict[str, Any]:
        path = str(self._get_load_path())
        if self._cache is None or self._cache[0] != path:
            try:
                with h5py.File(path, "r") as f:
                    if f.attrs.get("written_by") != WRITER:
                        raise DataFileError(f"{path}: not model inputs this project wrote")
                    self._cache = (path, _read(f))
            except OSError as exc:
                raise DataFileError(f"{path}: not a readable HDF5 file ({exc})") from None
        return self._cache[1]

    def save(self, data: Mapping[str, Any]) -> None:
        path = Path(self._get_save_path())
        with atomic_path(path, versioned=self._version is not None) as tmp, h5py.File(tmp, "w") as f:
            _write(f, data, str(path))
            f.attrs["written_by"] = WRITER
        self._cache = None
