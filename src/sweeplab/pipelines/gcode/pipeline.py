"""The G-code family: data prep (recordings -> vocabularies -> windows) and its template.

``gcode_data.source`` picks where recordings come from: ``synthetic`` (base) generates
programs and sensor logs into ``gcode_generated`` (a versioned folder of its own);
``folder`` reads real ones from ``gcode_programs`` and ``gcode_sensors``, and never writes there.
"""

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from sweeplab.families import Family
from sweeplab.pipelines.gcode.data import (
    GCodeDataConfig,
    build_vocabularies,
    build_windows,
    generate_recordings,
    load_generated_recordings,
    load_recordings,
    load_windows,
)
from sweeplab.pipelines.gcode.nodes import GCodeConfig, gcode_training


def create_data_prep(params: Mapping[str, Any]) -> Pipeline:
    if params["gcode_data"]["source"] == "synthetic":
        nodes = [
            Node(generate_recordings, "params:gcode_data.synthetic", "gcode_generated",
                 name="generate_gcode_recordings"),
            Node(load_generated_recordings, ["gcode_generated", "params:gcode_data"], "gcode_recordings",
                 name="load_gcode_recordings"),
        ]
    else:
        nodes = [Node(load_recordings, ["gcode_programs", "gcode_sensors", "params:gcode_data"], "gcode_recordings",
                      name="load_gcode_recordings")]
    nodes += [
        Node(build_vocabularies, ["gcode_recordings", "params:gcode_data.vocabulary"],
             ["gcode_vocab_v1", "gcode_vocab_v2", "gcode_vocab_report"], name="build_gcode_vocabularies"),
        Node(build_windows, ["gcode_recordings", "gcode_vocab_v2", "params:gcode_data.windows"],
             ["gcode_windows", "gcode_windows_report"], name="build_gcode_windows"),
        Node(load_windows, ["gcode_windows", "gcode_vocab_v2"], "gcode_inputs", name="load_gcode_windows"),
    ]
    return Pipeline(nodes, tags=["data_prep"])


FAMILY = Family(name="gcode", config_type=GCodeConfig, data_prep=create_data_prep, inputs="gcode_inputs",
                training=gcode_training, data_sections={"gcode_data": GCodeDataConfig})
