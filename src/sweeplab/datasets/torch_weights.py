"""Model weights as a state dict: saved atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import torch
from kedro.io import AbstractVersionedDataset, DatasetError, Version

from sweeplab.datasets._files import atomic_path, versioning_functions


class TorchWeightsDataset(AbstractVersionedDataset[dict, dict]):
    """A ``{name: tensor}`` state dict in a ``.pt`` file; never unpickles arbitrary objects."""

    def __init__(self, *, filepath: str, version: Version | None = None, metadata: dict | None = None):
        super().__init__(filepath=PurePosixPath(filepath), version=version, **versioning_functions())
        self.metadata = metadata

    def load(self) -> dict[str, torch.Tensor]:
        return torch.load(self._get_load_path(), map_location="cpu", weights_only=True)

    def save(self, data: dict[str, torch.Tensor]) -> None:
        if not isinstance(data, dict):
            raise DatasetError(f"{self._filepath}: expected a state dict, got {type(data).__name__}")
        with atomic_path(self._get_save_path()) as tmp:
            torch.save({k: v.detach().cpu() for k, v in data.items()}, tmp)

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).exists()
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}
