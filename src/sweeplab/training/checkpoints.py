"""Checkpoint store: one slot per (config hash, data fingerprint, code identity), written
atomically.

A slot holds ``last.pt`` (state after the latest finished epoch, to continue an interrupted
run), ``final.pt`` (the finished run record, to restore it without retraining) and
``code.json`` (the code identity's module hashes, to say later which files changed). Files
hold only tensors and plain Python values, and are read back with ``weights_only=True``.

A slot's folder is ``<sweep>/<variant>/<config hash>-<fingerprint[:16]>-<code identity>``;
slots written before code identities existed lack the last part.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sweeplab.datasets._files import atomic_path
from sweeplab.datasets.torch_weights import is_state_dict
from sweeplab.errors import InputError, read_json

logger = logging.getLogger(__name__)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file beside ``path``, then rename: never a torn file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def fingerprint(splits: dict[str, dict[str, np.ndarray]]) -> str:
    """sha256 over every array of every split: a checkpoint is never reused on other data."""
    digest = hashlib.sha256()
    for arrays in splits.values():
        for array in arrays.values():
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _is_final(record: Any) -> bool:
    """A finished run record as ``save_final`` writes it."""
    return (isinstance(record, dict) and is_state_dict(record.get("weights"))
            and isinstance(record.get("history"), list) and all(isinstance(r, dict) for r in record["history"])
            and isinstance(record.get("summary"), dict) and isinstance(record["summary"].get("status"), str))


def _is_epoch_state(state: Any) -> bool:
    """The state after an epoch as the training loop writes it (its fields are checked on restore)."""
    return isinstance(state, dict) and is_state_dict(state.get("model")) and isinstance(state.get("epoch"), int)


class CheckpointSlot:
    """The checkpoints of one run, in its own folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _load(self, name: str, valid: Callable[[Any], bool]) -> dict[str, Any] | None:
        path = self.folder / name
        if not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # torch's message suggests unpickling the file: never pass that on
            state = None
        if state is None or not valid(state):
            self.set_aside(path)
            return None
        return state

    def set_aside(self, path: Path) -> None:
        """A corrupt or foreign checkpoint is kept for inspection, never trusted."""
        logger.warning("%s is not a checkpoint this project wrote or it is damaged; set aside as %s, "
                       "the run is retrained", path, path.with_suffix(".corrupt").name)
        path.rename(path.with_suffix(".corrupt"))

    def latest(self) -> dict[str, Any] | None:
        return self._load("last.pt", _is_epoch_state)

    def final(self) -> dict[str, Any] | None:
        return self._load("final.pt", _is_final)

    def save_epoch(self, state: dict[str, Any]) -> None:
        atomic_torch_save(state, self.folder / "last.pt")
        # how far it got, for `sweeplab status` to read without loading the weights
        with atomic_path(self.folder / "last.json") as tmp:
            tmp.write_text(json.dumps({"epoch": state["epoch"]}))

    def epochs_done(self) -> int | None:
        """The epoch ``last.pt`` holds, from its small companion file; None without one."""
        try:
            epoch = read_json((self.folder / "last.json").read_bytes(), "last.json").get("epoch")
        except (OSError, InputError, AttributeError):
            return None
        return epoch if isinstance(epoch, int) else None

    def save_final(self, record: dict[str, Any]) -> None:
        atomic_torch_save(record, self.folder / "final.pt")
        (self.folder / "last.pt").unlink(missing_ok=True)
        (self.folder / "last.json").unlink(missing_ok=True)

    def finished(self) -> bool:
        return (self.folder / "final.pt").exists()

    @property
    def code_digest(self) -> str | None:
        """The code identity in the folder's name; None for a slot from before code identities."""
        parts = self.folder.name.split("-")
        return parts[2] if len(parts) == 3 else None

    def code(self) -> dict[str, Any] | None:
        """The code identity (``CodeIdentity.as_dict``) its runs were trained with; None when
        not recorded (a slot from before code identities) or unreadable."""
        try:
            code = read_json((self.folder / "code.json").read_bytes(), "code.json")
        except (OSError, InputError):
            return None
        return code if isinstance(code, dict) else None

    def record_code(self, code: dict[str, Any]) -> None:
        if self.code() != code:
            with atomic_path(self.folder / "code.json") as tmp:
                tmp.write_text(json.dumps(code, indent=1, sort_keys=True))

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class CheckpointStore:
    """A folder of slots keyed by sweep, variant, config hash, data fingerprint and code identity."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def slot(self, sweep: str, variant: str, config_hash: str, data_fingerprint: str, code: str) -> CheckpointSlot:
        return CheckpointSlot(self.root / sweep / variant / f"{config_hash}-{data_fingerprint[:16]}-{code}")

    def slot_for(self, config: dict[str, Any], data_fingerprint: str, code: str) -> CheckpointSlot:
        """The slot of a resolved variant config (see ``sweeplab.sweeps.resolve_variant_config``)."""
        return self.slot(config["sweep"], config["variant"], config["config_hash"], data_fingerprint, code)

    def finished(self, config: dict[str, Any], data_fingerprint: str | None = None) -> list[CheckpointSlot]:
        """The slots of this variant's config (and data, when given) that hold a finished run,
        of any code, the newest first."""
        prefix = f"{config['config_hash']}-" + (data_fingerprint[:16] if data_fingerprint else "")
        finals = (self.root / config["sweep"] / config["variant"]).glob(f"{prefix}*/final.pt")
        return [CheckpointSlot(path.parent) for path in sorted(finals, key=lambda p: p.stat().st_mtime, reverse=True)]

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.root)!r})"
