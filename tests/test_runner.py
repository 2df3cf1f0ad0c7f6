"""The project's runners: variant by variant, with Kedro's release rule."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.pipeline import Node, Pipeline

from sweeplab.integration import session
from sweeplab.integration.runners import SequentialRunner, variant_by_variant
from sweeplab.pipeline_registry import register_pipelines
from tests.conftest import REPO


def _add(*values: int) -> int:
    return sum(values) + 1


def toy() -> Pipeline:
    nodes = [Node(_add, "raw", "prep", name="prep")]
    for v in ("a", "b"):
        nodes += [Node(_add, "params:x", f"{v}.config", name="resolve", namespace=v),
                  Node(_add, [f"{v}.config", "prep"], f"{v}.model", name="train", namespace=v),
                  Node(_add, f"{v}.model", f"{v}.plot", name="plot", namespace=v)]
    nodes.append(Node(_add, ["a.model", "b.model"], "report", name="report", namespace="r"))
    return Pipeline(nodes)


def test_each_variant_runs_whole_after_what_it_needs():
    assert [n.name for n in toy().nodes][:4] == ["a.resolve", "b.resolve", "prep", "a.train"], "Kedro: by level"
    assert [n.name for n in variant_by_variant(toy())] == [
        "a.resolve", "prep", "a.train", "a.plot", "b.resolve", "b.train", "b.plot", "r.report"]


def test_the_order_of_a_real_sweep_is_topological_and_variant_by_variant(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(session, "_parameters", None)  # the project's own conf
    with session.requesting(["ae_sweep"]):
        pipeline = register_pipelines()["ae_sweep"]
    order = variant_by_variant(pipeline)
    assert sorted(order, key=str) == sorted(pipeline.nodes, key=str)
    seen: set = set()
    for node in order:
        assert pipeline.node_dependencies[node] <= seen, f"{node.name} before what it needs"
        seen.add(node)
    namespaces = [n.namespace for n in order if n.namespace and n.namespace.startswith("ae_sweep.")]
    blocks = [ns for i, ns in enumerate(namespaces) if i == 0 or namespaces[i - 1] != ns]
    assert len(blocks) == len(set(blocks)) == 9, "each variant's nodes run together"


def test_it_runs_and_releases_like_kedro():
    catalog = DataCatalog({"raw": MemoryDataset(1), "params:x": MemoryDataset(10)})
    outputs = SequentialRunner().run(toy(), catalog)
    # prep = 1 + 1; x.config = 10 + 1; x.model = 11 + 2 + 1; report = 14 + 14 + 1
    assert outputs["report"].load() == 29
    with pytest.raises(DatasetError, match="has not been saved yet"):
        catalog["a.model"].load()  # released once its last reader ran
    assert catalog["raw"].load() == 1, "a free input is never released"
