"""Tracking UIs: a tiny tracked sweep, read back through MLflow's client and TensorBoard's
event reader; off, tracking leaves nothing behind and imports nothing."""

from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sweeplab.config import ConfigError
from sweeplab.errors import SweepFailedError
from sweeplab.integration.tracking import config_params
from tests.conftest import TINY_PARAMS, copy_project
from tests.test_kedro_run import kedro_cli, latest, run_session
from tests.wandb_files import read_run

# two variants; lr=1e30 fails with a non-finite loss, its sibling completes
PARAMS = copy.deepcopy(TINY_PARAMS)
PARAMS["events"]["synthetic"]["n_events"] = 2000
PARAMS["ae_sweep"]["grid"] = {"model": {"latent_space": "vq"}, "loss": {"globals_beta": 1}, "trainer": {"lr": "1e-3 1e30"}}
GOOD, BAD = "vq_beta1_lr0p001_s0", "vq_beta1_lr1e30_s0"
TRACKED = {**PARAMS, "tracking": {"mlflow": {"enabled": True}, "tensorboard": {"enabled": True},
                                   "wandb": {"enabled": True}}}
STORE = "data/09_tracking/mlflow.db"


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> Path:
    """A project after one tracked run of the two-variant sweep."""
    project = copy_project(tmp_path_factory.mktemp("tracked") / "project")
    with pytest.raises(SweepFailedError, match=BAD):
        run_session(project, params=TRACKED)
    return project


def history(project: Path, variant: str) -> pd.DataFrame:
    return pd.read_csv(latest(project, f"data/07_model_output/ae_sweep/{variant}/history.csv"))


def per_epoch(frame: pd.DataFrame) -> dict[str, list[tuple[int, float]]]:
    """``split/metric`` -> [(epoch, value)], as the trackers log a history."""
    points: dict[str, list[tuple[int, float]]] = {}
    for row in frame.to_dict("records"):
        for column, value in row.items():
            if column not in ("epoch", "split") and pd.notna(value):
                points.setdefault(f"{row['split']}/{column}", []).append((row["epoch"], value))
    return points


def test_mlflow_holds_a_parent_run_and_a_nested_run_per_variant(tracked):
    from mlflow.tracking import MlflowClient  # noqa: PLC0415 - the off test checks that nothing imports it

    client = MlflowClient(f"sqlite:///{tracked / STORE}")
    experiment = client.get_experiment_by_name("sweeplab")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert (parent.info.run_name, parent.info.status) == ("ae_sweep", "FAILED"), "a variant failed"
    assert parent.data.params["family"] == "ae" and parent.data.params["grid.trainer.lr"] == "1e-3 1e30"
    assert parent.data.metrics == {"variants_run": 2, "variants_failed": 1}

    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert sorted(children) == sorted([GOOD, BAD])
    assert (children[GOOD].info.status, children[GOOD].data.tags["status"]) == ("FINISHED", "completed")
    assert (children[BAD].info.status, children[BAD].data.tags["status"]) == ("FAILED", "failed")
    assert "non-finite" in children[BAD].data.tags["reason"]

    for variant, run in children.items():
        config = yaml.safe_load(latest(tracked, f"data/06_models/ae_sweep/{variant}/config.yml").read_text())
        assert run.data.params == {k: str(v) for k, v in config_params(config).items()}
        assert run.data.tags["config_hash"] == config["config_hash"]
        expected = per_epoch(history(tracked, variant))
        for key, points in expected.items():
            logged = client.get_metric_history(run.info.run_id, key)
            assert [(m.step, m.value) for m in logged] == [(e, pytest.approx(v)) for e, v in points], key
        artefacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
        assert artefacts == {"figures/losses.png", "figures/recon.png"}

    assert len(per_epoch(history(tracked, GOOD))["val/rec_tokens"]) == 2, "both epochs"
    best = json.loads(latest(tracked, f"data/07_model_output/ae_sweep/{GOOD}/summary.json").read_text())["best"]
    assert children[GOOD].data.metrics["best/val/rec_tokens"] == pytest.approx(best["val"]["rec_tokens"])


def test_tensorboard_has_one_event_folder_per_variant(tracked):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer  # noqa: PLC0415

    # what `tensorboard --logdir data/07_model_output/ae_sweep` sees: one run per variant
    runs = EventMultiplexer().AddRunsFromDirectory(str(tracked / "data/07_model_output/ae_sweep"))
    runs.Reload()
    assert sorted(runs.Runs()) == sorted([GOOD, BAD])
    for variant in (GOOD, BAD):
        events = runs.GetAccumulator(variant)
        expected = per_epoch(history(tracked, variant))
        assert set(expected) <= set(events.Tags()["scalars"])
        for tag, points in expected.items():
            assert [(e.step, e.value) for e in events.Scalars(tag)] == [(s, pytest.approx(v, rel=1e-6)) for s, v in points]
    assert "best/val/rec_tokens" in runs.GetAccumulator(GOOD).Tags()["scalars"]
    hparams = runs.PluginRunToTagToContent("hparams")
    assert set(hparams) == {GOOD, BAD}, "each variant's config as hyperparameters"


def test_wandb_writes_a_run_per_variant_grouped_by_sweep_offline(tracked):
    runs = {run["name"]: run for run in map(read_run, (tracked / "data/09_tracking/wandb").glob("offline-run-*"))}
    assert sorted(runs) == sorted([GOOD, BAD]) and {r["group"] for r in runs.values()} == {"ae_sweep"}
    for variant, run in runs.items():
        config = yaml.safe_load(latest(tracked, f"data/06_models/ae_sweep/{variant}/config.yml").read_text())
        assert run["config"] == {k: v for k, v in config_params(config).items()}
        for key, points in per_epoch(history(tracked, variant)).items():
            logged = [(step, row[key]) for step, row in sorted(run["history"].items()) if key in row]
            assert logged == [(e, pytest.approx(v)) for e, v in points], key
    assert runs[GOOD]["summary"]["status"] == "completed" and runs[GOOD]["exit_code"] == 0
    assert "best/val/rec_tokens" in runs[GOOD]["summary"]
    logged = {k for row in runs[GOOD]["history"].values() for k in row}
    assert {"figures/losses/_type", "figures/recon/_type"} <= logged, "the variant's figures, as W&B images"
    assert runs[BAD]["summary"]["status"] == "failed" and runs[BAD]["exit_code"] == 1


def test_a_tracking_error_warns_and_never_fails_the_run(kedro_project):
    (kedro_project / "data/09_tracking").mkdir(parents=True)
    (kedro_project / "data/09_tracking/mlflow.db").write_text("not a database")
    params = copy.deepcopy(TRACKED)
    params["ae_sweep"]["grid"]["trainer"]["lr"] = "1e-3"
    params["ae"]["trainer"]["epochs"] = 1
    # a handler of its own on the module's logger: a session may reconfigure the root's
    logger, said = logging.getLogger("sweeplab.integration.tracking"), []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())
    logger.addHandler(handler)
    try:
        run_session(kedro_project, params=params)
    finally:
        logger.removeHandler(handler)
    assert any("MLflow tracking is off for the rest of this run" in line for line in said)
    assert json.loads(latest(kedro_project, f"data/07_model_output/ae_sweep/{GOOD}/summary.json").read_text())["status"] == "completed"
    assert list((kedro_project / f"data/07_model_output/ae_sweep/{GOOD}").glob("events.out.tfevents.*")), "TensorBoard still on"


def test_a_typo_in_tracking_is_a_one_line_error(kedro_project):
    params = {**PARAMS, "tracking": {"mlflow": {"enabeld": True}}}
    with pytest.raises(ConfigError, match=r"^tracking\.mlflow\.enabeld: unknown key; did you mean tracking\.mlflow\.enabled\?$"):
        run_session(kedro_project, params=params)
    params = {**PARAMS, "tracking": {"tensorboard": {"enabled": "yes"}}}
    with pytest.raises(ConfigError, match=r"^tracking\.tensorboard\.enabled: got 'yes'; expected true or false$"):
        run_session(kedro_project, params=params)
    params = {**PARAMS, "tracking": {"wandb": {"mode": "onlin"}}}
    with pytest.raises(ConfigError, match=r"^tracking\.wandb\.mode: got 'onlin'; expected offline or online$"):
        run_session(kedro_project, params=params)


OFF = """
import json, sys
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
bootstrap_project(sys.argv[1])
with KedroSession.create(project_path=sys.argv[1], runtime_params=json.loads(sys.argv[2])) as session:
    session.run(pipeline_names=["ae_sweep"])
print(sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "wandb") or "tensorboard" in m))
"""


def test_off_by_default_nothing_is_written_and_nothing_imported(kedro_project):
    params = copy.deepcopy(PARAMS)
    params["ae_sweep"]["grid"]["trainer"]["lr"] = "1e-3"
    params["ae"]["trainer"]["epochs"] = 1
    done = subprocess.run([sys.executable, "-c", OFF, str(kedro_project), json.dumps(params)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", "neither mlflow, tensorboard nor wandb imported"
    assert not (kedro_project / "data/09_tracking").exists()
    assert not list((kedro_project / "data").rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_parallel_runner_workers_track_too(kedro_project):
    params = ("events.synthetic.n_events=2000,ae.trainer.epochs=2,ae_sweep.grid.model.latent_space=none vq,"
              "ae_sweep.grid.loss.globals_beta=1,tracking.mlflow.enabled=true,tracking.tensorboard.enabled=true")
    done = kedro_cli(kedro_project, "--pipelines=ae_sweep", f"--params={params}", "--runner=ParallelRunner",
                     "--runner-params=max_workers=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tracking is off" not in done.stdout + done.stderr

    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    client = MlflowClient(f"sqlite:///{kedro_project / STORE}")
    runs = client.search_runs([client.get_experiment_by_name("sweeplab").experiment_id])
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == ["none_beta1_s0", "vq_beta1_s0"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    for run in children.values():
        assert len(client.get_metric_history(run.info.run_id, "val/rec_tokens")) == 2
        assert {a.path for a in client.list_artifacts(run.info.run_id, "figures")} == {"figures/losses.png",
                                                                                       "figures/recon.png"}
    for variant in children:
        assert list((kedro_project / f"data/07_model_output/ae_sweep/{variant}").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_epochs_show_while_a_variant_trains_and_a_stopped_run_is_killed(kedro_project):
    """A real `kedro run`, read back from outside while it trains, then stopped with SIGTERM
    (what a scheduler sends at a time limit)."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import time  # noqa: PLC0415

    from mlflow.tracking import MlflowClient  # noqa: PLC0415
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: PLC0415

    params = ("events.synthetic.n_events=2000,ae.trainer.epochs=100000,ae_sweep.grid.model.latent_space=none,"
              "ae_sweep.grid.loss.globals_beta=1,tracking.mlflow.enabled=true,tracking.tensorboard.enabled=true,"
              "tracking.wandb.enabled=true")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    running = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipelines=ae_sweep", f"--params={params}"],
                               cwd=kedro_project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, seen = time.monotonic() + 240, 0
        while seen < 3:
            assert time.monotonic() < deadline and running.poll() is None, "no live epochs"
            time.sleep(1)
            # the variant's event file: its node has begun, after the run made MLflow's store (a
            # client opened before that would race the run's own set-up of the database)
            if not list((kedro_project / "data/07_model_output/ae_sweep/none_beta1_s0").glob("events.out.*")):
                continue
            client = MlflowClient(f"sqlite:///{kedro_project / STORE}")
            experiment = client.get_experiment_by_name("sweeplab")
            runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags
                    ] if experiment else []
            if runs:
                seen = len(client.get_metric_history(runs[0].info.run_id, "val/rec_tokens"))
        assert runs[0].info.status == "RUNNING"
        events = EventAccumulator(str(kedro_project / "data/07_model_output/ae_sweep/none_beta1_s0"))
        events.Reload()
        assert len(events.Scalars("val/rec_tokens")) >= 3, "TensorBoard's file holds the epochs so far"
        (offline,) = (kedro_project / "data/09_tracking/wandb").glob("offline-run-*")
        # W&B's service writes its offline file every few seconds, not at each epoch
        deadline = time.monotonic() + 90
        while len([row for row in read_run(offline)["history"].values() if "val/rec_tokens" in row]) < 3:
            assert time.monotonic() < deadline and running.poll() is None, "no W&B epochs while it trains"
            time.sleep(2)
        assert not list((kedro_project / "data/07_model_output/ae_sweep/none_beta1_s0").glob("summary.json/*")), \
            "read back while the variant trains"
        running.send_signal(signal.SIGTERM)
        _, err = running.communicate(timeout=60)
    finally:
        running.kill()
    assert running.returncode == 143 and "Stopped by SIGTERM" in err, err[-3000:]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"], "the variant's run and its parent"
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "val/rec_tokens")]
    assert steps == sorted(set(steps)), "each epoch once"
    assert read_run(offline)["exit_code"] == 1, "W&B's run ends as failed"


def test_every_variant_of_a_run_logs_each_epoch_once(kedro_project):
    """Trackers listen to the loop once per variant: the second variant trained in the same
    process is not heard twice."""
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    params = copy.deepcopy(TRACKED)
    params["ae_sweep"]["grid"] = {"model": {"latent_space": "none"}, "loss": {"globals_beta": 1},
                                  "trainer": {"lr": "1e-3 2e-3"}}
    params["tracking"] = {"mlflow": {"enabled": True}}
    run_session(kedro_project, params=params)
    client = MlflowClient(f"sqlite:///{kedro_project / STORE}")
    runs = client.search_runs([client.get_experiment_by_name("sweeplab").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2
    for run in children:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/rec_tokens")]
        assert steps == [1, 2], (run.info.run_name, steps)
