"""The checkpoint store as a catalog entry, so its location is configuration, not code."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from sweeplab.training.checkpoints import CheckpointStore


class CheckpointStoreDataset(AbstractDataset[None, CheckpointStore]):
    """Loads a :class:`CheckpointStore` rooted at ``path``; the training loop writes into it."""

    def __init__(self, *, path: str, metadata: dict | None = None):
        self._path = path
        self.metadata = metadata

    def load(self) -> CheckpointStore:
        return CheckpointStore(self._path)

    def save(self, data: Any) -> None:
        raise DatasetError("the checkpoint store is written by the training loop, not saved as a dataset")

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}
