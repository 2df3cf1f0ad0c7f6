"""The run record's summary (JSON) and history (CSV), and a report folder.

A sweep's report reads every planned variant's record. When one was never written (the
report runs alone after a partial sweep, or before new seeds have trained), loading gives
a record that says ``missing`` instead of stopping the report: the report counts it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sweeplab.datasets._files import LocalVersionedDataset, atomic_path


class _ToleratesMissing(LocalVersionedDataset):
    def _never_saved(self) -> bool:
        """No version at all, and none pinned (a pinned version that is absent is an error)."""
        pinned = self._version is not None and self._version.load is not None
        return not pinned and not self._exists()


class RunSummaryDataset(_ToleratesMissing):
    """A run's summary dict as JSON; a record never saved loads as ``status: missing``."""

    def load(self) -> dict[str, Any]:
        if self._never_saved():
            return {"status": "missing", "reason": f"no saved summary at {self._filepath}"}
        return json.loads(Path(self._get_load_path()).read_text())

    def save(self, data: dict[str, Any]) -> None:
        with atomic_path(self._get_save_path()) as tmp:
            tmp.write_text(json.dumps(data, indent=2, allow_nan=True))


class RunHistoryDataset(_ToleratesMissing):
    """A run's per-epoch history as CSV; a history never saved loads as an empty frame."""

    def load(self) -> pd.DataFrame:
        if self._never_saved():
            return pd.DataFrame(columns=["epoch", "split"])
        return pd.read_csv(self._get_load_path())

    def save(self, data: pd.DataFrame) -> None:
        with atomic_path(self._get_save_path()) as tmp:
            data.to_csv(tmp, index=False)


class ReportFolderDataset(LocalVersionedDataset):
    """A folder of report files: text (``.md``), figures (``.png``) and tables (``.csv``).

    Saved as ``{relative path: content}``; the folder is assembled under a temporary name
    and renamed into place, so the Markdown's relative links always meet their figures.
    Write-only: it is for reading by people.
    """

    def load(self) -> dict[str, Path]:
        root = Path(self._get_load_path())
        return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}

    def save(self, data: dict[str, str | Figure | pd.DataFrame]) -> None:
        target = Path(self._get_save_path())
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            for name, content in data.items():
                path = staging / name
                if staging not in path.resolve().parents:
                    raise ValueError(f"report file {name!r} would fall outside the report folder")
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, Figure):
                    buffer = io.BytesIO()
                    content.savefig(buffer, format="png", dpi=100)
                    path.write_bytes(buffer.getvalue())
                elif isinstance(content, pd.DataFrame):
                    content.to_csv(path, index=False)
                else:
                    path.write_text(str(content))
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
