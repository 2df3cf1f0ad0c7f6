"""Shapes data prep: generate (``shapes.source: synthetic``) or read a real dataset.

Generated data goes to ``shapes_generated``; a real dataset is read from ``shapes`` and
never written.
"""

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.shapes.nodes import generate_shapes

DATASET = {"synthetic": "shapes_generated", "file": "shapes"}  # source -> the dataset the family reads


def create_pipeline(source: str) -> Pipeline:
    if source == "file":
        return Pipeline([])
    return Pipeline([Node(generate_shapes, "params:shapes.synthetic", ["shapes_generated", "shapes_metadata"],
                          name="generate_shapes")], tags=["data_prep"])
