"""Kedro's runners, fitted for sweeps of many variants; ``run`` uses them by default.

Variant by variant. Kedro's SequentialRunner runs nodes level by level: the config node of
every variant, then every training node, then every figure. At 1,000 variants the first
training began after 1,000 config nodes, and a run stopped halfway had no variant finished.
This one runs each variant's nodes together (after what they need), so records appear one
variant at a time, and ``sweeplab status`` and the report see finished variants early.

Constant-time bookkeeping between tasks.
After every node, Kedro 1.7's ``AbstractRunner._release_datasets`` asks the whole pipeline for
its ``inputs()`` and ``outputs()``, which are recomputed on each call. Over a sweep that is
quadratic in the variants: at 450 variants the pause between two tasks had a median of 7 ms
and reached 2.4 s. A pipeline never changes during a run, so here the two sets are computed
once. Upstream, caching ``Pipeline.inputs()``/``outputs()`` as its other derived views
already are (``node_dependencies``, ``grouped_nodes``) would fix every runner.

The project's hooks in every worker. Kedro 1.7's ParallelRunner sets up a worker's project
(its settings, and so its ``HOOKS``) only when the worker knows the package's name, which a
spawned worker (``KEDRO_MP_CONTEXT=spawn``, what ``run`` picks) does not inherit: there the
project's node hooks silently never ran. Each worker here starts by loading the project's
settings. (Setting the name instead would send every task through Kedro's own re-configuration,
which in 1.7 sets its logging config to itself and ends in a RecursionError.)
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import Executor, ProcessPoolExecutor
from itertools import chain
from multiprocessing import get_context
from typing import Any

from kedro.framework import project
from kedro.pipeline import Node, Pipeline
from kedro.runner import ParallelRunner as KedroParallelRunner
from kedro.runner import SequentialRunner as KedroSequentialRunner
from kedro.runner.task import Task

logger = logging.getLogger(__name__)


class _ReleaseOnce:
    _boundaries: tuple[Pipeline, set[str], set[str]] | None = None

    def _release_datasets(self, node: Node, catalog: Any, load_counts: dict, pipeline: Pipeline) -> None:
        """Kedro's rule (release a dataset once no remaining node loads it, unless it is the
        pipeline's free input or final output) with the pipeline's boundaries computed once."""
        if self._boundaries is None or self._boundaries[0] is not pipeline:
            self._boundaries = (pipeline, pipeline.inputs(), pipeline.outputs())
        _, inputs, outputs = self._boundaries
        for dataset in node.inputs:
            load_counts[dataset] -= 1
            if load_counts[dataset] < 1 and dataset not in inputs:
                catalog.release(dataset)
        for dataset in node.outputs:
            if load_counts[dataset] < 1 and dataset not in outputs:
                catalog.release(dataset)


def variant_by_variant(pipeline: Pipeline) -> list[Node]:
    """A topological order that finishes one namespace (a variant) before the next.

    Namespaces come in the order of their first node in Kedro's order; each node is preceded
    by the nodes it needs, visited depth first (so the data prep comes before the first
    variant that needs it).
    """
    rank = {node: i for i, node in enumerate(pipeline.nodes)}
    parents = pipeline.node_dependencies
    groups: dict[str | None, list[Node]] = {}
    for node in pipeline.nodes:
        groups.setdefault(node.namespace, []).append(node)
    order: list[Node] = []
    placed: set[Node] = set()
    for node in chain.from_iterable(groups.values()):
        stack = [(node, False)]
        while stack:  # post-order, without recursion
            current, expanded = stack.pop()
            if current in placed:
                continue
            if expanded:
                placed.add(current)
                order.append(current)
                continue
            stack.append((current, True))
            stack.extend((p, False) for p in sorted(parents[current] - placed, key=rank.__getitem__, reverse=True))
    return order


class SequentialRunner(_ReleaseOnce, KedroSequentialRunner):
    """Kedro's SequentialRunner, variant by variant and without a per-task cost that grows
    with the pipeline."""

    def _run(self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None, run_id: str | None = None) -> None:
        # Kedro's sequential loop (AbstractRunner._run without an executor), in another order
        nodes = variant_by_variant(pipeline)
        load_counts = Counter(chain.from_iterable(n.inputs for n in nodes))
        done: set[Node] = set()
        for node in nodes:
            try:
                Task(node=node, catalog=catalog, hook_manager=hook_manager, is_async=self._is_async,
                     run_id=run_id).execute()
            except Exception:
                self._suggest_resume_scenario(pipeline, done, catalog)
                raise
            done.add(node)
            self._logger.info("Completed node: %s", node.name)
            self._logger.info("Completed %d out of %d tasks", len(done), len(nodes))
            self._release_datasets(node, catalog, load_counts, pipeline)


class ParallelRunner(_ReleaseOnce, KedroParallelRunner):
    """Kedro's ParallelRunner, without the per-task cost that grows with the pipeline, and with
    the project's hooks in every worker."""

    def _get_executor(self, max_workers: int) -> Executor:
        # Kedro's choice of start method, plus a worker that knows its project
        context = os.environ.get("KEDRO_MP_CONTEXT")
        context = context if context in {"fork", "spawn", "forkserver"} else None
        package = project.PACKAGE_NAME
        return ProcessPoolExecutor(max_workers=max_workers, mp_context=get_context(context),
                                   initializer=_load_settings if package else None,
                                   initargs=(package,) if package else ())


def _load_settings(package: str) -> None:
    """A worker's project settings, whose ``HOOKS`` Kedro's tasks register in the worker."""
    project.settings.configure(f"{package}.settings")


# what `--runner` names -> the runner used instead
REPLACES = {None: SequentialRunner, "SequentialRunner": SequentialRunner, "ParallelRunner": ParallelRunner}
REPLACES.update({f"kedro.runner.{name}": runner for name, runner in list(REPLACES.items()) if name})


def runner_for(name: str | None) -> str | None:
    """The runner ``run`` uses for ``--runner`` (None: the default): the project's version of
    Kedro's sequential and parallel runners, said once in the log; any other runner as named."""
    replacement = REPLACES.get(name)
    if replacement is None:
        return name
    path = f"{replacement.__module__}.{replacement.__qualname__}"
    logger.info("Runner: %s, Kedro's %s run variant by variant (README: Beyond one process)", path,
                replacement.__qualname__)
    return path
