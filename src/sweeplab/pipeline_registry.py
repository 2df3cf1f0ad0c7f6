"""Project pipelines, built from the parameters of the run (see ``sweeplab.sweeps``).

For every sweep declared in parameters (``family`` + ``grid``) this registers:

- ``<sweep>``: the family's data prep + every variant + the report, the main job;
- ``<sweep>_report``: the report alone, on saved run records;
- ``<sweep>_train``: data prep + variants without the report.

Plus ``<family>_prep`` (a family's data preparation only) and ``__default__`` (every sweep).
Every section of the parameters is checked first (``sweeplab.checks``): a run with an
invalid setting stops here, before any node has written anything.

Only the sweeps a run asks for (``--pipelines``) are expanded and built, so a run's start-up
does not grow with the other sweeps of the project; listing, kedro-viz and ``__default__``
build them all.
"""

from __future__ import annotations

from kedro.framework.project import pipelines
from kedro.pipeline import Pipeline

from sweeplab import sweeps
from sweeplab.checks import check_parameters
from sweeplab.pipelines.ae import pipeline as ae_pipeline
from sweeplab.pipelines.gcode import pipeline as gcode_pipeline
from sweeplab.pipelines.gw import pipeline as gw_pipeline
from sweeplab.pipelines.reporting import pipeline as reporting_pipeline

FAMILIES = {family.name: family for family in (ae_pipeline.FAMILY, gw_pipeline.FAMILY, gcode_pipeline.FAMILY)}


def requested_sweeps(params: dict, requested: list[str] | None) -> set[str] | None:
    """The sweeps that the pipelines named on the command line belong to; None: all of them."""
    if requested is None or "__default__" in requested:
        return None
    return {name for name in sweeps.find_sweeps(params)
            if {name, f"{name}_train", f"{name}_report"} & set(requested)}


def register_pipelines() -> dict[str, Pipeline]:
    params = sweeps.run_parameters()
    # Kedro 1.7 records --pipelines here before it builds them (its own find_pipelines reads it
    # too); an unknown name makes it build everything again, to suggest the closest ones
    only = requested_sweeps(params, pipelines._requested_pipelines)  # noqa: SLF001
    planned = check_parameters(params, FAMILIES, only=only)
    registry: dict[str, Pipeline] = {f"{name}_prep": f.data_prep(params) for name, f in FAMILIES.items()}
    for name, (family, variants) in planned.items():
        train = family.data_prep(params) + sweeps.variant_pipelines(family, variants)
        report = reporting_pipeline.create_pipeline(name, variants)
        registry[f"{name}_train"] = train
        registry[f"{name}_report"] = report
        registry[name] = train + report
    if only is None:
        registry["__default__"] = sum((registry[name] for name in planned), Pipeline([]))
    return registry
