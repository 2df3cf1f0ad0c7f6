"""kedro-viz at sweep scale: its namespace tree in time linear in the pipeline, with each
box holding what it writes.

kedro-viz 12.5 draws each namespace of a pipeline as a box. To find a box's inputs and
outputs it builds, for every namespace, the pipeline minus that namespace's nodes: a new
``Pipeline`` (validated and sorted) each time, so the cost is namespaces x nodes. A sweep
has one namespace per variant, so a 450-variant sweep took minutes and a 1,000-variant one
ran past kedro-viz's time limit.

:func:`populate_tree` gives the same tree from indexes of who reads and who writes each
dataset, and keeps a dataset no node reads inside the box that writes it. It replaces
kedro-viz's method when kedro-viz has loaded the project (the registry calls
:func:`install`); nothing else of kedro-viz changes, and a ``kedro run`` never imports
kedro-viz. ``tests/test_viz.py`` checks the tree against kedro-viz's own.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any

from kedro.pipeline import Pipeline

from sweeplab.integration.upstream import strip_transcoding as _strip_transcoding

REPOSITORY = "kedro_viz.data_access.repositories.modular_pipelines"
SUPPORTED = "12.5."  # the kedro-viz version whose method this replaces (pinned in pyproject.toml)
KEDRO_VIZ: dict[str, Any] = {}  # kedro-viz's own method, once replaced


def populate_tree(self: Any, pipeline: Pipeline, *, unread_inside: bool = True) -> None:
    """``ModularPipelinesRepository.populate_tree``: every namespace's inputs, outputs and children.

    A namespace's inputs are what its nodes read and do not write; its outputs are what a
    node outside reads (names compared with their transcoding stripped, as kedro-viz does).

    kedro-viz also makes every dataset that no node reads an output, drawn outside the box:
    a sweep's figures, and weights nothing reads, would fan out beside the collapsed sweep.
    ``unread_inside`` keeps such a dataset in the box of the node that wrote it;
    ``unread_inside=False`` gives kedro-viz's own tree.
    """
    nodes = pipeline.nodes
    members: dict[str, list[Any]] = defaultdict(list)  # namespace and each of its parents -> nodes
    readers: dict[str, set[Any]] = defaultdict(set)  # dataset -> the nodes that read it
    writers: dict[str, set[Any]] = defaultdict(set)  # dataset, transcoding stripped -> the nodes that write it
    for node in nodes:
        if node.namespace:
            for namespace in self._explode_namespace(node.namespace):  # noqa: SLF001
                members[namespace].append(node)
        for name in node.inputs:
            readers[name].add(node)
        for name in node.outputs:
            writers[_strip_transcoding(name)].add(node)

    for namespace in sorted(members):
        self.get_or_create_modular_pipeline(namespace)
        inside = members[namespace]
        inside_set = set(inside)
        read = set().union(*(node.inputs for node in inside))
        written = set().union(*(node.outputs for node in inside))
        made_inside = {_strip_transcoding(name) for name in read} & {_strip_transcoding(name) for name in written}
        free_inputs = {name for name in read if _strip_transcoding(name) not in made_inside}
        unread = {name for name in written if _strip_transcoding(name) not in made_inside}
        free_outputs = {name for name in unread if readers[name]} if unread_inside else unread
        # what the rest of the pipeline reads and does not make itself
        free_outputs |= {name for name in written
                         if not readers[name] <= inside_set and writers[_strip_transcoding(name)] <= inside_set}
        self._add_inputs(namespace, free_inputs)  # noqa: SLF001
        self._add_outputs(namespace, free_outputs)  # noqa: SLF001
        self._add_children(namespace, inside)  # noqa: SLF001


def install() -> bool:
    """Replace kedro-viz's method when kedro-viz is the one loading the project; True if replaced."""
    module = sys.modules.get(REPOSITORY)
    if module is None:
        return False
    from kedro_viz import __version__  # noqa: PLC0415 - only present when kedro-viz runs

    if not __version__.startswith(SUPPORTED):
        return False  # another kedro-viz: its own method, slow at scale but correct
    repository = module.ModularPipelinesRepository
    if repository.populate_tree is not populate_tree:
        KEDRO_VIZ["populate_tree"] = repository.populate_tree
        repository.populate_tree = populate_tree
    return True
