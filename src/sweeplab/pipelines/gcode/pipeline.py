"""The G-code family: CNC data prep (``sweeplab.pipelines.cnc``), then its variants."""

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Pipeline

from sweeplab.families import Family
from sweeplab.pipelines.cnc import pipeline as cnc_pipeline
from sweeplab.pipelines.cnc.data import CNCConfig
from sweeplab.pipelines.gcode.nodes import GCodeConfig, gcode_training


def create_data_prep(params: Mapping[str, Any]) -> Pipeline:
    return cnc_pipeline.create_pipeline(params["cnc"]["source"])


FAMILY = Family(name="gcode", config_type=GCodeConfig, data_prep=create_data_prep,
                training=gcode_training, data_sections={"cnc": CNCConfig})
