"""The autoencoder family: its per-variant template, and its model inputs."""

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.ae.nodes import (
    AEConfig,
    build_ae_inputs,
    plot_reconstruction,
    train_autoencoder,
)
from sweeplab.pipelines.events import pipeline as events_pipeline
from sweeplab.pipelines.events.nodes import EventsConfig
from sweeplab.pipelines.templates import run_record_nodes
from sweeplab.sweeps import Family


def create_data_prep(params: Mapping[str, Any]) -> Pipeline:
    """Event data (source per ``events.source``), then the autoencoder's model inputs."""
    events = events_pipeline.create_pipeline(params["events"]["source"])
    inputs = Node(build_ae_inputs, ["events_split", "events_normaliser"], "ae_inputs", name="build_ae_inputs")
    return events + Pipeline([inputs], tags=["data_prep"])


def create_template() -> Pipeline:
    """One variant; ``config`` comes from the sweep's resolve node, the rest is shared."""
    return run_record_nodes(train_autoencoder, "ae_inputs", "train_autoencoder") + Pipeline([
        Node(plot_reconstruction, ["model", "config", "summary", "ae_inputs", "events_normaliser"], "recon_plot",
             name="plot_reconstruction"),
    ])


FAMILY = Family(
    name="ae",
    config_type=AEConfig,
    template=create_template,
    data_prep=create_data_prep,
    shared_inputs=frozenset({"ae_inputs", "events_normaliser"}),
    data_sections={"events": EventsConfig},
)
