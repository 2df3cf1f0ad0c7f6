"""``sweeplab submit``, ``status``, ``cancel`` and the retries' follow-up with Slurm's commands
faked: the scripts, the manifest, the dependency chain, resume, and the states read from saved
records joined with what the queue says."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from kedro.io import Version

from sweeplab.cluster.cli import cluster
from sweeplab.cluster.schedulers import JOB_KEYS, array_tasks, format_time, parse_time
from sweeplab.cluster.state import open_sweep
from sweeplab.datasets.run_records import RunSummaryDataset
from tests.conftest import REPO

PARAMS = "events.synthetic.n_events=2000,ae.trainer.epochs=1,ae_sweep.grid.model.latent_space=[none,vq]," \
         "ae_sweep.grid.loss.globals_beta=1,ae_sweep.grid.trainer.lr=1e-3 1e30"
VARIANTS = ["none_beta1_lr0p001_s0", "none_beta1_lr1e30_s0", "vq_beta1_lr0p001_s0", "vq_beta1_lr1e30_s0"]

FAKE_SBATCH = """#!/bin/sh
# records its arguments, one call per line, and answers with the next job id; FAIL_SBATCH=K
# refuses the K-th call
echo "$@" >> {log}
n=$(wc -l < {log})
[ "$FAIL_SBATCH" = "$n" ] && {{ echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1; }}
echo "$((100 + n));cluster"
"""
FAKE_SCONTROL = """#!/bin/sh
# what `scontrol show config` says of job arrays: Slurm's default unless FAKE_MAX_ARRAY is set
echo "Configuration data as of 2026-12-05T00:00:00"
echo "MaxArraySize            = ${FAKE_MAX_ARRAY:-1001}"
"""
FAKE_SCANCEL = """#!/bin/sh
echo "$@" >> {log}
"""
FAKE_SQUEUE = """#!/bin/sh
# the queue as the test wrote it (id|STATE|reason lines); none: it knows no job, as squeue fails
[ -s "$FAKE_QUEUE" ] || {{ echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1; }}
cat "$FAKE_QUEUE"
"""
FAKE_SACCT = """#!/bin/sh
echo "Slurm accounting storage is disabled" >&2
exit 1
"""
FAKE_SACCTMGR = """#!/bin/sh
# the user's association limit where FAKE_MAX_SUBMIT is set; else no accounting, as on the CI's cluster
[ -n "$FAKE_MAX_SUBMIT" ] || { echo "sacctmgr: error: Problem talking to the database" >&2; exit 1; }
echo "$FAKE_MAX_SUBMIT"
echo ""
"""


@pytest.fixture
def project(kedro_project, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH.format(log=tmp_path / "sbatch.log")), ("scontrol", FAKE_SCONTROL),
                       ("scancel", FAKE_SCANCEL.format(log=tmp_path / "scancel.log")),
                       ("squeue", FAKE_SQUEUE.format()), ("sacct", FAKE_SACCT), ("sacctmgr", FAKE_SACCTMGR)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QUEUE", str(tmp_path / "queue.txt"))
    monkeypatch.chdir(kedro_project)
    return kedro_project


def sweeplab(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cluster, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def sbatch_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "sbatch.log"
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def only_folder(project: Path) -> Path:
    folders = sorted((project / "data/09_jobs/ae_sweep").iterdir())
    return folders[-1]


def test_dry_run_writes_readable_scripts_and_submits_nothing(project, tmp_path):
    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}", "--dry-run", "--max-parallel=2",
                         "--partition=gpu", "--time=01:00:00", "--mem=4G", "--cpus-per-task=2",
                         "--gpus-per-task=1", "--account=lab", "--sbatch=--qos=long",
                         "--prep=time=04:00:00, gpus-per-task=1,mem=16G")
    assert code == 0, out
    assert "4 variants, 0 completed, 4 to run" in out and "Dry run: nothing submitted." in out
    assert sbatch_calls(tmp_path) == []
    folder = only_folder(project)
    assert (folder / "variants.txt").read_text().split() == VARIANTS
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["variants"] == VARIANTS and manifest["dry_run"] and manifest["jobs"] == {}
    assert len(set(manifest["config_hashes"].values())) == 4
    train = (folder / "train.sh").read_text()
    for line in ("#SBATCH --array=0-3%2", "#SBATCH --partition=gpu", "#SBATCH --time=01:00:00", "#SBATCH --mem=4G",
                 "#SBATCH --cpus-per-task=2", "#SBATCH --ntasks=1", "#SBATCH --gpus-per-task=1", "#SBATCH --account=lab",
                 "#SBATCH --qos=long", "#SBATCH --requeue", f"#SBATCH --output={folder}/logs/train-%A_%a.log"):
        assert line in train.splitlines(), line
    run_line = train.splitlines()[-1]
    assert shlex.split(run_line)[:3] == [sys.executable, "-m", "sweeplab"]
    assert "--pipelines=ae_sweep_train" in run_line and '--namespaces=ae_sweep."$variant"' in run_line
    assert shlex.split(run_line)[-1] == f"--params={PARAMS}", "the run options reach the job unsplit"
    prep, report = ((folder / f"{job}.sh").read_text() for job in ("prep", "report"))
    directives = {job: [line for line in text.splitlines() if line.startswith("#SBATCH --") and "=" in line
                        and line.split("=")[0] in {f"#SBATCH --{k}" for k in JOB_KEYS}]
                  for job, text in (("prep", prep), ("report", report))}
    assert directives == {"prep": ["#SBATCH --time=04:00:00", "#SBATCH --mem=16G", "#SBATCH --gpus-per-task=1"],
                          "report": []}, "each asks for its own, else the cluster's defaults"
    assert "#SBATCH --account=lab" in prep and "#SBATCH --qos=long" in report, "who pays, and site rules: every job"
    assert manifest["resources"]["prep"] == {"time": "04:00:00", "mem": "16G", "gpus_per_task": 1, "account": "lab",
                                             "extra": ["--qos=long"]}
    assert "--pipelines=ae_prep" in (folder / "prep.sh").read_text()
    assert "--pipelines=ae_sweep_report" in (folder / "report.sh").read_text()
    for job in ("prep", "train", "report"):
        syntax = subprocess.run(["bash", "-n", str(folder / f"{job}.sh")], capture_output=True, text=True, check=False)
        assert syntax.returncode == 0, syntax.stderr


def test_the_array_task_finds_its_variant_and_the_prep_versions(project):
    """train.sh's own lines, run by bash with the variables Slurm would set."""
    sweeplab("submit", "ae_sweep", f"--params={PARAMS}", "--dry-run")
    folder = only_folder(project)
    (folder / "prep_versions.txt").write_text("ae_inputs:2026-01-01T00.00.00.000Z\nevents_split:2026-01-01T00.00.00.000Z\n")
    lines = (folder / "train.sh").read_text().splitlines()
    body = [line for line in lines if line.startswith(("variant=", "versions="))]
    shown = subprocess.run(["bash", "-c", "\n".join([*body, 'echo "$variant|$versions"'])], capture_output=True,
                           text=True, env={**os.environ, "SLURM_ARRAY_TASK_ID": "2"}, check=True)
    assert shown.stdout.strip() == f"{VARIANTS[2]}|ae_inputs:2026-01-01T00.00.00.000Z,events_split:2026-01-01T00.00.00.000Z"


def test_submit_chains_prep_array_and_report(project, tmp_path):
    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    assert code == 0, out
    prep, train, report = sbatch_calls(tmp_path)
    folder = only_folder(project)
    assert prep == ["--parsable", str(folder / "prep.sh")]
    assert train == ["--parsable", "--dependency=afterok:101", "--kill-on-invalid-dep=yes", str(folder / "train.sh")]
    assert report == ["--parsable", "--dependency=afterany:102", str(folder / "report.sh")]
    assert json.loads((folder / "manifest.json").read_text())["jobs"] == {"prep": "101", "train": ["102"], "report": "103"}
    assert "Submitted: prep 101; variants 102 (4 tasks, after prep succeeds); report 103" in out


def test_a_sweep_larger_than_the_array_limit_is_several_arrays(project, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MAX_ARRAY", "3")
    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    assert code == 0, out
    folder = only_folder(project)
    prep, first, second, report = sbatch_calls(tmp_path)
    assert (first[-1], second[-1]) == (str(folder / "train-1.sh"), str(folder / "train-2.sh"))
    assert first[1:3] == second[1:3] == ["--dependency=afterok:101", "--kill-on-invalid-dep=yes"]
    assert report == ["--parsable", "--dependency=afterany:102:103", str(folder / "report.sh")]
    assert "#SBATCH --array=0-2" in (folder / "train-1.sh").read_text()
    assert "#SBATCH --array=0-0" in (folder / "train-2.sh").read_text()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["arrays"] == [{"script": "train-1.sh", "first": 0, "tasks": 3},
                                  {"script": "train-2.sh", "first": 3, "tasks": 1}]
    assert manifest["array_limit"] == {"MaxArraySize": 3} and manifest["jobs"]["train"] == ["102", "103"]
    assert "variants 102, 103 (4 tasks in 2 arrays: this cluster's MaxArraySize is 3" in out
    code, out = sweeplab("status", "ae_sweep", f"--params={PARAMS}")
    planned = status_rows(out)
    assert planned[VARIANTS[2]][1].endswith("job 102_2") and planned[VARIANTS[3]][1].endswith("job 103_0"), planned
    (folder / "prep_versions.txt").write_text("ae_inputs:v\n")
    for script, task, variant in (("train-1.sh", 2, VARIANTS[2]), ("train-2.sh", 0, VARIANTS[3])):
        body = [line for line in (folder / script).read_text().splitlines() if line.startswith("variant=")]
        shown = subprocess.run(["bash", "-c", "\n".join([*body, 'echo "$variant"'])], capture_output=True, text=True,
                               env={**os.environ, "SLURM_ARRAY_TASK_ID": str(task)}, check=True)
        assert shown.stdout.strip() == variant, script


def test_a_submission_refused_part_way_takes_back_what_it_queued(project, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MAX_ARRAY", "3")
    monkeypatch.setenv("FAIL_SBATCH", "3")  # the second array is refused
    with pytest.raises(Exception, match=r"Invalid account; cancelled the 2 job\(s\) it had queued \(101, 102\)$"):
        sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    assert (tmp_path / "scancel.log").read_text().split() == ["101", "102"]
    assert not list((project / "data/09_jobs/ae_sweep").iterdir()), "no manifest claims jobs that will not run"


@pytest.mark.parametrize(("spec", "named"), [
    ("time", "'time'; expected key=value"), ("gpus=1", "'gpus=1'; expected key=value with a key among partition"),
    ("cpus-per-task=0", "cpus-per-task=0; expected a whole number"), ("mem=", "'mem='; expected key=value")])
def test_a_bad_job_resource_is_one_line_before_anything_is_written(project, tmp_path, spec, named):
    with pytest.raises(Exception, match=rf"^--report: {named}"):
        sweeplab("submit", "ae_sweep", f"--params={PARAMS}", f"--report={spec}")
    assert not (project / "data/09_jobs").exists() and sbatch_calls(tmp_path) == []


@pytest.mark.parametrize(("world", "gpus", "named"), [
    (4, "--gpus-per-task=2", "world_size is 4 but --gpus-per-task=2; set it to auto or 2, or ask for 4 GPUs"),
    (2, "--mem=1G", "world_size is 2 on cuda, but no GPUs are asked for; add --gpus-per-task=2")])
def test_ranks_that_do_not_fit_the_gpus_asked_for_are_refused_before_anything_is_written(project, tmp_path, world,
                                                                                          gpus, named):
    params = f"{PARAMS},ae.trainer.distributed.world_size={world},ae.trainer.device=cuda"
    with pytest.raises(Exception, match=rf"^ae_sweep\.none_beta1_lr0p001_s0: ae\.trainer\.distributed\.{named}$"):
        sweeplab("submit", "ae_sweep", f"--params={params}", gpus)
    assert not (project / "data/09_jobs").exists() and sbatch_calls(tmp_path) == []


def test_a_refused_submission_is_one_line(project, monkeypatch):
    monkeypatch.setenv("FAIL_SBATCH", "1")
    with pytest.raises(Exception, match=r"sbatch --parsable .*failed: sbatch: error: .*Invalid account$"):
        sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    with pytest.raises(Exception, match=r"no_such_sweep: not a sweep of this project's parameters; sweeps are \["):
        sweeplab("submit", "no_such_sweep")


def status_rows(out: str) -> dict[str, list[str]]:
    """variant -> [state, detail] from the command's output (log lines may sit among them)."""
    return {line.split()[0]: line.split(maxsplit=2)[1:] for line in out.splitlines()
            if line.startswith("  ") and line.split()[0] in VARIANTS}


def save_summary(opened, variant: str, status: str, **extra) -> None:
    by_name = {v.name: v for v in opened.variants}
    dataset = RunSummaryDataset(filepath=f"data/07_model_output/ae_sweep/{variant}/summary.json",
                                version=Version(None, None))
    dataset.save({"status": status, "reason": extra.pop("reason", ""), "config_hash":
                  extra.pop("config_hash", opened.config_hash(by_name[variant])), "best_val_loss": 1.5,
                  "best_epoch": 3, "monitor": "total_loss",
                  "code_identity": extra.pop("code_identity", opened.family.code_identity().digest), **extra})


def test_status_and_resume_read_the_saved_records(project, tmp_path):
    opened = open_sweep("ae_sweep", env=None, conf_source=None, params=_params())
    save_summary(opened, VARIANTS[0], "completed")
    save_summary(opened, VARIANTS[1], "failed", reason="NonFiniteLoss: non-finite total_loss at epoch 1 (train)")
    save_summary(opened, VARIANTS[3], "completed", config_hash="another")
    time.sleep(0.01)  # a checkpoint written after the summary: a run under way
    slot = (project / "data/06_models/checkpoints/ae_sweep" / VARIANTS[2]
            / f"{opened.config_hash(opened.variants[2])}-ab-{opened.family.code_identity().digest}")
    slot.mkdir(parents=True)
    (slot / "last.pt").write_bytes(b"state")

    code, out = sweeplab("status", "ae_sweep", f"--params={PARAMS}")
    assert code == 0, out
    rows = status_rows(out)
    assert rows == {VARIANTS[0]: ["completed", "total_loss 1.5 at epoch 3"],
                    VARIANTS[1]: ["failed", "NonFiniteLoss: non-finite total_loss at epoch 1 (train)"],
                    VARIANTS[2]: ["running", rows[VARIANTS[2]][1]],
                    VARIANTS[3]: ["missing", "its record is of another config"]}
    assert rows[VARIANTS[2]][1].startswith("last checkpoint ")
    assert "ae_sweep: 4 variants: 1 completed, 0 outdated, 1 failed, 0 killed, 1 running, 0 pending, 0 planned, 1 missing" in out

    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    assert code == 0 and "4 variants, 1 completed, 3 to run" in out
    assert (only_folder(project) / "variants.txt").read_text().split() == VARIANTS[1:]
    code, out = sweeplab("status", "ae_sweep", f"--params={PARAMS}")
    rows = status_rows(out)
    assert rows[VARIANTS[3]] == ["planned", f"submitted {only_folder(project).name}, job 102_2"]
    assert rows[VARIANTS[1]][0] == "planned", "a failed variant submitted again is planned"


def test_a_variant_finished_by_other_code_is_outdated_and_is_submitted_again(project, tmp_path):
    opened = open_sweep("ae_sweep", env=None, conf_source=None, params=_params())
    now = opened.family.code_identity().digest
    save_summary(opened, VARIANTS[0], "completed")
    save_summary(opened, VARIANTS[1], "completed", code_identity="0123456789ab")
    save_summary(opened, VARIANTS[2], "completed", code_identity=None)  # from before code identities
    save_summary(opened, VARIANTS[3], "completed")

    code, out = sweeplab("status", "ae_sweep", f"--params={PARAMS}")
    assert code == 0, out
    rows = status_rows(out)
    assert rows[VARIANTS[1]] == ["outdated", f"trained by code 0123456789ab; the code is now {now} "
                                 "(keep it: --params ae_sweep.resume.code=keep)"]
    assert rows[VARIANTS[2]][1].startswith("trained by code unrecorded;")
    assert [rows[v][0] for v in (VARIANTS[0], VARIANTS[3])] == ["completed", "completed"]
    assert "ae_sweep: 4 variants: 2 completed, 2 outdated, 0 failed" in out

    kept = f"{PARAMS},ae_sweep.resume.code=keep"
    code, out = sweeplab("status", "ae_sweep", f"--params={kept}")
    assert status_rows(out)[VARIANTS[1]] == ["completed", "total_loss 1.5 at epoch 3 (kept: trained by code "
                                             "0123456789ab)"]
    code, out = sweeplab("submit", "ae_sweep", f"--params={kept}")
    assert code == 0 and "all 4 variants have a completed record; nothing to submit" in out

    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    assert code == 0 and "4 variants, 2 completed, 2 to run" in out, out
    assert (only_folder(project) / "variants.txt").read_text().split() == VARIANTS[1:3]


def _params() -> dict:
    return {"events": {"synthetic": {"n_events": 2000}}, "ae": {"trainer": {"epochs": 1}},
            "ae_sweep": {"grid": {"model": {"latent_space": "none vq"}, "loss": {"globals_beta": 1},
                                  "trainer": {"lr": "1e-3 1e30"}}}}


def test_nothing_to_submit_when_every_variant_completed(project, tmp_path):
    opened = open_sweep("ae_sweep", env=None, conf_source=None, params=_params())
    for variant in VARIANTS:
        save_summary(opened, variant, "completed")
    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    assert code == 0 and "all 4 variants have a completed record; nothing to submit" in out
    assert "--all --dry-run shows the job scripts" in out
    assert sbatch_calls(tmp_path) == [] and not (project / "data/09_jobs").exists()

    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}", "--all", "--dry-run")
    assert code == 0 and "4 variants, 4 completed, 4 to run" in out and "# ---- train:" in out, out
    assert (only_folder(project) / "variants.txt").read_text().split() == VARIANTS
    assert sbatch_calls(tmp_path) == []


def test_the_sweeplab_command_knows_every_cluster_command():
    from sweeplab.__main__ import CLUSTER_COMMANDS  # noqa: PLC0415

    assert set(cluster.commands) == CLUSTER_COMMANDS


def test_sweeplab_help_lists_every_command_and_run_help_the_runs_options():
    shown = subprocess.run([sys.executable, "-m", "sweeplab", "--help"], capture_output=True, text=True, check=True)
    listed = {line.split()[0] for line in shown.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {name for name, command in cluster.commands.items() if not command.hidden}
    assert "sweeplab run [OPTIONS]" in shown.stdout
    run = subprocess.run([sys.executable, "-m", "sweeplab", "run", "--help"], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert "--pipelines" in run.stdout and "--load-versions" in run.stdout


def queue(tmp_path: Path, *rows: str) -> None:
    (tmp_path / "queue.txt").write_text("".join(f"{row}\n" for row in rows))


def test_status_joins_the_records_with_what_the_queue_says(project, tmp_path):
    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}")  # prep 101, variants 102, report 103
    assert code == 0, out
    opened = open_sweep("ae_sweep", env=None, conf_source=None, params=_params())
    slot = (project / "data/06_models/checkpoints/ae_sweep" / VARIANTS[2]
            / f"{opened.config_hash(opened.variants[2])}-ab-{opened.family.code_identity().digest}")
    slot.mkdir(parents=True)
    (slot / "last.json").write_text('{"epoch": 1}')
    queue(tmp_path, "101|COMPLETED|None", "102_0|RUNNING|None", "102_1|PENDING|Resources", "102_2|TIMEOUT|None",
          "102_3|FAILED|NonZeroExitCode", "103|PENDING|Dependency")
    code, out = sweeplab("status", "ae_sweep", f"--params={PARAMS}")
    assert code == 0, out
    folder = only_folder(project)
    assert status_rows(out) == {
        VARIANTS[0]: ["running", "job 102_0, no epoch of 1 checkpointed"],
        VARIANTS[1]: ["pending", "job 102_1 (Resources)"],
        VARIANTS[2]: ["killed", "TIMEOUT: job 102_2, epoch 1 of 1; submitting again runs it on from its last checkpoint"],
        VARIANTS[3]: ["failed", f"FAILED: job 102_3 ended without a run record; see {folder}/logs/train-102_3.log"]}
    assert "4 variants: 0 completed, 0 outdated, 1 failed, 1 killed, 1 running, 1 pending, 0 planned, 0 missing" in out


def test_retries_resubmit_only_what_the_scheduler_killed_with_more_time(project, tmp_path):
    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}", "--retries=1", "--time=10",
                         "--retry-time-factor=1.5")
    assert code == 0 and "up to 1 time(s)" in out, out
    folder = only_folder(project)
    assert f"-m sweeplab follow-up {folder}" in (folder / "report.sh").read_text()
    queue(tmp_path, "102_0|COMPLETED|None", "102_1|FAILED|NonZeroExitCode", "102_2|TIMEOUT|None",
          "102_3|OUT_OF_MEMORY|None")
    code, out = sweeplab("follow-up", str(folder))
    assert code == 10 and f"resubmitted 1 task(s) the scheduler killed: {VARIANTS[2]}" in out, out
    retry, report = sbatch_calls(tmp_path)[3:]
    assert retry == ["--parsable", str(folder / "retry-1.sh")], "the data prep is done: no dependency"
    assert report == ["--parsable", "--dependency=afterany:104", str(folder / "report.sh")]
    assert (folder / "retry-1.txt").read_text().split() == [VARIANTS[2]]
    script = (folder / "retry-1.sh").read_text().splitlines()
    assert "#SBATCH --time=0-00:15:00" in script and "#SBATCH --array=0-0" in script
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["jobs"] == {"prep": "101", "train": ["102"], "report": "105", "reports": ["103"]}
    assert manifest["retries"][0]["states"] == {VARIANTS[2]: "TIMEOUT"}

    queue(tmp_path, "102_2|TIMEOUT|None", "104_0|PENDING|Priority")
    code, out = sweeplab("status", "ae_sweep", f"--params={PARAMS}")
    assert status_rows(out)[VARIANTS[2]] == ["pending", "job 104_0 (Priority); attempt 2, after TIMEOUT"]
    queue(tmp_path, "102_2|TIMEOUT|None", "104_0|TIMEOUT|None")
    code, out = sweeplab("follow-up", str(folder))
    assert code == 0 and "nothing to retry" in out, "one retry allowed, one made"
    assert len(sbatch_calls(tmp_path)) == 5


@pytest.mark.parametrize(("options", "named"), [
    (["--retry-time-factor=2"], "--retry-time-factor needs --time"),
    (["--time=1:2:3:4"], "--time: '1:2:3:4'; expected a time such as 90"),
    (["--time=10", "--retry-time-factor=0.5"], "--retry-time-factor: got 0.5; expected 1 or more")])
def test_bad_retry_options_are_one_line_before_anything_is_written(project, tmp_path, options, named):
    with pytest.raises(Exception, match=rf"^{named}"):
        sweeplab("submit", "ae_sweep", f"--params={PARAMS}", "--retries=1", *options)
    assert not (project / "data/09_jobs").exists() and sbatch_calls(tmp_path) == []


@pytest.mark.parametrize(("value", "seconds", "shown"), [
    ("90", 5400, "0-01:30:00"), ("5:30", 330, "0-00:06:00"), ("02:00:00", 7200, "0-02:00:00"),
    ("1-12", 129600, "1-12:00:00"), ("2-0:30", 174600, "2-00:30:00"), ("1-00:00:01", 86401, "1-00:01:00")])
def test_slurm_times_read_and_write_back(value, seconds, shown):
    assert parse_time(value, "--time") == seconds
    assert format_time(seconds) == shown


def test_cancel_takes_the_queued_and_running_jobs_of_the_newest_submission(project, tmp_path):
    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    assert code == 0, out
    queue(tmp_path, "101|COMPLETED|None", "102_0|COMPLETED|None", "102_1|RUNNING|None", "102_2|PENDING|None",
          "102_3|PENDING|None", "103|PENDING|Dependency")
    code, out = sweeplab("cancel", "ae_sweep", f"--variant={VARIANTS[2]}")
    assert code == 0 and (tmp_path / "scancel.log").read_text().split() == ["102_2"], out
    code, out = sweeplab("cancel", "ae_sweep")
    assert code == 0 and "cancelled 4 queued or running task(s)" in out, out
    assert (tmp_path / "scancel.log").read_text().splitlines()[-1].split() == ["102", "103"]
    code, out = sweeplab("cancel", "ae_sweep", "--variant=no_such_variant")
    assert code != 0 and "ae_sweep.no_such_variant: not a variant of the submission" in out


@pytest.mark.parametrize(("job", "tasks"), [
    ("12", ["12"]), ("12_3", ["12_3"]), ("12_[2-4]", ["12_2", "12_3", "12_4"]),
    ("12_[0,5-6%2]", ["12_0", "12_5", "12_6"])])
def test_a_record_slurm_never_split_names_each_of_its_tasks(job, tasks):
    assert array_tasks(job) == tasks


def test_a_submission_past_the_users_submit_limit_is_refused_before_anything_is_written(project, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv("FAKE_MAX_SUBMIT", "7")
    queue(tmp_path, "90|RUNNING|None", "91_0|PENDING|Priority")  # two of the user's jobs already queued
    with pytest.raises(Exception, match=r"^ae_sweep: 6 jobs \(prep, 4 variants' tasks, report\) would pass this "
                                        r"cluster's MaxSubmitJobs of 7 for you \(2 already queued\); submit part"):
        sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    assert not (project / "data/09_jobs").exists() and sbatch_calls(tmp_path) == []
    monkeypatch.setenv("FAKE_MAX_SUBMIT", "8")
    code, out = sweeplab("submit", "ae_sweep", f"--params={PARAMS}")
    assert code == 0, out
