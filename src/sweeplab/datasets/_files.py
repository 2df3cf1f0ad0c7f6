"""What the custom datasets share: local versioned paths and atomic writes."""

from __future__ import annotations

import contextlib
import filecmp
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractVersionedDataset, DatasetError, Version


@contextlib.contextmanager
def parent_folders(path: str | Path) -> Iterator[None]:
    """Create ``path``'s missing parent folders; if the block fails, remove the ones made here,
    so that a failed save leaves no empty version folder behind."""
    path = Path(path)
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if made:
            shutil.rmtree(made[-1], ignore_errors=True)  # the outermost folder this save made
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path, *, versioned: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    ``versioned``: ``path`` is ``<dataset>/<version>/<name>``. When the newest earlier version
    holds the same bytes (a re-run that restored a finished variant), the new version becomes a
    hard link to it: every version stays a whole file, without a new copy on disk.
    """
    path = Path(path)
    with parent_folders(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            yield Path(tmp)
            if versioned:
                link_if_unchanged(Path(tmp), previous_version(path))
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)


def previous_version(path: Path) -> Path | None:
    """``<dataset>/<version>/<name>``: the same name in the newest other version, if any."""
    versions = sorted(p for p in path.parent.parent.glob(f"*/{path.name}") if p.parent != path.parent)
    return versions[-1] if versions else None


def link_if_unchanged(new: Path, previous: Path | None) -> None:
    """Make ``new`` a hard link to ``previous`` when both hold the same bytes."""
    if previous is None or not previous.is_file() or not filecmp.cmp(previous, new, shallow=False):
        return
    with contextlib.suppress(OSError):  # no hard links on this filesystem: keep the copy
        link = new.with_name(new.name + ".link")
        os.link(previous, link)
        os.replace(link, new)


def _path_exists(path: str) -> bool:
    return Path(path).exists()


class LocalVersionedDataset(AbstractVersionedDataset):
    """A versioned dataset of one local file; subclasses write it through :func:`atomic_path`.

    It holds no lambda and no open handle, so it pickles: ParallelRunner's workers get copies.
    """

    def __init__(self, *, filepath: str, version: Version | None = None, metadata: dict | None = None):
        super().__init__(
            filepath=PurePosixPath(filepath),
            version=version,
            exists_function=_path_exists,
            glob_function=glob.glob,
        )
        self.metadata = metadata

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).exists()
        except DatasetError:  # no version saved yet
            return False

    @property
    def filepath(self) -> Path:
        """The dataset's path as configured, without a version folder."""
        return Path(self._filepath)

    def load_path(self) -> Path:
        """The file a load reads: the pinned version's, else the newest saved."""
        return Path(self._get_load_path())

    def saved_at(self) -> float | None:
        """When the version a load would read was written (its file's mtime); None: none saved."""
        return Path(self._get_load_path()).stat().st_mtime if self._exists() else None

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}
