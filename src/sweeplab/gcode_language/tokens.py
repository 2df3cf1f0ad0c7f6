"""G-code tokens, the two vocabularies, and the decomposition of a v2 token into its parts.

A line becomes its commands, then for each parameter word its letter and its value:
``G1 X16.5 F800`` -> ``G1 X NUM_X_16 F NUM_F_16`` (v2). The two vocabularies differ only in
how a value becomes a token:

- v1 keeps full precision: the value in units of ``resolution`` (0.01 mm: ``NUM_X_1650``);
- v2 keeps two digits per parameter: ``floor(value / unit)`` clipped to -99..99, with one
  ``unit`` per letter chosen so the machine's range fills about two digits (X in mm:
  ``NUM_X_16``; F in 50 mm/min: ``NUM_F_16`` = 800-849 mm/min). Clipped values are counted.

Every v2 token decomposes into (type, symbol, parameter, bucket): type is SPECIAL, COMMAND,
PARAMETER or NUMERIC; symbol indexes the specials and commands (one head predicts both, the
type says which); parameter indexes the letters; bucket indexes -99..99. A part that does
not apply is -1. :meth:`Vocabulary.compose` inverts it exactly for every token.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweeplab.errors import InputError
from sweeplab.gcode_language.parser import (
    COMMAND_DECIMALS,
    COMMAND_LETTERS,
    PARAMETER_LETTERS,
    Program,
    command_name,
)

SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>", "<unk>")
PAD, BOS, EOS, SEP, UNK = range(len(SPECIALS))
TYPES = ("SPECIAL", "COMMAND", "PARAMETER", "NUMERIC")
SPECIAL, COMMAND, PARAMETER, NUMERIC = range(len(TYPES))
MAX_BUCKET = 99
N_BUCKETS = 2 * MAX_BUCKET + 1


@dataclass(frozen=True)
class TokenSpec:
    """How values become tokens: ``v1`` (full precision) or ``v2`` (two digits per letter)."""

    version: str
    resolution: float = 0.01  # v1: one token per this step
    units: Mapping[str, float] | None = None  # v2: bucket width per parameter letter

    def __post_init__(self) -> None:
        if self.version not in ("v1", "v2"):
            raise ValueError(f"vocabulary version must be v1 or v2, got {self.version!r}")
        if self.version == "v2":
            missing = [letter for letter in PARAMETER_LETTERS if letter not in (self.units or {})]
            if missing:
                raise ValueError(f"gcode.vocabulary.units: no bucket width for parameter letter(s) {missing}")
            bad = {k: v for k, v in self.units.items() if not v > 0}
            if bad:
                raise ValueError(f"gcode.vocabulary.units: widths must be positive, got {bad}")

    def numbers(self, letter: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The integer in each numeric token (letters as ASCII codes), and which were clipped.
        Clipping happens on the float, so no value wraps around in the integer cast."""
        if self.version == "v1":
            number, limit = np.rint(value / self.resolution), MAX_NUMBER
        else:
            unit = np.ones(256)
            unit[list(map(ord, self.units))] = list(self.units.values())
            number, limit = np.floor(value / unit[letter] + 1e-9), MAX_BUCKET  # the epsilon keeps 0.3/0.1 in 3
        clipped = np.clip(number, -limit, limit)
        return clipped.astype(np.int64), clipped != number

    def value_token(self, letter: str, value: float) -> tuple[str, bool]:
        """The numeric token of one parameter word, and whether the value was clipped."""
        number, clipped = self.numbers(np.array([ord(letter)], np.uint8), np.array([float(value)]))
        return f"NUM_{letter}_{number[0]}", bool(clipped[0])


# A program token as one int64, so a whole corpus is looked up in the vocabulary at once:
# kind << 56 | letter << 48 | (number + 2**40), where number is a command's code in
# thousandths (G38.2 -> 38200), 0 for a parameter letter, and a numeric token's integer.
_KIND_SHIFT, _LETTER_SHIFT, _OFFSET = 56, 48, 1 << 40
MAX_NUMBER = _OFFSET - 1  # a v1 value beyond this many resolution steps is clipped (and counted)


def token_key(kind: np.ndarray | int, letter: np.ndarray | int, number: np.ndarray | int) -> np.ndarray:
    return ((np.asarray(kind, np.int64) << _KIND_SHIFT) | (np.asarray(letter, np.int64) << _LETTER_SHIFT)
            | (np.asarray(number, np.int64) + _OFFSET))


_NUMERIC_TOKEN = re.compile(rf"NUM_([{PARAMETER_LETTERS}])_(-?[0-9]{{1,13}})")
_COMMAND_TOKEN = re.compile(rf"([{COMMAND_LETTERS}])([0-9]{{1,4}}(?:\.[0-9]{{1,{COMMAND_DECIMALS}}})?)")


class VocabularyError(InputError):
    """A vocabulary file or token that is not what this module writes; names the token."""


def key_of(token: str) -> int:
    """The key of a command, parameter or numeric token (see :func:`token_key`); a token that
    is not written exactly as :func:`name_of` writes it raises :class:`VocabularyError`."""
    if token in PARAMETER_LETTERS and len(token) == 1:
        key = token_key(PARAMETER, ord(token), 0)
    elif (numeric := _NUMERIC_TOKEN.fullmatch(token)) and abs(int(numeric[2])) <= MAX_NUMBER:
        key = token_key(NUMERIC, ord(numeric[1]), int(numeric[2]))
    elif command := _COMMAND_TOKEN.fullmatch(token):
        key = token_key(COMMAND, ord(command[1]), round(float(command[2]) * 1000))
    else:
        raise VocabularyError(f"{token!r} is not a token (expected a G/M command, a letter of "
                              f"{PARAMETER_LETTERS} or NUM_<letter>_<integer>)")
    if name_of(int(key)) != token:  # G01 or NUM_X_007: one token, two spellings
        raise VocabularyError(f"{token!r} is not written as tokens are (expected {name_of(int(key))!r})")
    return int(key)


def name_of(key: int) -> str:
    """The token a key stands for: the inverse of :func:`key_of`."""
    kind, letter = key >> _KIND_SHIFT, chr((key >> _LETTER_SHIFT) & 0xFF)
    number = (key & ((1 << _LETTER_SHIFT) - 1)) - _OFFSET
    if kind == COMMAND:
        return command_name(letter, number / 1000)
    return letter if kind == PARAMETER else f"NUM_{letter}_{number}"


@dataclass(frozen=True)
class ProgramTokens:
    """A program's tokens in columns. Each line: its commands as written (a modal line's
    carried motion is not written, so it is no token), then a letter and a value token per
    parameter word: ``G1 X16.5 F800`` -> ``G1 X NUM_X_8 F NUM_F_32`` (v2)."""

    block: np.ndarray  # [tokens] the program block of each token (see Program)
    line: np.ndarray  # [tokens] the program line of each token
    key: np.ndarray  # [tokens] int64 token keys (see token_key)
    clipped: int  # values clipped to the version's range (v2: +/-MAX_BUCKET)

    def names(self) -> list[str]:
        return [name_of(k) for k in self.key.tolist()]

    def by_line(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for line, name in zip(self.line.tolist(), self.names(), strict=True):
            out.setdefault(line, []).append(name)
        return out


def program_tokens(program: Program, spec: TokenSpec) -> ProgramTokens:
    """Tokenise a parsed program in bulk (see :class:`ProgramTokens`)."""
    command = program.is_command
    order = np.argsort(program.word_block * 2 + ~command, kind="stable")  # commands first in a block
    word = np.repeat(order, np.where(command[order], 1, 2))  # a parameter word gives two tokens
    second = np.append(False, word[1:] == word[:-1])[:len(word)]
    letter, value, command = program.letter[word], program.value[word], command[word]
    numbers, clipped = spec.numbers(letter, value)
    kind = np.where(command, COMMAND, np.where(second, NUMERIC, PARAMETER))
    code = np.rint(np.where(command, value, 0) * 1000).astype(np.int64)  # the parser keeps commands in range
    number = np.where(kind == NUMERIC, numbers, code)
    block = program.word_block[word]
    return ProgramTokens(block, program.lines[block], token_key(kind, letter, number), int(clipped[second].sum()))


def token_type(token: str) -> int:
    if token in SPECIALS:
        return SPECIAL
    if token.startswith("NUM_"):
        return NUMERIC
    if token in PARAMETER_LETTERS:
        return PARAMETER
    return COMMAND


class Vocabulary:
    """Tokens with their training counts; encode maps unknown tokens to ``<unk>``."""

    def __init__(self, tokens: Sequence[str], counts: Mapping[str, int], spec: TokenSpec):
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with the special tokens {SPECIALS}")
        self.tokens = list(tokens)
        self.counts = dict(counts)
        self.spec = spec
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("a vocabulary lists a token twice")

    @classmethod
    def build(cls, programs: Iterable[ProgramTokens], spec: TokenSpec) -> Vocabulary:
        """Every token seen in the (training) programs: specials, commands, letters, values."""
        keys = [p.key for p in programs]
        seen, counts = np.unique(np.concatenate(keys) if keys else np.zeros(0, np.int64), return_counts=True)
        names = [name_of(k) for k in seen.tolist()]
        order = {COMMAND: 0, PARAMETER: 1, NUMERIC: 2}
        tokens = sorted(names, key=lambda t: (order[token_type(t)], _natural(t)))
        return cls([*SPECIALS, *tokens], dict(zip(names, counts.tolist(), strict=True)), spec)

    def __len__(self) -> int:
        return len(self.tokens)

    @functools.cached_property
    def _lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """The keys of the non-special tokens, sorted, and their ids."""
        ids = np.arange(len(SPECIALS), len(self.tokens))
        keys = np.array([key_of(self.tokens[i]) for i in ids], np.int64)
        order = np.argsort(keys)
        return keys[order], ids[order]

    def encode(self, tokens: ProgramTokens) -> tuple[np.ndarray, int]:
        """Token ids (unknown tokens -> ``<unk>``), and how many were unknown."""
        keys, ids = self._lookup
        if not len(keys):
            return np.full(len(tokens.key), UNK), len(tokens.key)
        at = np.minimum(np.searchsorted(keys, tokens.key), len(keys) - 1)
        known = keys[at] == tokens.key
        return np.where(known, ids[at], UNK), int((~known).sum())

    # ------------------------------------------------------------------ decomposition (v2)

    @functools.cached_property
    def symbols(self) -> list[str]:
        """What the symbol head predicts: the special tokens, then the commands."""
        return [t for t in self.tokens if token_type(t) in (SPECIAL, COMMAND)]

    @functools.cached_property
    def commands(self) -> list[str]:
        return [t for t in self.tokens if token_type(t) == COMMAND]

    @staticmethod
    def letters() -> list[str]:
        return list(PARAMETER_LETTERS)

    def decompose(self, token: str) -> tuple[int, int, int, int]:
        """(type, symbol, parameter, bucket) of a token; -1 where a part does not apply."""
        kind = token_type(token)
        if kind in (SPECIAL, COMMAND):
            return kind, self.symbols.index(token), -1, -1
        if kind == PARAMETER:
            return kind, -1, PARAMETER_LETTERS.index(token), -1
        _, letter, bucket = token.split("_", 2)
        return kind, -1, PARAMETER_LETTERS.index(letter), int(bucket) + MAX_BUCKET

    def compose(self, kind: int, symbol: int, parameter: int, bucket: int) -> str:
        """The token with these parts: the exact inverse of :meth:`decompose`."""
        if kind in (SPECIAL, COMMAND):
            return self.symbols[symbol]
        letter = PARAMETER_LETTERS[parameter]
        return letter if kind == PARAMETER else f"NUM_{letter}_{bucket - MAX_BUCKET}"

    def part_tables(self) -> np.ndarray:
        """[len(vocab), 4] int64: each token id's decomposition, for the multi-head model."""
        return np.array([self.decompose(t) for t in self.tokens], dtype=np.int64)

    def compose_tables(self) -> dict[str, np.ndarray]:
        """Id lookups for composing predictions: symbol -> id, letter -> id, (letter, bucket) -> id."""
        numeric = np.full((len(PARAMETER_LETTERS), N_BUCKETS), UNK, dtype=np.int64)
        for i, (kind, _, parameter, bucket) in enumerate(self.part_tables()):
            if kind == NUMERIC:
                numeric[parameter, bucket] = i
        return {
            "symbol": np.array([self.index[t] for t in self.symbols], dtype=np.int64),
            "parameter": np.array([self.index.get(letter, UNK) for letter in PARAMETER_LETTERS], dtype=np.int64),
            "numeric": numeric,
        }

    # ------------------------------------------------------------------ files

    def to_dict(self) -> dict[str, Any]:
        kinds = Counter(TYPES[token_type(t)] for t in self.tokens)
        return {
            "version": self.spec.version,
            "size": len(self.tokens),
            "by_type": dict(kinds),
            "resolution": self.spec.resolution,
            "units": dict(self.spec.units or {}),
            "tokens": self.tokens,
            "counts": {t: int(self.counts.get(t, 0)) for t in self.tokens},
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "vocabulary") -> Vocabulary:
        """A vocabulary read back from its file, checked key by key: a bad one raises
        :class:`VocabularyError` naming ``where``, the key and what was expected."""
        def fail(message: str) -> VocabularyError:
            return VocabularyError(f"{where}: {message}")

        if not isinstance(data, Mapping):
            raise fail(f"expected a mapping with version, tokens and counts, got {type(data).__name__}")
        missing = [k for k in ("version", "tokens") if k not in data]
        if missing:
            raise fail(f"missing key(s) {missing}; expected version, tokens, counts")
        resolution, units = data.get("resolution", 0.01), data.get("units") or None
        if not _positive(resolution):
            raise fail(f"resolution: expected a positive number, got {resolution!r}")
        if units is not None and not (isinstance(units, Mapping) and all(_positive(v) for v in units.values())):
            raise fail(f"units: expected a mapping of letters to positive widths, got {units!r}")
        tokens, counts = data["tokens"], data.get("counts", {})
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise fail(f"tokens: expected a list of strings, got {type(tokens).__name__}")
        if not isinstance(counts, Mapping) or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts.values()):
            raise fail("counts: expected a mapping of tokens to non-negative integers")
        if unknown := [t for t in counts if t not in tokens]:
            raise fail(f"counts: token(s) {unknown[:5]} not in tokens")
        try:
            spec = TokenSpec(data["version"], float(resolution), dict(units) if units else None)
            vocabulary = cls(tokens, counts, spec)
            for token in tokens[len(SPECIALS):]:
                if token_type(token) == SPECIAL:
                    raise VocabularyError(f"special token {token!r} after the specials")
                key_of(token)
                if token_type(token) == NUMERIC and spec.version == "v2" and abs(int(token.rsplit("_", 1)[1])) > MAX_BUCKET:
                    raise VocabularyError(f"{token!r} is outside the v2 buckets -{MAX_BUCKET}..{MAX_BUCKET}")
        except (ValueError, TypeError) as exc:  # the spec's and the token checks' messages
            raise fail(f"{exc}") from exc
        return vocabulary


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _natural(token: str) -> tuple:
    """Sort G2 before G17 and NUM_X_-3 before NUM_X_12."""
    if token.startswith("NUM_"):
        _, letter, value = token.split("_", 2)
        return letter, int(value)
    head, digits = token[:1], token[1:]
    try:
        return head, float(digits)
    except ValueError:
        return head, math.inf
