"""The TRM family: its data prep (ARC puzzles) and its registration."""

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from sweeplab.families import Family
from sweeplab.pipelines.arc import pipeline as arc_pipeline
from sweeplab.pipelines.arc.nodes import ArcDataConfig
from sweeplab.pipelines.trm.nodes import TRMConfig, plot_predictions, trm_training


def create_data_prep(params: Mapping[str, Any]) -> Pipeline:
    return arc_pipeline.create_pipeline(params["arc"]["source"])


def create_figures() -> list[Node]:
    return [Node(plot_predictions, ["model", "config", "summary", "trm_inputs"], "predictions_plot",
                 name="plot_predictions")]


FAMILY = Family(name="trm", config_type=TRMConfig, data_prep=create_data_prep,
                training=trm_training, figures=create_figures, data_sections={"arc": ArcDataConfig})
