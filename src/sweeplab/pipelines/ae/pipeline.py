"""The autoencoder family: its per-variant template, and its model inputs."""

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.ae.nodes import (
    AEConfig,
    build_ae_inputs,
    plot_reconstruction,
    train_autoencoder,
)
from sweeplab.pipelines.reporting.figures import plot_history
from sweeplab.sweeps import Family


def create_inputs_pipeline() -> Pipeline:
    return Pipeline(
        [Node(build_ae_inputs, ["events_split", "events_normaliser"], "ae_inputs", name="build_ae_inputs")],
        tags=["data_prep"],
    )


def create_template() -> Pipeline:
    """One variant; ``config`` comes from the sweep's resolve node, the rest is shared."""
    return Pipeline([
        Node(train_autoencoder, ["config", "ae_inputs", "checkpoint_store"], ["model", "history", "summary"],
             name="train_autoencoder", tags=["training"]),
        Node(plot_history, ["history", "summary"], "losses_plot", name="plot_losses"),
        Node(plot_reconstruction, ["model", "config", "summary", "ae_inputs", "events_normaliser"], "recon_plot",
             name="plot_reconstruction"),
    ])


FAMILY = Family(
    name="ae",
    config_type=AEConfig,
    template=create_template,
    shared_inputs=frozenset({"ae_inputs", "checkpoint_store", "events_normaliser"}),
)
