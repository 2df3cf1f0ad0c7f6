"""``sweeplab submit|status|cancel|prune <sweep>``: a sweep on a cluster, from the project folder or from a
packaged project (``--conf-source``). Every other ``sweeplab ...`` is the packaged run."""

from __future__ import annotations

import logging
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import click

from sweeplab.cluster.schedulers import ACTIVE, JOB_KEYS, SCHEDULERS, Resources, job_resources
from sweeplab.errors import explained
from sweeplab.integration.overrides import FORMS, parse_overrides

DEFAULT_JOBS_DIR = "data/09_jobs"


def _session_options(command: Any) -> Any:
    """The options that decide what a sweep is, as ``kedro run`` takes them."""
    for option in reversed([
        click.option("--env", "-e", default=None, help="Kedro configuration environment."),
        click.option("--conf-source", default=None, help="Configuration folder or archive of a packaged project."),
        click.option("--params", "params", default="", help=f"Parameter overrides, as for `kedro run`; {FORMS}."),
    ]):
        command = option(command)
    return command


_jobs_dir = click.option("--jobs-dir", default=DEFAULT_JOBS_DIR, show_default=True, type=click.Path(file_okay=False),
                         help="Where submissions are written, one folder per sweep.")


def _open(sweep: str, env: str | None, conf_source: str | None, params: str) -> Any:
    from sweeplab.cluster.state import open_sweep  # noqa: PLC0415 - Kedro's session: not for --help

    return open_sweep(sweep, env=env, conf_source=conf_source, params=parse_overrides(params))


@click.group(name="sweeplab", context_settings={"help_option_names": ["--help", "-h"]})
def cluster() -> None:
    """Sweeplab's commands.

    \b
    sweeplab run [OPTIONS]   run the project's pipelines, as `kedro run` does (the
                             word `run` may be left out); `sweeplab run --help` lists
                             its options
    sweeplab COMMAND SWEEP   put a sweep on a batch cluster, follow it, prune it
                             (below); `sweeplab COMMAND --help` for each"""


@cluster.command()
@click.argument("sweep")
@_session_options
@_jobs_dir
@click.option("--scheduler", type=click.Choice(sorted(SCHEDULERS)), default="slurm", show_default=True)
@click.option("--partition", default=None, help="For the variants' tasks.")
@click.option("--time", "time_limit", default=None, help="Per variant's task, e.g. 02:00:00.")
@click.option("--mem", default=None, help="Per variant's task, e.g. 8G.")
@click.option("--cpus-per-task", type=click.IntRange(min=1), default=None, help="For the variants' tasks.")
@click.option("--gpus-per-task", type=click.IntRange(min=0), default=None, help="For the variants' tasks.")
@click.option("--prep", "prep_spec", default="", metavar="KEY=VALUE,...",
              help=f"The data-prep job's own resources ({', '.join(JOB_KEYS)}), e.g. "
                   "--prep=time=04:00:00,gpus-per-task=1; unset keys: the cluster's defaults.")
@click.option("--report", "report_spec", default="", metavar="KEY=VALUE,...",
              help="The report job's own resources, as for --prep.")
@click.option("--account", default=None, help="For every job.")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None, help="At most this many variants at once.")
@click.option("--sbatch", "extra", multiple=True,
              help="An extra directive line for every job, e.g. --sbatch=--qos=long (repeatable).")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True,
              help="Resubmit a task the scheduler killed (TIMEOUT, NODE_FAIL, PREEMPTED, BOOT_FAIL, DEADLINE) up to "
                   "this many times; it continues from its checkpoint. Never one that failed in Python.")
@click.option("--retry-time-factor", type=float, default=1.0, show_default=True,
              help="Each retry's time limit is --time times this, per retry so far (needs --time).")
@click.option("--all", "every_variant", is_flag=True,
              help="Every variant, those with a completed record too (they restore it unless their config or "
                   "code changed); with --dry-run, the job scripts of a finished sweep.")
@click.option("--dry-run", is_flag=True, help="Write and print the job scripts; submit nothing.")
def submit(sweep: str, env: str | None, conf_source: str | None, params: str, jobs_dir: str, scheduler: str,
           partition: str | None, time_limit: str | None, mem: str | None, cpus_per_task: int | None,
           gpus_per_task: int | None, prep_spec: str, report_spec: str, account: str | None,
           max_parallel: int | None, extra: tuple[str, ...], retries: int, retry_time_factor: float,
           every_variant: bool, dry_run: bool) -> None:
    """Submit SWEEP: data prep, one array task per variant without a completed record, the report.

    The resource options size the variants' tasks; the prep and report jobs ask for what
    --prep and --report say, else the cluster's defaults (a GPU partition's time limit or GPUs
    are not theirs to take)."""
    from sweeplab.cluster import submission as sub  # noqa: PLC0415

    res = {"train": Resources(partition, time_limit, mem, cpus_per_task, gpus_per_task, account, extra),
           **{job: job_resources(spec, account=account, extra=extra, where=f"--{job}")
              for job, spec in (("prep", prep_spec), ("report", report_spec))}}
    opened = _open(sweep, env, conf_source, params)
    where = Path(jobs_dir) / sweep
    states = opened.states(where)
    chosen = SCHEDULERS[scheduler]
    prepared = sub.prepare(opened, states, scheduler=chosen, res=res, jobs_dir=Path(jobs_dir),
                           options=sub.run_options(env, conf_source, params), max_parallel=max_parallel,
                           dry_run=dry_run, retries=sub.Retries(retries, retry_time_factor),
                           every_variant=every_variant)
    total = len(opened.variants)
    if not prepared.to_run:
        click.echo(f"{sweep}: all {total} variants have a completed record; nothing to submit "
                   "(--all --dry-run shows the job scripts).")
        return
    click.echo(f"{sweep}: {total} variants, {len(prepared.completed)} completed, {len(prepared.to_run)} to run; "
               f"job scripts in {prepared.folder}")
    if dry_run:
        for job, script in prepared.scripts.items():
            click.echo(f"\n# ---- {job}: {script}\n{script.read_text()}")
        click.echo("Dry run: nothing submitted.")
        return
    sub.submit(prepared, chosen)
    jobs = prepared.jobs
    cap = f", at most {max_parallel} at once" if max_parallel else ""
    arrays = ", ".join(jobs["train"])
    split = (f" in {len(jobs['train'])} arrays: this cluster's {prepared.limit[0]} is {prepared.limit[1]}"
             if len(jobs["train"]) > 1 and prepared.limit else "")
    again = f"; tasks the scheduler kills go round again, up to {retries} time(s)" if retries else ""
    click.echo(f"Submitted: prep {jobs['prep']}; variants {arrays} ({len(prepared.to_run)} tasks{split}{cap}, "
               f"after prep succeeds); report {jobs['report']} (after every task ends){again}.")
    click.echo(f"Follow it with: sweeplab status {sweep}" + (f" --jobs-dir={jobs_dir}" if jobs_dir != DEFAULT_JOBS_DIR else ""))


@cluster.command()
@click.argument("sweep")
@_session_options
@_jobs_dir
def status(sweep: str, env: str | None, conf_source: str | None, params: str, jobs_dir: str) -> None:
    """Per variant of SWEEP: completed, outdated (finished by other code), failed (why), killed by
    the scheduler (TIMEOUT, OUT_OF_MEMORY, ...), running (epoch N of M), pending, planned or
    missing: the run records joined with what the scheduler says of the newest submission."""
    from sweeplab.cluster.state import STATES  # noqa: PLC0415 - Kedro's session: not for --help

    opened = _open(sweep, env, conf_source, params)
    states = opened.states(Path(jobs_dir) / sweep)
    counts = Counter(s.state for s in states)
    click.echo(f"{sweep}: {len(states)} variants: " + ", ".join(f"{counts[k]} {k}" for k in STATES))
    width = max(len(s.variant) for s in states)
    for s in states:
        click.echo(f"  {s.variant:<{width}}  {s.state:<9}  {s.detail}")


@cluster.command()
@click.argument("sweep")
@_jobs_dir
@click.option("--variant", default=None, help="Cancel only this variant's task.")
def cancel(sweep: str, jobs_dir: str, variant: str | None) -> None:
    """Cancel the jobs of SWEEP's newest submission that are still queued or running (or one
    variant's task); what they saved stays, and submitting again continues them."""
    from sweeplab.cluster import state  # noqa: PLC0415

    latest = state.latest_submission(Path(jobs_dir) / sweep)
    if latest is None:
        raise click.ClickException(f"{sweep}: no submission in {Path(jobs_dir) / sweep}")
    scheduler = SCHEDULERS[latest["scheduler"]]
    if variant is not None:
        tasks = state.tasks_of(latest, variant)
        if not tasks:
            raise click.ClickException(f"{sweep}.{variant}: not a variant of the submission {latest['submitted_at']}")
        jobs = tasks[-1:]
    else:
        jobs = state.submission_jobs(latest)
    told = scheduler.task_states(jobs)
    active = [task for task, now in told.items() if now.state in ACTIVE]
    # an array is cancelled whole (its pending tasks may not be split out yet)
    wanted = jobs if variant else sorted({task.split("_")[0] for task in active}, key=int)
    if active:
        scheduler.cancel(wanted)
    click.echo(f"{sweep}: cancelled {len(active)} queued or running task(s) of the submission "
               f"{latest['submitted_at']}" + (f" ({', '.join(wanted)})" if active else ""))


@cluster.command(name="follow-up", hidden=True)
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
def follow_up(folder: str) -> None:
    """In a submission's report job: resubmit the tasks the scheduler killed (--retries); exit
    status 10 when it did, and the report waits for them in a new job."""
    from sweeplab.cluster import submission as sub  # noqa: PLC0415

    again = sub.follow_up(Path(folder))
    if again:
        click.echo(f"resubmitted {len(again)} task(s) the scheduler killed: {', '.join(again)}")
        sys.exit(10)
    click.echo("nothing to retry: the report goes ahead")


@cluster.command()
@click.argument("sweep")
@_session_options
@click.option("--keep", type=click.IntRange(min=1), required=True, help="Versions to keep of each output.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def prune(sweep: str, env: str | None, conf_source: str | None, params: str, keep: int, dry_run: bool) -> None:
    """Remove SWEEP's older versions: the newest KEEP of each output stay, with what a kept
    report read and the rest of each kept run."""
    from sweeplab.cluster import prune as pruning  # noqa: PLC0415

    removals = pruning.plan_prune(_open(sweep, env, conf_source, params), keep)
    for removal in removals if dry_run else []:
        click.echo(f"  {removal.folder}")
    if not dry_run:
        pruning.remove(removals)
    freed = sum(r.freed for r in removals) / 1e6
    click.echo(f"{sweep}: {'would remove' if dry_run else 'removed'} {len(removals)} versions of "
               f"{len(pruning.by_dataset(removals))} datasets ({freed:.1f} MB not linked from a kept version)")


def main(args: list[str] | None = None) -> None:
    """Run a cluster command; an error a user can act on is one line and exit status 1."""
    # the command prints what it did; opening a Kedro session should not add its INFO lines
    for name in ("kedro", "sweeplab"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")  # Kedro's own call
    try:
        cluster.main(args=args, standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
    except Exception as exc:
        error = explained(exc)
        if error is None:
            raise
        click.secho(f"Error: {error}", fg="red", err=True)
        sys.exit(1)
