"""Batch schedulers: the job scripts of a sweep, and how they are submitted with dependencies.

A scheduler is a folder of three script templates (``templates/<name>/prep.sh``,
``train.sh``, ``report.sh``) and a small class that writes resource requests in its own
syntax and submits a script after other jobs. Everything else (what runs, the manifest, the
states of variants) is shared, so PBS or HTCondor would be a new template folder and class.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from sweeplab.errors import ExplainedError

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
JOBS = ("prep", "train", "report")  # in dependency order


class ClusterError(ExplainedError):
    """A submission that cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class Resources:
    """What one job asks the scheduler for; None: the cluster's default."""

    partition: str | None = None
    time: str | None = None  # e.g. "02:00:00"
    mem: str | None = None  # e.g. "8G"
    cpus_per_task: int | None = None
    gpus_per_task: int | None = None
    account: str | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)  # verbatim lines, e.g. "--qos=long"


# what ``--prep`` and ``--report`` may set, as ``key=value,...``, and how each value is read
JOB_KEYS = {"partition": str, "time": str, "mem": str, "cpus-per-task": int, "gpus-per-task": int}


def job_resources(spec: str, *, account: str | None, extra: tuple[str, ...], where: str) -> Resources:
    """``"time=04:00:00,gpus-per-task=1"`` -> that job's resources, with the submission's
    account and extra lines (who pays, and site rules, hold for every job)."""
    values: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in JOB_KEYS or not value:
            raise ClusterError(f"{where}: {item!r}; expected key=value with a key among {', '.join(JOB_KEYS)}")
        if JOB_KEYS[key] is int and not (value.isdigit() and (int(value) > 0 or key == "gpus-per-task")):
            raise ClusterError(f"{where}: {key}={value}; expected a whole number")
        values[key.replace("-", "_")] = JOB_KEYS[key](value)
    return Resources(**values, account=account, extra=extra)


def render(template: str, values: dict[str, str], where: str) -> str:
    """Fill ``{{name}}`` placeholders; a placeholder without a value is a bug in the template."""
    def fill(match: re.Match) -> str:
        if match[1] not in values:
            raise KeyError(f"{where}: no value for placeholder {{{{{match[1]}}}}}")
        return values[match[1]]
    return PLACEHOLDER.sub(fill, template)


class Scheduler(ABC):
    name = ""
    submit_command = ""

    def template(self, job: str) -> str:
        return (resources.files(__package__) / "templates" / self.name / f"{job}.sh").read_text()

    @abstractmethod
    def resource_lines(self, res: Resources) -> list[str]:
        """The directive lines asking for ``res``."""

    @abstractmethod
    def max_parallel(self, limit: int | None) -> str:
        """The array suffix that caps the tasks running at once ("" for none)."""

    @abstractmethod
    def submit(self, script: Path, *, after_ok: str | None = None, after_any: list[str] | None = None) -> str:
        """Submit ``script`` after the given job succeeded / all the given jobs ended; its job id."""

    @abstractmethod
    def array_limit(self) -> tuple[str, int] | None:
        """The most tasks one job array may hold here, with the setting that says so; None
        when the scheduler says nothing (or cannot be asked, as in a dry run elsewhere)."""

    @abstractmethod
    def cancel(self, jobs: list[str]) -> None:
        """Cancel these jobs (a submission that failed part-way takes back what it queued)."""

    def _call(self, args: list[str]) -> str:
        if shutil.which(args[0]) is None:
            raise ClusterError(f"'{args[0]}' not found: submit from a {self.name} login node, or use --dry-run "
                               "to write the job scripts without submitting them")
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            message = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
            raise ClusterError(f"{' '.join(args)} failed: {message}")
        return done.stdout.strip()


class Slurm(Scheduler):
    name = "slurm"
    submit_command = "sbatch"

    def resource_lines(self, res: Resources) -> list[str]:
        options = {"partition": res.partition, "time": res.time, "mem": res.mem,
                   # Slurm 23.11 and later refuse --gpus-per-task without a task count
                   "ntasks": 1 if res.gpus_per_task is not None else None,
                   "cpus-per-task": res.cpus_per_task, "account": res.account, "gpus-per-task": res.gpus_per_task}
        lines = [f"#SBATCH --{key}={value}" for key, value in options.items() if value is not None]
        return lines + [f"#SBATCH {line.strip()}" for line in res.extra]

    def max_parallel(self, limit: int | None) -> str:
        return f"%{limit}" if limit else ""

    def submit(self, script: Path, *, after_ok: str | None = None, after_any: list[str] | None = None) -> str:
        args = [self.submit_command, "--parsable"]
        if after_ok:
            # without it a failed prep leaves the variants pending forever (DependencyNeverSatisfied)
            args += [f"--dependency=afterok:{after_ok}", "--kill-on-invalid-dep=yes"]
        if after_any:
            args += [f"--dependency=afterany:{':'.join(after_any)}"]
        out = self._call([*args, str(script)])
        job_id = out.splitlines()[-1].split(";")[0] if out else ""
        if not job_id.isdigit():
            raise ClusterError(f"{self.submit_command} printed {out!r}; expected a job id")
        return job_id


    def array_limit(self) -> tuple[str, int] | None:
        # array indices run from 0 to MaxArraySize - 1 (Slurm's default 1001)
        if shutil.which("scontrol") is None:
            return None
        shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=False)
        found = re.search(r"^MaxArraySize\s*=\s*(\d+)", shown.stdout, re.MULTILINE)
        return ("MaxArraySize", int(found[1])) if shown.returncode == 0 and found else None

    def cancel(self, jobs: list[str]) -> None:
        if jobs:
            self._call(["scancel", *jobs])


SCHEDULERS = {s.name: s for s in (Slurm(),)}
