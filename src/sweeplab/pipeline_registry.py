"""Project pipelines, built from the parameters of the run (see ``sweeplab.sweeps``).

For every sweep declared in parameters (``family`` + ``grid``) this registers:

- ``<sweep>``: the family's data prep + every variant + the report, the main job;
- ``<sweep>_report``: the report alone, on saved run records;
- ``<sweep>_train``: data prep + variants without the report.

Plus ``<family>_prep`` (a family's data preparation only) and ``__default__`` (every sweep).
Every section of the parameters is checked first (``sweeplab.checks``): a run with an
invalid setting stops here, before any node has written anything.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from sweeplab import sweeps
from sweeplab.checks import check_parameters
from sweeplab.pipelines.ae import pipeline as ae_pipeline
from sweeplab.pipelines.gcode import pipeline as gcode_pipeline
from sweeplab.pipelines.gw import pipeline as gw_pipeline
from sweeplab.pipelines.reporting import pipeline as reporting_pipeline

FAMILIES = {family.name: family for family in (ae_pipeline.FAMILY, gw_pipeline.FAMILY, gcode_pipeline.FAMILY)}


def register_pipelines() -> dict[str, Pipeline]:
    params = sweeps.run_parameters()
    planned = check_parameters(params, FAMILIES)
    registry: dict[str, Pipeline] = {f"{name}_prep": f.data_prep(params) for name, f in FAMILIES.items()}
    everything = Pipeline([])
    for name, (family, variants) in planned.items():
        train = family.data_prep(params) + sweeps.variant_pipelines(family, variants)
        report = reporting_pipeline.create_pipeline(name, variants)
        registry[f"{name}_train"] = train
        registry[f"{name}_report"] = report
        registry[name] = train + report
        everything += registry[name]
    registry["__default__"] = everything
    return registry
