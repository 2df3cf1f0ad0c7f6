"""The nodes every family's per-variant template starts with."""

from collections.abc import Callable

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.reporting.figures import plot_history
from sweeplab.sweeps import CHECKPOINT_STORE


def run_record_nodes(train: Callable, inputs: str, name: str) -> Pipeline:
    """``train(config, <inputs>, checkpoint_store)`` -> the run record, then its loss curves."""
    return Pipeline([
        Node(train, ["config", inputs, CHECKPOINT_STORE], ["model", "history", "summary"], name=name,
             tags=["training"]),
        Node(plot_history, ["history", "summary"], "losses_plot", name="plot_losses"),
    ])
