"""The packaged project on a cluster node, and the lineage view in kedro-viz."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO

ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
TINY = ("events.synthetic.n_events=2000,ae.trainer.epochs=1,ae_sweep.grid.model.latent_space=linear vq,"
        "ae_sweep.grid.loss.globals_beta=1")


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_packaged_project_runs_from_an_empty_directory(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", "data", "dist", "build", ".git", "*.egg-info"))
    run([sys.executable, "-m", "kedro", "package"], source)
    wheel = next((source / "dist").glob("sweeplab-*.whl"))
    conf = source / "dist" / "conf-sweeplab.tar.gz"

    # A fresh environment with only the wheel installed. Its dependencies (torch and the rest,
    # several hundred MB) are borrowed from this interpreter's site-packages through a .pth
    # line instead of being installed again; the project itself comes only from the wheel.
    venv = tmp_path / "node-env"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip())
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], tmp_path)

    node = tmp_path / "node"
    node.mkdir()
    where = run([str(python), "-c", "import sweeplab; print(sweeplab.__file__)"], node).stdout
    assert str(venv) in where, f"sweeplab must come from the wheel, not the checkout: {where}"
    run([str(python), "-m", "sweeplab", f"--conf-source={conf}", "--pipelines=ae_sweep", f"--params={TINY}"], node)
    tables = sorted((node / "data/08_reporting/ae_sweep/results.csv").glob("*/results.csv"))
    table = pd.read_csv(tables[-1])
    assert sorted(table["variant"]) == ["linear_beta1_s0", "vq_beta1_s0"]
    assert (table["status"] == "completed").all()

    # the wheel's own `sweeplab` command writes the cluster jobs, with the templates it ships
    out = run([str(venv / "bin" / "sweeplab"), "submit", "ae_sweep", f"--conf-source={conf}", f"--params={TINY}",
               "--dry-run"], node).stdout
    assert "all 2 variants have a completed record; nothing to submit" in out
    out = run([str(venv / "bin" / "sweeplab"), "submit", "ae_sweep", f"--conf-source={conf}",
               f"--params={TINY},ae_sweep.seeds=0 1", "--dry-run"], node).stdout
    assert "4 variants, 2 completed, 2 to run" in out and f"--conf-source={conf}" in out
    assert f"{venv}/bin/python" in out, "the jobs run the interpreter that has the package"


@pytest.mark.slow
def test_viz_build_shows_the_sweep_as_one_namespace(kedro_project):
    run([sys.executable, "-m", "kedro", "viz", "build"], kedro_project)
    graph = json.loads((kedro_project / "build/api/main").read_text())
    modular = graph["modular_pipelines"]
    assert "ae_sweep" in modular and "ae_sweep_report" in modular
    children = {c["id"] for c in modular["ae_sweep"]["children"]}
    assert {"ae_sweep.vq_beta10_s0", "ae_sweep.none_beta0_s0"} <= children, "variants nest inside the sweep"
    names = {n["name"] for n in graph["nodes"] if n["type"] == "task"}
    assert {"split_events", "fit_normaliser", "build_ae_inputs"} <= names, "data prep around the sweep"
    layers = graph["layers"]
    # the default run reads no real data: its first layer is the generated data's
    assert set(layers) == {"intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting"}
    assert layers[0] == "intermediate" and layers[-1] == "reporting"
    assert layers.index("primary") < layers.index("feature") < layers.index("models") < layers.index("model_output")
