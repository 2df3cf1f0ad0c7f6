"""A result belongs to the code that made it: ``kedro run`` in a scratch copy of the project
(its own source on ``PYTHONPATH``), re-run after edits of that source."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, copy_project
from tests.test_kedro_run import latest

pytestmark = pytest.mark.slow

VARIANTS = ["none_beta0_s0", "none_beta1_s0", "vq_beta0_s0", "vq_beta1_s0"]
PARAMS = ("events.synthetic.n_events=3000,ae.trainer.epochs=1,ae.trainer.batch_size=256,"
          "ae_sweep.grid.model.latent_space=none vq,ae_sweep.grid.loss.globals_beta=0 1")
KEEP = f"{PARAMS},ae_sweep.resume.code=keep"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of the project with its own copy of the package's source."""
    project = copy_project(tmp_path / "project")
    shutil.copytree(REPO / "src" / "sweeplab", project / "src" / "sweeplab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return project


def command(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(project / "src")}
    result = subprocess.run([sys.executable, "-m", *args], cwd=project, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def run(project: Path, params: str = PARAMS) -> str:
    result = command(project, "kedro", "run", "--pipelines=ae_sweep", f"--params={params}")
    return result.stdout + result.stderr


def edit(project: Path, old: str, new: str) -> None:
    model = project / "src/sweeplab/pipelines/ae/model.py"
    text = model.read_text()
    assert old in text
    model.write_text(text.replace(old, new))


def summaries(project: Path) -> dict[str, dict]:
    return {v: json.loads(latest(project, f"data/07_model_output/ae_sweep/{v}/summary.json").read_text())
            for v in VARIANTS}


def test_a_model_edit_retrains_a_comment_does_not_and_keep_restores_and_marks(scratch):
    run(scratch)
    first = summaries(scratch)
    code = {s["code_identity"] for s in first.values()}
    assert len(code) == 1 and all(s["device"] == "cpu" and s["torch_version"] for s in first.values())
    assert all(s["code_version"] for s in first.values())

    edit(scratch, '"""The event autoencoder.', '"""The autoencoder of events.')  # a docstring
    line = "    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU()"
    edit(scratch, line, "    # a smooth activation\n" + line.replace(", nn", ",  nn"))  # a comment, spacing
    said = run(scratch)
    assert said.count("restored finished run") == 4 and "changed since" not in said
    assert {s["code_identity"] for s in summaries(scratch).values()} == code

    edit(scratch, "nn.GELU()", "nn.ReLU()")  # the numbers change
    said = run(scratch)
    warnings = [line for line in said.splitlines() if "changed since" in line]
    assert len(warnings) == 1, "once per family, not once per variant"
    assert ("ae_sweep: the code of family 'ae' changed since 4 of 4 variants finished (changed since: "
            "sweeplab/pipelines/ae/model.py); they are retrained. To keep their results instead: "
            "--params ae_sweep.resume.code=keep") in warnings[0]
    assert "restored finished run" not in said and said.count("completed after 1 epochs") == 4
    second = summaries(scratch)
    assert {s["code_identity"] for s in second.values()}.isdisjoint(code)
    assert all(second[v]["best"] != first[v]["best"] for v in VARIANTS), "ReLU gives other numbers"

    edit(scratch, "nn.ReLU()", "nn.Tanh()")
    status = command(scratch, "sweeplab", "status", "ae_sweep", f"--params={PARAMS}").stdout
    assert "4 variants: 0 completed, 4 outdated" in status
    said = run(scratch, KEEP)
    assert "ae_sweep: keeping the results of 4 of 4 variants that earlier code of family 'ae' finished" in said
    assert said.count("kept the run that earlier code finished") == 4
    kept = summaries(scratch)
    assert all(kept[v]["code_kept"] and kept[v]["best"] == second[v]["best"] for v in VARIANTS)
    table = pd.read_csv(latest(scratch, "data/08_reporting/ae_sweep/results.csv"))
    assert table["code_kept"].all() and set(table["code"]) == {second[VARIANTS[0]]["code_identity"]}
    results = latest(scratch, "data/08_reporting/ae_sweep/results.md").read_text()
    assert results.splitlines()[0].endswith("; runs of earlier code, 4 kept from earlier code): results")
    assert f"| {second[VARIANTS[0]]['code_identity']} (kept) |" in results
    report = (latest(scratch, "data/08_reporting/ae_sweep/report") / "report.md").read_text()
    assert f"- code identities of the runs: `{second[VARIANTS[0]]['code_identity']}` (4 runs, 4 kept" in report
    status = command(scratch, "sweeplab", "status", "ae_sweep", f"--params={KEEP}").stdout
    assert "4 variants: 4 completed, 0 outdated" in status and "(kept: trained by code" in status
