"""Real Kedro runs of a tiny ae_sweep: in-process sessions and the ``kedro`` CLI."""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

import sweeplab.pipelines.ae.nodes as ae_nodes
from sweeplab.datasets.hdf5 import H5File
from sweeplab.errors import SweepFailedError
from sweeplab.pipelines.events.nodes import split_events
from sweeplab.sweeps import SweepError
from tests.conftest import TINY_PARAMS, write_h5

pytestmark = pytest.mark.slow  # whole Kedro runs through the CLI


VARIANTS = ["none_beta0_s0", "none_beta1_s0", "vq_beta0_s0", "vq_beta1_s0"]


def run_session(project: Path, pipeline: str = "ae_sweep", params: dict | None = None, env: str | None = None):
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=params or TINY_PARAMS) as session:
        return session.run(pipeline_names=[pipeline])


def latest(project: Path, relative: str) -> Path:
    """The newest version of a versioned output."""
    versions = sorted((project / relative).glob("*/"))
    assert versions, f"no version of {relative}"
    return versions[-1] / Path(relative).name


def summaries(project: Path) -> dict[str, dict]:
    return {v: json.loads(latest(project, f"data/07_model_output/ae_sweep/{v}/summary.json").read_text())
            for v in VARIANTS}


def kedro_cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "kedro", "run", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_tiny_sweep_writes_every_output_then_resumes_without_training(kedro_project, caplog):
    caplog.set_level(logging.INFO, logger="sweeplab")
    run_session(kedro_project)
    said = caplog.messages  # no terminal here: a line per epoch, and where the sweep stands after each variant
    assert "ae_sweep.vq_beta1_s0: epoch 2/2, val total_loss" in "\n".join(said)
    progress = [m for m in said if " variants done " in m]
    assert [m.split(";")[0] for m in progress] == [f"ae_sweep: {i} of 4 variants done (0 failed), {4 - i} to go"
                                                    for i in range(1, 5)]
    assert progress[-1].endswith("about 0:00:00 left")
    for v in VARIANTS:
        config = latest(kedro_project, f"data/06_models/ae_sweep/{v}/config.yml").read_text()
        assert f"variant: {v}" in config and "config_hash:" in config
        assert latest(kedro_project, f"data/06_models/ae_sweep/{v}/model.pt").stat().st_size > 1000
        history = pd.read_csv(latest(kedro_project, f"data/07_model_output/ae_sweep/{v}/history.csv"))
        assert len(history) == 4 and {"rec_tokens", "rec_globals", "total_loss"} <= set(history.columns)
        if v.startswith("vq"):
            assert {"commit", "codebook", "perplex"} <= set(history.columns)
        for figure in ("losses.png", "recon.png"):
            png = latest(kedro_project, f"data/08_reporting/ae_sweep/{v}/{figure}").read_bytes()
            assert png.startswith(b"\x89PNG") and len(png) > 10_000
    first = summaries(kedro_project)
    assert all(s["status"] == "completed" and s["epochs_run"] == 2 for s in first.values())

    table = pd.read_csv(latest(kedro_project, "data/08_reporting/ae_sweep/results.csv"))
    assert list(table.columns[:8]) == ["variant", "latent", "beta", "seed", "status", "rec_tokens", "rec_globals", "total_loss"]
    assert sorted(table["variant"]) == VARIANTS
    assert table.loc[table.variant == "vq_beta1_s0", "rec_tokens"].item() == pytest.approx(first["vq_beta1_s0"]["best"]["val"]["rec_tokens"])
    assert "| vq_beta1_s0 | vq | 1 | 0 | completed |" in latest(kedro_project, "data/08_reporting/ae_sweep/results.md").read_text()
    figures = latest(kedro_project, "data/08_reporting/ae_sweep/report") / "figures"
    assert {"heatmap_rec_tokens_latent_x_beta.png", "heatmap_rec_globals_latent_x_beta.png",
            "validation_curves.png"} <= {p.name for p in figures.glob("*.png")}

    run_session(kedro_project)  # the same command again: everything restored from checkpoints
    second = summaries(kedro_project)
    assert all(s.get("restored") is True for s in second.values())
    for v in VARIANTS:
        assert second[v]["best"] == first[v]["best"], "restored numbers are the trained numbers"


def test_interrupted_variant_continues_from_its_checkpoint(kedro_project, monkeypatch):
    real = ae_nodes.autoencoder_metrics
    calls = {"n": 0}

    def lost_in_epoch_two(model, batch, **kw):
        if kw["globals_beta"] == 1 and model.quantizer is not None and model.training:
            calls["n"] += 1
            if calls["n"] > 9:  # 2,100 train events = 9 batches: vq_beta1 dies in its epoch 2
                raise RuntimeError("node lost")
        return real(model, batch, **kw)

    monkeypatch.setattr(ae_nodes, "autoencoder_metrics", lost_in_epoch_two)
    with pytest.raises(SweepFailedError, match="vq_beta1_s0: RuntimeError: node lost"):
        run_session(kedro_project)
    assert summaries(kedro_project)["vq_beta1_s0"]["status"] == "failed"
    assert summaries(kedro_project)["vq_beta0_s0"]["status"] == "completed", "siblings finish"

    monkeypatch.setattr(ae_nodes, "autoencoder_metrics", real)
    run_session(kedro_project)
    after = summaries(kedro_project)
    assert after["vq_beta1_s0"]["status"] == "completed" and "restored" not in after["vq_beta1_s0"]
    history = pd.read_csv(latest(kedro_project, "data/07_model_output/ae_sweep/vq_beta1_s0/history.csv"))
    assert list(history["epoch"]) == [1, 1, 2, 2], "epoch 1 kept from the checkpoint, epoch 2 trained"
    assert all(after[v].get("restored") for v in VARIANTS if v != "vq_beta1_s0")


def test_zero_variants_is_an_error(kedro_project):
    params = copy.deepcopy(TINY_PARAMS)
    params["ae_sweep"]["seeds"] = []
    with pytest.raises(SweepError, match="expands to zero variants"):
        run_session(kedro_project, params=params)


def test_full_env_reads_a_real_split_file(kedro_project, unsplit_file):
    split = split_events(H5File(unsplit_file), {"fractions": {"train": 0.7, "val": 0.15, "test": 0.15}, "seed": 0})
    real = write_h5(kedro_project / "data/01_raw/4tops_splitted.h5", split)
    arrays = {k: H5File(real).read(k) for k in H5File(real).keys()}
    arrays["Y_train"] = arrays.pop("y_train")  # as in the real file
    write_h5(real, arrays)
    params = copy.deepcopy(TINY_PARAMS)
    params["ae"]["trainer"]["epochs"] = 1
    params["ae_sweep"]["grid"] = {"model": {"latent_space": "linear"}, "loss": {"globals_beta": 1}}
    run_session(kedro_project, params=params, env="full")
    assert not (kedro_project / "data/02_intermediate/events_generated.h5").exists(), "no synthetic data in full"
    summary = json.loads(latest(kedro_project, "data/07_model_output/ae_sweep/linear_beta1_s0/summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 1


def test_cli_params_change_the_grid_and_a_failed_variant_fails_the_command(kedro_project):
    # a list both ways: in brackets with commas (Kedro alone would split it), and space-separated
    params = ("events.synthetic.n_events=2000,ae.trainer.epochs=2,ae_sweep.grid.model.latent_space=linear,"
              "ae_sweep.grid.loss.globals_beta=1,ae_sweep.grid.trainer.lr=[1e-3,1e30],ae_sweep.seeds=0 1")
    result = kedro_cli(kedro_project, "--pipeline=ae_sweep", f"--params={params}")
    assert result.returncode != 0
    assert "2 variant(s) failed" in result.stdout + result.stderr
    table = pd.read_csv(latest(kedro_project, "data/08_reporting/ae_sweep/results.csv"))
    assert sorted(table["variant"]) == ["linear_beta1_lr0p001_s0", "linear_beta1_lr0p001_s1",
                                        "linear_beta1_lr1e30_s0", "linear_beta1_lr1e30_s1"]
    failed = table[table["status"] == "failed"]
    assert sorted(failed["variant"]) == ["linear_beta1_lr1e30_s0", "linear_beta1_lr1e30_s1"]
    assert failed["reason"].str.contains("non-finite").all()
    assert np.isfinite(table.loc[table.status == "completed", "rec_tokens"]).all()
    assert "2 completed, 2 failed, 0 missing" in latest(kedro_project, "data/08_reporting/ae_sweep/results.md").read_text()

    report = kedro_cli(kedro_project, "--pipelines=ae_sweep_report", f"--params={params}")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "train_autoencoder" not in report.stdout + report.stderr, "the report trains nothing"
    last = (kedro_project / "info.log").read_text().strip().splitlines()[-1]  # the run's last line: where to look
    shown = last.split("Report: ", 1)[1]
    assert shown.startswith("data/08_reporting/ae_sweep/report/"), "relative to where the run started"
    path = kedro_project / shown
    assert path == latest(kedro_project, "data/08_reporting/ae_sweep/report") / "report.md" and path.is_file()


def test_multi_seed_report_then_report_alone_counts_missing_seeds(kedro_project):
    params = copy.deepcopy(TINY_PARAMS)
    params["ae_sweep"]["seeds"] = "0 1"
    run_session(kedro_project, params=params)
    report_dir = "data/08_reporting/ae_sweep"
    table = pd.read_csv(latest(kedro_project, f"{report_dir}/results.csv"))
    stats = pd.read_csv(latest(kedro_project, f"{report_dir}/condition_stats.csv"))
    aggregated = json.loads(latest(kedro_project, f"{report_dir}/aggregated_results.json").read_text())
    assert len(table) == 8 and len(aggregated["conditions"]) == 4
    for condition in aggregated["conditions"]:
        tokens = condition["metrics"]["rec_tokens"]
        assert condition["n_runs"] == 2 and tokens["n"] == 2
        assert tokens["ci_lower"] < tokens["mean"] < tokens["ci_upper"], "two seeds give an interval"
    # the statistics are the tables' data: means per condition from the per-run table
    means = table.groupby(["latent", "beta"])["rec_tokens"].mean()
    rows = stats[stats["metric"] == "rec_tokens"].set_index(["latent", "beta"])["mean"]
    pd.testing.assert_series_equal(rows.sort_index(), means.sort_index(), check_names=False)
    comparisons = pd.read_csv(latest(kedro_project, f"{report_dir}/comparisons.csv"))
    assert len(comparisons) == 6 and (comparisons["test"] == "paired t").all()
    assert (comparisons["p_adjusted"] >= comparisons["pvalue"]).all()
    curves = pd.read_csv(latest(kedro_project, f"{report_dir}/curves.csv"))
    assert (curves["n"] == 2).all() and set(curves["epoch"]) == {1, 2}
    assert len(pd.read_csv(latest(kedro_project, f"{report_dir}/best_per_axis.csv")))
    report = latest(kedro_project, f"{report_dir}/report")
    text = (report / "report.md").read_text()
    assert "8 planned runs in 4 conditions: 8 completed, 0 failed, 0 missing" in text
    # the title says these are not the sweep the project configures (3 x 3 conditions, seed 0 only)
    assert text.startswith("# ae_sweep: latent space x globals weight (not the configured sweep: 8 variants, 4 of the 9 configured among them, "
                           "--params ae_sweep.grid.model.latent_space=none vq, ")
    provenance = json.loads((report / "provenance.json").read_text())
    assert provenance["pipelines"] == ["ae_sweep"] and "ae_sweep.seeds=0 1" in provenance["params"]
    assert provenance["spec"]["seeds"] == "0 1" and len(provenance["spec_hash"]) == 16 and provenance["date"]
    assert "## Provenance" in text and "`ae_sweep.seeds=0 1`" in text
    for png in (report / "figures").glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000, png.name
        assert f"(figures/{png.name})" in text

    summaries_before = len(list((kedro_project / "data/07_model_output/ae_sweep").rglob("summary.json")))
    params["ae_sweep"]["seeds"] = "0 1 2"  # a third seed planned but never trained
    run_session(kedro_project, pipeline="ae_sweep_report", params=params)
    assert len(list((kedro_project / "data/07_model_output/ae_sweep").rglob("summary.json"))) == summaries_before
    aggregated = json.loads(latest(kedro_project, f"{report_dir}/aggregated_results.json").read_text())
    assert all(c["n_missing"] == 1 and c["n_completed"] == 2 for c in aggregated["conditions"])
    assert "12 planned runs in 4 conditions: 8 completed, 0 failed, 4 missing" in (
        latest(kedro_project, f"{report_dir}/report") / "report.md").read_text()


def test_report_alone_on_pinned_versions(kedro_project):
    params = copy.deepcopy(TINY_PARAMS)
    params["ae_sweep"]["grid"] = {"model": {"latent_space": "linear"}, "loss": {"globals_beta": "0 1"}}
    run_session(kedro_project, params=params)
    path = latest(kedro_project, "data/07_model_output/ae_sweep/linear_beta1_s0/summary.json")
    original = json.loads(path.read_text())
    # a later version of one record, as a partial re-run would leave
    newer = copy.deepcopy(original)
    newer["best"]["val"]["rec_tokens"] = 123.0
    later = path.parent.parent / "9999-01-01T00.00.00.000Z" / "summary.json"
    later.parent.mkdir()
    later.write_text(json.dumps(newer))

    def reported_tokens():
        table = pd.read_csv(latest(kedro_project, "data/08_reporting/ae_sweep/results.csv"))
        return table.set_index("variant").loc["linear_beta1_s0", "rec_tokens"]

    run_session(kedro_project, pipeline="ae_sweep_report", params=params)
    assert reported_tokens() == 123.0, "latest by default"
    bootstrap_project(kedro_project)
    with KedroSession.create(project_path=kedro_project, runtime_params=params) as session:
        session.run(pipeline_names=["ae_sweep_report"],
                    load_versions={"ae_sweep.linear_beta1_s0.summary": path.parent.name})
    assert reported_tokens() == pytest.approx(original["best"]["val"]["rec_tokens"])
    with KedroSession.create(project_path=kedro_project, runtime_params=params) as session, \
            pytest.raises(Exception, match="linear_beta1_s0"):
        session.run(pipeline_names=["ae_sweep_report"],
                    load_versions={"ae_sweep.linear_beta1_s0.summary": "2000-01-01T00.00.00.000Z"})


def test_tiny_gw_sweep_runs_and_reports(kedro_project):
    params = {"shapes": {"synthetic": {"n_samples": 1500}},
              "gw": {"trainer": {"epochs": 2}},
              "gw_sweep": {"grid": {"model": {"workspace_dim": "8"}, "synergy": {"loss_scale": "0.1 10"}},
                           "seeds": "0 1"}}
    run_session(kedro_project, pipeline="gw_sweep", params=params)
    table = pd.read_csv(latest(kedro_project, "data/08_reporting/gw_sweep/results.csv"))
    assert sorted(table["variant"]) == ["dim8_scale0p1_s0", "dim8_scale0p1_s1", "dim8_scale10_s0", "dim8_scale10_s1"]
    assert (table["status"] == "completed").all()
    assert {"synergy_acc", "synergy_norm_ce", "rec_synergy", "rec_other", "r2_unique", "r2_redundant",
            "best_val_loss"} <= set(table.columns)
    meta = json.loads(latest(kedro_project, "data/05_model_input/shapes_metadata.json").read_text())
    assert meta["roles"]["synergistic"]["from"] == ["size", "u"]
    aggregated = json.loads(latest(kedro_project, "data/08_reporting/gw_sweep/aggregated_results.json").read_text())
    assert [c["grid"] for c in aggregated["conditions"]] == [
        {"model.workspace_dim": 8, "synergy.loss_scale": 0.1}, {"model.workspace_dim": 8, "synergy.loss_scale": 10}]
    comparisons = pd.read_csv(latest(kedro_project, "data/08_reporting/gw_sweep/comparisons.csv"))
    assert comparisons["metric"].tolist() == ["synergy_acc"] and comparisons["test"].tolist() == ["paired t"]
    figures = latest(kedro_project, "data/08_reporting/gw_sweep/report") / "figures"
    assert (figures / "synergy_acc_vs_scale.png").stat().st_size > 10_000


def test_tiny_gcode_comparison_runs_and_reports(kedro_project):
    params = {"cnc": {"synthetic": {"n_programs": 6}},
              "gcode": {"trainer": {"epochs": 2}, "model": {"d_model": 32, "ff_dim": 64, "encoder_layers": 1,
                                                             "decoder_layers": 1}},
              "gcode_compare": {"seeds": "0"}}
    run_session(kedro_project, pipeline="gcode_compare", params=params)
    generated = latest(kedro_project, "data/02_intermediate/gcode/recordings")
    assert len(list((generated / "programs").glob("*.nc"))) == len(list((generated / "sensors").glob("*.csv"))) == 6
    assert not (kedro_project / "data/01_raw/gcode").exists(), "raw folders are only read"
    vocab = json.loads(latest(kedro_project, "data/04_feature/gcode/vocabulary_v2.json").read_text())
    report = json.loads(latest(kedro_project, "data/08_reporting/gcode/vocabulary_report.json").read_text())
    assert report["v2"]["size"] == len(vocab["tokens"]) == vocab["size"] < report["v1"]["size"]
    assert set(vocab["counts"]) == set(vocab["tokens"])
    table = pd.read_csv(latest(kedro_project, "data/08_reporting/gcode_compare/results.csv"))
    assert table["variant"].tolist() == ["baseline_s0", "augmented_s0", "multihead_s0"]
    assert set(table["status"]) <= {"completed", "collapsed"}
    assert table["unique_tokens"].between(1, len(vocab["tokens"])).all()
    criteria = pd.read_csv(latest(kedro_project, "data/08_reporting/gcode_compare/criteria.csv"))
    assert sorted(set(criteria["metric"])) == ["command_acc", "token_acc", "type_acc", "unique_tokens"]
    assert len(criteria) == 3 * 4
    baseline = criteria[(criteria["approach"] == "baseline") & (criteria["metric"] == "unique_tokens")].iloc[0]
    assert baseline["mean"] == table.loc[0, "unique_tokens"] and baseline["met"] == (baseline["mean"] >= 40)
    text = (latest(kedro_project, "data/08_reporting/gcode_compare/report") / "report.md").read_text()
    assert "## Success criteria" in text and "unique_tokens (>= 40)" in text


def test_a_second_sweep_of_named_experiments_keeps_its_run_records(kedro_project):
    """No catalog block of its own: the generic patterns save its records, so its report run
    alone finds them; ``only`` runs a subset."""
    (kedro_project / "conf/local/parameters_mine.yml").write_text(
        "ae_named:\n  family: ae\n  experiments:\n"
        "    small: {model.latent_dim: 4}\n    wide_beta0.5: {model: {hidden_dim: 32}, loss.globals_beta: 0.5}\n"
        "    vq: {model.latent_space: vq}\n  seeds: [0]\n")
    params = {**copy.deepcopy(TINY_PARAMS), "ae_named": {"only": "small wide_beta0.5"}}
    run_session(kedro_project, pipeline="ae_named", params=params)
    assert "experiment: wide_beta0.5" in latest(kedro_project, "data/06_models/ae_named/wide_beta0p5_s0/config.yml").read_text()
    for v in ("small_s0", "wide_beta0p5_s0"):
        assert latest(kedro_project, f"data/06_models/ae_named/{v}/model.pt").stat().st_size > 1000
        assert json.loads(latest(kedro_project, f"data/07_model_output/ae_named/{v}/summary.json").read_text())["status"] == "completed"
    assert not (kedro_project / "data/06_models/ae_named/vq_s0").exists(), "only the subset ran"

    run_session(kedro_project, pipeline="ae_named_report", params=TINY_PARAMS)  # all three planned
    table = pd.read_csv(latest(kedro_project, "data/08_reporting/ae_named/results.csv"))
    assert table[["variant", "experiment", "status"]].values.tolist() == [
        ["small_s0", "small", "completed"], ["wide_beta0p5_s0", "wide_beta0.5", "completed"], ["vq_s0", "vq", "missing"]]
