"""What a Kedro run knows that Kedro hands the project no argument for.

``register_pipelines()`` takes no arguments, yet the pipelines depend on the run's parameters
(``--env``, ``--params``) and, for start-up time, on the pipelines it asks for (``--pipelines``).
So, for one run at a time in a process:

- :func:`record_parameters` is called by :class:`~sweeplab.integration.hooks.SweepConfigHook`
  when the session's context is created, with the config loader's parameters;
- :func:`requesting` is entered by the project's ``run`` command around the run, with the
  names given to ``--pipelines`` (a run started from Python, ``KedroSession.run``, leaves it
  unset and every sweep is expanded: slower to start, never wrong).

The registry reads both. This module is the only keeper of that state; nothing outside the
integration package reads it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

logger = logging.getLogger(__name__)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment overrides single keys of the base parameters (e.g. ae.trainer.epochs),
    # not whole top-level entries
    "merge_strategy": {"parameters": "soft"},
}

_parameters: dict[str, Any] | None = None
_requested: tuple[str, ...] | None = None


def record_parameters(params: dict[str, Any]) -> bool:
    """Record the session's parameters; True when they differ from the last ones."""
    global _parameters  # noqa: PLW0603 - one process builds pipelines for one session at a time
    changed = params != _parameters
    _parameters = copy.deepcopy(params)
    return changed


def parameters() -> dict[str, Any]:
    """The parameters of the current session, or, outside a session, of the project's conf
    (the folder the process runs in), with the project's own merge strategy."""
    if _parameters is not None:
        return _parameters
    conf_source = Path.cwd() / "conf"
    logger.info("No Kedro session recorded its parameters; reading %s", conf_source)
    loader = OmegaConfigLoader(conf_source=str(conf_source), env=os.environ.get("KEDRO_ENV"), **CONFIG_LOADER_ARGS)
    return dict(loader["parameters"])


@contextlib.contextmanager
def requesting(pipeline_names: tuple[str, ...] | list[str] | None) -> Iterator[None]:
    """Within the block, the run asks for these pipelines (None or empty: the default)."""
    global _requested  # noqa: PLW0603
    before, _requested = _requested, tuple(pipeline_names) if pipeline_names else None
    try:
        yield
    finally:
        _requested = before


def requested_pipelines() -> tuple[str, ...] | None:
    """The pipelines the running command asked for; None when it did not say (all of them)."""
    return _requested
