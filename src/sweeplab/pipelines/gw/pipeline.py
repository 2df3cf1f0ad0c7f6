"""The global-workspace family: its data prep and its registration."""

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from sweeplab.families import Family
from sweeplab.pipelines.gw.nodes import GWConfig, build_gw_inputs, workspace_training
from sweeplab.pipelines.shapes import pipeline as shapes_pipeline
from sweeplab.pipelines.shapes.nodes import ShapesConfig


def create_data_prep(params: Mapping[str, Any]) -> Pipeline:
    source = params["shapes"]["source"]
    inputs = Node(build_gw_inputs, shapes_pipeline.DATASET[source], "gw_inputs", name="build_gw_inputs")
    return shapes_pipeline.create_pipeline(source) + Pipeline([inputs], tags=["data_prep"])


FAMILY = Family(name="gw", config_type=GWConfig, data_prep=create_data_prep,
                training=workspace_training, train_node="train_workspace", data_sections={"shapes": ShapesConfig})
