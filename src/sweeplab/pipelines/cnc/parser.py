"""A parser for the RS-274 subset that CNC programs use.

A line (block) holds an optional line number (``N10``), words (a letter and a number) in
any order, and comments in parentheses or after ``;``. Supported: motion ``G0 G1 G2 G3``
with ``X Y Z I J K R F``; spindle ``M3 M5`` with ``S``; any other ``G``/``M`` code kept as
its own command; modal continuation lines that carry only axis words (they repeat the last
motion command). A malformed word raises :class:`GCodeSyntaxError` naming the file and line,
or, with ``on_error="skip"``, drops the line and counts it.

:func:`parse_program` reads a whole file at once into columns (one row per word), with
numpy over the file's bytes: the common lines never reach per-line Python, which is what
makes tokenising a large corpus fast. Any line the bulk pass does not recognise as plain
(``%``, a command number with a decimal point, non-ASCII, anything malformed) goes through
:func:`parse_line`, which either parses it or raises the error that names it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from sweeplab.errors import InputError

MOTION_CODES = (0.0, 1.0, 2.0, 3.0)  # G0 G1 G2 G3
PARAMETER_LETTERS = "XYZIJKRFSTPQ"  # letters that carry a value rather than name a command
COMMAND_LETTERS = "GM"
COMMAND_DECIMALS = 3  # G38.2 or G64.1 have one; more is not a G-code

_COMMENT = re.compile(r"\([^()]*\)")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"  # one way to read each number: no backtracking blow-up
_WORDS = re.compile(rf"(?:[A-Z]{_NUMBER})*")  # a whole line of words, nothing else
_WORD = re.compile(rf"([A-Z])({_NUMBER})")
_UNSUPPORTED = re.compile(rf"[^{COMMAND_LETTERS}{PARAMETER_LETTERS}N0-9.+-]{_NUMBER}")

# byte classes for the bulk pass (a lookup table over all 256 byte values)
BLANK, LETTER, DIGIT, DOT, SIGN, NEWLINE, SEMI, OPEN, CLOSE, OTHER = range(10)
_CLASS = np.full(256, OTHER, np.uint8)
_CLASS[[ord(" "), ord("\t")]] = BLANK
_CLASS[ord("A"):ord("Z") + 1] = _CLASS[ord("a"):ord("z") + 1] = LETTER
_CLASS[ord("0"):ord("9") + 1] = DIGIT
_CLASS[[ord("."), ord("+"), ord("-"), ord("\n"), ord(";"), ord("("), ord(")")]] = (
    DOT, SIGN, SIGN, NEWLINE, SEMI, OPEN, CLOSE)
_UPPER = np.arange(256, dtype=np.uint8)
_UPPER[ord("a"):ord("z") + 1] -= 32
_KNOWN_LETTER = np.zeros(256, bool)
_KNOWN_LETTER[list(f"{COMMAND_LETTERS}{PARAMETER_LETTERS}N".encode())] = True
_IS_COMMAND = np.zeros(256, bool)
_IS_COMMAND[list(COMMAND_LETTERS.encode())] = True
_AXIS_OR_FEED = np.zeros(256, bool)
_AXIS_OR_FEED[list(b"XYZIJKRF")] = True
_POW10 = 10.0 ** np.arange(16)
G, N = ord("G"), ord("N")
MAX_DIGITS = 15  # a number of up to 15 digits is exact in float64; longer ones go to the line parser


class GCodeSyntaxError(InputError):
    """A malformed line; the message names the file, the line number and the text."""


class Block(NamedTuple):
    """One executable line: its commands and parameter words, in the order written."""

    line: int  # 1-based line in the file
    commands: tuple[str, ...]  # e.g. ("G1",) or ("M3",); a modal line gets its motion here
    params: tuple[tuple[str, float], ...]  # e.g. (("X", 10.0), ("F", 300.0))
    modal: bool = False  # True when the motion command was carried over from an earlier line


def command_name(letter: str, number: float) -> str:
    """``G1`` for G1, G01 and G1.0; ``G38.2`` keeps its decimal."""
    return f"{letter}{int(number)}" if float(number).is_integer() else f"{letter}{number:g}"


def parse_line(text: str, where: str) -> list[tuple[str, float]] | None:
    """The G, M and parameter words of one line in the order written (``N`` labels dropped);
    None for a line with nothing to execute."""
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
    words = [(letter, float(number)) for letter, number in _WORD.findall(compact) if letter != "N"]
    for letter, value in words:
        if letter in COMMAND_LETTERS and round(value, COMMAND_DECIMALS) != value:
            raise GCodeSyntaxError(f"{where}: command {letter}{value:g} has more than {COMMAND_DECIMALS} "
                                   f"decimals in {text.strip()!r}")
    return words


@dataclass(frozen=True)
class Program:
    """A parsed program in columns: the executable lines, and every G/M/parameter word."""

    source: str
    lines: np.ndarray  # [blocks] int64: 1-based line of each executable line, ascending
    modal: np.ndarray  # [blocks] bool: only axis words; the motion in force is carried over
    motion: np.ndarray  # [blocks] float64: the G number of the motion in force on the line (NaN: none)
    word_line: np.ndarray  # [words] int64: the line each word is on, in file order
    letter: np.ndarray  # [words] uint8: the word's letter (ASCII)
    value: np.ndarray  # [words] float64: its number
    skipped: tuple[tuple[int, str], ...] = ()  # (line, reason) of lines dropped with on_error="skip"

    @property
    def is_command(self) -> np.ndarray:
        return _IS_COMMAND[self.letter]

    @functools.cached_property
    def blocks(self) -> list[Block]:
        """The lines as :class:`Block` tuples (for code that walks a program line by line)."""
        starts = np.searchsorted(self.word_line, self.lines)
        ends = np.searchsorted(self.word_line, self.lines, side="right")
        out = []
        for line, modal, motion, start, end in zip(self.lines.tolist(), self.modal.tolist(),
                                                   self.motion.tolist(), starts, ends, strict=True):
            commands, params = [], []
            for letter, value in zip(self.letter[start:end].tobytes().decode(), self.value[start:end].tolist(),
                                     strict=True):
                if letter in COMMAND_LETTERS:
                    commands.append(command_name(letter, value))
                else:
                    params.append((letter, value))
            if modal:
                commands = [command_name("G", motion)]
            out.append(Block(line, tuple(commands), tuple(params), modal))
        return out


def parse_program(text: str | Iterable[str], *, source: str = "<program>",
                  on_error: Literal["raise", "skip"] = "raise") -> Program:
    """Parse a whole program (its text, or its lines); see the module docstring. Lines end at
    ``\\n``, ``\\r\\n`` or ``\\r``."""
    if not isinstance(text, str):
        text = "\n".join(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") or " "
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(raw == ord("\n")) + 1])
    word_line, letter, value, odd = _bulk_words(raw, starts)
    errors: dict[int, str] = {}
    extra: list[tuple[int, str, float]] = []
    for number in (np.flatnonzero(odd) + 1).tolist():  # the few lines the bulk pass leaves to the line parser
        line_text = _line_text(raw, starts, number)
        try:
            words = parse_line(line_text, f"{source}:{number}")
        except GCodeSyntaxError as exc:
            errors[number] = str(exc)
            continue
        extra += [(number, w, v) for w, v in words or ()]
    if extra:
        word_line = np.concatenate([word_line, [w[0] for w in extra]]).astype(np.int64)
        letter = np.concatenate([letter, [ord(w[1]) for w in extra]]).astype(np.uint8)
        value = np.concatenate([value, [w[2] for w in extra]])
        order = np.argsort(word_line, kind="stable")  # each line's words come from one pass, in order
        word_line, letter, value = word_line[order], letter[order], value[order]
    return _resolve_modal(source, raw, starts, word_line, letter, value, errors, on_error)


def _line_text(raw: np.ndarray, starts: np.ndarray, number: int) -> str:
    end = starts[number] - 1 if number < len(starts) else len(raw)
    return raw[starts[number - 1]:end].tobytes().decode("utf-8", "surrogatepass")


def _bulk_words(raw: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Words of every plain line: (line, letter, value) columns, and a flag per line that the
    bulk pass left it to :func:`parse_line`."""
    odd = np.zeros(len(starts), bool)
    cls = _CLASS[raw]
    keep = (cls >= LETTER) & (cls <= NEWLINE)  # word characters and line ends
    special = np.flatnonzero(cls >= SEMI)  # comment marks and anything unexpected: few
    if len(special):
        begin, end = _comments(cls, special, starts, len(raw), odd)
        inside = np.zeros(len(raw) + 1, np.int8)
        np.add.at(inside, begin, 1)
        np.add.at(inside, end, -1)
        keep &= np.cumsum(inside[:-1], dtype=np.int8) == 0
    at = np.flatnonzero(keep)
    c = cls[at]
    is_newline = c == NEWLINE
    starts_segment = (c == LETTER) | is_newline  # a segment: a word, or a line end and what follows it
    if len(c) and not starts_segment[0]:
        odd[0] = True  # the first line does not start with a word:
        starts_segment[0] = True  # what comes before its first word is a segment of its own
    segment = np.flatnonzero(starts_segment)
    segment_end = np.append(segment[1:], len(c))
    segment_line = np.cumsum(is_newline, dtype=np.int64)[segment]
    is_word = c[segment] == LETTER
    odd[segment_line[~is_word & (segment_end - segment > 1)]] = True  # nor does a later one
    of_segment = np.cumsum(starts_segment, dtype=np.int64) - 1
    n_segments = len(segment)

    def count(kind: int) -> tuple[np.ndarray, np.ndarray]:
        where = np.flatnonzero(c == kind)
        return where, np.bincount(of_segment[where], minlength=n_segments)

    digits, n_digits = count(DIGIT)
    dots, n_dots = count(DOT)
    signs, n_signs = count(SIGN)
    letter = _UPPER[raw[at[segment]]]
    after_letter = np.minimum(segment + 1, len(c) - 1)
    signed = (n_signs == 1) & (c[after_letter] == SIGN)
    command = _IS_COMMAND[letter]
    bad = is_word & ((n_digits == 0) | (n_digits > MAX_DIGITS) | (n_dots > 1) | (n_signs > signed)
                     | ~_KNOWN_LETTER[letter] | (command & ((n_dots > 0) | signed)))  # plain G1, M03 only
    odd[segment_line[bad]] = True
    # the value: the digits as one integer, over 10 ** (digits after the point); exact as float(text)
    dot = np.full(n_segments, -1)
    dot[of_segment[dots]] = dots
    owner = of_segment[digits]
    power = segment_end[owner] - 1 - digits - (digits < dot[owner])  # digits after this one
    mantissa = np.bincount(owner, (raw[at[digits]] - ord("0")) * _POW10[np.clip(power, 0, MAX_DIGITS)],
                           minlength=n_segments)
    decimals = np.where(dot >= 0, segment_end - 1 - dot, 0)
    value = mantissa / _POW10[np.clip(decimals, 0, MAX_DIGITS)]
    value = np.where(signed & (raw[at[after_letter]] == ord("-")), -value, value)
    good = is_word & ~odd[segment_line] & (letter != N)
    return segment_line[good] + 1, letter[good], value[good], odd


def _comments(cls: np.ndarray, special: np.ndarray, starts: np.ndarray, size: int, odd: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Byte ranges [begin, end) of the comments: from a line's first ';' to its end, and each
    ``( )`` before it. Lines with other bytes, or parentheses that nest or do not pair, are
    flagged in ``odd``."""
    kind = cls[special]
    line = np.searchsorted(starts, special, side="right") - 1
    line_end = np.append(starts[1:] - 1, size)
    semi = kind == SEMI
    first_semi = np.full(len(starts), size + 1)
    semi_lines, first = np.unique(line[semi], return_index=True)
    first_semi[semi_lines] = special[semi][first]
    live = special < first_semi[line]
    odd[line[live & (kind == OTHER)]] = True
    paren = live & ((kind == OPEN) | (kind == CLOSE))
    position, line, kind = special[paren], line[paren], kind[paren]
    new_line = np.append(True, line[1:] != line[:-1])
    index = np.arange(len(line))
    rank = index - np.maximum.accumulate(np.where(new_line, index, 0))
    last_in_line = np.append(new_line[1:], True)
    unpaired = (kind != np.where(rank % 2 == 0, OPEN, CLOSE)) | (last_in_line & (kind != CLOSE))
    odd[line[unpaired]] = True
    opens = np.flatnonzero((kind == OPEN) & ~odd[line])
    return (np.concatenate([position[opens], first_semi[semi_lines]]),
            np.concatenate([position[opens + 1] + 1, line_end[semi_lines]]))


def _line_sums(flags: np.ndarray, first_word: np.ndarray) -> np.ndarray:
    """Per line, how many of its words are flagged (words grouped by line, ``first_word`` each)."""
    return np.add.reduceat(flags.astype(np.int64), first_word) if len(first_word) else np.zeros(0, np.int64)


def _resolve_modal(source: str, raw: np.ndarray, starts: np.ndarray, word_line: np.ndarray, letter: np.ndarray,
                   value: np.ndarray, errors: dict[int, str], on_error: str) -> Program:
    """Program-level rules: one motion per line; a line without a command carries only axis
    words and repeats the motion in force. A dropped line leaves the motion unchanged."""
    lines, first = np.unique(word_line, return_index=True)
    last = np.concatenate([first[1:], [len(word_line)]])
    is_command = _IS_COMMAND[letter]
    is_motion = (letter == G) & np.isin(value, MOTION_CODES)
    per_line = functools.partial(_line_sums, first_word=first)
    n_motion = per_line(is_motion)
    modal = per_line(is_command) == 0
    not_axis = per_line(~_AXIS_OR_FEED[letter] & ~is_command)

    def fail(i: int, reason: str) -> None:
        number = int(lines[i])
        errors[number] = f"{source}:{number}: {reason} in {_line_text(raw, starts, number).strip()!r}"

    for i in np.flatnonzero(n_motion > 1):
        moves = [command_name("G", v) for v in value[first[i]:last[i]][is_motion[first[i]:last[i]]]]
        fail(i, f"two motion commands {moves} on one line")
    for i in np.flatnonzero(modal & (not_axis > 0)):
        fail(i, "parameters without a command")
    # the motion in force: the last motion written on a line that is kept, carried forward
    ok = ~np.isin(lines, list(errors))
    sets_motion = np.flatnonzero(ok & (n_motion == 1))
    motion_words = np.flatnonzero(is_motion)
    own = np.full(len(lines), np.nan)
    own[sets_motion] = value[motion_words[np.searchsorted(motion_words, first[sets_motion])]]
    latest = np.maximum.accumulate(np.where(np.isnan(own), -1, np.arange(len(lines)))) if len(lines) else first
    motion = np.where(latest >= 0, own[np.maximum(latest, 0)], np.nan)
    for i in np.flatnonzero(ok & modal & np.isnan(motion)):
        fail(i, "axis words before any motion command")
    if errors and on_error == "raise":
        raise GCodeSyntaxError(errors[min(errors)])
    ok = ~np.isin(lines, list(errors))
    kept = ok[np.searchsorted(lines, word_line)]
    return Program(source, lines[ok], modal[ok], motion[ok], word_line[kept], letter[kept], value[kept],
                   tuple(sorted(errors.items())))
