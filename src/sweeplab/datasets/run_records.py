"""The run record's summary (JSON) and history (CSV).

A sweep's report reads every planned variant's record. When one was never written (the
report runs alone after a partial sweep, or before new seeds have trained), loading gives
a record that says ``missing`` instead of stopping the report: the report counts it. A
record that exists but is not one (not JSON, not a mapping) stops the report naming its file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from kedro_datasets._typing import JSONPreview, TablePreview

from sweeplab.datasets._files import LocalVersionedDataset, atomic_path
from sweeplab.errors import DataFileError, read_json
from sweeplab.run_records import missing_record


class _ToleratesMissing(LocalVersionedDataset):
    def _never_saved(self) -> bool:
        """No version at all, and none pinned (a pinned version that is absent is an error)."""
        pinned = self._version is not None and self._version.load is not None
        return not pinned and not self._exists()


class RunSummaryDataset(_ToleratesMissing):
    """A run's summary dict as JSON; a record never saved loads as ``status: missing``."""

    def load(self) -> dict[str, Any]:
        if self._never_saved():
            return missing_record(f"no saved summary at {self._filepath}")
        path = Path(self._get_load_path())
        summary = read_json(path.read_bytes(), str(path), DataFileError)
        if not isinstance(summary, dict) or not isinstance(summary.get("status"), str):
            raise DataFileError(f"{path}: expected a run summary, a JSON object with a 'status', "
                                f"got {type(summary).__name__}")
        return summary

    def save(self, data: dict[str, Any]) -> None:
        with atomic_path(self._get_save_path(), versioned=self._version is not None) as tmp:
            tmp.write_text(json.dumps(data, indent=2, allow_nan=True))

    def preview(self) -> JSONPreview:
        """kedro-viz's preview: the summary as it is saved."""
        return JSONPreview(json.dumps(self.load(), indent=2, allow_nan=True))


class RunHistoryDataset(_ToleratesMissing):
    """A run's per-epoch history as CSV; a history never saved loads as an empty frame."""

    def load(self) -> pd.DataFrame:
        if self._never_saved():
            return pd.DataFrame(columns=["epoch", "split"])
        path = self._get_load_path()
        try:
            history = pd.read_csv(path)
        except (ValueError, pd.errors.ParserError) as exc:  # EmptyDataError and decode errors included
            raise DataFileError(f"{path}: not a CSV run history ({type(exc).__name__})") from None
        missing = {"epoch", "split"} - set(history.columns)
        if missing:
            raise DataFileError(f"{path}: expected a run history with columns epoch and split, missing {sorted(missing)}")
        return history

    def save(self, data: pd.DataFrame) -> None:
        with atomic_path(self._get_save_path(), versioned=self._version is not None) as tmp:
            data.to_csv(tmp, index=False)

    def preview(self, nrows: int = 40) -> TablePreview:
        """kedro-viz's preview: the first epochs, as a table."""
        first = self.load().head(nrows)
        return TablePreview(first.astype(object).where(first.notna(), None).to_dict(orient="split"))  # NaN: not JSON
