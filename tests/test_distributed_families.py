"""Every discovered family trains its tiny sweep on two CPU ranks (gloo) in a real Kedro run;
and a family whose losses are all means over samples (the global workspace without its
contrastive loss) gives the numbers of one process at the same global batch: every loss and
weight, and every metric that is a mean over samples."""

from __future__ import annotations

import pytest

from sweeplab.pipeline_registry import FAMILIES
from tests.conftest import copy_project
from tests.test_kedro_run import kedro_cli
from tests.test_processes import TINY_ENV, numbers, summaries, tiny_sweep

pytestmark = pytest.mark.slow  # a data prep and a sweep per family, two processes per variant


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_trains_on_two_ranks(kedro_project, family):
    sweep, variants = tiny_sweep(family)
    run = kedro_cli(kedro_project, f"--pipelines={sweep}", TINY_ENV,
                    f"--params={family}.trainer.distributed.world_size=2,{family}.trainer.threads=1")
    assert run.returncode == 0, run.stderr[-3000:]
    for variant, summary in summaries(kedro_project, sweep, variants).items():
        assert summary["status"] == "completed" and summary["world_size"] == 2, (variant, summary["reason"])


def test_sample_mean_losses_on_two_ranks_equal_one_process(kedro_project, tmp_path):
    sweep, variants = tiny_sweep("gw")
    params = "gw.loss.contrastive=0,gw.trainer.threads=1"
    one = kedro_cli(kedro_project, f"--pipelines={sweep}", TINY_ENV, f"--params={params}")
    two_project = copy_project(tmp_path / "two")
    two = kedro_cli(two_project, f"--pipelines={sweep}", TINY_ENV,
                    f"--params={params},gw.trainer.distributed.world_size=2")
    assert (one.returncode, two.returncode) == (0, 0), two.stderr[-3000:]
    expected = {v: numbers(s) for v, s in summaries(kedro_project, sweep, variants).items()}
    got = {v: numbers(s) for v, s in summaries(two_project, sweep, variants).items()}
    # R^2 is a ratio over the batch, not a mean over samples: each rank's is over its share
    not_sample_means = ("r2_unique", "r2_redundant")

    def differs(a, b) -> bool:
        return a != b if not isinstance(a, float) else b != pytest.approx(a, rel=1e-5, abs=1e-6)

    far = {(v, k): (x, got[v][k]) for v, n in expected.items() for k, x in n.items()
           if differs(x, got[v][k]) and not k.endswith(not_sample_means)}
    assert not far, f"the same up to float rounding: {far}"
