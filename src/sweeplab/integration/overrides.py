"""``--params`` as people type it: a comma inside brackets, braces or quotes does not end an
override.

Kedro splits ``--params`` on every comma before OmegaConf reads the values, so
``ae_sweep.seeds=[0,1,2]`` arrived as three broken items. Here an override ends at a comma
outside ``[]``, ``{}`` and quotes; each is ``key=value``, its value read by OmegaConf exactly as
Kedro reads it. ``kedro run`` and ``sweeplab submit`` share this one reading.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from sweeplab.errors import InputError

FORMS = ("accepted: key=value, several as a=1,b=2; a list as key=[0,1,2] or key=0 1 2 (space-separated); "
         "nested keys with dots, e.g. ae_sweep.grid.loss.globals_beta=[0,0.5,1]")
_OPEN, _CLOSE, _QUOTES = "[{", "]}", "'\""


class OverrideError(InputError):
    """A ``--params`` override that is not ``key=value``; names it and shows the accepted forms."""


def split_overrides(text: str) -> list[str]:
    """The overrides in ``text``: split at the commas outside brackets, braces and quotes."""
    items, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in _QUOTES:
            quote = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth = max(depth - 1, 0)  # a stray closer: OmegaConf names the value below
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def parse_overrides(text: str | None) -> dict[str, Any]:
    """``--params`` as a nested dict, as Kedro gives it to the session; a malformed override
    raises :class:`OverrideError` naming it, before anything runs."""
    if not text:
        return {}
    dots = []
    for item in split_overrides(text):
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise OverrideError(f"--params: {item!r} is not key=value; {FORMS}")
        dot = f"{key.strip()}={value}"
        try:
            read = OmegaConf.to_container(OmegaConf.from_dotlist([dot]))
        except Exception as exc:  # OmegaConf's grammar and YAML errors alike: say which override
            raise OverrideError(f"--params: cannot read {item!r} ({_reason(exc)}); {FORMS}") from exc
        if any(_numbers_without_commas(v) for v in _leaves(read)):
            raise OverrideError(f"--params: {item!r} puts spaces between list items inside brackets, "
                                f"which reads as one string; {FORMS}")
        dots.append(dot)
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist(dots))
    except Exception as exc:  # each reads alone, together they do not: a key set as a list and as a section
        raise OverrideError(f"--params: {_conflict(dots)} do not combine ({_reason(exc)}); {FORMS}") from exc


def _reason(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _conflict(dots: list[str]) -> str:
    """The first two overrides whose keys overlap (``a`` and ``a.b``), quoted; else all of them."""
    keys = [dot.partition("=")[0].split(".") for dot in dots]
    for j in range(len(dots)):
        for i in range(j):
            shorter, longer = sorted((keys[i], keys[j]), key=len)
            if longer[: len(shorter)] == shorter:
                return f"{dots[i]!r} and {dots[j]!r}"
    return " and ".join(map(repr, dots))


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _leaves(value)]
    return [tree]


def _numbers_without_commas(value: Any) -> bool:
    """``[0 1 2]``: a bracketed list whose one item is several numbers (meant ``[0,1,2]``)."""
    def number(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    return isinstance(value, list) and any(
        isinstance(item, str) and len(item.split()) > 1 and all(map(number, item.split())) for item in value)
