"""Shapes data prep: generate (``shapes.source: synthetic``) or read a real dataset."""

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.shapes.nodes import generate_shapes


def create_pipeline(source: str = "synthetic") -> Pipeline:
    if source not in ("synthetic", "file"):
        raise ValueError(f"parameters shapes.source: expected synthetic or file, got {source!r}")
    if source == "file":
        return Pipeline([])
    return Pipeline([Node(generate_shapes, "params:shapes.synthetic", ["shapes", "shapes_metadata"],
                          name="generate_shapes")], tags=["data_prep"])
