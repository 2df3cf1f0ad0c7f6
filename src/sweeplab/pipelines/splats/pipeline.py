"""Splat data prep: fit splats to photographs (``splats.source: synthetic``, cached) or read
a real file (``file``: ``splats``, never written), then the VAE's model inputs."""

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.splats.nodes import build_vae_inputs, fit_photo_splats

DATASET = {"synthetic": "splats_generated", "file": "splats"}  # source -> the file of splats read


def create_pipeline(source: str) -> Pipeline:
    nodes = [] if source == "file" else [
        Node(fit_photo_splats, ["params:splats.synthetic", "splat_fit_cache"], ["splats_generated", "splat_fit_report"],
             name="fit_photo_splats")]
    nodes.append(Node(build_vae_inputs, [DATASET[source], "params:splats"], ["vae_inputs", "splats_normaliser"],
                      name="build_vae_inputs"))
    return Pipeline(nodes, tags=["data_prep"])
