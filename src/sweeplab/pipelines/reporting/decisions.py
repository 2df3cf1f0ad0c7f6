"""A debugging plan as a decision tree over named experiments, walked on the measured results.

Declared in a sweep's ``report:`` section::

    decision_tree:
      start: baseline
      nodes:
        baseline:                       # a test: do these experiments meet the criterion?
          experiments: [E0v2]
          metric: accuracy
          at_least: 0.9                 # or at_most
          any: true                     # several experiments: one meeting it is enough (false: all)
          success: encoder              # the next node, or a conclusion's name
          failure: debug_baseline
      conclusions:
        debug_baseline: {text: "debug the baseline first", next_phase: null}
      levels:                           # optional: how far a result got, best first
        metric: accuracy
        experiments: [E1v2, E2_lpn]     # the best of these is graded
        grades: [{name: minimal, at_least: 0.9}, {name: good, at_least: 0.8}, {name: partial, at_least: 0.5}]
        otherwise: failure

A test is decided on the mean of ``metric`` over an experiment's completed runs (every
grid setting and seed). An experiment with no completed run stops the walk there: either it
has not been run (the next phase is to run it) or its runs failed (the reason is given).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.config import ConfigError
from sweeplab.run_records import COMPLETED, MISSING


@dataclass(frozen=True)
class Test:
    experiments: tuple[str, ...]
    metric: str
    success: str
    failure: str
    at_least: float | None = None
    at_most: float | None = None
    any: bool = True

    def __post_init__(self) -> None:
        if (self.at_least is None) == (self.at_most is None):
            raise ConfigError("expected exactly one of at_least and at_most")
        if not self.experiments:
            raise ConfigError("experiments: expected at least one experiment")

    def meets(self, value: float) -> bool:
        return value >= self.at_least if self.at_least is not None else value <= self.at_most

    @property
    def threshold(self) -> str:
        return f">= {self.at_least:g}" if self.at_least is not None else f"<= {self.at_most:g}"


@dataclass(frozen=True)
class Conclusion:
    text: str
    next_phase: str | None = None  # what to run next, if anything


@dataclass(frozen=True)
class Grade:
    name: str
    at_least: float


@dataclass(frozen=True)
class Levels:
    metric: str
    experiments: tuple[str, ...]
    grades: tuple[Grade, ...]  # best first
    otherwise: str = "failure"


@dataclass(frozen=True)
class DecisionTree:
    start: str
    nodes: dict[str, Test]
    conclusions: dict[str, Conclusion] = field(default_factory=dict)
    levels: Levels | None = None

    def __post_init__(self) -> None:
        names = set(self.nodes) | set(self.conclusions)
        if self.start not in self.nodes:
            raise ConfigError(f"start: got {self.start!r}; expected one of the nodes {sorted(self.nodes)}")
        for name, test in self.nodes.items():
            for edge in ("success", "failure"):
                if getattr(test, edge) not in names:
                    raise ConfigError(f"nodes.{name}.{edge}: got {getattr(test, edge)!r}; expected a node or a "
                                      f"conclusion, one of {sorted(names)}")
        if overlap := sorted(set(self.nodes) & set(self.conclusions)):
            raise ConfigError(f"conclusions.{overlap[0]}: also the name of a node")

    def check_experiments(self, known: list[str], where: str) -> None:
        used = [(f"nodes.{n}", e) for n, t in self.nodes.items() for e in t.experiments]
        used += [("levels", e) for e in (self.levels.experiments if self.levels else ())]
        for place, experiment in used:
            if experiment not in known:
                raise ConfigError(f"{where}.{place}: no experiment {experiment!r}; the sweep has {known}")


@dataclass(frozen=True)
class Step:
    node: str
    values: dict[str, float | None]  # experiment -> mean (None: no completed run)
    threshold: str
    met: bool | None  # None: undecided


@dataclass(frozen=True)
class Walk:
    path: tuple[Step, ...]
    outcome: str  # a conclusion's name, or "stopped"
    conclusion: str
    next_phase: str | None
    level: str | None


def experiment_values(table: pd.DataFrame, metric: str) -> dict[str, tuple[float | None, str]]:
    """Per experiment: the mean of ``metric`` over completed runs with a finite value (None
    when there are none), and why there are none."""
    out: dict[str, tuple[float | None, str]] = {}
    for experiment, rows in table.groupby("experiment", sort=False):
        done = rows[(rows["status"] == COMPLETED)]
        values = done[metric].to_numpy(dtype=float) if metric in done else np.array([])
        values = values[np.isfinite(values)]
        if len(values):
            out[str(experiment)] = (float(values.mean()), "")
        elif (rows["status"] == MISSING).all():
            out[str(experiment)] = (None, "not run yet")
        else:
            reasons = "; ".join(sorted({f"{r.status}: {r.reason}" for r in rows.itertuples()
                                        if r.status != COMPLETED})) or f"no finite {metric}"
            out[str(experiment)] = (None, reasons)
    return out


def walk(tree: DecisionTree, table: pd.DataFrame) -> Walk:
    """Follow the tree from ``start`` on the results table; stop at a conclusion or at a node
    whose experiments have no result."""
    path: list[Step] = []
    name = tree.start
    while name in tree.nodes:
        if len(path) > len(tree.nodes):
            raise ConfigError(f"decision_tree: the walk loops back through '{name}'")
        test = tree.nodes[name]
        results = experiment_values(table, test.metric)
        values = {e: results.get(e, (None, "not in the results"))[0] for e in test.experiments}
        lacking = {e: results.get(e, (None, "not in the results"))[1] for e, v in values.items() if v is None}
        if lacking:
            path.append(Step(name, values, test.threshold, None))
            not_run = [e for e, why in lacking.items() if why in ("not run yet", "not in the results")]
            failed = {e: why for e, why in lacking.items() if e not in not_run}
            reasons = [f"{e} has no completed run ({why})" for e, why in failed.items()]
            if not_run:
                reasons.append(f"{', '.join(not_run)} not run yet")
            return Walk(tuple(path), "stopped", f"stopped at '{name}': " + "; ".join(reasons),
                        f"run {', '.join(not_run)}" if not_run else None, grade(tree.levels, table))
        hits = [test.meets(v) for v in values.values()]
        met = any(hits) if test.any else all(hits)
        path.append(Step(name, values, test.threshold, met))
        name = test.success if met else test.failure
    conclusion = tree.conclusions[name]
    return Walk(tuple(path), name, conclusion.text, conclusion.next_phase, grade(tree.levels, table))


def grade(levels: Levels | None, table: pd.DataFrame) -> str | None:
    """The best grade the best of ``levels.experiments`` reaches, or ``otherwise``."""
    if levels is None:
        return None
    results = experiment_values(table, levels.metric)
    values = [v for e in levels.experiments if (v := results.get(e, (None, ""))[0]) is not None]
    if not values:
        return None
    best = max(values)
    return next((g.name for g in levels.grades if best >= g.at_least), levels.otherwise)


def walk_markdown(result: Walk, tree: DecisionTree) -> list[str]:
    """The walk as a report section: each node's values against its threshold, then the end."""
    lines = ["## Decision tree", "", "| step | node | values | criterion | met |", "|---|---|---|---|---|"]
    for i, step in enumerate(result.path, 1):
        values = ", ".join(f"{e} {v:.4g}" if v is not None else f"{e} –" for e, v in step.values.items())
        met = {True: "yes", False: "no", None: "undecided"}[step.met]
        test = tree.nodes[step.node]
        lines.append(f"| {i} | {step.node} | {values} | {test.metric} {step.threshold}"
                     f"{' (any)' if test.any and len(test.experiments) > 1 else ''} | {met} |")
    lines += ["", f"**Conclusion:** {result.conclusion}"]
    if result.next_phase:
        lines.append(f"**Next:** {result.next_phase}")
    if result.level is not None:
        lines.append(f"**Level reached:** {result.level}")
    return [*lines, ""]


def as_dict(result: Walk) -> dict[str, Any]:
    """The walk as JSON-ready data (``decision_tree.json``)."""
    return {"outcome": result.outcome, "conclusion": result.conclusion, "next_phase": result.next_phase,
            "level": result.level,
            "path": [{"node": s.node, "values": s.values, "threshold": s.threshold, "met": s.met}
                     for s in result.path]}

