"""A versioned folder of files: a report (Markdown, figures, tables) or generated data.

Saved as ``{relative path: content}``; the folder is assembled under a temporary name and
renamed into place, so it is either complete or absent, and its files always meet each other
(a report's relative links, a program and its sensor log). Loaded as ``{relative path: Path}``.
"""

from __future__ import annotations

import html
import io
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from kedro_datasets._typing import HTMLPreview
from matplotlib.figure import Figure

from sweeplab.datasets._files import (
    LocalVersionedDataset,
    link_if_unchanged,
    parent_folders,
    previous_version,
)
from sweeplab.errors import DataFileError

Content = str | bytes | Figure | pd.DataFrame


class FolderDataset(LocalVersionedDataset):
    """Kedro dataset for a folder of text, bytes, figures (``.png``) and tables (``.csv``)."""

    def load(self) -> dict[str, Path]:
        root = Path(self._get_load_path())
        if not root.is_dir():
            raise DataFileError(f"{root}: expected a folder")
        return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}

    def preview(self, max_chars: int = 20_000) -> HTMLPreview:
        """kedro-viz's preview: the folder's Markdown (a report's text), then its other files."""
        files = self.load()
        texts = [f"{name}\n\n{path.read_text(errors='replace')[:max_chars]}"
                 for name, path in files.items() if name.endswith(".md")]
        others = [name for name in files if not name.endswith(".md")]
        body = "\n\n".join([*texts, "Files: " + ", ".join(others) if others else ""])
        return HTMLPreview(f'<pre style="white-space: pre-wrap">{html.escape(body.strip())}</pre>')

    def save(self, data: dict[str, Content]) -> None:
        target = Path(self._get_save_path())
        with parent_folders(target):
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
            try:
                for name, content in data.items():
                    path = staging / name
                    if staging.resolve() not in path.resolve().parents:
                        raise DataFileError(f"{target}: file name {name!r} would fall outside the folder")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write(path, content)
                    if self._version is not None:
                        link_if_unchanged(path, _in_previous(target, name))
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)


def _in_previous(target: Path, name: str) -> Path | None:
    """The file ``name`` of the newest earlier version of this folder, if any."""
    folder = previous_version(target)
    return folder / name if folder is not None else None


def write(path: Path, content: Content) -> None:
    if isinstance(content, Figure):
        buffer = io.BytesIO()
        content.savefig(buffer, format="png", dpi=100)
        path.write_bytes(buffer.getvalue())
    elif isinstance(content, pd.DataFrame):
        content.to_csv(path, index=False)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(str(content))
