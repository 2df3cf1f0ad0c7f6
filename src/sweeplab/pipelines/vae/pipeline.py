"""The splat VAE family: its data prep, its own figure, and its registration."""

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from sweeplab.families import Family
from sweeplab.pipelines.splats import pipeline as splats_pipeline
from sweeplab.pipelines.splats.nodes import SplatsConfig
from sweeplab.pipelines.vae.nodes import VAEConfig, plot_reconstruction, vae_training


def create_data_prep(params: Mapping[str, Any]) -> Pipeline:
    return splats_pipeline.create_pipeline(params["splats"]["source"])


def create_figures() -> list[Node]:
    return [Node(plot_reconstruction, ["model", "config", "summary", "vae_inputs", "splats_normaliser"],
                 "recon_plot", name="plot_reconstruction")]


FAMILY = Family(name="vae", config_type=VAEConfig, data_prep=create_data_prep,
                training=vae_training, figures=create_figures, shared_inputs=frozenset({"splats_normaliser"}),
                data_sections={"splats": SplatsConfig})
