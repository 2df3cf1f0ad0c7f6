"""A run's provenance on its way to the report: held in memory, never a file of its own.

:class:`sweeplab.integration.hooks.ProvenanceHook` saves it here before the run starts, in the process
that starts it; the dataset travels to ParallelRunner's workers with what it holds (it
pickles as a plain dict). A run without that hook still gets what the process knows: the
command, the code's version and the date.
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset

from sweeplab import provenance


class RunProvenanceDataset(AbstractDataset[dict, dict]):
    """Kedro dataset of the run's provenance dict (``sweeplab.provenance.collect``)."""

    def __init__(self, metadata: dict[str, Any] | None = None) -> None:
        self._data: dict[str, Any] | None = None
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        return dict(self._data) if self._data is not None else provenance.collect()

    def save(self, data: dict[str, Any]) -> None:
        self._data = dict(data)

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"held": self._data is not None}
