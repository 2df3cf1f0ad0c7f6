"""``sweeplab submit`` on a real, throwaway, single-node Slurm cluster: prep, one array task per
variant, the report; a failing variant is FAILED and a second submit trains only it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sweeplab.pipeline_registry import FAMILIES
from tests.cluster.slurm import Cluster, missing
from tests.test_kedro_run import latest
from tests.test_processes import tiny_sweep

pytestmark = pytest.mark.slow

AE_PARAMS = "events.synthetic.n_events=2000,ae.trainer.epochs=1,ae_sweep.grid.model.latent_space=none," \
            "ae_sweep.grid.loss.globals_beta=1,ae_sweep.grid.trainer.lr=1e-3 1e30"
GOOD, BAD = "none_beta1_lr0p001_s0", "none_beta1_lr1e30_s0"  # lr=1e30 makes the loss non-finite


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(reason)
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()


def sweeplab(slurm: Cluster, project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**slurm.env, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "sweeplab", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def submit_and_wait(slurm: Cluster, project: Path, sweep: str, params: str, *options: str
                    ) -> tuple[dict, dict[str, str]]:
    """Submit, wait for every job to end; the newest manifest and each job's final state."""
    done = sweeplab(slurm, project, "submit", sweep, f"--params={params}", *options)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = sorted((project / "data/09_jobs" / sweep).iterdir())[-1]
    manifest = json.loads((folder / "manifest.json").read_text())
    slurm.wait_idle(timeout=400)
    states = slurm.job_states()
    jobs = manifest["jobs"]
    tasks = {manifest["variants"][array["first"] + i]: f"{job}_{i}"
             for job, array in zip(jobs["train"], manifest["arrays"], strict=True) for i in range(array["tasks"])}
    assert list(tasks) == manifest["variants"], "every variant in one array task"
    # a task never split out of its array (cancelled before it started) has the array's record
    ours = {"prep": states.get(jobs["prep"]), "report": states.get(jobs["report"]),
            **{v: states.get(task) or states.get(task.split("_")[0]) for v, task in tasks.items()}}
    for job in ("prep", "report"):
        assert (folder / "logs" / f"{job}-{jobs[job]}.log").exists(), "one log file per job"
    ran = [task for variant, task in tasks.items() if ours[variant] != "CANCELLED"]  # cancelled before it started
    assert sorted(p.name for p in (folder / "logs").glob("train-*.log")) == sorted(f"train-{t}.log" for t in ran)
    return manifest, ours


def status_rows(slurm: Cluster, project: Path, sweep: str, params: str, *options: str) -> dict[str, str]:
    done = sweeplab(slurm, project, "status", sweep, f"--params={params}", *options)
    assert done.returncode == 0, done.stderr[-3000:]
    return {line.split()[0]: line.split()[1] for line in done.stdout.splitlines() if line.startswith("  ")}


def test_a_failed_variant_is_failed_the_report_counts_it_and_a_resubmit_trains_only_it(slurm, kedro_project):
    manifest, states = submit_and_wait(slurm, kedro_project, "ae_sweep", AE_PARAMS)
    assert manifest["variants"] == [GOOD, BAD]
    assert states == {"prep": "COMPLETED", GOOD: "COMPLETED", BAD: "FAILED", "report": "COMPLETED"}
    report = latest(kedro_project, "data/08_reporting/ae_sweep/results.md").read_text()
    assert "2 runs: 1 completed, 1 failed, 0 missing" in report
    assert status_rows(slurm, kedro_project, "ae_sweep", AE_PARAMS) == {GOOD: "completed", BAD: "failed"}
    versions = f"data/07_model_output/ae_sweep/{GOOD}/summary.json"
    kept = sorted(os.listdir(kedro_project / versions))

    manifest, states = submit_and_wait(slurm, kedro_project, "ae_sweep", AE_PARAMS)
    assert manifest["variants"] == [BAD] and manifest["already_completed"] == [GOOD]
    assert states == {"prep": "COMPLETED", BAD: "FAILED", "report": "COMPLETED"}
    assert sorted(os.listdir(kedro_project / versions)) == kept, "the completed variant did not run again"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_runs_as_jobs(slurm, kedro_project, family):
    sweep, variants = tiny_sweep(family)
    manifest, states = submit_and_wait(slurm, kedro_project, sweep, "", "--env=tiny")
    assert manifest["variants"] == variants
    assert set(states.values()) == {"COMPLETED"}, states
    assert status_rows(slurm, kedro_project, sweep, "", "--env=tiny") == dict.fromkeys(variants, "completed")
    assert f"{len(variants)} completed, 0 failed" in latest(kedro_project, f"data/08_reporting/{sweep}/results.md").read_text()


def test_a_sweep_larger_than_the_array_limit_runs_as_several_arrays_tracked_as_one(slurm, kedro_project):
    """The cluster's MaxArraySize is 5 (slurm.py): 7 variants are two arrays, every one runs;
    the tasks' MLflow runs share one parent, which the report job ends."""
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    params = ("ae.trainer.epochs=2,ae_sweep.grid.model.latent_space=none,ae_sweep.seeds=[0,1,2,3,4,5,6],"
              "tracking.mlflow.enabled=true")
    manifest, states = submit_and_wait(slurm, kedro_project, "ae_sweep", params, "--env=tiny")
    assert [a["tasks"] for a in manifest["arrays"]] == [5, 2] and manifest["array_limit"] == {"MaxArraySize": 5}
    assert set(states.values()) == {"COMPLETED"} and len(states) == 9, states
    assert "7 completed, 0 failed" in latest(kedro_project, "data/08_reporting/ae_sweep/results.md").read_text()
    client = MlflowClient(f"sqlite:///{kedro_project / 'data/09_tracking/mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("sweeplab").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and parent.data.metrics["variants_run"] == 7
    assert sorted(r.info.run_name for r in children) == sorted(manifest["variants"])
    assert {r.info.status for r in children} == {"FINISHED"}
    assert all(len(client.get_metric_history(r.info.run_id, "val/rec_tokens")) == 2 for r in children)


def test_a_variant_trains_on_two_ranks_in_one_task(slurm, kedro_project):
    """The job script a GPU task runs, with CPU ranks and gloo: one task, two processes."""
    params = "ae.trainer.distributed.world_size=2,ae.trainer.threads=1,ae_sweep.grid.model.latent_space=vq"
    manifest, states = submit_and_wait(slurm, kedro_project, "ae_sweep", params, "--env=tiny", "--cpus-per-task=2")
    assert set(states.values()) == {"COMPLETED"}, states
    for variant in manifest["variants"]:
        summary = json.loads(latest(kedro_project, f"data/07_model_output/ae_sweep/{variant}/summary.json").read_text())
        assert (summary["status"], summary["world_size"]) == ("completed", 2), summary["reason"]
    log = next((sorted((kedro_project / "data/09_jobs/ae_sweep").iterdir())[-1] / "logs").glob("train-*_0.log"))
    assert "training on 2 ranks (cpu, gloo)" in log.read_text()


def test_a_requeued_task_continues_from_its_checkpoint(slurm, kedro_project):
    """Pre-emption: Slurm kills a running task and queues it again; it resumes, not restarts."""
    params = ("events.synthetic.n_events=20000,ae.trainer.epochs=8,ae_sweep.grid.model.latent_space=vq,"
              "ae_sweep.grid.loss.globals_beta=1")
    done = sweeplab(slurm, kedro_project, "submit", "ae_sweep", f"--params={params}")
    assert done.returncode == 0, done.stderr[-3000:]
    folder = sorted((kedro_project / "data/09_jobs/ae_sweep").iterdir())[-1]
    task = f"{json.loads((folder / 'manifest.json').read_text())['jobs']['train'][0]}_0"
    slot = kedro_project / "data/06_models/checkpoints/ae_sweep/vq_beta1_s0"
    deadline = time.monotonic() + 300
    while not list(slot.glob("*/last.pt")):
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    assert not list(slot.glob("*/final.pt")), "still training when it is pre-empted"
    requeue = subprocess.run(["scontrol", "requeue", task], env=slurm.env, capture_output=True, text=True, check=False)
    assert requeue.returncode == 0, requeue.stderr
    # Slurm holds a requeued job back for about two minutes before it may start again; the
    # test lets it start at once
    deadline = time.monotonic() + 60
    while "JobState=PENDING" not in slurm.show_job(task):
        assert time.monotonic() < deadline, slurm.show_job(task)
        time.sleep(0.5)
    # but not within the second it was killed in: slurmd compares whole seconds, and refuses a
    # launch credential made no later than the kill ("Job N already killed, do not launch")
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"JobId={task}", "StartTime=now"], env=slurm.env, check=True)
    # the task's own state, not an empty queue: a requeued task can be briefly absent from squeue
    deadline = time.monotonic() + 600
    while not re.search(r"JobState=(COMPLETED|FAILED)", slurm.show_job(task)):
        assert time.monotonic() < deadline, slurm.show_job(task)
        time.sleep(0.5)
    slurm.wait_idle(timeout=600)

    log = (folder / "logs" / f"train-{task}.log").read_text()
    # the job's record too: a requeued start that Slurm itself fails leaves no trace in the log
    assert re.search(r"continuing from the checkpoint of epoch [1-7]\b", log), f"{slurm.show_job(task)}\n{log[-3000:]}"
    assert slurm.job_states()[task] == "COMPLETED"
    summary = json.loads(latest(kedro_project, "data/07_model_output/ae_sweep/vq_beta1_s0/summary.json").read_text())
    assert (summary["status"], summary["epochs_run"]) == ("completed", 8)
    history = pd.read_csv(latest(kedro_project, "data/07_model_output/ae_sweep/vq_beta1_s0/history.csv"))
    assert sorted(history.loc[history["split"] == "val", "epoch"]) == list(range(1, 9)), "every epoch once"


def wait_for(condition, timeout: float, what: str, pause: float = 1.0):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(pause)
    return found


def test_a_task_killed_for_time_shows_timeout_and_a_retry_finishes_it_from_its_checkpoint(slurm, kedro_project):
    """--time=1 (a minute) kills the first attempt part-way; --retries 1 with ten times the time finishes it."""
    params = ("events.synthetic.n_events=10000,ae.trainer.epochs=240,ae.trainer.threads=1,"
              "ae_sweep.grid.model.latent_space=none,ae_sweep.grid.loss.globals_beta=1")
    done = sweeplab(slurm, kedro_project, "submit", "ae_sweep", f"--params={params}", "--time=1", "--retries=1",
                    "--retry-time-factor=10")
    assert done.returncode == 0, done.stderr[-3000:]
    folder = sorted((kedro_project / "data/09_jobs/ae_sweep").iterdir())[-1]
    variant = "none_beta1_s0"
    # the scheduler's truth while the retry waits or runs: the first attempt's TIMEOUT
    row = wait_for(lambda: (r := status_detail(slurm, kedro_project, params, variant)) and "after TIMEOUT" in r and r,
                   timeout=400, what="no retry after a TIMEOUT", pause=3)
    assert row.split()[0] in ("pending", "running"), row
    slurm.wait_idle(timeout=600)

    manifest = json.loads((folder / "manifest.json").read_text())
    first = f"{manifest['jobs']['train'][0]}_0"
    (retry,) = manifest["retries"]
    again = f"{retry['jobs'][0]}_0"
    states = slurm.job_states()
    assert (states[first], states[again]) == ("TIMEOUT", "COMPLETED"), states
    assert retry["states"] == {variant: "TIMEOUT"} and retry["time"] == "0-00:10:00"
    assert [states[job] for job in (*manifest["jobs"]["reports"], manifest["jobs"]["report"])] == ["COMPLETED"] * 2
    log = (folder / "logs" / f"train-{again}.log").read_text()
    assert re.search(r"continuing from the checkpoint of epoch \d+", log), log[-3000:]
    summary = json.loads(latest(kedro_project, f"data/07_model_output/ae_sweep/{variant}/summary.json").read_text())
    assert (summary["status"], summary["epochs_run"]) == ("completed", 240)
    history = pd.read_csv(latest(kedro_project, f"data/07_model_output/ae_sweep/{variant}/history.csv"))
    assert sorted(history.loc[history["split"] == "val", "epoch"]) == list(range(1, 241)), "every epoch once"
    assert status_rows(slurm, kedro_project, "ae_sweep", params) == {variant: "completed"}


def status_detail(slurm: Cluster, project: Path, params: str, variant: str) -> str | None:
    done = sweeplab(slurm, project, "status", "ae_sweep", f"--params={params}")
    rows = [line.split(maxsplit=1)[1] for line in done.stdout.splitlines() if line.startswith(f"  {variant} ")]
    return rows[0] if rows else None


def test_cancel_empties_the_queue_and_status_says_cancelled(slurm, kedro_project):
    params = ("events.synthetic.n_events=10000,ae.trainer.epochs=300,ae.trainer.threads=1,"
              "ae_sweep.grid.model.latent_space=none,ae_sweep.grid.loss.globals_beta=1,ae_sweep.seeds=[0,1,2]")
    done = sweeplab(slurm, kedro_project, "submit", "ae_sweep", f"--params={params}", "--max-parallel=1")
    assert done.returncode == 0, done.stderr[-3000:]
    slots = kedro_project / "data/06_models/checkpoints/ae_sweep"
    wait_for(lambda: list(slots.glob("*/*/last.json")), timeout=300, what="no variant began training")
    done = sweeplab(slurm, kedro_project, "cancel", "ae_sweep")
    assert done.returncode == 0 and "cancelled 4 queued or running task(s)" in done.stdout, done.stdout + done.stderr
    slurm.wait_idle(timeout=120)
    rows = {}
    for variant in (f"none_beta1_s{seed}" for seed in range(3)):
        rows[variant] = status_detail(slurm, kedro_project, params, variant)
    assert all(row.startswith("killed") and "CANCELLED" in row for row in rows.values()), rows


def test_fail_fast_cancels_the_tasks_still_waiting(slurm, kedro_project):
    params = ("events.synthetic.n_events=2000,ae.trainer.epochs=2,ae_sweep.grid.model.latent_space=none,"
              "ae_sweep.grid.loss.globals_beta=1,ae_sweep.grid.trainer.lr=1e30,ae_sweep.seeds=[0,1,2,3,4],"
              "ae_sweep.fail_fast=2")
    manifest, states = submit_and_wait(slurm, kedro_project, "ae_sweep", params, "--max-parallel=1")
    variants = [f"none_beta1_lr1e30_s{seed}" for seed in range(5)]
    assert [states[v] for v in variants] == ["FAILED"] * 2 + ["CANCELLED"] * 3, states
    assert states["report"] == "COMPLETED"
    report = latest(kedro_project, "data/08_reporting/ae_sweep/report").joinpath("report.md").read_text()
    assert "**Fail fast stopped this sweep**: the first 2 variant(s) of ae_sweep to finish all failed" in report


def test_a_submission_refused_part_way_leaves_no_job_queued(slurm, kedro_project):
    """The report job asks for a partition that does not exist: Slurm refuses it after the prep
    job and both arrays are queued; they are cancelled, and no folder claims them."""
    params = "ae.trainer.epochs=1,ae_sweep.grid.model.latent_space=none,ae_sweep.seeds=[0,1,2,3,4,5,6]"
    done = sweeplab(slurm, kedro_project, "submit", "ae_sweep", f"--params={params}", "--env=tiny",
                    "--report=partition=nosuch")
    assert done.returncode == 1, done.stdout
    line = done.stderr.strip().splitlines()[-1]
    assert "failed: sbatch: error:" in line and "cancelled the 3 job(s) it had queued" in line, line
    queue = subprocess.run(["squeue", "-h", "-r", "--states=PENDING,RUNNING"], env=slurm.env, capture_output=True,
                           text=True, check=False)
    assert queue.stdout.strip() == "", "nothing left queued"
    submissions = kedro_project / "data/09_jobs/ae_sweep"
    assert not submissions.exists() or not any(submissions.iterdir()), "no manifest claims jobs that will not run"


def test_a_search_runs_parallel_trials_at_a_time_then_reevaluates_its_best(slurm, kedro_project):
    """Four trials, two in flight: the array's throttle starts trial k once trial k-2 has ended,
    and trial k's config node reads that record before it asks the study: two rounds whose
    second is sampled after the first's results. The re-evaluation is an array after them."""
    import optuna  # noqa: PLC0415

    params = ("ae.trainer.epochs=2,ae_search.search.trials=4,ae_search.search.parallel=2,"
              "ae_search.search.reevaluate=[100],ae_search.search.startup_trials=2,ae_search.search.pruner.type=none")
    manifest, states = submit_and_wait(slurm, kedro_project, "ae_search", params, "--env=tiny")
    trials = ["t000_s0", "t001_s0", "t002_s0", "t003_s0"]
    assert manifest["variants"] == [*trials, "best_s100"]
    assert set(states.values()) == {"COMPLETED"}, states
    folder = Path(sorted((kedro_project / "data/09_jobs/ae_search").iterdir())[-1])
    assert "#SBATCH --array=0-3%2" in (folder / "train-1.sh").read_text()
    assert [a.get("after_arrays", False) for a in manifest["arrays"]] == [False, True]
    (journal,) = (kedro_project / "data/06_models/studies/ae_search").glob("*.journal")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    asked = sorted(study.trials, key=lambda t: t.user_attrs["variant"])
    assert [t.state.name for t in asked] == ["COMPLETE"] * 4
    for later, earlier in ((asked[2], asked[0]), (asked[3], asked[1])):
        assert later.datetime_start >= earlier.datetime_complete, "asked after the trial it waits for was told"
    best = min(asked, key=lambda t: t.value)
    config = (latest(kedro_project, "data/06_models/ae_search/best_s100/config.yml")).read_text()
    assert f"best_of: {best.user_attrs['variant']}" in config
    report = (latest(kedro_project, "data/08_reporting/ae_search/report") / "report.md").read_text()
    assert "4 trials: 4 completed, 0 pruned, 0 failed, 0 missing" in report
    assert f"**Best trial: {best.user_attrs['variant']}**" in report and "Re-evaluated on fresh seeds [100]" in report
    assert status_rows(slurm, kedro_project, "ae_search", params, "--env=tiny") == dict.fromkeys(
        [*trials, "best_s100"], "completed")
