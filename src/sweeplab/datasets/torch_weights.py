"""Model weights as a state dict: saved atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import torch
from kedro.io import DatasetError

from sweeplab.datasets._files import LocalVersionedDataset, atomic_path


class TorchWeightsDataset(LocalVersionedDataset):
    """A ``{name: tensor}`` state dict in a ``.pt`` file; never unpickles arbitrary objects."""

    def load(self) -> dict[str, torch.Tensor]:
        return torch.load(self._get_load_path(), map_location="cpu", weights_only=True)

    def save(self, data: dict[str, torch.Tensor]) -> None:
        if not isinstance(data, dict):
            raise DatasetError(f"{self._filepath}: expected a state dict, got {type(data).__name__}")
        with atomic_path(self._get_save_path()) as tmp:
            torch.save({k: v.detach().cpu() for k, v in data.items()}, tmp)
