"""The ``sweeplab`` command.

``sweeplab submit|status|cancel|prune <sweep>`` puts a sweep on a cluster (``sweeplab.cluster``);
``sweeplab --help`` lists those commands. Anything else (or ``sweeplab run ...``) runs the
packaged project, as ``python -m sweeplab --conf-source=conf-sweeplab.tar.gz ...`` always has.
"""

import os
import sys
from pathlib import Path
from typing import Any

CLUSTER_COMMANDS = {"submit", "status", "cancel", "prune", "follow-up"}


def main(*args: Any, **kwargs: Any) -> Any:
    package = Path(__file__).parent
    argv = list(args[0]) if args and args[0] is not None else sys.argv[1:]
    overview = argv in (["--help"], ["-h"])  # every command; `sweeplab run --help`: the run's options
    if argv[:1] == ["run"]:  # the run, named
        argv = argv[1:]
        args = (argv, *args[1:])
    if overview or (argv[:1] and argv[0] in CLUSTER_COMMANDS):
        # before Kedro is imported: its logging setup would print to the command's output
        os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(package / "cluster" / "templates" / "quiet.yml"))
        from sweeplab.cluster.cli import main as cluster_main  # noqa: PLC0415

        return cluster_main(argv)
    from kedro.framework.cli.utils import find_run_command  # noqa: PLC0415
    from kedro.framework.project import configure_project  # noqa: PLC0415

    configure_project(package.name)
    kwargs["standalone_mode"] = not hasattr(sys, "ps1")
    run = find_run_command(package.name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
