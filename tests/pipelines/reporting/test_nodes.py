"""Report nodes on hand-made run records: completed, failed, missing and non-finite runs."""

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from sweeplab import figures
from sweeplab.config import ConfigError, config_hash
from sweeplab.datasets.folder import FolderDataset
from sweeplab.figures import plot_metric_vs_axis
from sweeplab.integration.hooks import configured_coverage
from sweeplab.pipelines.reporting import nodes, tables
from sweeplab.pipelines.reporting import stats as stats_module
from sweeplab.pipelines.reporting.markdown import coverage
from sweeplab.pipelines.reporting.stats import adjust_pvalues
from tests.conftest import planned

SPEC = {"family": "ae", "grid": {"a": [1, 2], "m": ["x", "y"]}, "seeds": [0, 1, 2],
        "report": {"metrics": ["loss"], "confidence": 0.9}}
# condition (a, m) -> {seed: loss, or "failed"}; seeds absent from a dict are missing
PLAN = {
    (1, "x"): {0: 1.0, 1: 1.2, 2: 1.1},
    (1, "y"): {0: 2.0, 1: 2.4, 2: "failed"},
    (2, "x"): {0: 0.5, 1: float("nan")},
    (2, "y"): {0: "failed", 1: "failed", 2: "failed"},
}
SWEEP, SWEEP_S = planned(SPEC), planned(SPEC, "s")  # a report: section does not change the plan


def summary(a, m, seed, loss):
    failed = loss == "failed"
    metrics = {} if failed else {"loss": loss, "acc": 1 - (loss if np.isfinite(loss) else 0) / 10}
    return {"sweep": "s", "variant": f"a{a}_{m}_s{seed}", "condition": {"a": a, "m": m}, "seed": seed,
            "status": "failed" if failed else "completed", "reason": "non-finite loss at epoch 2" if failed else "done",
            "best_epoch": None if failed else 3, "epochs_run": 2 if failed else 3,
            "final": {"val": metrics, "train": metrics}, "best": {"val": metrics, "train": metrics}, "wall_s": 1.0}


def write(table, stats, spec, figures_by_name=None, **tables):
    """``write_report`` with every table computed from ``table`` unless given."""
    sweep = planned(spec)
    tables = {"comparisons": nodes.compare_conditions(table, spec, sweep=sweep),
              "best": nodes.best_per_axis(table, spec, sweep=sweep),
              "criteria": nodes.success_criteria(stats, spec, sweep=sweep), **tables}
    return nodes.write_report(spec, table=table, stats=stats, figures=figures_by_name or {}, sweep=sweep, **tables)


@pytest.fixture
def table():
    summaries = {f"a{a}_{m}_s{seed}": summary(a, m, seed, loss)
                 for (a, m), runs in PLAN.items() for seed, loss in runs.items()}
    return nodes.results_table(SPEC, **summaries, sweep=SWEEP)


def test_results_table_lists_every_planned_run(table):
    assert len(table) == 12 and list(table.columns[:6]) == ["variant", "a", "m", "seed", "status", "loss"]
    assert table["status"].value_counts().to_dict() == {"completed": 7, "failed": 4, "missing": 1}
    missing = table[table["status"] == "missing"]
    assert missing["variant"].tolist() == ["a2_x_s2"] and np.isnan(missing["loss"].item())
    assert table.set_index("variant").loc["a1_x_s1", "loss"] == 1.2


def test_runs_that_did_not_complete_are_logged_under_the_sweeps_name():
    summaries = {f"a{a}_{m}_s{seed}": summary(a, m, seed, loss)
                 for (a, m), runs in PLAN.items() for seed, loss in runs.items()}
    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    tables.logger.addHandler(handler)  # Kedro's logging setup may leave caplog without records
    try:
        nodes.results_table(SPEC, **summaries, sweep=SWEEP)
    finally:
        tables.logger.removeHandler(handler)
    assert said == ["sweep: 5 of 12 planned runs did not complete: a1_y_s2 (failed), a2_x_s2 (missing), "
                    "a2_y_s0 (failed), a2_y_s1 (failed), a2_y_s2 (failed)"]


def test_statistics_per_condition_match_scipy(table):
    stats, aggregated = nodes.condition_statistics(table, SPEC, sweep=SWEEP)
    loss = stats[stats["metric"] == "loss"].set_index(["a", "m"])
    full = loss.loc[(1, "x")]
    x = np.array([1.0, 1.2, 1.1])
    lo, hi = sps.t.interval(0.9, 2, loc=x.mean(), scale=sps.sem(x))
    assert (full["n_planned"], full["n_completed"], full["n_failed"], full["n_missing"]) == (3, 3, 0, 0)
    assert (full["mean"], full["std"], full["sem"]) == pytest.approx((x.mean(), x.std(ddof=1), sps.sem(x)))
    assert (full["ci_lower"], full["ci_upper"]) == pytest.approx((lo, hi))
    assert (full["median"], full["min"], full["max"]) == pytest.approx((1.1, 1.0, 1.2))

    two = loss.loc[(1, "y")]
    assert (two["n"], two["n_failed"], two["completion_rate"]) == (2, 1, pytest.approx(2 / 3))

    one = loss.loc[(2, "x")]  # one finite, one NaN, one missing
    assert (one["n"], one["n_nonfinite"], one["n_missing"], one["mean"]) == (1, 1, 1, 0.5)
    assert math.isnan(one["ci_lower"]) and one["note"] == "n = 1: no interval"

    none = loss.loc[(2, "y")]
    assert none["n"] == 0 and none["n_failed"] == 3 and math.isnan(none["mean"])

    json.dumps(aggregated, allow_nan=False)  # strict JSON: NaN written as null
    by_name = {c["condition"]: c for c in aggregated["conditions"]}
    cond = by_name["a=2, m=x"]
    assert cond["grid"] == {"a": 2, "m": "x"} and cond["n_runs"] == 3
    assert cond["metrics"]["loss"]["n"] == 1 and cond["metrics"]["loss"]["ci_lower"] is None
    reasons = {(e["variant"], e["status"]): e["reason"] for e in cond["excluded"]}
    assert "loss is nan" in reasons[("a2_x_s1", "completed")]
    assert ("a2_x_s2", "missing") in reasons
    assert set(by_name["a=1, m=x"]["metrics"]["loss"]) >= {"mean", "std", "sem", "ci_lower", "ci_upper",
                                                           "median", "min", "max", "n"}


def test_comparisons_paired_welch_and_holm(table):
    frame = nodes.compare_conditions(table, SPEC, sweep=SWEEP).set_index(["condition_a", "condition_b"])
    assert len(frame) == 6
    paired_or_welch = frame.loc[("a=1, m=x", "a=1, m=y")]
    ref = sps.ttest_ind([1.0, 1.2, 1.1], [2.0, 2.4], equal_var=False)  # seed 2 failed in y: unpaired
    assert paired_or_welch["test"] == "Welch t" and paired_or_welch["pvalue"] == pytest.approx(ref.pvalue)
    assert frame.loc[("a=1, m=x", "a=2, m=x")]["test"] == "none (n < 2)"
    expected = adjust_pvalues(frame["pvalue"].to_numpy(), "holm")
    np.testing.assert_allclose(frame["p_adjusted"], expected)
    assert frame["significant"].tolist() == (frame["p_adjusted"] < 0.1).tolist()

    bonferroni = {**SPEC, "report": {**SPEC["report"], "correction": "bonferroni"}}
    bonf = nodes.compare_conditions(table, bonferroni, sweep=SWEEP)
    tested = np.isfinite(bonf["pvalue"])
    np.testing.assert_allclose(bonf["p_adjusted"][tested], np.minimum(1, bonf["pvalue"][tested] * tested.sum()))


def test_paired_test_when_the_same_seeds_completed():
    spec = {"family": "ae", "grid": {"a": [1, 2]}, "seeds": [0, 1, 2], "report": {"metrics": ["loss"]}}
    values = {1: [1.0, 1.5, 1.2], 2: [1.4, 1.6, 1.9]}
    summaries = {f"a{a}_s{s}": summary(a, "x", s, values[a][s]) for a in (1, 2) for s in range(3)}  # no m axis
    sweep = planned(spec)
    frame = nodes.compare_conditions(nodes.results_table(spec, sweep=sweep, **summaries), spec, sweep=sweep)
    assert frame["test"].item() == "paired t"
    assert frame["pvalue"].item() == pytest.approx(sps.ttest_rel(values[1], values[2]).pvalue)


def test_best_per_axis_respects_direction(table):
    best = nodes.best_per_axis(table, SPEC, sweep=SWEEP)
    row = best[(best.axis == "m") & (best.context == "a=1")].iloc[0]
    assert row["best"] == "x" and row["runner_up"] == "y" and row["test"] == "Welch t"
    flipped = nodes.best_per_axis(table, {**SPEC, "report": {**SPEC["report"], "directions": {"loss": "max"}}},
                                  sweep=SWEEP)
    assert flipped[(flipped.axis == "m") & (flipped.context == "a=1")].iloc[0]["best"] == "y"
    lonely = best[(best.axis == "m") & (best.context == "a=2")].iloc[0]
    assert lonely["best"] == "x" and lonely["note"] == "only one value has completed runs"


def test_curves_aggregate_per_epoch_and_drop_runs_that_stopped():
    spec = {"family": "ae", "grid": {"a": [1]}, "seeds": [0, 1, 2], "report": {"metrics": ["loss"]}}
    def history(values):
        return pd.DataFrame([{"epoch": e + 1, "split": "val", "loss": v} for e, v in enumerate(values)])
    curves = nodes.aggregate_curves(spec, a1_s0=history([3.0, 2.0, 1.0]), a1_s1=history([3.5, 2.5]),
                                    a1_s2=history([2.5, 2.2, 1.4]), sweep=planned(spec))
    at = curves.set_index("epoch")
    assert at.loc[1, "n"] == 3 and at.loc[3, "n"] == 2 and (at["n_runs"] == 3).all()
    lo, hi = sps.t.interval(0.95, 2, loc=np.mean([2.0, 2.5, 2.2]), scale=sps.sem([2.0, 2.5, 2.2]))
    assert (at.loc[2, "ci_lower"], at.loc[2, "ci_upper"]) == pytest.approx((lo, hi))


def test_figures_and_report_folder(tmp_path, table):
    stats, _ = nodes.condition_statistics(table, SPEC, sweep=SWEEP)
    histories = {v: pd.DataFrame([{"epoch": 1, "split": "val", "loss": 1.0}, {"epoch": 2, "split": "val", "loss": 0.9}])
                 for v in table["variant"]}
    curves = nodes.aggregate_curves(SPEC, **histories, sweep=SWEEP)
    figures = nodes.plot_report_figures(table, stats, curves, SPEC, sweep=SWEEP)
    assert {"completion.png", "loss_vs_a.png", "heatmap_loss_a_x_m.png", "validation_curves.png"} <= set(figures)
    with_chance = nodes.plot_report_figures(table, stats, curves, {**SPEC, "report": {**SPEC["report"],
                                            "references": {"loss": 0.125}}}, sweep=SWEEP)
    assert with_chance["loss_vs_a.png"] != figures["loss_vs_a.png"], "the reference changes the figure"
    drawn = plot_metric_vs_axis(stats, "loss", "a", "m", ["a", "m"], 0.95, reference=0.125)
    levels = [list(line.get_ydata()) for ax in drawn.axes for line in ax.get_lines()]
    assert [0.125, 0.125] in levels, "the reference level is drawn"
    folder = write(table, stats, SPEC, figures)
    FolderDataset(filepath=str(tmp_path / "report")).save(folder)
    report = (tmp_path / "report" / "report.md").read_text()
    for name in figures:
        png = (tmp_path / "report" / "figures" / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000, name
        assert f"(figures/{name})" in report
    assert "n = 1: no interval" in report and "no completed run" in report
    assert "`a2_y_s0` (failed): non-finite loss at epoch 2" in report


def test_a_run_a_stop_rule_ended_counts_as_a_result(table):
    # a family's stop rule gives its own status (the G-code family's "collapsed"): its
    # metrics are a result, unlike a failed or missing run's
    table.loc[table["variant"] == "a1_x_s1", "status"] = "collapsed"
    stats, _ = nodes.condition_statistics(table, SPEC, sweep=SWEEP)
    row = stats[stats["metric"] == "loss"].set_index(["a", "m"]).loc[(1, "x")]
    assert (row["n_completed"], row["n_stopped"], row["n"], row["completion_rate"]) == (2, 1, 3, 1.0)
    assert row["mean"] == pytest.approx(1.1)
    assert "6 completed, 1 collapsed, 4 failed, 1 missing" in nodes.results_markdown(table, SPEC, sweep=SWEEP)
    figure = figures.plot_completion(stats, ["a", "m"])
    assert "stopped" in [t.get_text() for t in figure.legends[0].get_texts()]
    folder = write(table, stats, SPEC)
    report = folder["report.md"]
    assert "1 stopped by a rule" in report and "`a1_x_s1` (collapsed): done" in report
    assert "`a1_x_s1`" not in report.split("## Runs left out")[1]  # its metrics count


def test_one_curves_figure_per_report(table):
    stats, _ = nodes.condition_statistics(table, SPEC, sweep=SWEEP)
    histories = {v: pd.DataFrame([{"epoch": 1, "split": "val", "loss": 1.0}]) for v in table["variant"]}
    curves = nodes.aggregate_curves(SPEC, **histories, sweep=SWEEP)
    names = nodes.plot_report_figures(table, stats, curves, SPEC, sweep=SWEEP)
    assert [n for n in names if "curves" in n] == ["validation_curves.png"]


def test_a_single_seed_report_says_why_nothing_was_tested_instead_of_an_empty_table():
    spec = {**SPEC, "seeds": [0]}
    summaries = {f"a{a}_{m}_s0": summary(a, m, 0, 1.0 + a) for a, m in PLAN}
    table = nodes.results_table(spec, **summaries, sweep=planned(spec))
    stats, _ = nodes.condition_statistics(table, spec, sweep=planned(spec))
    comparisons = nodes.compare_conditions(table, spec, sweep=planned(spec))
    assert len(comparisons) and not np.isfinite(comparisons["pvalue"]).any()
    report = write(table, stats, spec, comparisons=comparisons)["report.md"]
    section = report.split("## Comparisons on loss")[1].split("## Best setting per axis")[0]
    assert "0 tested" in section and "No pair had two completed runs on both sides" in section
    assert "|" not in section, "no empty table"


def test_metrics_are_found_by_name_whatever_they_are_called():
    # a family metric named like a prefix (best_, final_) is a metric like any other
    spec = {"family": "ae", "grid": {"a": [1, 2]}, "seeds": [0]}
    summaries = {f"a{a}_s0": {"status": "completed", "reason": "", "best_epoch": 2, "epochs_run": 3, "wall_s": 1.0,
                              "best": {"val": {"best_f1": 0.5 * a, "final_acc": 0.9}, "train": {"best_f1": 0.6}},
                              "final": {"val": {"best_f1": 0.4 * a, "final_acc": 0.8}}}
                 for a in (1, 2)}
    table = nodes.results_table(spec, **summaries, sweep=planned(spec))
    assert tables.report_metrics(table, spec, sweep=planned(spec)) == ["best_f1", "final_acc"]
    assert {"final.val.best_f1", "best.train.best_f1", "final.val.final_acc"} <= set(table.columns)
    assert nodes.compare_conditions(table, spec, sweep=planned(spec))["metric"].tolist() == ["best_f1"]
    stats, _ = nodes.condition_statistics(table, spec, sweep=planned(spec))
    report = write(table, stats, spec)["report.md"]
    assert "| a | best_f1 | final_acc |" in report
    assert "| a1_s0 | 1 | 0 | completed | 0.5 | 0.9 |" in nodes.results_markdown(table, spec, sweep=planned(spec))


def test_errors_name_the_sweep():
    spec = {**SPEC, "report": {"metrics": ["loss"], "best_by": ["loss", "acc"]}}
    with pytest.raises(ConfigError, match=r"ae_sweep\.report\.best_by\[1\]: got 'acc'"):
        nodes.check_report(spec, planned(spec, "ae_sweep"))
    bad = {**SPEC, "report": {"confidence": 2}}
    with pytest.raises(ConfigError, match=r"ae_sweep\.report\.confidence"):
        nodes.results_table(bad, sweep=planned(bad, "ae_sweep"))
    with pytest.raises(ConfigError, match=r"ae_sweep\.grid\.a: got"):
        planned({**SPEC, "grid": {"a": None}}, "ae_sweep")


def test_best_per_axis_ranks_by_the_metrics_the_spec_names(table):
    assert set(nodes.best_per_axis(table, SPEC, sweep=SWEEP)["metric"]) == {"loss"}, "default: the compare metric"
    spec = {**SPEC, "report": {**SPEC["report"], "best_by": ["acc"]}}
    best = nodes.best_per_axis(table, spec, sweep=planned(spec))
    assert set(best["metric"]) == {"acc"}
    stats, _ = nodes.condition_statistics(table, spec, sweep=planned(spec))
    assert "Ranked by acc (report.best_by)" in write(table, stats, spec)["report.md"]
    with pytest.raises(ConfigError, match=r"sweep\.report\.best_by\[0\]: 'f1' is not a metric of the runs"):
        nodes.best_per_axis(table, {**SPEC, "report": {**SPEC["report"], "best_by": ["f1"]}}, sweep=SWEEP)


def test_a_report_of_a_subset_says_so_and_records_its_provenance(table):
    stats, _ = nodes.condition_statistics(table, SPEC, sweep=SWEEP)
    configured = {**SPEC, "grid": {"a": [1, 2, 3], "m": ["x", "y"]}}
    provenance = {"command": "kedro run --pipelines=s", "params": ["s.grid.a=[1, 2]"], "env": "local",
                  "pipelines": ["s"], "runner": "SequentialRunner", "code_version": "git 0123456789ab-dirty",
                  "date": "2026-01-01T00:00:00Z", "configured_spec": configured,
                  "configured": configured_coverage("s", configured, SPEC)}
    sweep = SWEEP_S
    folder = nodes.write_report(SPEC, sweep=sweep, provenance=provenance, table=table, stats=stats,
                                comparisons=nodes.compare_conditions(table, SPEC, sweep=SWEEP))
    report = folder["report.md"]
    assert report.startswith("# s (subset: 12 of 18 variants, --params s.grid.a=[1, 2])\n")
    section = report.split("## Provenance")[1]
    for text in ("`kedro run --pipelines=s`", "`s.grid.a=[1, 2]`", "git 0123456789ab-dirty", "2026-01-01T00:00:00Z"):
        assert text in section
    record = json.loads(folder["provenance.json"])
    assert record["spec_hash"] == config_hash(SPEC) and record["spec"] == SPEC and record["sweep"] == "s"
    assert record["coverage"] == "subset: 12 of 18 variants"
    assert nodes.results_markdown(table, SPEC, provenance, sweep=sweep).startswith("# s (subset: 12 of 18 variants")
    whole = {**provenance, "configured_spec": SPEC, "configured": configured_coverage("s", SPEC, SPEC)}
    same = nodes.write_report(SPEC, sweep=sweep, provenance=whole, table=table, stats=stats)["report.md"]
    assert same.startswith("# s\n"), "the whole sweep: no note"


def test_no_section_is_an_empty_table():
    spec = {"family": "ae", "grid": {"a": [1]}, "seeds": [0], "report": {"metrics": ["loss"]}}
    table = nodes.results_table(spec, a1_s0=summary(1, "x", 0, 1.0), sweep=planned(spec))
    stats, _ = nodes.condition_statistics(table, spec, sweep=planned(spec))
    report = write(table, stats, spec)["report.md"]
    assert "## Comparisons\n\nThe sweep has one condition: nothing to compare." in report
    assert "No axis has two settings with a completed run to compare." in report
    for heading in report.split("\n## ")[1:]:
        body = heading.split("\n", 1)[1].strip()
        assert body and not body.startswith("|---"), heading


def test_a_report_of_more_than_the_sweep_says_so(table):
    stats, _ = nodes.condition_statistics(table, SPEC, sweep=SWEEP)
    narrower = {**SPEC, "grid": {**SPEC["grid"], "a": [1]}}
    provenance = {"params": ["s.grid.a=[1, 2]"], "configured": configured_coverage("s", narrower, SPEC)}
    report = nodes.write_report(SPEC, sweep=SWEEP_S, provenance=provenance, table=table,
                                stats=stats)["report.md"]
    assert report.startswith("# s (widened: 12 variants, the 6 configured among them, --params s.grid.a=[1, 2])\n")


def test_a_report_of_runs_of_several_code_versions_says_which_code_made_each():
    summaries = {f"a{a}_{m}_s{seed}": {**summary(a, m, seed, loss), "code_identity": "aaaaaaaaaaaa"}
                 for (a, m), runs in PLAN.items() for seed, loss in runs.items()}
    one_code = nodes.results_table(SPEC, sweep=SWEEP_S, **summaries)
    assert nodes.results_markdown(one_code, SPEC, sweep=SWEEP_S).startswith("# s: results\n")
    assert "aaaaaaaaaaaa" not in nodes.results_markdown(one_code, SPEC, sweep=SWEEP_S), "one code: no column"
    assert not tables.code_versions(one_code).keys() - {"aaaaaaaaaaaa"}

    summaries["a1_x_s0"] |= {"code_identity": "bbbbbbbbbbbb", "code_kept": True, "restored": True}
    summaries["a1_y_s0"].pop("code_identity")  # a record from before code identities
    table = nodes.results_table(SPEC, sweep=SWEEP_S, **summaries)
    assert table.columns[-3:].tolist() == ["code", "code_kept", "reason"]
    assert "code" not in tables.shown_metrics(table, tables.layout(SPEC, SWEEP_S))
    assert "code_kept" not in tables.numeric_metrics(table, tables.layout(SPEC, SWEEP_S)), "not a metric"
    results = nodes.results_markdown(table, SPEC, sweep=SWEEP_S)
    assert results.startswith("# s (runs of 3 code versions, 1 kept from earlier code): results\n")
    assert "| a1_x_s0 | 1 | x | 0 | completed | 1 | 3 | 3 | 1 | bbbbbbbbbbbb (kept) |" in results
    stats, _ = nodes.condition_statistics(table, SPEC, sweep=SWEEP_S)
    folder = nodes.write_report(SPEC, sweep=SWEEP_S, table=table, stats=stats)
    assert folder["report.md"].startswith("# s (runs of 3 code versions, 1 kept from earlier code)\n")
    assert ("- code identities of the runs: `bbbbbbbbbbbb` (1 run, 1 kept from earlier code); `aaaaaaaaaaaa` "
            "(9 runs); `unrecorded` (1 run)") in folder["report.md"]
    record = json.loads(folder["provenance.json"])
    assert record["code_kept"] == ["a1_x_s0"] and record["code_identities"]["unrecorded"] == ["a1_y_s0"]


def test_coverage_counts_the_configured_variants_the_run_planned():
    narrower = {**SPEC, "grid": {**SPEC["grid"], "a": [1]}}
    assert configured_coverage("s", SPEC, SPEC) == {"variants": 12, "planned": 12}
    assert configured_coverage("s", SPEC, narrower) == {"variants": 12, "planned": 6}
    other = {**SPEC, "grid": {"a": [1, 3], "m": ["x"]}}
    assert configured_coverage("s", other, SPEC) == {"variants": 6, "planned": 3}
    sweep = tables.layout(SPEC, SWEEP_S)
    assert coverage(sweep, {"configured": configured_coverage("s", other, SPEC)}) == (
        "not the configured sweep: 12 variants, 3 of the 6 configured among them")
    assert coverage(sweep, {"configured": configured_coverage("s", SPEC, SPEC)}) is None
    # a configured spec that only --params makes valid: coverage unknown, and no report note
    assert configured_coverage("s", {**SPEC, "grid": {"a": None}}, SPEC) is None
    assert coverage(sweep, {"configured": None}) is None


def test_comparisons_carry_a_bootstrap_difference_and_the_probability_of_improvement(table):
    frame = nodes.compare_conditions(table, SPEC, sweep=SWEEP).set_index(["condition_a", "condition_b"])
    pair = frame.loc[("a=1, m=x", "a=1, m=y")]
    assert pair["diff_ci_lower"] < pair["mean_diff"] < pair["diff_ci_upper"] < 0
    assert pair["p_improvement"] == 1.0, "every run of (1, x) has a lower loss than every run of (1, y)"
    again = nodes.compare_conditions(table, SPEC, sweep=SWEEP).set_index(["condition_a", "condition_b"])
    assert again["diff_ci_lower"].equals(frame["diff_ci_lower"]), "seeded: the same report twice"


def test_min_effect_makes_a_small_difference_not_significant(table):
    def significant(min_effect):
        spec = {**SPEC, "report": {**SPEC["report"], "correction": "none", "min_effect": min_effect}}
        frame = nodes.compare_conditions(table, spec, sweep=SWEEP).set_index(["condition_a", "condition_b"])
        return frame.loc[("a=1, m=x", "a=1, m=y"), ["significant", "meets_min_effect"]].tolist()

    assert significant(None) == [True, True]  # mean difference 1.1, p = 0.04 uncorrected
    assert significant(1.0) == [True, True] and significant(1.5) == [False, False]
    stats, _ = nodes.condition_statistics(table, SPEC, sweep=SWEEP)
    spec = {**SPEC, "report": {**SPEC["report"], "min_effect": 1.5}}
    report = write(table, stats, spec)["report.md"]
    assert "a difference of at least 1.5 (`report.min_effect`)" in report


def test_failed_runs_scored_as_the_worst_value_show_whether_a_conclusion_leans_on_them(table):
    frame = nodes.compare_conditions(table, SPEC, sweep=SWEEP).set_index(["condition_a", "condition_b"])
    assert (frame["worst_value"] == 2.4).all(), "the highest loss of any run with a result"
    pair = frame.loc[("a=1, m=x", "a=1, m=y")]  # y's seed 2 failed: with it as 2.4 the pair is paired
    ref = sps.ttest_rel([1.0, 1.2, 1.1], [2.0, 2.4, 2.4])
    assert pair["mean_diff_failed_as_worst"] == pytest.approx(1.1 - 6.8 / 3)
    assert frame["p_adjusted_failed_as_worst"].notna().any() and ref.pvalue < pair["p_adjusted_failed_as_worst"]
    stats, _ = nodes.condition_statistics(table, SPEC, sweep=SWEEP)
    report = write(table, stats, SPEC)["report.md"]
    assert "**Sensitivity to failures.** Some runs failed and are left out above. Scored instead as the worst " \
           "value observed (2.4), " in report


def test_the_power_table_sizes_seeds_from_the_pooled_spread(table):
    stats, _ = nodes.condition_statistics(table, SPEC, sweep=SWEEP)
    power = nodes.power_table(stats, SPEC, sweep=SWEEP).set_index("metric")
    # conditions with two or more runs: (1, x) and (1, y); pooled with n - 1 weights
    pooled = math.sqrt((2 * np.var([1.0, 1.2, 1.1], ddof=1) + np.var([2.0, 2.4], ddof=1)) / 3)
    assert power.loc["loss", "pooled_std"] == pytest.approx(pooled)
    alpha = 0.1  # the spec's confidence is 0.9
    assert power.loc["loss", "seeds_for_1sd"] == stats_module.seeds_needed(1.0, alpha)
    assert power.loc["loss", "detectable"] == pytest.approx(power.loc["loss", "detectable_sd"] * pooled)
    report = write(table, stats, SPEC, power=power.reset_index())["report.md"]
    assert "## How many seeds" in report


def test_an_aggregate_is_an_interquartile_mean_over_runs_and_tasks(table):
    spec = {**SPEC, "report": {**SPEC["report"], "aggregates": {"both": ["loss", "acc"]}}}
    found = nodes.aggregate_scores(table, spec, sweep=SWEEP).set_index(["a", "m"])
    row = found.loc[(1, "x")]
    scores = [1.0, 1.2, 1.1, 0.9, 0.88, 0.89]  # loss and acc = 1 - loss / 10 of its three runs
    assert row["iqm"] == pytest.approx(sps.trim_mean(scores, 0.25)) and (row["n_runs"], row["n_tasks"]) == (3, 2)
    assert row["ci_lower"] <= row["iqm"] <= row["ci_upper"]
    assert np.isnan(found.loc[(2, "y"), "iqm"]), "no run of it gave a result"
    stats, _ = nodes.condition_statistics(table, spec, sweep=SWEEP)
    figures_by_name = nodes.plot_report_figures(table, stats, pd.DataFrame(), spec, sweep=SWEEP)
    assert {"profile_loss.png", "profile_both.png"} <= set(figures_by_name)
    with pytest.raises(ConfigError, match=r"sweep.report.aggregates.one: got \['loss'\]; expected two or more"):
        nodes.check_report({**SPEC, "report": {"aggregates": {"one": ["loss"]}}}, planned(SPEC))
