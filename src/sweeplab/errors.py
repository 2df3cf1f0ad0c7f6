"""The project's input errors: one base class, so that they print as one line.

Anything a user gives the project (a parameter, a data file, a catalog entry, a checkpoint
folder) that is not what it should be raises an :class:`InputError` whose message says what
is wrong, where (file, key, row) and what was expected. The project's ``run`` command prints
such an error as that one line and exits non-zero (``sweeplab.cli``); anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class ExplainedError(Exception):
    """An outcome whose message says all a user needs: printed as that message, without a
    traceback (which goes to the log file)."""


class InputError(ExplainedError, ValueError):
    """Input that is not what the project expects; the message names where and what."""


class SweepFailedError(ExplainedError, RuntimeError):
    """Some variants of a run failed; their siblings and the report were saved first."""


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
