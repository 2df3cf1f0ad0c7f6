"""Project pipelines, built from the parameters of the run (``sweeplab.integration.registry``).

Kedro looks for ``register_pipelines`` here. A family registers itself by defining ``FAMILY``
in its ``pipeline.py`` (``sweeplab.families``).
"""

from __future__ import annotations

from collections.abc import Mapping

from kedro.pipeline import Pipeline

from sweeplab import families
from sweeplab.integration import registry

FAMILIES = families.discover()  # every pipelines/<x>/pipeline.py that defines FAMILY


def register_pipelines() -> Mapping[str, Pipeline]:
    return registry.build(FAMILIES)
