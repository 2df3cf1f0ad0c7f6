"""A sweep as batch jobs: data prep, then one array task per variant, then the report.

Each submission is a folder ``<jobs dir>/<sweep>/<timestamp>/`` holding what a person needs
to see what was asked for and why it ran as it did:

- ``prep.sh``, ``train.sh``, ``report.sh``: plain job scripts, rendered from the scheduler's
  templates;
- ``variants.txt``: line N+1 names the variant of array task N;
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
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from kedro.io.core import generate_timestamp

from sweeplab.cluster.schedulers import JOBS, ClusterError, Resources, Scheduler, render
from sweeplab.cluster.state import OpenSweep, VariantState
from sweeplab.datasets._files import atomic_path
from sweeplab.run_records import COMPLETED


@dataclass
class Submission:
    folder: Path
    to_run: list[str]
    completed: list[str]
    scripts: dict[str, Path] = field(default_factory=dict)
    jobs: dict[str, str] = field(default_factory=dict)


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


def prepare(opened: OpenSweep, states: list[VariantState], *, scheduler: Scheduler, res: dict[str, Resources],
            jobs_dir: Path, options: list[str], max_parallel: int | None, dry_run: bool) -> Submission:
    """Write the submission folder for every variant without a completed record; ``res``
    holds each job's resources (``prep``, ``train``, ``report``)."""
    to_run = [s.variant for s in states if s.state != COMPLETED]
    completed = [s.variant for s in states if s.state == COMPLETED]
    folder = Path(jobs_dir).resolve() / opened.name / generate_timestamp()
    submission = Submission(folder, to_run, completed)
    if not to_run:
        return submission
    check_ranks(opened, to_run, res["train"].gpus_per_task)
    (folder / "logs").mkdir(parents=True)
    (folder / "variants.txt").write_text("".join(f"{v}\n" for v in to_run))
    (folder / "logging.yml").write_text((resources.files(__package__) / "templates" / "logging.yml").read_text())
    values = {
        "sweep": opened.name,
        "family": opened.family.name,
        "folder": shlex.quote(str(folder)),
        "workdir": shlex.quote(str(Path.cwd())),
        "run": f"{shlex.quote(sys.executable)} -m {__name__.split('.')[0]}",
        "run_options": " ".join(shlex.quote(o) for o in options),
        "last_index": str(len(to_run) - 1),
        "max_parallel": scheduler.max_parallel(max_parallel),
    }
    for job in JOBS:
        script = folder / f"{job}.sh"
        text = render(scheduler.template(job),
                      {**values, "resources": "\n".join(scheduler.resource_lines(res[job]))},
                      where=f"{scheduler.name}/{job}.sh")
        script.write_text(text)
        script.chmod(0o755)
        submission.scripts[job] = script
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
        "resources": {job: {k: v for k, v in asdict(res[job]).items() if v not in (None, ())} for job in JOBS},
        "variants": to_run,
        "config_hashes": {v: opened.config_hash(by_name[v]) for v in to_run},
        "already_completed": completed,
        "jobs": {},
    })
    return submission


def submit(submission: Submission, scheduler: Scheduler) -> None:
    """Prep, then the array after it succeeds, then the report after every task has ended."""
    scripts = submission.scripts
    jobs = submission.jobs
    jobs["prep"] = scheduler.submit(scripts["prep"])
    jobs["train"] = scheduler.submit(scripts["train"], after_ok=jobs["prep"])
    jobs["report"] = scheduler.submit(scripts["report"], after_any=jobs["train"])
    manifest_path = submission.folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    write_json(manifest_path, {**manifest, "jobs": jobs})
