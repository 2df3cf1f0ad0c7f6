"""Where a report came from: the command, its ``--params``, the code's version and the date.

:class:`sweeplab.integration.hooks.ProvenanceHook` collects it in the process that starts the run and
hands it to each sweep's report through the catalog (``<sweep>_report.run_provenance``,
a :class:`sweeplab.datasets.provenance.RunProvenanceDataset`); the report adds the sweep
spec and its hash, and writes it to ``report.md`` and ``provenance.json``.
"""

from __future__ import annotations

import datetime
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sweeplab


def command_line(argv: list[str] | None = None) -> str:
    """The command that started this process, as a person would type it."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    program = Path(argv[0]).name
    if program == "__main__.py":  # python -m <package>
        program = f"python -m {Path(argv[0]).parent.name}"
    return " ".join([program, *map(shlex.quote, argv[1:])])


def code_version(project_path: str | Path | None = None) -> dict[str, Any]:
    """The git commit of the project (``-dirty`` when it has uncommitted changes), or, outside
    a git checkout, the installed package's version."""
    out: dict[str, Any] = {"package_version": sweeplab.__version__, "git_commit": None, "git_dirty": None}
    where = str(project_path or Path.cwd())
    try:
        commit = _git(where, "rev-parse", "HEAD")
        dirty = bool(_git(where, "status", "--porcelain"))
    except (OSError, subprocess.SubprocessError):
        commit = None
    if commit:
        out |= {"git_commit": commit, "git_dirty": dirty}
        out["code_version"] = f"git {commit[:12]}{'-dirty' if dirty else ''}"
    else:
        out["code_version"] = f"sweeplab {sweeplab.__version__} (not a git checkout)"
    return out


def _git(where: str, *args: str) -> str:
    return subprocess.run(["git", "-C", where, *args], capture_output=True, text=True, check=True,
                          timeout=20).stdout.strip()


def flat_params(params: Mapping[str, Any] | None, prefix: str = "") -> list[str]:
    """``--params`` as the dotted ``key=value`` a person writes: ``ae_sweep.seeds=[0, 1]``."""
    out = []
    for key, value in (params or {}).items():
        if isinstance(value, Mapping) and value:
            out += flat_params(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={value}")
    return out


def runner_name(runner: Any) -> str | None:
    """``sweeplab.integration.runners.ParallelRunner`` from a runner's name or its repr
    (``<... object at 0x...>``)."""
    if runner is None:
        return None
    found = re.match(r"<([\w.]+) object", str(runner))
    return found.group(1) if found else str(runner)


def collect(run_params: Mapping[str, Any] | None = None, project_path: str | Path | None = None) -> dict[str, Any]:
    """The run's provenance from Kedro's ``run_params`` (None: what the process itself knows)."""
    run_params = run_params or {}
    runtime = dict(run_params.get("runtime_params") or run_params.get("extra_params") or {})
    return {
        "command": command_line(),
        "params": flat_params(runtime),
        "runtime_params": runtime,
        "env": run_params.get("env") or "local (the default)",
        "pipelines": list(run_params.get("pipeline_names") or []),
        "namespaces": list(run_params.get("namespaces") or []),
        "load_versions": dict(run_params.get("load_versions") or {}),
        "runner": runner_name(run_params.get("runner")),
        "session_id": run_params.get("run_id") or run_params.get("session_id"),
        **code_version(project_path or run_params.get("project_path")),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
