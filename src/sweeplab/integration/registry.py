"""Kedro pipelines from the sweeps of the run's parameters: the registry's work.

For every sweep declared in parameters (``family`` + ``grid`` and/or ``experiments``) this
registers:

- ``<sweep>``: the family's data prep + every variant + the report, the main job;
- ``<sweep>_report``: the report alone, on saved run records;
- ``<sweep>_train``: data prep + variants without the report.

Plus ``<family>_prep`` (a family's data preparation only) and ``__default__`` (every sweep).
Every section of the parameters is checked first (``sweeplab.checks``): a run with an
invalid setting stops here, before any node has written anything.

Only the sweeps a run asks for (``--pipelines``, as the project's ``run`` command records it
in ``session``) are expanded, and only the pipelines it asks for are built (on first access),
so a run's start-up does not grow with the other sweeps of the project; listing, kedro-viz
and ``__default__`` build them all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from sweeplab import sweeps
from sweeplab.checks import check_parameters
from sweeplab.families import STUDIES, Family
from sweeplab.integration import session, upstream, viz
from sweeplab.integration.tracking import SECTION as TRACKING
from sweeplab.integration.tracking import TrackingConfig
from sweeplab.pipelines import node_function
from sweeplab.pipelines.reporting import pipeline as reporting_pipeline
from sweeplab.sweeps import Plan, Variant

SETTINGS = {TRACKING: TrackingConfig}  # sections of the project's own settings; each may be left out


def variant_nodes(family: Family, variants: list[Variant]) -> list[Node]:
    """The family's template once per variant, each under the namespace ``<sweep>.<variant>``
    (a box per variant in kedro-viz), its nodes named ``<step>_<variant>``.

    The template is built once and its nodes copied per variant, as Kedro's own namespacing
    does (``upstream.copy_node``), but without a ``Pipeline`` per variant: joining a thousand of those
    costs seconds where the nodes alone cost milliseconds.
    """
    templates = {None: family.template()}
    shared = family.shared
    trials = [v for v in variants if v.trial not in (None, sweeps.BEST)]
    nodes = []
    for variant in variants:
        namespace = variant.namespace

        def scoped(names: Any, namespace: str = namespace) -> Any:
            if names is None:
                return None
            if isinstance(names, str):
                return names if names in shared or names.startswith("params:") else f"{namespace}.{names}"
            if isinstance(names, dict):
                return {key: scoped(name) for key, name in names.items()}
            return [scoped(name) for name in names]

        searched = variant.trial is not None and variant.trial != sweeps.BEST
        if searched and variant.sweep not in templates:
            templates[variant.sweep] = family.template(searched_by=variant.sweep)
        resolve, inputs = config_node(family, variant, trials)
        # each node's name says its variant too: kedro-viz and the logs show the name alone
        nodes.append(Node(resolve, inputs=inputs, outputs=f"{namespace}.config",
                          name=f"resolve_config_{variant.name}", tags=["config"], namespace=namespace))
        nodes.extend(upstream.copy_node(node, inputs=scoped(upstream.node_inputs(node)),
                                        outputs=scoped(upstream.node_outputs(node)), namespace=namespace,
                                        name=f"{node.name}_{variant.name}")
                     for node in templates[variant.sweep if searched else None].nodes)
    return nodes


def config_node(family: Family, variant: Variant, trials: list[Variant]) -> tuple[Callable, Any]:
    """A variant's config node and its inputs: the family's defaults, and for a search's trial
    its study and spec; a re-evaluation's reads every trial's outcome too."""
    def bound(func: Callable) -> Callable:
        return node_function(func, family=family, variant=variant)

    defaults = f"params:{family.name}"
    if variant.trial is None:
        return bound(sweeps.resolve_variant_config), defaults
    spec = f"params:{variant.sweep}"
    if variant.trial != sweeps.BEST:
        inputs = {"defaults": defaults, "studies": STUDIES, "sweep_spec": spec}
        if (before := sweeps.asked_after(variant, trials)) is not None:  # at most `parallel` trials in flight
            inputs["after"] = f"{before.namespace}.outcome"
        return bound(sweeps.trial_config), inputs
    return bound(sweeps.best_config), {"defaults": defaults, "sweep_spec": spec,
                                       **{t.name: f"{t.namespace}.outcome" for t in trials}}


def requested_sweeps(params: dict, requested: tuple[str, ...] | list[str] | None,
                     families: Mapping[str, Family]) -> set[str] | None:
    """The sweeps that the pipelines named on the command line belong to; None: all of them
    (nothing named, ``__default__``, or a name that is no pipeline: Kedro then lists them all
    to suggest the closest)."""
    if requested is None or "__default__" in requested:
        return None
    found = sweeps.find_sweeps(params)
    named = {f"{name}{suffix}": name for name in found for suffix in ("", "_train", "_report")}
    if not set(requested) <= set(named) | {f"{name}_prep" for name in families}:
        return None
    return {named[name] for name in requested if name in named}


class LazyRegistry(Mapping[str, Pipeline]):
    """Pipelines built on first access, so that a run builds only the ones it asks for."""

    def __init__(self, builders: dict[str, Callable[[], Pipeline]]):
        self._builders = builders
        self._built: dict[str, Pipeline] = {}

    def __getitem__(self, name: str) -> Pipeline:
        if name not in self._built:
            self._built[name] = self._builders[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


def data_prep(family: Family, params: dict) -> Pipeline:
    """A family's data prep under the namespace ``<family>_prep``: one box in kedro-viz.

    Only the nodes are namespaced; the datasets keep their catalog names.
    """
    namespace = f"{family.name}_prep"
    return Pipeline([upstream.copy_node(node, namespace=f"{namespace}.{node.namespace}" if node.namespace else namespace)
                     for node in family.data_prep(params).nodes])


class SweepNodes:
    """One sweep's nodes, each part made once and shared by the pipelines that hold it."""

    def __init__(self, family: Family, plan: Plan, params: dict):
        self.name, self.family, self.plan, self.variants, self.params = plan.name, family, plan, plan.variants, params

    @functools.cached_property
    def prep(self) -> list[Node]:
        prep = data_prep(self.family, self.params)
        self.family.check_data_prep(prep)
        return prep.nodes

    @functools.cached_property
    def variant(self) -> list[Node]:
        return variant_nodes(self.family, self.variants)

    @functools.cached_property
    def report(self) -> list[Node]:
        # A report node that reads only the variants' run records (and parameters) gathers
        # them: it belongs to the sweep's own namespace, so that kedro-viz draws the sweep as
        # one box whose outputs are the few tables the report reads, not every variant's
        # summary and history.
        def gathers(node: Node) -> bool:
            return all(name.startswith((f"{self.name}.", "params:")) for name in node.inputs)

        return [upstream.copy_node(node, namespace=self.name) if gathers(node) else node
                for node in reporting_pipeline.create_pipeline(self.plan).nodes]

    def pipelines(self) -> dict[str, Callable[[], Pipeline]]:
        # each pipeline made from its nodes at once: adding pipelines rebuilds the sum each time
        return {f"{self.name}_train": lambda: Pipeline(self.prep + self.variant),
                f"{self.name}_report": lambda: Pipeline(self.report),
                self.name: lambda: Pipeline(self.prep + self.variant + self.report)}


def plan(params: Mapping[str, Any], families: Mapping[str, Family], *, only: set[str] | None = None
         ) -> dict[str, tuple[Family, Plan]]:
    """Check every section of the parameters, the project's own settings included; each sweep
    (of ``only``, or all) with its family and plan (axes and variants)."""
    return check_parameters(params, families, only=only, settings=SETTINGS)


def build(families: Mapping[str, Family]) -> Mapping[str, Pipeline]:
    """Every pipeline of the run's parameters (``session``), built on first access; only the
    sweeps the running command asked for are expanded."""
    viz.install()  # kedro-viz's namespace tree in linear time, when kedro-viz is the caller
    params = session.parameters()
    only = requested_sweeps(params, session.requested_pipelines(), families)
    planned = plan(params, families, only=only)
    builders: dict[str, Callable[[], Pipeline]] = {
        f"{name}_prep": functools.partial(data_prep, f, params) for name, f in families.items()}
    sweeps_nodes = [SweepNodes(family, sweep, params) for family, sweep in planned.values()]
    for parts in sweeps_nodes:
        builders.update(parts.pipelines())
    if only is None:
        # a family's data prep is in each of its sweeps: the same nodes, kept once
        builders["__default__"] = lambda: Pipeline(
            list(dict.fromkeys(n for parts in sweeps_nodes for n in parts.prep + parts.variant + parts.report)))
    return LazyRegistry(builders)
