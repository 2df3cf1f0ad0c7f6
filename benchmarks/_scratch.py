"""A scratch copy of the project (its conf and pyproject, no data), for whole-run benchmarks."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def scratch_project(folder: Path) -> Path:
    shutil.copytree(REPO / "conf", folder / "conf", ignore=shutil.ignore_patterns("local"))
    (folder / "conf" / "local").mkdir()
    (folder / "src").mkdir()  # bootstrap wants the folder; the package itself is installed
    shutil.copy(REPO / "pyproject.toml", folder)
    return folder
