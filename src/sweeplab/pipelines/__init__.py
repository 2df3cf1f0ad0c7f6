"""The families' pipelines (one subpackage each, found by ``sweeplab.families.discover``) and the
sweep report's (``reporting``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class _NamedPartial(functools.partial):
    """A partial pickled the ordinary way, its ``__dict__`` (its name) included: multiprocessing
    pickles ``functools.partial`` itself with a reducer that drops it."""


def node_function(func: Callable, **bound: Any) -> Callable:
    """``func`` with keyword arguments bound, named as ``func``. Kedro names a node's function by
    its ``__name__`` in logs and kedro-viz, and warns at each node whose function has none; a
    plain partial loses the name in ParallelRunner's workers."""
    return functools.update_wrapper(_NamedPartial(func, **bound), func)
