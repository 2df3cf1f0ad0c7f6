"""``benchmarks/gpu_check.py`` runs here too: its CPU half on every discovered family, and
every check that needs CUDA recorded as skipped, so the script a GPU machine runs is tested."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from sweeplab.families import discover
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # each family's tiny data prep and 2 epochs


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the script runs its GPU checks")
def test_the_gpu_check_runs_its_cpu_half_and_skips_the_rest_without_cuda(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--project", str(tmp_path / "p"),
                          "--out", str(out)], env=env, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["device"] == "cpu only" and set(summary["families"]) == set(discover())
    for name, found in summary["families"].items():
        assert found["agreement"]["cpu_status"] == "completed" and found["agreement"]["cpu"], name
        assert found["agreement"]["cuda"] == "skipped: no CUDA device"
        assert found["full_size"] == {"skipped": "no CUDA device"}
    assert summary["trm_full_batches"] == {"skipped": "no CUDA device"}
    assert summary["splat_fit"]["cpu"]["psnr"] > 10 and summary["splat_fit"]["cuda"] == "skipped: no CUDA device"
