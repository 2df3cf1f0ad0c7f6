"""A sweep's ``report:`` section as typed config, beside what the registry planned of the
sweep (its axes and variants, ``sweeplab.sweeps.Plan``). Every error names the sweep and the
full key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pandas as pd

from sweeplab.config import OPEN_FRACTION, ConfigError, NonNegativeFloat, from_dict
from sweeplab.pipelines.reporting.decisions import DecisionTree
from sweeplab.sweeps import Plan, Variant


@dataclass(frozen=True)
class LinePlot:
    x: str  # a numeric grid axis (dotted key or label)
    hue: str | None = None  # one line per value of this axis


@dataclass(frozen=True)
class Heatmap:
    x: str
    y: str


@dataclass(frozen=True)
class Criterion:
    """A target a metric's mean must meet: at least ``min``, at most ``max``, or both."""

    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.min is None and self.max is None:
            raise ConfigError("min: missing; expected min and/or max")

    def bounds(self) -> dict[str, float]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


@dataclass(frozen=True)
class ReportConfig:
    metrics: tuple[str, ...] = ()  # best-epoch val metrics to show; default: all found
    directions: dict[str, Literal["min", "max"]] = field(default_factory=dict)  # lower is better by default
    confidence: Annotated[float, OPEN_FRACTION] = 0.95
    correction: Literal["holm", "bonferroni", "none"] = "holm"
    # the smallest difference of compare_metric's means that matters, in its units; a pair is
    # significant when the corrected test says so and the difference is at least this. null: off
    min_effect: NonNegativeFloat | None = None
    # name -> metrics that are tasks of one score (a G-code model's accuracies per token type):
    # their interquartile mean over runs x tasks, with a stratified bootstrap interval
    aggregates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    compare_metric: str | None = None  # default: the first metric
    # the metrics that rank each axis's settings ("best setting per axis"); default: compare_metric.
    # Name the metrics that measure what the axis trades, not a loss the axis itself weights.
    best_by: tuple[str, ...] = ()
    line_plots: tuple[LinePlot, ...] | None = None  # default: each numeric axis vs the next axis
    heatmaps: tuple[Heatmap, ...] | None = None  # default: the first two axes
    heatmap_metrics: tuple[str, ...] = ()  # default: metrics
    references: dict[str, float] = field(default_factory=dict)  # metric -> a level to draw (e.g. chance)
    criteria: dict[str, Criterion] = field(default_factory=dict)  # metric -> the target its mean must meet
    decision_tree: DecisionTree | None = None  # a plan over named experiments, walked on the results


@dataclass(frozen=True)
class SweepLayout:
    """What a report needs to know of a sweep: its name, axes (key -> label), planned variants."""

    name: str
    axes: dict[str, str]
    variants: list[Variant]
    report: ReportConfig
    title: str = ""

    @property
    def labels(self) -> list[str]:
        return list(self.axes.values())

    def where(self, key: str) -> str:
        """The full name of a ``report:`` key, for messages: ``ae_sweep.report.best_by``."""
        return f"{self.name}.report.{key}"

    def label(self, axis: str, where: str = "report") -> str:
        """A grid key or a label -> the label, or an error naming ``where`` it was written."""
        if axis in self.axes.values():
            return axis
        if axis in self.axes:
            return self.axes[axis]
        raise ConfigError(f"{where}: got {axis!r}; expected a grid axis, one of {list(self.axes)}")

    def direction(self, metric: str) -> str:
        return self.report.directions.get(metric, "min")


def layout(spec: dict[str, Any], plan: Plan) -> SweepLayout:
    """The planned sweep with its ``report:`` section and title read from its spec."""
    report = from_dict(ReportConfig, spec.get("report") or {}, where=f"{plan.name}.report")
    return SweepLayout(plan.name, plan.axes, plan.variants, report, str(spec.get("title") or ""))


def check_report(spec: dict[str, Any], plan: Plan) -> None:
    """Fail before anything runs when a sweep's ``report:`` is malformed or names no axis."""
    sweep = layout(spec, plan)
    name = plan.name
    if sweep.report.decision_tree is not None:
        experiments = [str(e) for e in spec.get("experiments") or {}]
        if not experiments:
            raise ConfigError(f"{name}.report.decision_tree: its nodes are named experiments, and the sweep lists none")
        sweep.report.decision_tree.check_experiments(experiments, f"{name}.report.decision_tree")
    for kind, plots in (("line_plots", sweep.report.line_plots), ("heatmaps", sweep.report.heatmaps)):
        for i, plot in enumerate(plots or ()):
            for key, axis in vars(plot).items():
                if axis is not None:
                    sweep.label(axis, f"{name}.report.{kind}[{i}].{key}")
    for aggregate, metrics in sweep.report.aggregates.items():
        if len(set(metrics)) < 2:
            raise ConfigError(f"{sweep.where(f'aggregates.{aggregate}')}: got {list(metrics)}; expected two or more "
                              "distinct metrics, the tasks of one score")
    if sweep.report.metrics:  # a typo in best_by fails now, not after the training
        for i, metric in enumerate(sweep.report.best_by):
            if metric not in sweep.report.metrics:
                raise ConfigError(f"{sweep.where(f'best_by[{i}]')}: got {metric!r}; expected one of report.metrics "
                                  f"{list(sweep.report.metrics)}")

def condition_name(row: pd.Series | dict, labels: list[str]) -> str:
    return ", ".join(f"{label}={row[label]}" for label in labels)
