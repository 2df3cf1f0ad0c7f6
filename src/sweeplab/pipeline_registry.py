"""Project pipelines, built from the parameters of the run (see ``sweeplab.sweeps``).

For every sweep declared in parameters (``family`` + ``grid`` and/or ``experiments``) this
registers:

- ``<sweep>``: the family's data prep + every variant + the report, the main job;
- ``<sweep>_report``: the report alone, on saved run records;
- ``<sweep>_train``: data prep + variants without the report.

Plus ``<family>_prep`` (a family's data preparation only) and ``__default__`` (every sweep).
A family registers itself by defining ``FAMILY`` in its ``pipeline.py`` (``sweeplab.families``).
Every section of the parameters is checked first (``sweeplab.checks``): a run with an
invalid setting stops here, before any node has written anything.

Only the sweeps a run asks for (``--pipelines``) are expanded, and only the pipelines it asks
for are built (on first access), so a run's start-up does not grow with the other sweeps of
the project; listing, kedro-viz and ``__default__`` build them all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping

from kedro.framework.project import pipelines
from kedro.pipeline import Node, Pipeline

from sweeplab import families, sweeps, viz
from sweeplab.checks import check_parameters
from sweeplab.families import Family
from sweeplab.pipelines.reporting import pipeline as reporting_pipeline
from sweeplab.sweeps import Variant

FAMILIES = families.discover()  # every pipelines/<x>/pipeline.py that defines FAMILY


def requested_sweeps(params: dict, requested: list[str] | None) -> set[str] | None:
    """The sweeps that the pipelines named on the command line belong to; None: all of them."""
    if requested is None or "__default__" in requested:
        return None
    return {name for name in sweeps.find_sweeps(params)
            if {name, f"{name}_train", f"{name}_report"} & set(requested)}


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
    return Pipeline([node._copy(namespace=f"{namespace}.{node.namespace}" if node.namespace else namespace)  # noqa: SLF001
                     for node in family.data_prep(params).nodes])


class SweepNodes:
    """One sweep's nodes, each part made once and shared by the pipelines that hold it."""

    def __init__(self, name: str, family: Family, variants: list[Variant], params: dict):
        self.name, self.family, self.variants, self.params = name, family, variants, params

    @functools.cached_property
    def prep(self) -> list[Node]:
        prep = data_prep(self.family, self.params)
        self.family.check_data_prep(prep)
        return prep.nodes

    @functools.cached_property
    def variant(self) -> list[Node]:
        return sweeps.variant_nodes(self.family, self.variants)

    @functools.cached_property
    def report(self) -> list[Node]:
        # A report node that reads only the variants' run records (and parameters) gathers
        # them: it belongs to the sweep's own namespace, so that kedro-viz draws the sweep as
        # one box whose outputs are the few tables the report reads, not every variant's
        # summary and history.
        def gathers(node: Node) -> bool:
            return all(name.startswith((f"{self.name}.", "params:")) for name in node.inputs)

        return [node._copy(namespace=self.name) if gathers(node) else node  # noqa: SLF001
                for node in reporting_pipeline.create_pipeline(self.name, self.variants).nodes]

    def pipelines(self) -> dict[str, Callable[[], Pipeline]]:
        # each pipeline made from its nodes at once: adding pipelines rebuilds the sum each time
        return {f"{self.name}_train": lambda: Pipeline(self.prep + self.variant),
                f"{self.name}_report": lambda: Pipeline(self.report),
                self.name: lambda: Pipeline(self.prep + self.variant + self.report)}


def register_pipelines() -> Mapping[str, Pipeline]:
    viz.install()  # kedro-viz's namespace tree in linear time, when kedro-viz is the caller
    params = sweeps.run_parameters()
    # Kedro 1.7 records --pipelines here before it builds them (its own find_pipelines reads it
    # too); an unknown name makes it build everything again, to suggest the closest ones
    only = requested_sweeps(params, pipelines._requested_pipelines)  # noqa: SLF001
    planned = check_parameters(params, FAMILIES, only=only)
    builders: dict[str, Callable[[], Pipeline]] = {
        f"{name}_prep": functools.partial(data_prep, f, params) for name, f in FAMILIES.items()}
    sweeps_nodes = [SweepNodes(name, family, variants, params) for name, (family, variants) in planned.items()]
    for parts in sweeps_nodes:
        builders.update(parts.pipelines())
    if only is None:
        # a family's data prep is in each of its sweeps: the same nodes, kept once
        builders["__default__"] = lambda: Pipeline(
            list(dict.fromkeys(n for parts in sweeps_nodes for n in parts.prep + parts.variant + parts.report)))
    return LazyRegistry(builders)
