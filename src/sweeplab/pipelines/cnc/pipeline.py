"""CNC data prep: recordings -> vocabularies -> windows -> the model inputs.

``cnc.source`` picks where recordings come from: ``synthetic`` (base) generates programs and
sensor logs into ``gcode_generated`` (a versioned folder of its own); ``folder`` reads real
ones from ``gcode_programs`` and ``gcode_sensors``, and never writes there.
"""

from kedro.pipeline import Node, Pipeline

from sweeplab.pipelines.cnc.data import (
    build_vocabularies,
    build_windows,
    generate_recordings,
    load_generated_recordings,
    load_recordings,
    load_windows,
)


def create_pipeline(source: str) -> Pipeline:
    if source == "synthetic":
        nodes = [
            Node(generate_recordings, "params:cnc.synthetic", "gcode_generated", name="generate_gcode_recordings"),
            Node(load_generated_recordings, ["gcode_generated", "params:cnc"], "gcode_recordings",
                 name="load_gcode_recordings"),
        ]
    else:
        nodes = [Node(load_recordings, ["gcode_programs", "gcode_sensors", "params:cnc"], "gcode_recordings",
                      name="load_gcode_recordings")]
    nodes += [
        Node(build_vocabularies, ["gcode_recordings", "params:cnc.vocabulary"],
             ["gcode_vocab_v1", "gcode_vocab_v2", "gcode_vocab_report"], name="build_gcode_vocabularies"),
        Node(build_windows, ["gcode_recordings", "gcode_vocab_v2", "params:cnc.windows"],
             ["gcode_windows", "gcode_windows_report"], name="build_gcode_windows"),
        Node(load_windows, ["gcode_windows", "gcode_vocab_v2"], "gcode_inputs", name="load_gcode_windows"),
    ]
    return Pipeline(nodes, tags=["data_prep"])
