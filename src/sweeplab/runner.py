"""Kedro's runners with constant-time bookkeeping between tasks; ``run`` uses them by default.

After every node, Kedro 1.7's ``AbstractRunner._release_datasets`` asks the whole pipeline for
its ``inputs()`` and ``outputs()``, which are recomputed on each call. Over a sweep that is
quadratic in the variants: at 450 variants the pause between two tasks had a median of 7 ms
and reached 2.4 s. A pipeline never changes during a run, so here the two sets are computed
once. Upstream, caching ``Pipeline.inputs()``/``outputs()`` as its other derived views
already are (``node_dependencies``, ``grouped_nodes``) would fix every runner.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline
from kedro.runner import ParallelRunner as KedroParallelRunner
from kedro.runner import SequentialRunner as KedroSequentialRunner


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


class SequentialRunner(_ReleaseOnce, KedroSequentialRunner):
    """Kedro's SequentialRunner, without the per-task cost that grows with the pipeline."""


class ParallelRunner(_ReleaseOnce, KedroParallelRunner):
    """Kedro's ParallelRunner, without the per-task cost that grows with the pipeline."""


# what `--runner` names -> the runner used instead
REPLACES = {None: SequentialRunner, "SequentialRunner": SequentialRunner, "ParallelRunner": ParallelRunner}
REPLACES.update({f"kedro.runner.{name}": runner for name, runner in list(REPLACES.items()) if name})
