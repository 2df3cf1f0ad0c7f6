"""Batch schedulers: the job scripts of a sweep, and how they are submitted with dependencies.

A scheduler is a folder of three script templates (``templates/<name>/prep.sh``,
``train.sh``, ``report.sh``) and a small class that writes resource requests in its own
syntax and submits a script after other jobs. Everything else (what runs, the manifest, the
states of variants) is shared, so PBS or HTCondor would be a new template folder and class.
"""

from __future__ import annotations

import getpass
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

# a task's states, in the scheduler's own names (Slurm's; another scheduler maps to them)
WAITING = ("PENDING", "REQUEUED", "CONFIGURING", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED")
ACTIVE = (*WAITING, "RUNNING", "COMPLETING", "STOPPED", "SIGNALING", "STAGE_OUT")
# ended by the scheduler, not by the task's own code
KILLED = ("TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "CANCELLED")
# what ``--retries`` resubmits: the same request may well succeed next time (out of memory would
# fail again, and a cancelled task was stopped on purpose)
RETRIED = ("TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE")


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


def state_of(told: dict[str, TaskState], task: str) -> TaskState | None:
    """What the scheduler says of ``task`` (``123_4``): its own record, else its array's (the
    tasks Slurm never split out of an array, cancelled before they started, share the
    array's record ``123``)."""
    return told.get(task) or told.get(task.split("_", maxsplit=1)[0])


@dataclass(frozen=True)
class TaskState:
    """What the scheduler says of one task (``123`` or, in an array, ``123_4``)."""

    state: str  # e.g. PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT (see WAITING, ACTIVE, KILLED)
    reason: str = ""  # why it waits, or how it ended, where the scheduler says

    @property
    def killed(self) -> bool:
        return self.state in KILLED


TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time(value: str, where: str) -> int:
    """A Slurm time limit in seconds: ``minutes``, ``minutes:seconds``, ``hours:minutes:seconds``,
    ``days-hours``, ``days-hours:minutes`` or ``days-hours:minutes:seconds``."""
    found = TIME.match(value.strip())
    if not found:
        raise ClusterError(f"{where}: {value!r}; expected a time such as 90, 02:00:00 or 1-12:00:00")
    days, first, second, third = (int(g) if g else None for g in found.groups())
    if days is not None:  # days-hours[:minutes[:seconds]]
        return ((days * 24 + first) * 60 + (second or 0)) * 60 + (third or 0)
    if third is not None:
        return (first * 60 + second) * 60 + third
    return first * 60 + (second or 0)


def format_time(seconds: float) -> str:
    """Seconds as ``days-hours:minutes:seconds``, rounded up to a whole minute (Slurm's unit)."""
    minutes = -(-int(seconds) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    return f"{days}-{minutes // 60:02d}:{minutes % 60:02d}:00"


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
    def submit_limit(self) -> tuple[str, int, int] | None:
        """How many more jobs this user may queue here (every array task counts as one): the
        setting that says so, its value and the jobs already queued; None where not known."""

    @abstractmethod
    def cancel(self, jobs: list[str], *, pending_only: bool = False) -> None:
        """Cancel these jobs or tasks (a submission that failed part-way takes back what it
        queued; ``sweeplab cancel``); ``pending_only``: leave the running ones be."""

    @abstractmethod
    def task_states(self, jobs: list[str]) -> dict[str, TaskState]:
        """What the scheduler knows of these jobs, by task (``123_4`` for an array's task):
        the queue for what waits or runs, its records for what ended. A task it no longer
        knows is absent."""

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
        after = [f"afterok:{after_ok}"] if after_ok else []
        after += [f"afterany:{':'.join(after_any)}"] if after_any else []
        if after:  # one option: sbatch reads the last --dependency only; a comma means all of them
            args.append(f"--dependency={','.join(after)}")
        if after_ok:  # without it a failed prep leaves the variants pending forever (DependencyNeverSatisfied)
            args.append("--kill-on-invalid-dep=yes")
        out = self._call([*args, str(script)])
        job_id = out.splitlines()[-1].split(";")[0] if out else ""
        if not job_id.isdigit():
            raise ClusterError(f"{self.submit_command} printed {out!r}; expected a job id")
        return job_id

    def array_limit(self) -> tuple[str, int] | None:
        # array indices run from 0 to MaxArraySize - 1 (Slurm's default 1001)
        value = self._config().get("MaxArraySize", "")
        return ("MaxArraySize", int(value)) if value.isdigit() else None

    def submit_limit(self) -> tuple[str, int, int] | None:
        # a site's per-user limit lives in its accounting database, where the user may read it
        if shutil.which("sacctmgr") is None:
            return None
        user = getpass.getuser()
        rows = self._rows(["sacctmgr", "-n", "-P", "show", "associations", "where", f"user={user}",
                           "format=MaxSubmit"])
        limits = [int(row[0]) for row in rows if row and row[0].strip().isdigit()]
        if not limits:
            return None
        queued = self._rows(["squeue", "-h", "-r", f"--user={user}", "--format=%i"])
        return "MaxSubmitJobs", min(limits), len(queued)

    def cancel(self, jobs: list[str], *, pending_only: bool = False) -> None:
        if jobs:
            self._call(["scancel", *(["--state=PENDING"] if pending_only else []), *jobs])

    def task_states(self, jobs: list[str]) -> dict[str, TaskState]:
        if not jobs or shutil.which("squeue") is None:
            return {}
        ended = self._accounting(jobs) or self._completion_record(jobs)
        return {**ended, **self._queue(jobs)}  # the queue is the newest word (a requeued task)

    @staticmethod
    def _rows(args: list[str]) -> list[list[str]]:
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        # squeue fails when it knows none of the jobs; sacct, when accounting is off
        return [line.split("|") for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []

    def _queue(self, jobs: list[str]) -> dict[str, TaskState]:
        # --states=all: what ended within MinJobAge too; -r: one row per array task
        rows = self._rows(["squeue", "-h", "-r", "--states=all", f"--jobs={','.join(jobs)}", "--format=%i|%T|%r"])
        return {task: TaskState(row[1], _reason(row[2])) for row in rows if len(row) == 3 for task in array_tasks(row[0])}

    def _accounting(self, jobs: list[str]) -> dict[str, TaskState]:
        if shutil.which("sacct") is None:
            return {}
        rows = self._rows(["sacct", "-n", "-P", "-X", f"--jobs={','.join(jobs)}", "--format=JobID,State,Reason"])
        # "CANCELLED by 1000": the state's name is its first word
        return {task: TaskState(row[1].split()[0], _reason(row[2])) for row in rows
                if len(row) == 3 and row[1].strip() for task in array_tasks(row[0])}

    def _completion_record(self, jobs: list[str]) -> dict[str, TaskState]:
        """Slurm's job-completion file (``JobCompType=jobcomp/filetxt``), where it is readable:
        a cluster without accounting still keeps one line per ended job there."""
        config = self._config()
        path = Path(config.get("JobCompLoc", ""))
        if config.get("JobCompType") != "jobcomp/filetxt" or not path.is_file():
            return {}
        wanted, found = set(jobs), {}
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        for line in lines:
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            array, task = fields.get("ArrayJobId", "0"), fields.get("ArrayTaskId", "")
            if array not in ("", "0") and task.isdigit() and array in wanted:
                found[f"{array}_{task}"] = TaskState(fields.get("JobState", "?"))
            elif fields.get("JobId") in wanted:
                found[fields["JobId"]] = TaskState(fields.get("JobState", "?"))
        return found

    @staticmethod
    def _config() -> dict[str, str]:
        """``scontrol show config`` as name -> value; empty where it cannot be asked."""
        if shutil.which("scontrol") is None:
            return {}
        shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=False)
        pairs = (re.match(r"^(\w+)\s*=\s*(.*?)\s*$", line) for line in shown.stdout.splitlines())
        return {m[1]: m[2] for m in pairs if m} if shown.returncode == 0 else {}


def array_tasks(job: str) -> list[str]:
    """``123``, ``123_4``, or the tasks of a record Slurm never split into them (pending tasks
    cancelled together): ``123_[2-4,7%2]`` -> ``123_2``, ``123_3``, ``123_4``, ``123_7``."""
    found = re.fullmatch(r"(\d+)_\[([\d,-]+)(?:%\d+)?\]", job.strip())
    if not found:
        return [job.strip()]
    tasks = []
    for part in filter(None, found[2].split(",")):
        first, _, last = part.partition("-")
        tasks += [f"{found[1]}_{i}" for i in range(int(first), int(last or first) + 1)]
    return tasks


def _reason(text: str) -> str:
    return "" if text.strip() in ("None", "") else text.strip()


SCHEDULERS = {s.name: s for s in (Slurm(),)}
