"""Adaptive search (``search:`` in a sweep): its checks, and real Kedro runs of a toy family
whose objective has a known optimum (``tests/search_family/toy``) and of ``ae_search``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

import sweeplab.pipelines
from sweeplab import families, pipeline_registry, search, sweeps
from sweeplab.checks import check_parameters
from sweeplab.config import ConfigError
from sweeplab.errors import SweepFailedError
from tests.conftest import REPO
from tests.search_family.toy.pipeline import optimum_distance
from tests.test_kedro_run import kedro_cli, latest

TOY_FOLDER = Path(__file__).parent / "search_family"
SPACE = {"x": {"type": "float", "low": 0.0, "high": 0.9},
         "y": {"type": "float", "low": 1.0e-4, "high": 1.0, "log": True},
         "kind": {"type": "categorical", "choices": ["a", "b", "c"]}}


def spec(**search_keys) -> dict:
    return {"family": "ae", "search": {"space": {"trainer.lr": {"type": "float", "low": 1e-4, "high": 1e-2}},
                                       "objective": {"metric": "rec_globals"}, "trials": 3, **search_keys}}


def test_trials_are_variants_named_by_trial_and_seed_then_the_reevaluation():
    planned = sweeps.plan("s", {**spec(reevaluate=[7, 8]), "seeds": [0, 1]})
    assert [v.name for v in planned.variants] == ["t000_s0", "t000_s1", "t001_s0", "t001_s1", "t002_s0", "t002_s1",
                                                  "best_s7", "best_s8"]
    assert planned.axes == {"trial": "trial"} and planned.variants[2].condition == {"trial": "t001"}


@pytest.mark.parametrize(("search_keys", "message"), [
    ({"trails": 3}, "s.search.trails: unknown key; did you mean s.search.trials?"),
    ({"trials": 0}, "s.search.trials: got 0; expected an integer >= 1"),
    ({"sampler": "cmaes"}, "s.search.sampler: got 'cmaes'; expected one of tpe | random | grid"),
    ({"space": {"trainer.lr": {"type": "float", "low": 1e-2, "high": 1e-4}}}, "s.search.space.trainer.lr.low: got 0.01 above high 0.0001"),
    ({"space": {"trainer.lr": {"type": "float", "low": 0, "high": 1, "log": True}}},
     "s.search.space.trainer.lr.low: got 0; a log-spaced key needs low > 0"),
    ({"space": {"model.latent_space": {"type": "categorical"}}},
     "s.search.space.model.latent_space.choices: missing; a categorical key needs a list of values"),
    ({"space": {"trainer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "when": {"model.x": 1}}}},
     "s.search.space.trainer.lr.when.model.x: not another key of the space ['trainer.lr']"),
    ({"sampler": "grid"}, "s.search.sampler: grid searches categorical keys without 'when'; trainer.lr is float"),
    ({"reevaluate": [0]}, "s.search.reevaluate: seed 0 is a trial seed too"),
    ({"pruner": {"type": "hyperband", "reduction_factor": 1}},
     "s.search.pruner.reduction_factor: got 1; expected an integer >= 2"),
    ({"space": {}}, "s.search.space: empty; expected at least one parameter to search"),
])
def test_a_bad_search_section_is_named_in_one_line(search_keys, message):
    with pytest.raises(ConfigError) as caught:
        sweeps.plan("s", spec(**search_keys))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_search_with_a_grid_too_is_refused():
    with pytest.raises(ConfigError, match=r"s\.search: a search chooses its own values"):
        sweeps.plan("s", {**spec(), "grid": {"trainer.lr": [1e-3]}})


@pytest.mark.parametrize(("space", "message"), [
    ({"trainer.lrr": {"type": "float", "low": 1e-4, "high": 1e-2}},
     "ae_search.search.space.trainer.lrr: not a parameter of the family defaults; did you mean trainer.lr?"),
    ({"trainer.epochs": {"type": "int", "low": 0, "high": 4}},
     "ae_search.search.space.trainer.epochs: got 0; expected an integer >= 1"),
])
def test_a_space_the_family_cannot_take_is_refused_before_anything_runs(space, message):
    params = yaml.safe_load((REPO / "conf/base/parameters_ae.yml").read_text())
    params["ae_search"]["search"]["space"] = space
    params["events"] = yaml.safe_load((REPO / "conf/base/parameters_events.yml").read_text())["events"]
    with pytest.raises(ConfigError) as caught:
        check_parameters(params, {"ae": families.discover()["ae"]}, only={"ae_search"})
    assert str(caught.value) == message


def asked(root: Path, space: dict, n: int, **search_keys) -> list[dict]:
    """The values of ``n`` trials asked one after another, each told at once (as a sequential
    run does), each through a store opened anew (as each config node opens it)."""
    spec = search.checked("s", {"space": space, "objective": {"metric": "m"}, "trials": n, **search_keys}, [0])
    out = []
    for k in range(n):
        number, values = search.ask(search.StudyStore(root), "s", "key", spec, f"t{k:03d}", epochs=4)
        search.StudyStore(root).open("s", "key", spec).tell(number, float(k))
        out.append(values)
    return out


def test_the_same_seed_asks_the_same_values_and_a_new_process_does_not_repeat_them(tmp_path):
    first, again = asked(tmp_path / "a", SPACE, 4), asked(tmp_path / "b", SPACE, 4)
    assert first == again
    # every ask opens the study anew, as a new process would: seeded by the study's size, it
    # does not draw the first values again
    assert len({json.dumps(v, sort_keys=True) for v in first}) == 4


def test_a_conditional_key_is_sampled_only_when_its_condition_holds(tmp_path):
    space = {"kind": {"type": "categorical", "choices": ["a", "b"]},
             "y": {"type": "float", "low": 0.1, "high": 1.0, "when": {"kind": "b"}}}
    values = asked(tmp_path, space, 12, sampler="random")
    assert {v["kind"] for v in values} == {"a", "b"}
    assert all(("y" in v) == (v["kind"] == "b") for v in values), values


def test_a_trial_asked_before_is_found_again_not_asked_anew(tmp_path):
    spec = search.checked("s", {"space": SPACE, "objective": {"metric": "m"}, "trials": 2}, [0])
    store = search.StudyStore(tmp_path)
    first = search.ask(store, "s", "key", spec, "t000", epochs=4)
    assert search.ask(search.StudyStore(tmp_path), "s", "key", spec, "t000", epochs=4) == first
    assert len(store.open("s", "key", spec).trials) == 1


# ----------------------------------------------------------------------------------------------
# real runs of the toy family


def toy_sweep(**search_keys) -> dict:
    return {"family": "toy", "seeds": [0], "search": {"space": SPACE, "objective": {"metric": "objective"},
                                                      "trials": 24, "startup_trials": 8, **search_keys}}


@pytest.fixture
def toy_project(kedro_project, monkeypatch):
    """The project copy with the toy family discovered and its searches added, one per test."""
    sweeplab.pipelines.__path__.append(str(TOY_FOLDER))
    families.discover.cache_clear()
    monkeypatch.setattr(pipeline_registry, "FAMILIES", families.discover())  # found once, at its import
    trainer = {"epochs": 4, "batch_size": 32, "eval_batch_size": 64, "lr": 0.01, "monitor": "objective", "threads": 1}
    failing = {"x": {"type": "float", "low": 0.85, "high": 1.0}, "y": SPACE["y"], "kind": SPACE["kind"]}
    params = {"toy": {"x": 0.5, "y": 0.1, "kind": "a", "trainer": trainer},
              "toy_random": toy_sweep(sampler="random"), "toy_tpe": toy_sweep(sampler="tpe"),
              "toy_pruned": toy_sweep(pruner={"type": "successive_halving", "min_epochs": 1, "reduction_factor": 2},
                                      reevaluate=[5, 6]),
              "toy_failing": toy_sweep(space=failing, trials=8, sampler="random")}
    (kedro_project / "conf/base/parameters_toy.yml").write_text(yaml.safe_dump(params))
    yield kedro_project
    sweeplab.pipelines.__path__.remove(str(TOY_FOLDER))
    families.discover.cache_clear()


def run_toy(project: Path, sweep: str) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        session.run(pipeline_names=[sweep])


def study(project: Path, sweep: str) -> optuna.Study:
    (path,) = (project / "data/06_models/studies" / sweep).glob("*.journal")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)


def trials_table(project: Path, sweep: str) -> pd.DataFrame:
    return pd.read_csv(latest(project, f"data/08_reporting/{sweep}/search_trials.csv"))


@pytest.mark.slow
def test_tpe_gets_nearer_the_known_optimum_than_random_at_the_same_budget(toy_project):
    found = {}
    for sampler in ("random", "tpe"):
        run_toy(toy_project, f"toy_{sampler}")
        table = trials_table(toy_project, f"toy_{sampler}")
        assert len(table) == 24 and (table["state"] == "completed").all()
        # the objective is the known function at the best epoch (the last: it falls with the epochs)
        distance = [optimum_distance(r.x, r.y, r.kind) for r in table.itertuples()]
        assert table["objective"].tolist() == pytest.approx([d * 1.5 for d in distance], rel=1e-5)
        found[sampler] = min(distance)
    assert found["tpe"] < found["random"], found
    assert found["tpe"] < 0.05, found


@pytest.mark.slow
def test_pruned_trials_stop_early_say_so_and_the_report_counts_them(toy_project):
    run_toy(toy_project, "toy_pruned")
    table = trials_table(toy_project, "toy_pruned")
    pruned = table[table["state"] == "pruned"]
    assert len(pruned) >= 5 and (pruned["epochs_run"] < 4).all()
    assert pruned["reason"].str.match(r"pruned at epoch [123] \(val objective ").all(), pruned["reason"]
    assert study(toy_project, "toy_pruned").trials[int(pruned.index[0])].state.name == "PRUNED"
    report = (latest(toy_project, "data/08_reporting/toy_pruned/report") / "report.md").read_text()
    counts = f"24 trials: {(table['state'] == 'completed').sum()} completed, {len(pruned)} pruned, 0 failed, 0 missing"
    assert counts in report and "pruning saved" in report
    best = table[table["state"] == "completed"].sort_values("objective").iloc[0]
    assert f"**Best trial: {best.trial}**" in report
    assert "Re-evaluated on fresh seeds [5, 6] (`best_s<seed>`): objective" in report and "biased low" in report
    again = json.loads(latest(toy_project, "data/07_model_output/toy_pruned/best_s5/summary.json").read_text())
    assert again["condition"]["x"] == pytest.approx(best.x) and again["status"] == "completed"
    figure = latest(toy_project, "data/08_reporting/toy_pruned/report") / "figures/search_history.png"
    assert figure.stat().st_size > 5000


@pytest.mark.slow
def test_a_trial_that_raises_is_failed_the_search_goes_on_and_a_rerun_retries_it(toy_project):
    with pytest.raises(SweepFailedError):
        run_toy(toy_project, "toy_failing")
    table = trials_table(toy_project, "toy_failing")
    failed = table[table["state"] == "failed"]
    assert len(failed) >= 1 and (table["state"] == "completed").sum() >= 1, table
    assert failed["reason"].str.contains("RuntimeError: x above 0.95 is not supported").all()
    first = study(toy_project, "toy_failing")
    assert [t.state.name for t in first.trials].count("FAIL") == len(failed)
    assert "x above 0.95" in first.trials[int(failed.index[0])].user_attrs["reason"]
    with pytest.raises(SweepFailedError):
        run_toy(toy_project, "toy_failing")
    again = study(toy_project, "toy_failing")
    # each failed trial ran once more with its values, as a new Optuna trial; nothing else ran
    assert len(again.trials) == 8 + len(failed)
    retried = again.trials[8:]
    assert sorted(t.user_attrs["retry_of"] for t in retried) == sorted(int(i) for i in failed.index)
    assert all(t.params == again.trials[t.user_attrs["retry_of"]].params for t in retried)


# ----------------------------------------------------------------------------------------------
# ae_search through the CLI: kill -9 and resume, two workers

SMALL = "events.synthetic.n_events=2000,ae.trainer.threads=1,ae_search.search.reevaluate=[]," \
        "ae_search.search.pruner.type=none,ae_search.search.startup_trials=2"


@pytest.mark.slow
def test_kill_9_mid_search_then_a_rerun_continues_the_interrupted_trial_and_runs_none_twice(kedro_project):
    params = f"{SMALL},ae_search.search.trials=4,ae.trainer.epochs=8"
    log = kedro_project / "first.log"
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    with log.open("w") as out:
        first = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipelines=ae_search", f"--params={params}"],
                                 cwd=kedro_project, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    deadline = time.monotonic() + 300
    while "ae_search.t002_s0: epoch 3/8" not in log.read_text():
        assert first.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed = study(kedro_project, "ae_search")
    assert [t.state.name for t in killed.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]

    second = kedro_cli(kedro_project, "--pipelines=ae_search", f"--params={params}")
    assert second.returncode == 0, second.stderr[-3000:]
    said = second.stderr + second.stdout
    for done in ("t000_s0", "t001_s0"):
        assert f"ae_search.{done}: restored finished run" in said and f"ae_search.{done}: epoch" not in said
    assert "ae_search.t002_s0: continuing from the checkpoint of epoch" in said
    assert "ae_search.t002_s0: epoch 1/8" not in said and "ae_search.t002_s0: epoch 8/8" in said
    final = study(kedro_project, "ae_search")
    assert [t.state.name for t in final.trials] == ["COMPLETE"] * 4
    assert final.trials[2].params == killed.trials[2].params  # the same trial, continued
    history = pd.read_csv(latest(kedro_project, "data/07_model_output/ae_search/t002_s0/history.csv"))
    assert sorted(history[history["split"] == "val"]["epoch"]) == list(range(1, 9))


@pytest.mark.slow
def test_two_workers_share_one_study_and_its_budget(kedro_project):
    params = f"{SMALL},ae_search.search.trials=6,ae.trainer.epochs=2"
    result = kedro_cli(kedro_project, "--pipelines=ae_search", f"--params={params}", "--runner=ParallelRunner")
    assert result.returncode == 0, result.stderr[-3000:]
    found = study(kedro_project, "ae_search")
    assert len(found.trials) == 6 and {t.state.name for t in found.trials} == {"COMPLETE"}
    variants = [t.user_attrs[search.VARIANT_ATTR] for t in found.trials]
    assert sorted(variants) == [f"t00{k}" for k in range(6)]
    for trial in found.trials:
        config = yaml.safe_load(latest(kedro_project, f"data/06_models/ae_search/{trial.user_attrs['variant']}_s0/"
                                                      "config.yml").read_text())
        assert config["search"]["trial"] == trial.number and config["config"]["trainer"]["lr"] == trial.params["trainer.lr"]


@pytest.mark.slow
def test_an_objective_the_runs_do_not_record_stops_the_search_at_its_first_epoch(kedro_project):
    params = f"{SMALL},ae_search.search.trials=3,ae.trainer.epochs=3,ae_search.search.objective.metric=rec_globalz"
    result = kedro_cli(kedro_project, "--pipelines=ae_search", f"--params={params}")
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert said.strip().splitlines()[-1] == ("Error: ae_search.search.objective.metric: got 'rec_globalz'; the "
                                             "runs' val metrics are ['rec_globals', 'rec_tokens', 'total_loss']")
    assert "t000_s0: epoch 1/3" in said and "t000_s0: epoch 2/3" not in said and "t001_s0: epoch" not in said
