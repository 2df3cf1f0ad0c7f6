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
:func:`parse_line`, which either parses it or raises the error that names it. A line with
parameters, expressions or an o-word makes the program run through the NGC interpreter
(:mod:`~sweeplab.gcode_language.ngc`): the plain lines keep their bulk-read words, and the
program becomes the blocks it executes, each naming the line it came from.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from sweeplab.gcode_language import GCodeSyntaxError, ngc

MOTION_CODES = (0.0, 1.0, 2.0, 3.0)  # G0 G1 G2 G3
PARAMETER_LETTERS = "XYZIJKRFSTPQ"  # letters that carry a value rather than name a command
COMMAND_LETTERS = "GM"
COMMAND_DECIMALS = 3  # G38.2 or G64.1 have one; more is not a G-code
MAX_COMMAND = 10_000  # G and M codes are below this; a larger one is a typo, not a command
MAX_VALUE = 1e9  # no machine axis, feed or speed comes near; a larger value is an error, not a clip

_COMMENT = re.compile(r"\([^()]*\)")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"  # one way to read each number: no backtracking blow-up
_WORDS = re.compile(rf"(?:[A-Z]{_NUMBER})*")  # a whole line of words, nothing else
_WORD = re.compile(rf"([A-Z])({_NUMBER})")

# byte classes for the bulk pass (a lookup table over all 256 byte values)
BLANK, LETTER, DIGIT, DOT, SIGN, NEWLINE, SEMI, OPEN, CLOSE, OTHER = range(10)
_CLASS = np.full(256, OTHER, np.uint8)
_CLASS[[ord(" "), ord("\t")]] = BLANK
_CLASS[ord("A"):ord("Z") + 1] = _CLASS[ord("a"):ord("z") + 1] = LETTER
_CLASS[ord("0"):ord("9") + 1] = DIGIT
_CLASS[[ord("."), ord("+"), ord("-"), ord("\n"), ord(";"), ord("("), ord(")")]] = (
    DOT, SIGN, SIGN, NEWLINE, SEMI, OPEN, CLOSE)
_KEEP = np.zeros(OTHER + 1, bool)
_KEEP[LETTER:NEWLINE + 1] = True
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


class Block(NamedTuple):
    """One executable line: its commands and parameter words, in the order written."""

    line: int  # 1-based line in the file
    commands: tuple[str, ...]  # e.g. ("G1",) or ("M3",); a modal line gets its motion here
    params: tuple[tuple[str, float], ...]  # e.g. (("X", 10.0), ("F", 300.0))
    modal: bool = False  # True when the motion command was carried over from an earlier line


def command_name(letter: str, number: float) -> str:
    """``G1`` for G1, G01 and G1.0; ``G38.2`` and ``M1000.001`` keep their decimals."""
    if float(number).is_integer():
        return f"{letter}{int(number)}"
    return f"{letter}{number:.{COMMAND_DECIMALS}f}".rstrip("0")


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
    words = [(letter, float(number)) for letter, number in _WORD.findall(compact) if letter != "N"]
    check_words(words, where, text)
    return words


def check_words(words: Iterable[tuple[str, float]], where: str, text: str) -> None:
    """What every executed word must be, however it was written: a supported letter, a finite
    value, and for a command a code in 0-9999 with at most three decimals."""
    for letter, value in words:
        if letter not in COMMAND_LETTERS and letter not in PARAMETER_LETTERS:
            raise GCodeSyntaxError(f"{where}: unsupported word {letter}{value:g} in {text.strip()!r}")
        if letter in COMMAND_LETTERS:
            if not 0 <= value < MAX_COMMAND:
                raise GCodeSyntaxError(f"{where}: command {letter}{value:g} out of range 0-{MAX_COMMAND - 1} "
                                       f"in {text.strip()!r}")
            if round(value, COMMAND_DECIMALS) != value:
                raise GCodeSyntaxError(f"{where}: command {letter}{value:g} has more than {COMMAND_DECIMALS} "
                                       f"decimals in {text.strip()!r}")
        elif not math.isfinite(value) or abs(value) > MAX_VALUE:
            raise GCodeSyntaxError(f"{where}: {letter} value out of range (|value| <= {MAX_VALUE:.0e}) "
                                   f"in {text.strip()!r}")


WRITTEN, EVALUATED, EXPANDED = ngc.WRITTEN, ngc.EVALUATED, ngc.EXPANDED  # how a block came to run
ORIGINS = ("as_written", "evaluated", "expanded")


@dataclass(frozen=True)
class Program:
    """A parsed program in columns: the blocks it executes, in running order, and their G/M/
    parameter words. A plain program runs each line with words once, top to bottom; control
    flow (``ngc``) can run a line several times or not at all, so a block names its line."""

    source: str
    lines: np.ndarray  # [blocks] int64: the 1-based line each block executes (ascending in a plain program)
    modal: np.ndarray  # [blocks] bool: only axis words; the motion in force is carried over
    motion: np.ndarray  # [blocks] float64: the G number of the motion in force (NaN: none)
    word_block: np.ndarray  # [words] int64: the block each word belongs to, ascending
    letter: np.ndarray  # [words] uint8: the word's letter (ASCII)
    value: np.ndarray  # [words] float64: its number
    origin: np.ndarray  # [blocks] uint8: WRITTEN, EVALUATED (parameters, expressions) or EXPANDED (control flow)
    skipped: tuple[tuple[int, str], ...] = ()  # (line, reason) of lines dropped with on_error="skip"
    warnings: tuple[tuple[str, int], ...] = ()  # (construct not modelled, times met), from the interpreter
    control_lines: int = 0  # executed lines that only set parameters or steer control flow

    @property
    def is_command(self) -> np.ndarray:
        return _IS_COMMAND[self.letter]

    @property
    def word_line(self) -> np.ndarray:
        """[words] the line each word is on."""
        return self.lines[self.word_block]

    @property
    def plain(self) -> bool:
        """Every line ran once, in file order: a block is its line."""
        return bool((np.diff(self.lines) > 0).all())

    @functools.cached_property
    def blocks(self) -> list[Block]:
        """The blocks as :class:`Block` tuples (for code that walks a program block by block)."""
        bounds = np.searchsorted(self.word_block, np.arange(len(self.lines) + 1))
        out = []
        for i, (line, modal, motion) in enumerate(zip(self.lines.tolist(), self.modal.tolist(),
                                                      self.motion.tolist(), strict=True)):
            start, end = bounds[i], bounds[i + 1]
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
                  on_error: Literal["raise", "skip"] = "raise", max_blocks: int = 1_000_000) -> Program:
    """Parse a whole program (its text, or its lines); see the module docstring. Lines end at
    ``\\n``, ``\\r\\n`` or ``\\r``. Lines with parameters, expressions or o-words go to the
    interpreter (:mod:`~sweeplab.gcode_language.ngc`), which runs at most ``max_blocks`` lines."""
    if not isinstance(text, str):
        text = "\n".join(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") or " "
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(raw == ord("\n")) + 1])
    word_line, letter, value, odd = _bulk_words(raw, starts)
    errors: dict[int, str] = {}
    extra: list[tuple[int, str, float]] = []
    interpret = np.zeros(len(starts), bool)
    for number in (np.flatnonzero(odd) + 1).tolist():  # the few lines the bulk pass leaves to the line parser
        line_text = _line_text(raw, starts, number)
        if ngc.needs_interpreter(line_text):
            interpret[number - 1] = True
            continue
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
    if not interpret.any():  # the fast path: each line with words is one block, in file order
        lines, word_block = np.unique(word_line, return_inverse=True)
        columns = lines, word_block, letter, value, np.full(len(lines), WRITTEN, np.uint8)
        return _resolve_modal(source, raw, starts, columns, errors, on_error)
    if errors and on_error == "raise":  # a written line's error comes before running anything
        raise GCodeSyntaxError(errors[min(errors)])
    text_lines = text.split("\n")
    run = ngc.run_program(text_lines, interpret.tolist(), source=source, on_error=on_error,
                          max_blocks=max_blocks)
    errors.update((line, reason) for line, reason in run.skipped if line not in errors)
    columns = _executed_columns(run, word_line, letter, value, source, text_lines, errors, on_error)
    return _resolve_modal(source, raw, starts, columns, errors, on_error, run)


def _executed_columns(run: ngc.Execution, word_line: np.ndarray, letter: np.ndarray, value: np.ndarray,
                      source: str, text_lines: list[str], errors: dict[int, str], on_error: str
                      ) -> tuple[np.ndarray, ...]:
    """The blocks the interpreter ran, in columns: a plain line's words from the bulk pass, an
    evaluated line's from the interpreter (checked like any written word)."""
    lines, origin, first, count = [], [], [], []  # per block: its words are first .. first + count - 1
    evaluated_letter, evaluated_value = [], []
    for block in run.blocks:
        if block.words is None:
            first.append(-1)  # found below, for all plain blocks at once
            count.append(0)
        else:
            try:
                check_words(block.words, f"{source}:{block.line}", text_lines[block.line - 1])
            except GCodeSyntaxError as exc:
                if on_error == "raise":
                    raise
                errors.setdefault(block.line, str(exc))
                continue
            first.append(len(word_line) + len(evaluated_letter))
            count.append(len(block.words))
            evaluated_letter += [ord(w) for w, _ in block.words]
            evaluated_value += [v for _, v in block.words]
        lines.append(block.line)
        origin.append(block.origin)
    lines, first, count = np.array(lines, np.int64), np.array(first, np.int64), np.array(count, np.int64)
    plain = first < 0
    first[plain] = np.searchsorted(word_line, lines[plain])
    count[plain] = np.searchsorted(word_line, lines[plain] + 1) - first[plain]
    has_words = count > 0  # a comment or a line number alone runs no block
    lines, first, count = lines[has_words], first[has_words], count[has_words]
    word_block = np.repeat(np.arange(len(lines)), count)
    index = first[word_block] + np.arange(len(word_block)) - np.repeat(np.cumsum(count) - count, count)
    all_letter = np.concatenate([letter, np.array(evaluated_letter, np.uint8)])
    all_value = np.concatenate([value, np.array(evaluated_value, np.float64)])
    return lines, word_block, all_letter[index], all_value[index], np.array(origin, np.uint8)[has_words]


def _line_text(raw: np.ndarray, starts: np.ndarray, number: int) -> str:
    end = starts[number] - 1 if number < len(starts) else len(raw)
    return raw[starts[number - 1]:end].tobytes().decode("utf-8", "surrogatepass")


def _bulk_words(raw: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Words of every plain line: (line, letter, value) columns, and a flag per line that the
    bulk pass left it to :func:`parse_line`."""
    odd = np.zeros(len(starts), bool)
    cls = _CLASS[raw]
    keep = _KEEP[cls]  # word characters and line ends
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
    is_word, at_line_end = c[segment] == LETTER, c[segment] == NEWLINE
    segment_line = np.cumsum(at_line_end, dtype=np.int64)  # every line end starts a segment
    odd[segment_line[~is_word & (segment_end - segment > 1)]] = True  # nor does a later one
    of_segment = np.cumsum(starts_segment, dtype=np.int64) - 1
    n_segments = len(segment)

    def count(kind: int) -> tuple[np.ndarray, np.ndarray]:
        where = np.flatnonzero(c == kind)
        return where, np.bincount(of_segment[where], minlength=n_segments)

    dots, n_dots = count(DOT)
    signs, n_signs = count(SIGN)
    # a segment is its first byte (a letter or a line end, but for an odd first line) then digits,
    # dots and signs: its digits are what is left, and they follow one another in the digit stream
    digit = raw[at[c == DIGIT]] - ord("0")
    n_digits = segment_end - segment - n_dots - n_signs - (is_word | at_line_end)
    first_digit = np.cumsum(n_digits) - n_digits  # the rank of each segment's first digit among all digits
    letter = _UPPER[raw[at[segment]]]
    after_letter = np.minimum(segment + 1, len(c) - 1)
    signed = (n_signs == 1) & (c[after_letter] == SIGN)
    command = _IS_COMMAND[letter]
    bad = is_word & ((n_digits == 0) | (n_digits > MAX_DIGITS) | (n_dots > 1) | (n_signs > signed)
                     | ~_KNOWN_LETTER[letter] | (command & ((n_dots > 0) | signed)))  # plain G1, M03 only
    odd[segment_line[bad]] = True
    # the value: the digits as one integer, over 10 ** (digits after the point); exact as float(text)
    mantissa = _digits_as_integers(digit, first_digit, n_digits)
    dot = np.full(n_segments, -1)
    dot[of_segment[dots]] = dots
    decimals = np.where(dot >= 0, segment_end - 1 - dot, 0)
    value = mantissa / _POW10[np.clip(decimals, 0, MAX_DIGITS)]
    value = np.where(signed & (raw[at[after_letter]] == ord("-")), -value, value)
    out_of_range = np.where(command, value >= MAX_COMMAND, np.abs(value) > MAX_VALUE)
    odd[segment_line[is_word & (letter != N) & out_of_range]] = True  # the line parser names it
    good = is_word & ~odd[segment_line] & (letter != N)
    return segment_line[good] + 1, letter[good], value[good], odd


def _digits_as_integers(digit: np.ndarray, first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per number, its ``count`` digits from ``digit[first]`` on as one integer (a float: exact
    up to MAX_DIGITS digits). One pass per digit place, not per digit, so a handful of passes;
    in place, because fresh arrays of this size cost more than the arithmetic."""
    integer = np.zeros(len(first))
    at, place_digit = np.empty(len(first), np.int64), np.empty(len(first), np.uint8)
    for place in range(min(int(count.max(initial=0)), MAX_DIGITS)):
        np.add(first, place, out=at)
        np.minimum(at, len(digit) - 1, out=at)
        np.take(digit, at, out=place_digit)
        has_place = count > place
        np.multiply(integer, 10, out=integer, where=has_place)
        np.add(integer, place_digit, out=integer, where=has_place)
    return integer


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


def _resolve_modal(source: str, raw: np.ndarray, starts: np.ndarray, columns: tuple[np.ndarray, ...],
                   errors: dict[int, str], on_error: str, run: ngc.Execution | None = None) -> Program:
    """Program-level rules, block by block in running order: one motion per block; a block
    without a command carries only axis words and repeats the motion in force. A dropped line
    (all its blocks) leaves the motion unchanged."""
    lines, word_block, letter, value, origin = columns
    first = np.searchsorted(word_block, np.arange(len(lines)))
    last = np.append(first[1:], len(word_block))
    is_command = _IS_COMMAND[letter]
    is_motion = (letter == G) & np.isin(value, MOTION_CODES)
    per_block = functools.partial(_line_sums, first_word=first)
    n_motion = per_block(is_motion)
    modal = per_block(is_command) == 0
    not_axis = per_block(~_AXIS_OR_FEED[letter] & ~is_command)

    def fail(i: int, reason: str) -> None:
        number = int(lines[i])
        errors.setdefault(number, f"{source}:{number}: {reason} in {_line_text(raw, starts, number).strip()!r}")

    for i in np.flatnonzero(n_motion > 1):
        moves = [command_name("G", v) for v in value[first[i]:last[i]][is_motion[first[i]:last[i]]]]
        fail(i, f"two motion commands {moves} on one line")
    for i in np.flatnonzero(modal & (not_axis > 0)):
        fail(i, "parameters without a command")
    # the motion in force: the last motion set by a block that is kept, carried forward
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
    kept = ok[word_block]
    renumber = np.cumsum(ok) - 1
    return Program(source, lines[ok], modal[ok], motion[ok], renumber[word_block[kept]], letter[kept], value[kept],
                   origin[ok], tuple(sorted(errors.items())),
                   tuple(sorted(run.warnings.items())) if run else (), run.control_lines if run else 0)
