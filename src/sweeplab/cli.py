"""The project's ``run`` command: Kedro's, with errors a user can act on printed as one line.

``kedro run`` and ``python -m sweeplab`` both use it. An :class:`~sweeplab.errors.InputError`
(a bad parameter, a malformed data file) or a failed sweep prints its message alone and exits
1; its traceback goes to the log file, and to the terminal with ``--verbose``. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from sweeplab.errors import Interrupted, explained
from sweeplab.integration import session
from sweeplab.integration.overrides import FORMS, parse_overrides
from sweeplab.integration.runners import runner_for

logger = logging.getLogger(__name__)


@click.group(name="sweeplab")
def cli() -> None:
    """Sweeplab's project commands."""


def _to_log_files(exc: BaseException) -> None:
    """The traceback for the log file only: the terminal has the one-line message."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, "Run stopped: %s", (exc,),
                               (type(exc), exc, exc.__traceback__))
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _prepare_processes(runner: str | None, runner_params: dict[str, Any]) -> None:
    """Under ParallelRunner: start workers with ``spawn`` unless ``KEDRO_MP_CONTEXT`` says
    otherwise (a fork after torch has run can deadlock), and tell the training loop how many
    workers share the cores (see ``default_threads``)."""
    if not (runner or "").endswith("ParallelRunner"):
        return
    from sweeplab.training.loop import WORKERS_ENV  # noqa: PLC0415 - torch: not for every kedro command

    os.environ.setdefault("KEDRO_MP_CONTEXT", "spawn")
    workers = runner_params.get("max_workers") or os.cpu_count() or 1
    os.environ[WORKERS_ENV] = str(workers)


def _terminated(signum: int, frame: Any) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def _run(verbose: bool, **options: Any) -> None:
    _prepare_processes(options.get("runner"), options.get("runner_params") or {})
    options["runner"] = runner_for(options.get("runner"))
    requested = [options["pipeline"]] if options.get("pipeline") else options.get("pipelines")
    # a scheduler's kill (SIGTERM, then SIGKILL some seconds later) stops the run as Ctrl-C does
    if threading.current_thread() is threading.main_thread():  # where Python takes signals
        signal.signal(signal.SIGTERM, _terminated)
    try:
        if not isinstance(options["params"], dict):  # a --config file gives a mapping already
            options["params"] = parse_overrides(options["params"])
        with session.requesting(requested):  # the registry expands only the sweeps asked for
            kedro_run.callback(**options)
    except KeyboardInterrupt as stop:
        from sweeplab.integration import tracking  # noqa: PLC0415 - torch: not for every kedro command

        tracking.interrupted()  # Kedro's error hooks see only an Exception: the trackers' runs close here
        what = "SIGTERM" if isinstance(stop, Interrupted) else "Ctrl-C"
        click.secho(f"Stopped by {what}. What was saved stays; running again continues each variant from its last "
                    "checkpoint.", fg="red", err=True)
        sys.exit(143 if isinstance(stop, Interrupted) else 130)
    except Exception as exc:
        error = explained(exc)
        if error is None:
            raise
        _to_log_files(exc)
        if verbose:
            click.echo("".join(traceback.format_exception(exc)), err=True)
        click.secho(f"Error: {error}", fg="red", err=True)
        sys.exit(1)


# Kedro's own options, but --params is read in _run (sweeplab.integration.overrides), so that a comma inside
# a list does not split it and a malformed override is a one-line error like any other
PARAMS = click.Option(["--params"], type=click.UNPROCESSED, default="",
                      help=f"Parameter overrides, comma-separated; {FORMS}.")
run = click.Command(
    name="run",
    callback=_run,
    params=[*(PARAMS if option.name == "params" else option for option in kedro_run.params),
            click.Option(["--verbose", "-v"], is_flag=True, help="Print the traceback of an input error too.")],
    help=kedro_run.help,
    short_help=kedro_run.short_help,
)
cli.add_command(run)
