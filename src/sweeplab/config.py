"""Typed configs: every section of parameters a user writes becomes a frozen dataclass.

One mechanism checks them all (data sections, family defaults, sweep specs and their
reports), before any node runs (``sweeplab.checks``), and again at each node boundary. An
unknown key fails with the closest valid one, a missing key, a wrong type, a value out of
range or not among the choices fails naming its full dotted key::

    events.sorce: unknown key; did you mean events.source?
    ae.model.hidden_dim: got -5; expected an integer >= 1

Ranges are declared on the field's type: ``Annotated[int, at_least(1)]``. Cross-field rules
live in ``__post_init__`` and raise :class:`ConfigError` with the field's name; the path of
the section is prefixed here.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from sweeplab.errors import InputError, shown

T = TypeVar("T")


class ConfigError(InputError):
    """A parameter is unknown, missing, of the wrong type or out of range; the message names it."""


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds on a number, declared as ``Annotated[float, Range(...)]``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is excluded
    high_open: bool = False  # high itself is excluded

    def check(self, value: float, path: str, kind: str, written: Any) -> None:
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if below or above:
            raise ConfigError(f"{path}: got {shown(written)}; expected {kind} {self.describe()}")

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(parts)


def at_least(low: float) -> Range:
    return Range(low=low)


POSITIVE = Range(low=0, low_open=True)
FRACTION = Range(low=0, high=1)
OPEN_FRACTION = Range(low=0, high=1, low_open=True, high_open=True)

PositiveInt = Annotated[int, at_least(1)]
NonNegativeInt = Annotated[int, at_least(0)]
PositiveFloat = Annotated[float, POSITIVE]
NonNegativeFloat = Annotated[float, at_least(0)]
Fraction = Annotated[float, FRACTION]


def _join(where: str, key: Any) -> str:
    """``where.key``; a key that would not read as one word on one line is quoted."""
    plain = isinstance(key, str) and key and key.isprintable() and key.strip() == key
    name = key if plain else repr(key)
    return f"{where}.{name}" if where else str(name)


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, recursing into nested dataclass fields."""
    where = where or cls.__name__
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: got {shown(data)}; expected a mapping of {_names(cls)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{where}: key {key!r} is not a name; expected some of {_names(cls)}")
        if key not in fields:
            raise ConfigError(f"{_join(where, key)}: unknown key; {_suggest(key, fields, where)}")
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {}
    for name, field in fields.items():
        path = _join(where, name)
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{path}: missing required key")
            continue
        kwargs[name] = _coerce(hints[name], data[name], path)
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a cross-field rule, named relative to this section
        raise ConfigError(f"{where}.{exc}") from None


def _names(cls: Any) -> str:
    return "{" + ", ".join(f.name for f in dataclasses.fields(cls)) + "}"


def closest(key: str, valid: Any) -> str | None:
    """The valid name a typo most likely meant: a close spelling, or the one name containing it."""
    close = difflib.get_close_matches(key, [str(v) for v in valid], n=1, cutoff=0.6)
    if close:
        return close[0]
    containing = [str(v) for v in valid if key and key in str(v)]
    return containing[0] if len(containing) == 1 else None


def _suggest(key: str, valid: Any, where: str) -> str:
    close = closest(key, valid)
    return f"did you mean {_join(where, close)}?" if close else f"expected one of {sorted(valid)}"


def _coerce(hint: Any, value: Any, path: str) -> Any:  # noqa: PLR0911, PLR0912 - one branch per kind of type
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *extras = typing.get_args(hint)
        result = _coerce(base, value, path)
        for extra in extras:
            if isinstance(extra, Range):
                extra.check(result, path, "an integer" if base is int else "a number", value)
        return result
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{path}: got {shown(value)}; expected {' or '.join(_kind(o) for o in options)}")
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if not isinstance(value, str | int | float | bool | None) or value not in allowed:
            raise ConfigError(f"{path}: got {shown(value)}; expected one of {' | '.join(map(str, allowed))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: got {shown(value)}; expected a list")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return tuple(_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: got {shown(value)}; expected a mapping")
        key_hint, value_hint = typing.get_args(hint) or (Any, Any)
        out = {}
        for key, item in value.items():
            if key_hint is str and not isinstance(key, str):
                raise ConfigError(f"{path}: key {key!r} is not a name")
            out[key] = _coerce(value_hint, item, _join(path, key))
        return out
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: got {shown(value)}; expected a number")
        return representable(value, path)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: got {shown(value)}; expected an integer")
        return representable(value, path, int)
    if hint in (str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{path}: got {shown(value)}; expected {_kind(hint)}")
    return value


INT64 = 2**63


def representable(value: float, path: str, kind: type = float) -> float:
    """``value`` as a ``kind`` (int or float) that the models and files can hold, or an error
    naming ``path``: a float must be finite (YAML reads 1e309 as inf, and 10**309 written out as
    an integer too large for any float); an integer must fit 64 bits (numpy, torch, HDF5)."""
    if kind is int:
        if not -INT64 <= value < INT64:
            raise ConfigError(f"{path}: got {shown(value)}; expected an integer within the 64-bit range")
        return value
    try:
        number = float(value)
    except OverflowError:
        raise ConfigError(f"{path}: got {shown(value)}; expected a finite number (at most about 1.8e308)") from None
    if not math.isfinite(number):
        raise ConfigError(f"{path}: got {value!r}; expected a finite number")
    return number


def _kind(hint: Any) -> str:
    if typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        ranges = [e.describe() for e in extras if isinstance(e, Range)]
        return f"{_kind(base)} {' '.join(ranges)}".strip()
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is typing.Literal:
        return " | ".join(map(str, typing.get_args(hint)))
    if typing.get_origin(hint) in (list, tuple):
        return "a list"
    return "a mapping" if typing.get_origin(hint) is dict or dataclasses.is_dataclass(hint) else str(hint)


def to_dict(config: Any) -> dict[str, Any]:
    """The plain-dict form of a config dataclass (tuples become lists, for YAML)."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


def config_hash(config: dict[str, Any]) -> str:
    """A stable identifier of what a run computes: sha256 of the canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class SplitFractions:
    """Shares of the data for train, val and test: each in (0, 1), together 1."""

    train: Annotated[float, OPEN_FRACTION]
    val: Annotated[float, OPEN_FRACTION]
    test: Annotated[float, OPEN_FRACTION]

    def __post_init__(self) -> None:
        total = self.train + self.val + self.test
        if abs(total - 1) > 1e-6:
            raise ConfigError(f"train + val + test: got {total:g}; expected them to sum to 1")
