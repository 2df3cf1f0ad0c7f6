"""The checkpoint store and the search studies as catalog entries, so that their locations are
configuration, not code."""

from __future__ import annotations

from typing import Any, ClassVar

from kedro.io import AbstractDataset, DatasetError

from sweeplab.search import StudyStore
from sweeplab.training.checkpoints import CheckpointStore


class FolderStoreDataset(AbstractDataset[None, Any]):
    """Loads ``store(path)``, an object that nodes write into (a checkpoint store, a cache);
    there is nothing to save."""

    store: ClassVar[type]

    def __init__(self, *, path: str, metadata: dict | None = None):
        self._path = path
        self.metadata = metadata

    def load(self) -> Any:
        return self.store(self._path)

    def save(self, data: Any) -> None:
        raise DatasetError(f"a {self.store.__name__} is written through the object it loads, not saved as a dataset")

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}


class CheckpointStoreDataset(FolderStoreDataset):
    """Loads a :class:`CheckpointStore` rooted at ``path``; the training loop writes into it."""

    store = CheckpointStore


class StudyStoreDataset(FolderStoreDataset):
    """Loads the :class:`~sweeplab.search.StudyStore` rooted at ``path``: the journal files of
    the project's searches, which their trials' nodes ask and tell."""

    store = StudyStore
