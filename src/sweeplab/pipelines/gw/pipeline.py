"""The global-workspace family: its per-variant template and its data prep."""

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.gw.nodes import GWConfig, build_gw_inputs, train_workspace
from sweeplab.pipelines.shapes import pipeline as shapes_pipeline
from sweeplab.pipelines.shapes.nodes import ShapesConfig
from sweeplab.pipelines.templates import run_record_nodes
from sweeplab.sweeps import Family


def create_data_prep(params: Mapping[str, Any]) -> Pipeline:
    source = params["shapes"]["source"]
    inputs = Node(build_gw_inputs, shapes_pipeline.DATASET[source], "gw_inputs", name="build_gw_inputs")
    return shapes_pipeline.create_pipeline(source) + Pipeline([inputs], tags=["data_prep"])


def create_template() -> Pipeline:
    return run_record_nodes(train_workspace, "gw_inputs", "train_workspace")


FAMILY = Family(
    name="gw",
    config_type=GWConfig,
    template=create_template,
    data_prep=create_data_prep,
    shared_inputs=frozenset({"gw_inputs"}),
    data_sections={"shapes": ShapesConfig},
)
