"""G-code data prep nodes: generate recordings, read and check them, build the two
vocabularies, and cut sensor windows paired with the tokens of the lines they cover.

A recording is a program (``<name>.nc``) and its sensor log (``<name>.csv``: ``time_s``,
``line`` = the 1-based program line executing at that sample, then one column per channel
in :data:`~sweeplab.pipelines.cnc.machine.CHANNELS`). Programs are split into train, val
and test whole, so no program's lines leak across splits.
"""

from __future__ import annotations

import bisect
import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd

from sweeplab.config import (
    FRACTION,
    OPEN_FRACTION,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    from_dict,
)
from sweeplab.datasets.hdf5 import ArrayStream, H5File
from sweeplab.errors import InputError
from sweeplab.gcode_language.parser import ORIGINS, Program, parse_program
from sweeplab.gcode_language.tokens import (
    BOS,
    COMMAND,
    EOS,
    PAD,
    SEP,
    ProgramTokens,
    TokenSpec,
    Vocabulary,
    program_tokens,
    token_type,
)
from sweeplab.pipelines.cnc.machine import CHANNELS, LINE, TIME, MachineConfig, simulate
from sweeplab.pipelines.cnc.programs import generate_program
from sweeplab.training import fingerprint

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
WINDOW_ARRAYS = ("x", "tokens", "rare")  # per split in the windows file: <array>_<split>


class RecordingError(InputError):
    """A recording (program + sensor log) that does not fit together; names the file and row."""


# ----------------------------------------------------------------------------------------------
# ``cnc:`` in parameters


@dataclass(frozen=True)
class ProgramSplit:
    """Whole programs per split: val and test take these shares (at least one program each)."""

    val: Annotated[float, OPEN_FRACTION]
    test: Annotated[float, OPEN_FRACTION]
    seed: NonNegativeInt


@dataclass(frozen=True)
class SyntheticRecordingsConfig:
    n_programs: Annotated[int, Range(low=3)]  # one per split at least
    seed: NonNegativeInt
    machine: MachineConfig = field(default_factory=MachineConfig)


@dataclass(frozen=True)
class VocabularyConfig:
    resolution: PositiveFloat  # v1: one token per this much of a value
    units: dict[str, PositiveFloat]  # v2: bucket width per letter


@dataclass(frozen=True)
class WindowsConfig:
    length: Annotated[int, Range(low=8)]  # samples
    stride: PositiveInt
    max_tokens: Annotated[int, Range(low=3)]  # <bos> ... <eos>
    rare_share: Annotated[float, FRACTION]


@dataclass(frozen=True)
class CNCConfig:
    source: Literal["synthetic", "folder"]
    on_error: Literal["raise", "skip"]
    max_blocks: PositiveInt  # lines one program may run again in loops and calls; more stops it (endless)
    split: ProgramSplit
    synthetic: SyntheticRecordingsConfig
    vocabulary: VocabularyConfig
    windows: WindowsConfig


@dataclass
class Recording:
    name: str
    split: str
    program: Program
    blocks: np.ndarray  # [samples] the executing program block (an index into program.lines)
    signals: np.ndarray  # [samples, channels] float32


# ----------------------------------------------------------------------------------------------
# synthetic recordings


def generate_recordings(params: dict[str, Any]) -> dict[str, str | pd.DataFrame]:
    """Node: ``n_programs`` programs and the sensor logs of running them, on rotating machines,
    as a folder in the real layout: ``programs/<name>.nc`` and ``sensors/<name>.csv``."""
    config = from_dict(SyntheticRecordingsConfig, params, where="cnc.synthetic")
    machine = config.machine
    files: dict[str, str | pd.DataFrame] = {}
    for i in range(config.n_programs):
        name = f"program_{i:03d}"
        text = generate_program(np.random.default_rng([config.seed, i]), name)
        blocks = parse_program(text, source=f"{name}.nc").blocks
        files[f"programs/{name}.nc"] = text
        files[f"sensors/{name}.csv"] = simulate(blocks, machine, machine=i % machine.n_machines,
                                                 seed=config.seed * 100_003 + i)
    return files


def load_generated_recordings(files: dict[str, Path], params: dict[str, Any]) -> list[Recording]:
    """Node: :func:`load_recordings` on the generated folder (``programs/``, ``sensors/``)."""
    programs = {p.stem: p.read_text for name, p in files.items() if name.startswith("programs/")}
    sensors = {p.stem: functools.partial(pd.read_csv, p) for name, p in files.items() if name.startswith("sensors/")}
    return load_recordings(programs, sensors, params)


# ----------------------------------------------------------------------------------------------
# reading and checking


def _split_of(names: list[str], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    order = np.random.default_rng(seed).permutation(sorted(names))
    n_val = max(1, round(fractions["val"] * len(order)))
    n_test = max(1, round(fractions["test"] * len(order)))
    if len(order) < n_val + n_test + 1:
        raise RecordingError(f"cnc.split: {len(order)} recordings cannot fill train, val and test")
    return {str(name): ("val" if i < n_val else "test" if i < n_val + n_test else "train")
            for i, name in enumerate(order)}


def _read_sensors(load: Callable[[], pd.DataFrame], where: str) -> pd.DataFrame:
    try:
        return load()
    except Exception as exc:  # a file that is not CSV at all: say which, keep the cause
        raise RecordingError(f"{where}: cannot be read as CSV ({type(exc).__name__})") from exc


def _check_sensors(frame: pd.DataFrame, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The log's columns checked: its ``line`` column and its channels."""
    missing = [c for c in (TIME, LINE, *CHANNELS) if c not in frame.columns]
    if missing:
        raise RecordingError(f"{where}: missing column(s) {missing}; expected {[TIME, LINE, *CHANNELS]}")
    if frame.empty:
        raise RecordingError(f"{where}: no samples")
    numeric = frame[[LINE, *CHANNELS]].apply(pd.to_numeric, errors="coerce")
    text = (numeric.isna() & frame[[LINE, *CHANNELS]].notna()).to_numpy()  # a cell that is not a number
    if text.any():
        row, col = np.argwhere(text)[0]
        raise RecordingError(f"{where}: data row {row + 1}, column '{numeric.columns[col]}': "
                             f"{frame.iloc[row, frame.columns.get_loc(numeric.columns[col])]!r} is not a number")
    values = numeric[list(CHANNELS)].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row, col = np.argwhere(~np.isfinite(values))[0]
        raise RecordingError(f"{where}: non-finite value in column '{CHANNELS[col]}' at data row {row + 1}")
    lines = numeric[LINE].to_numpy()
    if not (np.isfinite(lines) & (lines == np.round(lines))).all():
        row = int(np.argmax(~(np.isfinite(lines) & (lines == np.round(lines)))))
        raise RecordingError(f"{where}: data row {row + 1}, column '{LINE}': {lines[row]!r} is not a line number")
    return lines.astype(np.int64), frame[list(CHANNELS)].to_numpy(np.float32)


def align_samples(lines: np.ndarray, program: Program, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Which block each sample belongs to, from the line its log names, and which samples are
    kept: those of a line dropped with ``on_error: skip`` go with it. A line that runs again
    (a loop, a subroutine) starts its next block when the log comes back to it."""
    skipped = np.isin(lines, [line for line, _ in program.skipped])
    rows = np.flatnonzero(~skipped)
    lines = lines[rows]
    unknown = ~np.isin(lines, program.lines)
    if unknown.any():
        row = int(rows[np.argmax(unknown)])
        raise RecordingError(f"{where}: data row {row + 1} names program line {lines[np.argmax(unknown)]}, "
                             "which holds no executable block")
    if program.plain:  # every line runs once, in order: the log's lines only go forward
        if (np.diff(lines) < 0).any():
            row = int(rows[np.argmax(np.diff(lines) < 0) + 1])
            raise RecordingError(f"{where}: column '{LINE}' goes backwards at data row {row + 1}; "
                                 "expected the executing line in running order")
        return np.searchsorted(program.lines, lines), rows
    runs = np.flatnonzero(np.diff(lines, prepend=-1))  # a run: consecutive samples on one line
    by_line: dict[int, list[int]] = {}
    for block, line in enumerate(program.lines.tolist()):
        by_line.setdefault(line, []).append(block)
    block_of_run, block = [], -1
    for run in runs.tolist():
        line = int(lines[run])
        later = by_line[line]
        at = bisect.bisect_right(later, block)
        if at == len(later):
            raise RecordingError(f"{where}: data row {rows[run] + 1} names program line {line}, which does not "
                                 "run again after the block before it; expected the executing line in running order")
        block = later[at]
        block_of_run.append(block)
    return np.repeat(block_of_run, np.diff(np.append(runs, len(lines)))), rows


def load_recordings(programs: dict[str, Callable[[], str]], sensors: dict[str, Callable[[], pd.DataFrame]],
                    params: dict[str, Any]) -> list[Recording]:
    """Node: parse every program, check its sensor log against it, assign splits."""
    names, logs = set(programs), set(sensors)
    if names != logs:
        raise RecordingError(f"gcode recordings: programs without a sensor log {sorted(names - logs)}, "
                         f"sensor logs without a program {sorted(logs - names)}")
    if len(names) < 3:
        raise RecordingError(f"gcode recordings: need at least 3 programs, found {len(names)}")
    split = _split_of(sorted(names), params["split"], int(params["split"]["seed"]))
    recordings = []
    skipped = dropped = 0
    for name in sorted(names):
        program = parse_program(programs[name](), source=f"{name}.nc", on_error=params["on_error"],
                                max_blocks=int(params["max_blocks"]))
        lines, signals = _check_sensors(_read_sensors(sensors[name], f"{name}.csv"), f"{name}.csv")
        blocks, rows = align_samples(lines, program, f"{name}.csv")
        skipped, dropped = skipped + len(program.skipped), dropped + len(lines) - len(rows)
        recordings.append(Recording(name, split[name], program, blocks,
                                    signals if len(rows) == len(signals) else signals[rows]))
    if skipped:
        logger.warning("gcode: skipped %d malformed line(s) and their %d sensor samples (cnc.on_error: skip)",
                       skipped, dropped)
    return recordings


# ----------------------------------------------------------------------------------------------
# vocabularies


def _spec(params: Mapping[str, Any], version: str) -> TokenSpec:
    return TokenSpec(version, float(params["resolution"]), dict(params["units"]))


def build_vocabularies(recordings: list[Recording], params: dict[str, Any]
                       ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Node: v1 and v2 from the training programs' tokens, and a report of their sizes, the
    share of each split's tokens they cover, unknown and clipped counts."""
    vocabularies, report = {}, {}
    for version in ("v1", "v2"):
        spec = _spec(params, version)
        tokens = [(rec.split, program_tokens(rec.program, spec)) for rec in recordings]
        vocab = Vocabulary.build([t for split, t in tokens if split == "train"], spec)
        coverage, unknown, clipped = {}, {}, {}
        for split in SPLITS:
            parts = [t for s, t in tokens if s == split]
            n_tokens = sum(len(t.key) for t in parts)
            unknown[split] = sum(vocab.encode(t)[1] for t in parts)
            clipped[split] = sum(t.clipped for t in parts)
            coverage[split] = 1 - unknown[split] / n_tokens if n_tokens else None
        vocabularies[version] = vocab.to_dict()
        report[version] = {"size": len(vocab), "by_type": vocabularies[version]["by_type"],
                           "coverage": coverage, "unknown_tokens": unknown,
                           "clipped_values": clipped if version == "v2" else None}
    report["lines"] = {split: _lines_report([r.program for r in recordings if r.split == split]) for split in SPLITS}
    report["note"] = ("coverage: share of a split's tokens that are in the vocabulary (built from train); "
                      "the rest map to <unk>. lines: blocks executed as written, evaluated (parameters, "
                      "expressions) or expanded from control flow; lines skipped (cnc.on_error: skip) and why; "
                      "constructs not modelled")
    logger.info("gcode vocabularies: v1 %d tokens (val coverage %.3f), v2 %d tokens (val coverage %.3f)",
                report["v1"]["size"], report["v1"]["coverage"]["val"], report["v2"]["size"],
                report["v2"]["coverage"]["val"])
    return vocabularies["v1"], vocabularies["v2"], report


MAX_REASONS = 20  # skipped lines listed per split in the report; the count covers them all


def _lines_report(programs: list[Program]) -> dict[str, Any]:
    """How a split's programs ran: executed blocks by origin, control lines, skipped lines
    with their reasons, and the constructs the interpreter met but does not model."""
    origins = np.zeros(len(ORIGINS), np.int64)
    warnings: Counter[str] = Counter()
    for program in programs:
        origins += np.bincount(program.origin, minlength=len(ORIGINS))
        warnings.update(dict(program.warnings))
    skipped = [reason for program in programs for _, reason in program.skipped]
    return {"executed_blocks": dict(zip(ORIGINS, origins.tolist(), strict=True)),
            "control_lines": sum(p.control_lines for p in programs),
            "skipped": len(skipped), "skipped_why": skipped[:MAX_REASONS], "not_modelled": dict(warnings)}


# ----------------------------------------------------------------------------------------------
# windows


def rare_commands(vocab: Vocabulary, share: float) -> list[str]:
    """Commands making up less than ``share`` of the command tokens in training."""
    counts = {t: vocab.counts.get(t, 0) for t in vocab.commands}
    total = sum(counts.values()) or 1
    return [t for t, c in counts.items() if c / total < share]


def build_windows(recordings: list[Recording], vocabulary: dict[str, Any], params: dict[str, Any]
                  ) -> tuple[ArrayStream, dict[str, Any]]:
    """Node: sensor windows ([channels, length], standardised by training statistics) and the
    v2 token sequence of the program lines executing in each: ``<bos> line <sep> line <eos>``."""
    length, stride, max_tokens = int(params["length"]), int(params["stride"]), int(params["max_tokens"])
    vocab = Vocabulary.from_dict(vocabulary, where="gcode vocabulary v2")
    rare = set(rare_commands(vocab, float(params["rare_share"])))
    train = np.concatenate([r.signals for r in recordings if r.split == "train"])
    mean, std = train.mean(0), train.std(0) + 1e-6
    out: dict[str, list] = {f"{a}_{s}": [] for a in WINDOW_ARRAYS for s in SPLITS}
    too_long = 0
    for rec in recordings:
        ids = _ids_by_block(program_tokens(rec.program, vocab.spec), vocab)
        signals = ((rec.signals - mean) / std).T.astype(np.float32)
        for start in range(0, len(rec.blocks) - length + 1, stride):
            covered = np.unique(rec.blocks[start : start + length])  # block order is running order
            sequence = [BOS]
            for i, block in enumerate(covered):
                sequence += ([SEP] if i else []) + ids[int(block)]
            sequence.append(EOS)
            if len(sequence) > max_tokens:
                too_long += 1
                continue
            out[f"x_{rec.split}"].append(signals[:, start : start + length])
            out[f"tokens_{rec.split}"].append(sequence + [PAD] * (max_tokens - len(sequence)))
            out[f"rare_{rec.split}"].append(any(vocab.tokens[t] in rare for t in sequence))
    if too_long:
        logger.info("gcode windows: %d windows covered more than %d tokens and were left out", too_long, max_tokens)
    arrays = {}
    for split in SPLITS:
        if not out[f"x_{split}"]:
            raise RecordingError(f"gcode windows: split '{split}' has no window of {length} samples")
        arrays[f"x_{split}"] = np.stack(out[f"x_{split}"])
        arrays[f"tokens_{split}"] = np.array(out[f"tokens_{split}"], dtype=np.int64)
        arrays[f"rare_{split}"] = np.array(out[f"rare_{split}"], dtype=bool)
    attrs = {"channels": list(CHANNELS), "channel_mean": mean, "channel_std": std}
    return ArrayStream.from_arrays(arrays, attrs), _window_report(arrays, vocab, sorted(rare), too_long)


def _ids_by_block(tokens: ProgramTokens, vocab: Vocabulary) -> dict[int, list[int]]:
    ids = vocab.encode(tokens)[0].tolist()
    first = np.flatnonzero(np.diff(tokens.block, prepend=-1)).tolist()  # each block's tokens are contiguous
    return {int(tokens.block[a]): ids[a:b] for a, b in zip(first, [*first[1:], len(ids)], strict=True)}


def _window_report(arrays: dict[str, np.ndarray], vocab: Vocabulary, rare: list[str], too_long: int
                   ) -> dict[str, Any]:
    """Sizes and make-up of the windows: how few of the target tokens are commands."""
    report: dict[str, Any] = {"rare_commands": rare, "windows_left_out_too_long": too_long}
    for split in SPLITS:
        tokens = arrays[f"tokens_{split}"]
        real = tokens[tokens != PAD]
        kinds = Counter(token_type(vocab.tokens[t]) for t in real.tolist())
        report[split] = {"windows": len(tokens), "with_rare_command": int(arrays[f"rare_{split}"].sum()),
                         "tokens": int(real.size), "command_share": round(kinds[COMMAND] / max(real.size, 1), 4)}
    return report


def load_windows(windows: H5File, vocabulary: dict[str, Any]) -> dict[str, Any]:
    """Node: the windows file read back and checked, as the training inputs of every variant."""
    vocab = Vocabulary.from_dict(vocabulary, where="gcode vocabulary v2")
    inputs: dict[str, Any] = {}
    for split in SPLITS:
        part = {name: windows.read(windows.find(f"{name}_{split}")) for name in WINDOW_ARRAYS}
        if len({len(v) for v in part.values()}) != 1:
            raise RecordingError(f"{windows.path}: arrays of split '{split}' differ in rows")
        if part["tokens"].max() >= len(vocab):
            raise RecordingError(f"{windows.path}:tokens_{split}: token id {part['tokens'].max()} outside the "
                             f"vocabulary of {len(vocab)} tokens; rebuild the windows with this vocabulary")
        inputs[split] = {"x": part["x"].astype(np.float32), "tokens": part["tokens"].astype(np.int64),
                         "rare": part["rare"].astype(bool)}
    inputs["vocabulary"] = vocabulary
    inputs["fingerprint"] = fingerprint({s: inputs[s] for s in SPLITS} | {"vocab": {"tokens": np.array(vocab.tokens)}})
    return inputs
