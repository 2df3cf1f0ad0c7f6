"""Project pipelines, built from the parameters of the run (see ``sweeplab.sweeps``).

For every sweep declared in parameters (``family`` + ``grid``) this registers:

- ``<sweep>``: data prep + every variant + the report, the main job;
- ``<sweep>_report``: the report alone, on saved run records;
- ``<sweep>_train``: data prep + variants without the report.

Plus ``events_prep`` (data preparation only) and ``__default__`` (every sweep).
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from sweeplab import sweeps
from sweeplab.pipelines import ae, events, reporting
from sweeplab.pipelines.ae import pipeline as ae_pipeline
from sweeplab.pipelines.events import pipeline as events_pipeline
from sweeplab.pipelines.reporting import pipeline as reporting_pipeline

FAMILIES = {ae_pipeline.FAMILY.name: ae_pipeline.FAMILY}
# data preparation each family needs before its variants run
FAMILY_INPUTS = {"ae": ae_pipeline.create_inputs_pipeline}

__all__ = ["FAMILIES", "ae", "events", "register_pipelines", "reporting"]


def register_pipelines() -> dict[str, Pipeline]:
    params = sweeps.run_parameters()
    source = (params.get("events") or {}).get("source", "synthetic")
    prep = events_pipeline.create_pipeline(source)
    registry: dict[str, Pipeline] = {"events_prep": prep}
    everything = Pipeline([])
    for name, spec in sweeps.find_sweeps(params).items():
        family = FAMILIES.get(spec["family"])
        if family is None:
            raise sweeps.SweepError(f"sweep '{name}': unknown family '{spec['family']}'; known: {sorted(FAMILIES)}")
        variants = sweeps.expand(name, spec)
        sweeps.check_defaults(family, params, name, variants)
        train = prep + FAMILY_INPUTS[family.name]() + sweeps.variant_pipelines(family, variants)
        report = reporting_pipeline.create_pipeline(name, variants)
        registry[f"{name}_train"] = train
        registry[f"{name}_report"] = report
        registry[name] = train + report
        everything += registry[name]
    registry["__default__"] = everything
    return registry
