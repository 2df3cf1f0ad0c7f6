"""kedro-datasets' file datasets, written atomically: a temporary name, then a rename.

A crash or a full disk mid-write then leaves no torn JSON, CSV, YAML, text or PNG as the
latest version: the file appears whole or not at all, like the project's own datasets.
Use these in the catalog in place of the ``kedro_datasets`` types of the same name.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro_datasets.json import JSONDataset as _JSON
from kedro_datasets.matplotlib import MatplotlibDataset as _Matplotlib
from kedro_datasets.pandas import CSVDataset as _CSV
from kedro_datasets.text import TextDataset as _Text
from kedro_datasets.yaml import YAMLDataset as _YAML

from sweeplab.datasets._files import atomic_path


class AtomicSave:
    """Mixin: the wrapped dataset's own ``save`` writes to a temporary path, renamed after."""

    _pending: Path | None = None

    def _get_save_path(self) -> PurePosixPath:
        return PurePosixPath(self._pending) if self._pending is not None else super()._get_save_path()

    def save(self, data: Any) -> None:
        # the wrapped dataset's save as it was written, without Kedro's logging wrapper (ours has it)
        base = next(c for c in type(self).__mro__ if not issubclass(c, AtomicSave) and "save" in c.__dict__)
        write = getattr(base.__dict__["save"], "__wrapped__", base.__dict__["save"])
        with atomic_path(str(super()._get_save_path()), versioned=self._version is not None) as tmp:
            self._pending = tmp
            try:
                write(self, data)
            finally:
                self._pending = None


class JSONDataset(AtomicSave, _JSON):
    pass


class CSVDataset(AtomicSave, _CSV):
    pass


class YAMLDataset(AtomicSave, _YAML):
    pass


class TextDataset(AtomicSave, _Text):
    pass


class MatplotlibDataset(AtomicSave, _Matplotlib):
    pass
