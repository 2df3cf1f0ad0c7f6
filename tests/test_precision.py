"""Every discovered family trains under bf16 autocast on CPU, in a real run of its tiny sweep:
the summary records the precision and every metric is finite (``trainer.precision``)."""

from __future__ import annotations

import math

import pytest

from sweeplab.pipeline_registry import FAMILIES
from tests.test_kedro_run import kedro_cli
from tests.test_processes import TINY_ENV, summaries, tiny_sweep

pytestmark = pytest.mark.slow  # a data prep and a sweep per family


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_trains_under_bf16_autocast(kedro_project, family):
    sweep, variants = tiny_sweep(family)
    run = kedro_cli(kedro_project, f"--pipelines={sweep}", TINY_ENV, f"--params={family}.trainer.precision=bf16")
    assert run.returncode == 0, run.stderr[-3000:]
    for variant, summary in summaries(kedro_project, sweep, variants).items():
        assert summary["status"] == "completed" and summary["precision"] == "bf16", (variant, summary["reason"])
        values = [v for split in summary["best"].values() for v in split.values()]
        assert values and all(math.isfinite(v) for v in values if isinstance(v, float)), (variant, summary["best"])
