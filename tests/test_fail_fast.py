"""``<sweep>.fail_fast: K``: once the first K variants to finish have all failed alike, the
rest are not started; the report says why and the command fails."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sweeplab import fail_fast
from tests.test_kedro_run import kedro_cli, latest

# lr = 1e30 makes every loss non-finite: each run fails, at its own step, for the same reason
FAILING = "events.synthetic.n_events=2000,ae.trainer.epochs=2,ae_sweep.grid.model.latent_space=none," \
          "ae_sweep.grid.loss.globals_beta=1,ae_sweep.seeds=[0,1,2,3,4]"


def _outcomes(project, variants: list[str]) -> dict[str, str]:
    out = {}
    for v in variants:
        summary = json.loads(latest(project, f"data/07_model_output/ae_sweep/{v}/summary.json").read_text())
        out[v] = "not started" if summary["reason"].startswith("FailFast: not started") else summary["status"]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["SequentialRunner", "ParallelRunner"])
def test_a_sweep_whose_first_variants_all_fail_alike_starts_no_more(kedro_project, runner):
    params = f"{FAILING},ae_sweep.grid.trainer.lr=1e30,ae_sweep.fail_fast=2"
    result = kedro_cli(kedro_project, "--pipelines=ae_sweep", f"--params={params}", f"--runner={runner}")
    assert result.returncode != 0, "a stopped sweep fails the command"
    variants = [f"none_beta1_lr1e30_s{seed}" for seed in range(5)]
    outcomes = _outcomes(kedro_project, variants)
    trained = [v for v, o in outcomes.items() if o == "failed"]
    # sequentially exactly the first two run; two workers may each have begun one more
    assert len(trained) == 2 if runner == "SequentialRunner" else 2 <= len(trained) <= 3, outcomes
    assert list(outcomes.values()).count("not started") == 5 - len(trained)
    report = latest(kedro_project, "data/08_reporting/ae_sweep/report").joinpath("report.md").read_text()
    assert "**Fail fast stopped this sweep**: the first 2 variant(s) of ae_sweep to finish all failed with: " \
           "NonFiniteLoss" in report
    table = pd.read_csv(latest(kedro_project, "data/08_reporting/ae_sweep/results.csv"))
    assert (table["status"] == "failed").all()


@pytest.mark.slow
def test_a_first_variant_that_completes_keeps_the_sweep_going(kedro_project):
    params = f"{FAILING},ae_sweep.grid.trainer.lr=[1e-3,1e30],ae_sweep.seeds=[0,1],ae_sweep.fail_fast=2"
    result = kedro_cli(kedro_project, "--pipelines=ae_sweep", f"--params={params}")
    assert result.returncode != 0, "two variants failed"
    outcomes = _outcomes(kedro_project, [f"none_beta1_lr{lr}_s{s}" for lr in ("0p001", "1e30") for s in (0, 1)])
    assert sorted(outcomes.values()) == ["completed", "completed", "failed", "failed"], outcomes
    report = latest(kedro_project, "data/08_reporting/ae_sweep/report").joinpath("report.md").read_text()
    assert "Fail fast" not in report


def _finish(ledger, variant: str, status: str, reason: str, at: float) -> None:
    sweep = ledger / "s"
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / f"{variant}.json").write_text(json.dumps({"variant": variant, "status": status, "reason": reason,
                                                       "finished_at": at}))


def test_the_rule_reads_the_first_k_to_finish_and_reasons_alike_but_for_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv(fail_fast.LEDGER_ENV, str(tmp_path))
    _finish(tmp_path, "a", "failed", "NonFiniteLoss: non-finite total_loss at epoch 3 (train)", 2.0)
    assert fail_fast.verdict("s", 2) is None, "one finished of two"
    _finish(tmp_path, "b", "completed", "finished all epochs", 1.0)
    _finish(tmp_path, "c", "failed", "NonFiniteLoss: non-finite total_loss at epoch 1 (train)", 3.0)
    assert fail_fast.verdict("s", 2) is None, "the first to finish completed"
    assert fail_fast.verdict("s", None) is None, "off"
    assert (tmp_path / "s" / fail_fast.GOING).exists(), "settled: later finishers are never among the first two"
    # another run, whose first two both failed alike
    second = tmp_path / "second"
    monkeypatch.setenv(fail_fast.LEDGER_ENV, str(second))
    _finish(second, "a", "failed", "NonFiniteLoss: non-finite total_loss at epoch 3 (train)", 2.0)
    _finish(second, "c", "failed", "NonFiniteLoss: non-finite total_loss at epoch 1 (train)", 3.0)
    why = fail_fast.verdict("s", 2)
    assert why == "the first 2 variant(s) of s to finish all failed with: NonFiniteLoss: non-finite total_loss " \
                  "at epoch 3 (train)"
    assert fail_fast.stopped("s") == why, "once stopped, it stays stopped for the run"


def test_different_reasons_do_not_stop_a_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv(fail_fast.LEDGER_ENV, str(tmp_path))
    _finish(tmp_path, "a", "failed", "NameError: name 'x' is not defined", 1.0)
    _finish(tmp_path, "b", "failed", "NonFiniteLoss: non-finite total_loss at epoch 1 (train)", 2.0)
    assert fail_fast.verdict("s", 2) is None


@pytest.mark.parametrize("value", ["0", "-1", "true", "two"])
def test_a_bad_fail_fast_is_one_line_before_anything_runs(kedro_project, value):
    result = kedro_cli(kedro_project, "--pipelines=ae_sweep", f"--params=ae_sweep.fail_fast={value}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ae_sweep.fail_fast: got "), result.stderr[-1500:]
    assert not (kedro_project / "data/07_model_output").exists()
