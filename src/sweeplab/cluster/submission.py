"""A sweep as batch jobs: data prep, then one array task per variant, then the report.

Each submission is a folder ``<jobs dir>/<sweep>/<timestamp>/`` holding what a person needs
to see what was asked for and why it ran as it did:

- ``prep.sh``, ``train.sh``, ``report.sh``: plain job scripts, rendered from the scheduler's
  templates; a sweep larger than the cluster's array limit (Slurm's ``MaxArraySize``) has
  ``train-1.sh``, ``train-2.sh``, ... instead, one array each, all after the prep job and
  the report after all of them;
- ``variants.txt``: one variant per line, in the arrays' order (each script says where its
  array starts);
- a search (``sweeplab.search``): its trials' array runs ``parallel`` tasks at once (each
  trial is asked when its task starts, after the results before it), and the re-evaluation of
  the best trial is an array of its own after the trials' arrays have ended;
- with ``--retries N``: the report job first resubmits the tasks the scheduler killed
  (``retry-1.txt``, ``retry-1.sh``, ...; they continue from their checkpoints, with the time
  limit times ``--retry-time-factor``) and a report job after them, at most N times;
- ``manifest.json``: the sweep, the options, the variants with their config hashes, the job ids;
- ``prep_versions.txt``: written by the prep job, the data-prep versions every variant loads,
  so a variant never reads another sweep's newer data prep from the shared folder;
- ``logging.yml`` and ``logs/``: one log file per job.

It assumes a filesystem shared by the submitting machine and the compute nodes: the project
folder, its ``data/`` and the Python environment are at the same paths everywhere.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from kedro.io.core import generate_timestamp

from sweeplab.cluster.schedulers import (
    JOBS,
    RETRIED,
    SCHEDULERS,
    ClusterError,
    Resources,
    Scheduler,
    format_time,
    parse_time,
    render,
    state_of,
)
from sweeplab.cluster.state import OpenSweep, VariantState, tasks_of, variant_jobs
from sweeplab.datasets._files import atomic_path
from sweeplab.run_records import COMPLETED
from sweeplab.search import BEST


@dataclass
class Submission:
    folder: Path
    to_run: list[str]
    completed: list[str]
    scripts: dict[str, Path] = field(default_factory=dict)  # prep, train (or train-1, train-2, ...), report
    arrays: list[dict[str, Any]] = field(default_factory=list)  # per array: its script, first variant, tasks
    limit: tuple[str, int] | None = None  # the scheduler's setting that caps an array's tasks, and its value
    jobs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Retries:
    """``--retries`` and ``--retry-time-factor``: how often a task the scheduler killed is
    resubmitted, and how its time limit grows each time."""

    times: int = 0
    time_factor: float = 1.0

    def check(self, train: Resources) -> None:
        if self.time_factor < 1:
            raise ClusterError(f"--retry-time-factor: got {self.time_factor}; expected 1 or more")
        if self.time_factor != 1 and train.time is None:
            raise ClusterError("--retry-time-factor needs --time: a cluster's default time limit is not known here")
        if train.time is not None:
            parse_time(train.time, "--time")

    def time(self, base: str | None, attempt: int) -> str | None:
        """The time limit of the ``attempt``-th retry."""
        if base is None or self.time_factor == 1:
            return base
        return format_time(parse_time(base, "--time") * self.time_factor ** attempt)


def split(n: int, limit: tuple[str, int] | None) -> list[range]:
    """The variants' indices as consecutive arrays, none holding more tasks than ``limit``."""
    size = limit[1] if limit else max(n, 1)
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def run_options(env: str | None, conf_source: str | None, params: str | None) -> list[str]:
    """The options every job passes on to the run, as the user gave them to ``submit``."""
    options = [f"--env={env}"] if env else []
    if conf_source:
        options.append(f"--conf-source={Path(conf_source).resolve()}")
    if params:
        options.append(f"--params={params}")
    return options


def write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def check_ranks(opened: OpenSweep, variants: list[str], gpus: int | None) -> None:
    """Each variant's ranks fit the GPUs its task asks for: ``world_size: auto`` takes them
    all; a number must match them, and ranks on CUDA need GPUs asked for."""
    by_name = {v.name: v for v in opened.variants}
    for name in variants:
        trainer = opened.config(by_name[name])["config"]["trainer"]
        world = trainer["distributed"]["world_size"]
        where = f"{opened.name}.{name}: {opened.family.name}.trainer.distributed.world_size is {world}"
        if gpus and world not in ("auto", gpus):
            raise ClusterError(f"{where} but --gpus-per-task={gpus}; set it to auto or {gpus}, or ask for {world} GPUs")
        if not gpus and world != "auto" and world > 1 and trainer["device"] == "cuda":
            raise ClusterError(f"{where} on cuda, but no GPUs are asked for; add --gpus-per-task={world}")


def write_script(folder: Path, name: str, scheduler: Scheduler, job: str, values: dict[str, str],
                 res: Resources) -> Path:
    script = folder / f"{name}.sh"
    script.write_text(render(scheduler.template(job), {**values, "resources": "\n".join(scheduler.resource_lines(res))},
                             where=f"{scheduler.name}/{job}.sh"))
    script.chmod(0o755)
    return script


def write_arrays(folder: Path, names: tuple[str, str], variants: list[str], scheduler: Scheduler,
                 values: dict[str, str], res: Resources, limit: tuple[str, int] | None,
                 after: int | None = None) -> list[dict[str, Any]]:
    """For ``names = (listing, script)``: ``<listing>.txt`` naming the variants, and one array
    script per part of at most the cluster's limit (``<script>.sh``, or ``<script>-1.sh``, ...).
    ``after``: the variants from this index on wait for the arrays before them to end (their
    ``after_arrays`` says so)."""
    listing, name = names
    (folder / f"{listing}.txt").write_text("".join(f"{v}\n" for v in variants))
    cut = len(variants) if after is None else after
    parts = [r for stage in (range(cut), range(cut, len(variants))) if len(stage)
             for r in (range(stage.start + p.start, stage.start + p.stop) for p in split(len(stage), limit))]
    arrays = []
    for k, part in enumerate(parts, 1):
        script = name if len(parts) == 1 else f"{name}-{k}"
        own = {"variants": f"{listing}.txt", "first": str(part.start), "last_index": str(len(part) - 1)}
        write_script(folder, script, scheduler, "train", {**values, **own}, res)
        arrays.append({"script": f"{script}.sh", "first": part.start, "tasks": len(part)}
                      | ({"after_arrays": True} if part.start >= cut else {}))
    return arrays


def prepare(opened: OpenSweep, states: list[VariantState], *, scheduler: Scheduler, res: dict[str, Resources],
            jobs_dir: Path, options: list[str], max_parallel: int | None, dry_run: bool,
            retries: Retries = Retries(), every_variant: bool = False) -> Submission:
    """Write the submission folder for every variant without a completed record (``every_variant``:
    for all of them; a completed one then restores its record); ``res`` holds each job's
    resources (``prep``, ``train``, ``report``)."""
    retries.check(res["train"])
    to_run = [s.variant for s in states if every_variant or s.state != COMPLETED]
    completed = [s.variant for s in states if s.state == COMPLETED]
    folder = Path(jobs_dir).resolve() / opened.name / generate_timestamp()
    submission = Submission(folder, to_run, completed)
    if not to_run:
        return submission
    check_ranks(opened, to_run, res["train"].gpus_per_task)
    if not dry_run and (allowed := scheduler.submit_limit()) is not None:
        setting, most, queued = allowed
        if len(to_run) + 2 > most - queued:
            raise ClusterError(f"{opened.name}: {len(to_run) + 2:,} jobs (prep, {len(to_run):,} variants' tasks, report) "
                               f"would pass this cluster's {setting} of {most:,} for you ({queued:,} already queued); "
                               f"submit part of the sweep (fewer seeds, or {opened.name}.only), or ask for a higher limit")
    (folder / "logs").mkdir(parents=True)
    (folder / "logging.yml").write_text((resources.files(__package__) / "templates" / "logging.yml").read_text())
    values = {
        "sweep": opened.name,
        "family": opened.family.name,
        "folder": shlex.quote(str(folder)),
        "workdir": shlex.quote(str(Path.cwd())),
        "run": f"{shlex.quote(sys.executable)} -m {__name__.split('.')[0]}",
        "run_options": " ".join(shlex.quote(o) for o in options),
        "max_parallel": scheduler.max_parallel(max_parallel),
        "follow_up": (f"{shlex.quote(sys.executable)} -m {__name__.split('.')[0]} follow-up {shlex.quote(str(folder))}"
                      if retries.times else "true"),
    }
    limit = submission.limit = scheduler.array_limit()
    submission.scripts["prep"] = write_script(folder, "prep", scheduler, "prep", values, res["prep"])
    # a search's re-evaluation reads its trials' records: an array of its own, after theirs
    later = [v.name for v in opened.variants if v.trial == BEST and v.name in to_run]
    first = [v for v in to_run if v not in later]
    to_run[:] = first + later
    if (search_spec := opened.params[opened.name].get("search")) is not None:  # a search's trials in flight
        parallel = search_spec.get("parallel", 1)
        values["max_parallel"] = scheduler.max_parallel(min(parallel, max_parallel or parallel))
    submission.arrays = write_arrays(folder, ("variants", "train"), to_run, scheduler, values, res["train"], limit,
                                     after=len(first))
    for array in submission.arrays:
        submission.scripts[array["script"].removesuffix(".sh")] = folder / array["script"]
    submission.scripts["report"] = write_script(folder, "report", scheduler, "report", values, res["report"])
    by_name = {v.name: v for v in opened.variants}
    write_json(folder / "manifest.json", {
        "sweep": opened.name,
        "family": opened.family.name,
        "submitted_at": folder.name,
        "submitted_at_epoch": time.time(),
        "dry_run": dry_run,
        "scheduler": scheduler.name,
        "workdir": str(Path.cwd()),
        "command": sys.argv,
        "run_options": options,
        "max_parallel": max_parallel,
        "array_limit": dict([limit]) if limit else None,
        "arrays": submission.arrays,
        "resources": {job: {k: v for k, v in asdict(res[job]).items() if v not in (None, ())} for job in JOBS},
        "retries_allowed": asdict(retries),
        "template_values": values,
        "variants": to_run,
        "config_hashes": {v: opened.config_hash(by_name[v]) for v in to_run},
        "already_completed": completed,
        "jobs": {},
    })
    return submission


def submit(submission: Submission, scheduler: Scheduler) -> None:
    """Prep, then each array after it succeeds, then the report after every task has ended.

    A submission the scheduler refuses part-way is taken back: the jobs it had queued are
    cancelled and its folder removed, so no manifest claims jobs that will not run."""
    scripts, jobs, queued = submission.scripts, submission.jobs, []
    try:
        jobs["prep"] = scheduler.submit(scripts["prep"])
        queued.append(jobs["prep"])
        jobs["train"] = []
        for array in submission.arrays:
            earlier = list(jobs["train"]) if array.get("after_arrays") else None
            jobs["train"].append(scheduler.submit(submission.folder / array["script"], after_ok=jobs["prep"],
                                                  after_any=earlier))
            queued.append(jobs["train"][-1])
        jobs["report"] = scheduler.submit(scripts["report"], after_any=jobs["train"])
    except ClusterError as exc:
        taken_back = f"; cancelled the {len(queued)} job(s) it had queued ({', '.join(queued)})" if queued else ""
        try:
            scheduler.cancel(queued)
        except ClusterError as also:
            taken_back = f"; cancelling the jobs it had queued failed too: {also}"
        shutil.rmtree(submission.folder, ignore_errors=True)
        raise ClusterError(f"{exc}{taken_back}") from None
    manifest_path = submission.folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    write_json(manifest_path, {**manifest, "jobs": jobs})


def follow_up(folder: Path) -> list[str]:
    """In the report job of a submission made with ``--retries``: resubmit the variants whose
    newest task the scheduler killed (TIMEOUT, NODE_FAIL, ...; not one that failed in Python,
    ran out of memory or was cancelled) while retries are left, with a report job after them.
    Returns the variants resubmitted; none: the report goes ahead."""
    path = Path(folder) / "manifest.json"
    manifest = json.loads(path.read_text())
    scheduler, done = SCHEDULERS[manifest["scheduler"]], manifest.get("retries", [])
    allowed = Retries(**manifest["retries_allowed"])
    if len(done) >= allowed.times:
        return []
    told = scheduler.task_states(variant_jobs(manifest))
    last = {v: state_of(told, tasks[-1]) for v in manifest["variants"] if (tasks := tasks_of(manifest, v))}
    killed = [v for v, now in last.items() if now is not None and now.state in RETRIED]
    if not killed:
        return []
    attempt = len(done) + 1
    train = manifest["resources"]["train"]
    res = Resources(**{**train, "extra": tuple(train.get("extra", ())), "time": allowed.time(train.get("time"), attempt)})
    limit = tuple(next(iter(manifest["array_limit"].items()))) if manifest.get("array_limit") else None
    arrays = write_arrays(folder, (f"retry-{attempt}",) * 2, killed, scheduler, manifest["template_values"], res, limit)
    jobs = [scheduler.submit(Path(folder) / array["script"]) for array in arrays]
    report = scheduler.submit(Path(folder) / "report.sh", after_any=jobs)
    round_ = {"attempt": attempt, "variants": killed, "states": {v: last[v].state for v in killed},
              "time": res.time, "arrays": arrays, "jobs": jobs}
    reports = [*manifest["jobs"].get("reports", []), manifest["jobs"]["report"]]
    write_json(path, {**manifest, "retries": [*done, round_], "jobs": {**manifest["jobs"], "report": report,
                                                                        "reports": reports}})
    return killed


def stop_waiting(folder: Path) -> list[str]:
    """Cancel the variants' tasks of a submission that have not started (fail fast stopped
    its sweep); the running ones finish. Returns the jobs asked."""
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    jobs = variant_jobs(manifest)
    if jobs:
        SCHEDULERS[manifest["scheduler"]].cancel(jobs, pending_only=True)
    return jobs
