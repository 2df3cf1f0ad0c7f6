"""The decision-tree walk on hand-made outcomes: every branch of the TRM debugging plan, and
the walks that stop on missing or failed runs."""

import pandas as pd
import pytest

from sweeplab.config import ConfigError, from_dict
from sweeplab.pipelines.reporting import decisions
from tests.conftest import planned


def parse_tree(spec: dict, where: str) -> decisions.DecisionTree:
    return from_dict(decisions.DecisionTree, spec, where=where)


PLAN = {
    "start": "baseline",
    "nodes": {
        "baseline": {"experiments": ["E0v2"], "metric": "accuracy", "at_least": 0.9, "success": "encoder",
                     "failure": "debug_baseline"},
        "encoder": {"experiments": ["E1v2"], "metric": "accuracy", "at_least": 0.9, "success": "full_dataset",
                    "failure": "frozen"},
        "frozen": {"experiments": ["E_diag1"], "metric": "accuracy", "at_least": 0.5, "success": "phase3",
                   "failure": "fix_interface"},
        "phase3": {"experiments": ["E4", "E5", "E6", "E7"], "metric": "accuracy", "at_least": 0.9,
                   "success": "fixed_by_phase3", "failure": "phase2"},
        "phase2": {"experiments": ["E2", "E3"], "metric": "accuracy", "at_least": 0.9, "success": "fixed_by_phase2",
                   "failure": "redesign"},
    },
    "conclusions": {
        "debug_baseline": {"text": "the baseline does not memorise: debug it first"},
        "full_dataset": {"text": "the encoder works", "next_phase": "the full dataset"},
        "fix_interface": {"text": "no fixed encoder output is usable: fix the encoder-TRM interface"},
        "fixed_by_phase3": {"text": "a training fix works", "next_phase": "the full dataset"},
        "fixed_by_phase2": {"text": "a deeper encoder works", "next_phase": "the full dataset"},
        "redesign": {"text": "redesign the encoder"},
    },
    "levels": {"metric": "accuracy", "experiments": ["E1v2", "E2", "E3", "E4", "E5", "E6", "E7"],
               "grades": [{"name": "minimal", "at_least": 0.9}, {"name": "good", "at_least": 0.8},
                          {"name": "partial", "at_least": 0.5}],
               "otherwise": "failure"},
}
TREE = parse_tree(PLAN, "trm_debug.report.decision_tree")
ALL = ["E0v2", "E1v2", "E_diag1", "E4", "E5", "E6", "E7", "E2", "E3"]


def table(**accuracy) -> pd.DataFrame:
    """Two seeds per experiment; a value None is a missing experiment, 'failed' a failed one."""
    rows = []
    for experiment in ALL:
        value = accuracy.get(experiment)
        for seed in (0, 1):
            if value is None:
                rows.append({"experiment": experiment, "seed": seed, "status": "missing", "reason": "",
                             "accuracy": float("nan")})
            elif value == "failed":
                rows.append({"experiment": experiment, "seed": seed, "status": "failed",
                             "reason": "NonFiniteLoss: non-finite loss at epoch 3 (train)", "accuracy": float("nan")})
            else:
                rows.append({"experiment": experiment, "seed": seed, "status": "completed", "reason": "",
                             "accuracy": value + (0.01 if seed else -0.01)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("accuracy", "nodes", "outcome", "level"), [
    ({"E0v2": 0.5}, ["baseline"], "debug_baseline", None),
    ({"E0v2": 0.95, "E1v2": 0.92}, ["baseline", "encoder"], "full_dataset", "minimal"),
    ({"E0v2": 0.95, "E1v2": 0.3, "E_diag1": 0.2}, ["baseline", "encoder", "frozen"], "fix_interface", "failure"),
    ({"E0v2": 0.95, "E1v2": 0.3, "E_diag1": 0.6, "E4": 0.2, "E5": 0.91, "E6": 0.4, "E7": 0.1},
     ["baseline", "encoder", "frozen", "phase3"], "fixed_by_phase3", "minimal"),
    ({"E0v2": 0.95, "E1v2": 0.3, "E_diag1": 0.6, "E4": 0.2, "E5": 0.85, "E6": 0.4, "E7": 0.1, "E2": 0.1,
      "E3": 0.95}, ["baseline", "encoder", "frozen", "phase3", "phase2"], "fixed_by_phase2", "minimal"),
    ({"E0v2": 0.95, "E1v2": 0.3, "E_diag1": 0.6, "E4": 0.2, "E5": 0.85, "E6": 0.4, "E7": 0.1, "E2": 0.1,
      "E3": 0.6}, ["baseline", "encoder", "frozen", "phase3", "phase2"], "redesign", "good"),
])
def test_every_branch(accuracy, nodes, outcome, level):
    result = decisions.walk(TREE, table(**accuracy))
    assert [s.node for s in result.path] == nodes
    assert result.outcome == outcome and result.level == level
    assert result.conclusion == PLAN["conclusions"][outcome]["text"]
    assert result.path[0].values["E0v2"] == pytest.approx(accuracy["E0v2"]), "the mean over seeds"


def test_a_phase_not_run_yet_is_the_next_thing_to_do():
    result = decisions.walk(TREE, table(E0v2=0.95, E1v2=0.3, E_diag1=0.6))
    assert result.outcome == "stopped" and result.path[-1].node == "phase3" and result.path[-1].met is None
    assert result.next_phase == "run E4, E5, E6, E7"
    assert result.conclusion == "stopped at 'phase3': E4, E5, E6, E7 not run yet"
    assert result.level == "failure", "graded on what ran: E1v2 at 0.3"


def test_a_failed_node_stops_the_walk_with_its_reason():
    result = decisions.walk(TREE, table(E0v2="failed"))
    assert result.outcome == "stopped" and result.next_phase is None and result.level is None
    assert result.conclusion == ("stopped at 'baseline': E0v2 has no completed run "
                                 "(failed: NonFiniteLoss: non-finite loss at epoch 3 (train))")


def test_all_instead_of_any():
    strict = parse_tree({**PLAN, "nodes": {**PLAN["nodes"], "phase3": {**PLAN["nodes"]["phase3"],
                                                                                  "any": False}}}, "t")
    outcome = table(E0v2=0.95, E1v2=0.3, E_diag1=0.6, E4=0.95, E5=0.95, E6=0.95, E7=0.5, E2=0.1, E3=0.1)
    assert decisions.walk(TREE, outcome).outcome == "fixed_by_phase3"
    assert decisions.walk(strict, outcome).outcome == "redesign"


def test_the_walk_as_a_report_section():
    result = decisions.walk(TREE, table(E0v2=0.95, E1v2=0.3, E_diag1=0.6))
    text = "\n".join(decisions.walk_markdown(result, TREE))
    assert "| 1 | baseline | E0v2 0.95 | accuracy >= 0.9 | yes |" in text
    assert "| 4 | phase3 | E4 –, E5 –, E6 –, E7 – | accuracy >= 0.9 (any) | undecided |" in text
    assert "**Next:** run E4, E5, E6, E7" in text
    assert decisions.as_dict(result)["path"][1] == {"node": "encoder", "values": {"E1v2": pytest.approx(0.3)},
                                                    "threshold": ">= 0.9", "met": False}


@pytest.mark.parametrize(("change", "message"), [
    ({"start": "nowhere"}, r"start: got 'nowhere'; expected one of the nodes"),
    ({"nodes": {"baseline": {**PLAN["nodes"]["baseline"], "success": "enocder"}}},
     r"nodes.baseline.success: got 'enocder'; expected a node or a conclusion"),
    ({"nodes": {"baseline": {**PLAN["nodes"]["baseline"], "at_most": 0.1}}}, r"exactly one of at_least and at_most"),
    ({"conclusions": {**PLAN["conclusions"], "baseline": {"text": "x"}}}, r"conclusions.baseline: also the name"),
])
def test_a_bad_tree_is_named(change, message):
    spec = {**PLAN, **change}
    if "nodes" in change:
        spec["nodes"] = {**PLAN["nodes"], **change["nodes"]}
    with pytest.raises(ConfigError, match=message):
        parse_tree(spec, "trm_debug.report.decision_tree")


def test_unknown_experiments_are_named():
    with pytest.raises(ConfigError, match=r"t.nodes.phase3: no experiment 'E4'"):
        TREE.check_experiments(["E0v2", "E1v2", "E_diag1"], "t")


SMALL_PLAN = {"start": "base", "nodes": {"base": {"experiments": ["a"], "metric": "loss", "at_most": 1.0,
                                                  "success": "ok", "failure": "bad"}},
              "conclusions": {"ok": {"text": "a works", "next_phase": "b"}, "bad": {"text": "a fails"}}}


def test_the_report_walks_a_declared_tree():
    from sweeplab.pipelines.reporting import nodes  # noqa: PLC0415

    spec = {"family": "ae", "experiments": {"a": {}, "b": {}}, "seeds": [0, 1],
            "report": {"metrics": ["loss"], "decision_tree": SMALL_PLAN}}
    nodes.check_report(spec, planned(spec, "s"))
    summaries = {f"{e}_s{s}": {"status": "completed", "reason": "", "best": {"val": {"loss": v}}}
                 for (e, s), v in zip([("a", 0), ("a", 1), ("b", 0), ("b", 1)], [0.5, 0.7, 2.0, 2.5], strict=True)}
    sweep = planned(spec, "s")
    table = nodes.results_table(spec, sweep=sweep, **summaries)
    stats, _ = nodes.condition_statistics(table, spec, sweep=sweep)
    report = nodes.write_report(spec, sweep=sweep, table=table, stats=stats,
                                comparisons=nodes.compare_conditions(table, spec, sweep=sweep),
                                best=nodes.best_per_axis(table, spec, sweep=sweep),
                                criteria=nodes.success_criteria(stats, spec, sweep=sweep))
    assert "| 1 | base | a 0.6 | loss <= 1 | yes |" in report["report.md"]
    assert "**Conclusion:** a works" in report["report.md"] and "**Next:** b" in report["report.md"]
    assert '"outcome": "ok"' in report["decision_tree.json"]


@pytest.mark.parametrize(("spec", "message"), [
    ({"family": "ae", "grid": {"trainer.lr": [1]}, "report": {"decision_tree": SMALL_PLAN}},
     r"s.report.decision_tree: its nodes are named experiments, and the sweep lists none"),
    ({"family": "ae", "experiments": {"b": {}}, "report": {"decision_tree": SMALL_PLAN}},
     r"s.report.decision_tree.nodes.base: no experiment 'a'; the sweep has \['b'\]"),
    ({"family": "ae", "experiments": {"a": {}}, "report": {"decision_tree": {**SMALL_PLAN, "strat": "base"}}},
     r"s.report.decision_tree.strat: unknown key; did you mean s.report.decision_tree.start\?"),
])
def test_a_report_tree_is_checked_before_anything_runs(spec, message):
    from sweeplab.pipelines.reporting import nodes  # noqa: PLC0415

    with pytest.raises(ConfigError, match=message):
        nodes.check_report(spec, planned(spec, "s"))
