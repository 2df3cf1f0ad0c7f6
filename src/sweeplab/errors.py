"""The project's input errors: one base class, so that they print as one line.

Anything a user gives the project (a parameter, a data file, a catalog entry, a checkpoint
folder) that is not what it should be raises an :class:`InputError` whose message says what
is wrong, where (file, key, row) and what was expected. The project's ``run`` command prints
such an error as that one line and exits non-zero (``sweeplab.cli``); anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import json
import math
import reprlib
import sys
from typing import Any


class ExplainedError(Exception):
    """An outcome whose message says all a user needs: printed as that message, without a
    traceback (which goes to the log file)."""


class InputError(ExplainedError, ValueError):
    """Input that is not what the project expects; the message names where and what."""


class SweepFailedError(ExplainedError, RuntimeError):
    """Some variants of a run failed; their siblings and the report were saved first."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM (a scheduler's kill at its time limit, ``kill``), taken as Ctrl-C is: the run
    stops where it is, and what it saved stays (the project's ``run`` turns one into the other)."""


class DataFileError(InputError):
    """A data file that cannot be read as the format its catalog entry promises."""


def explained(exc: BaseException | None) -> ExplainedError | None:
    """The :class:`ExplainedError` behind ``exc``, following causes and contexts (Kedro wraps
    a dataset's errors in its own), or None when there is none."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ExplainedError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


# ----------------------------------------------------------------------------------------------
# what every message and every reader of a user's text shares

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 4, 4, 40, 40


def shown(value: Any, width: int = 60) -> str:
    """``value`` for a one-line message: at most ``width`` characters, and never an error of its
    own (a deeply nested list, an integer too long for ``repr``)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 64:
        return f"an integer of {_digits(value)} digits"
    try:
        text = _REPR.repr(value)
    except (RecursionError, ValueError):  # repr of a user's object may refuse; its type still says enough
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def read_json(text: str | bytes, where: str, error: type[InputError] = InputError) -> Any:
    """The one reader of JSON a user gives: the value, or ``error`` naming ``where`` and what in
    the text cannot be read (a syntax error with its line, nesting too deep for Python's parser,
    an integer too long to convert)."""
    try:
        return json.loads(text, parse_int=_bounded_int)
    except _LongInteger as exc:
        raise error(f"{where}: an integer of {exc.digits} digits ({exc.start}...); "
                    f"expected numbers of at most {exc.limit} digits") from None
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise error(f"{where}: not JSON that can be read: nested deeper than Python's JSON parser allows") from None
    except (UnicodeDecodeError, TypeError) as exc:  # bytes that are not UTF-8/16/32 text
        raise error(f"{where}: not JSON text ({type(exc).__name__}: {shown(str(exc), 80)})") from None


def _digits(value: int) -> str:
    try:
        return str(len(str(abs(value))))
    except ValueError:  # longer than Python converts to text
        return f"about {int(abs(value).bit_length() * math.log10(2)) + 1}"


class _LongInteger(Exception):
    def __init__(self, token: str, limit: int):
        super().__init__(token)
        self.digits, self.start, self.limit = len(token.lstrip("-")), token[:12], limit


def _bounded_int(token: str) -> int:
    limit = sys.get_int_max_str_digits()  # Python's own limit on decimal text -> int; 0: none
    if limit and len(token.lstrip("-")) > limit:
        raise _LongInteger(token, limit)
    return int(token)
