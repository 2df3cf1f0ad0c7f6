"""The autoencoder family: its data prep, its own figure, and its registration."""

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from sweeplab.families import Family
from sweeplab.pipelines.ae.nodes import (
    AEConfig,
    autoencoder_training,
    build_ae_inputs,
    plot_reconstruction,
)
from sweeplab.pipelines.events import pipeline as events_pipeline
from sweeplab.pipelines.events.nodes import EventsConfig


def create_data_prep(params: Mapping[str, Any]) -> Pipeline:
    """Event data (source per ``events.source``), then the autoencoder's model inputs."""
    events = events_pipeline.create_pipeline(params["events"]["source"])
    inputs = Node(build_ae_inputs, ["events_split", "events_normaliser"], "ae_inputs", name="build_ae_inputs")
    return events + Pipeline([inputs], tags=["data_prep"])


def create_figures() -> list[Node]:
    return [Node(plot_reconstruction, ["model", "config", "summary", "ae_inputs", "events_normaliser"],
                 "recon_plot", name="plot_reconstruction")]


FAMILY = Family(name="ae", config_type=AEConfig, data_prep=create_data_prep,
                training=autoencoder_training, train_node="train_autoencoder", figures=create_figures,
                shared_inputs=frozenset({"events_normaliser"}), data_sections={"events": EventsConfig})
