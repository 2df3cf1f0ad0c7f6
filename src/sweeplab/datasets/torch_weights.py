"""Model weights as a state dict: saved atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import io
from typing import Any

import torch

from sweeplab.datasets._files import LocalVersionedDataset, atomic_path
from sweeplab.errors import DataFileError


def is_state_dict(obj: Any) -> bool:
    """A ``{name: tensor}`` mapping, as ``nn.Module.state_dict()`` gives."""
    return isinstance(obj, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


class TorchWeightsDataset(LocalVersionedDataset):
    """A ``{name: tensor}`` state dict in a ``.pt`` file; never unpickles arbitrary objects."""

    def load(self) -> dict[str, torch.Tensor]:
        path = self._get_load_path()
        try:
            weights = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds; its advice to unpickle must not reach users
            raise DataFileError(f"{path}: not a weights file that loads safely ({type(exc).__name__})") from None
        if not is_state_dict(weights):
            raise DataFileError(f"{path}: expected a state dict of named tensors, got {type(weights).__name__}")
        return weights

    def save(self, data: dict[str, torch.Tensor]) -> None:
        if not is_state_dict(data):
            raise DataFileError(f"{self._filepath}: expected a state dict of named tensors, got {type(data).__name__}")
        with atomic_path(self._get_save_path(), versioned=self._version is not None) as tmp:
            # through a buffer: saved to a path, the archive inside is named after the (random)
            # temporary file, and equal weights would never give equal bytes
            buffer = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in data.items()}, buffer)
            tmp.write_bytes(buffer.getvalue())
