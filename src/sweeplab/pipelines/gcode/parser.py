"""A parser for the RS-274 subset that CNC programs use.

A line (block) holds an optional line number (``N10``), words (a letter and a number) in
any order, and comments in parentheses or after ``;``. Supported: motion ``G0 G1 G2 G3``
with ``X Y Z I J K R F``; spindle ``M3 M5`` with ``S``; any other ``G``/``M`` code kept as
its own command; modal continuation lines that carry only axis words (they repeat the last
motion command). A malformed word raises :class:`GCodeSyntaxError` naming the file and line,
or, with ``on_error="skip"``, drops the line and counts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

MOTION = frozenset({"G0", "G1", "G2", "G3"})
AXIS_LETTERS = frozenset("XYZIJKR")
PARAMETER_LETTERS = "XYZIJKRFSTPQ"  # letters that carry a value rather than name a command
COMMAND_LETTERS = "GM"

_COMMENT = re.compile(r"\([^()]*\)")
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)"
_WORDS = re.compile(rf"(?:[A-Z]{_NUMBER})*")  # a whole line of words, nothing else
_COMMANDS = re.compile(rf"([{COMMAND_LETTERS}])({_NUMBER})")
_PARAMETERS = re.compile(rf"([{PARAMETER_LETTERS}])({_NUMBER})")
_UNSUPPORTED = re.compile(rf"[^{COMMAND_LETTERS}{PARAMETER_LETTERS}N0-9.+-]{_NUMBER}")


class GCodeSyntaxError(ValueError):
    """A malformed line; the message names the file, the line number and the text."""


class Block(NamedTuple):
    """One executable line: its commands and parameter words, in the order written."""

    line: int  # 1-based line in the file
    commands: tuple[str, ...]  # e.g. ("G1",) or ("M3",); a modal line gets its motion here
    params: tuple[tuple[str, float], ...]  # e.g. (("X", 10.0), ("F", 300.0))
    modal: bool = False  # True when the motion command was carried over from an earlier line


@dataclass
class ParseReport:
    blocks: list[Block] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason) when skipping


def _command(letter: str, number: str) -> str:
    if number.isdigit():  # the common case: G1, M03
        return f"{letter}{int(number)}"
    value = float(number)
    return f"{letter}{int(value)}" if value.is_integer() else f"{letter}{value:g}"


def parse_line(text: str, where: str) -> tuple[list[str], list[tuple[str, float]]] | None:
    """Commands and parameters of one line; None for a line with nothing to execute."""
    body = text.split(";", 1)[0]
    if "(" in body or ")" in body:
        body = _COMMENT.sub(" ", body)
        if "(" in body or ")" in body:
            raise GCodeSyntaxError(f"{where}: unbalanced parenthesis in {text.strip()!r}")
    compact = body.replace(" ", "").replace("\t", "").strip().upper()
    if not compact or compact == "%":
        return None
    if _WORDS.fullmatch(compact) is None:
        position = _WORDS.match(compact).end()
        raise GCodeSyntaxError(f"{where}: malformed word at {compact[position:position + 12]!r} in {text.strip()!r}")
    if (bad := _UNSUPPORTED.search(compact)) is not None:
        raise GCodeSyntaxError(f"{where}: unsupported word {bad.group()} in {text.strip()!r}")
    # the line is words only, so each pattern finds its letters' words in order (N is a label)
    commands = [_command(letter, number) for letter, number in _COMMANDS.findall(compact)]
    params = [(letter, float(number)) for letter, number in _PARAMETERS.findall(compact)]
    return commands, params


def parse_program(lines: Iterable[str], *, source: str = "<program>",
                  on_error: Literal["raise", "skip"] = "raise") -> ParseReport:
    """Parse a whole program, resolving modal motion; see the module docstring."""
    report = ParseReport()
    motion: str | None = None
    for number, text in enumerate(lines, 1):
        where = f"{source}:{number}"
        try:
            parsed = parse_line(text, where)
            if parsed is None:
                continue
            commands, params = parsed
            modal = False
            if not commands:
                if not params or any(letter not in AXIS_LETTERS | {"F"} for letter, _ in params):
                    raise GCodeSyntaxError(f"{where}: parameters without a command in {text.strip()!r}")
                if motion is None:
                    raise GCodeSyntaxError(f"{where}: axis words before any motion command in {text.strip()!r}")
                commands, modal = [motion], True
            moves = [c for c in commands if c in MOTION]
            if len(moves) > 1:
                raise GCodeSyntaxError(f"{where}: two motion commands {moves} on one line")
            if moves:
                motion = moves[0]
        except GCodeSyntaxError as exc:
            if on_error == "raise":
                raise
            report.skipped.append((number, str(exc)))
            continue
        report.blocks.append(Block(number, tuple(commands), tuple(params), modal))
    return report
