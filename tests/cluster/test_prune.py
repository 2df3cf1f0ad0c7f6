"""``sweeplab prune``: older versions go, the newest and whatever a kept report read stay."""

from __future__ import annotations

import pytest
from kedro.io import Version

from sweeplab.cluster.state import open_sweep
from sweeplab.datasets.folder import FolderDataset
from sweeplab.datasets.run_records import RunSummaryDataset
from sweeplab.datasets.torch_weights import TorchWeightsDataset
from tests.cluster.test_submit import PARAMS, VARIANTS, _params, sweeplab

V1, V2, V3 = "2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z", "2026-01-03T00.00.00.000Z"


@pytest.fixture
def project(kedro_project, monkeypatch):
    monkeypatch.chdir(kedro_project)
    return kedro_project


def save_run(variant: str, version: str) -> None:
    import torch  # noqa: PLC0415

    RunSummaryDataset(filepath=f"data/07_model_output/ae_sweep/{variant}/summary.json",
                      version=Version(None, version)).save({"status": "completed", "version": version})
    TorchWeightsDataset(filepath=f"data/06_models/ae_sweep/{variant}/model.pt",
                        version=Version(None, version)).save({"w": torch.ones(3)})


def versions(project, relative: str) -> list[str]:
    return sorted(p.name for p in (project / relative).iterdir())


def test_prune_keeps_the_newest_and_what_a_kept_report_read(project):
    a, b = VARIANTS[:2]
    for version in (V1, V2, V3):
        save_run(a, version)
    save_run(b, V1)
    FolderDataset(filepath="data/08_reporting/ae_sweep/report", version=Version(None, V2)).save({"report.md": "x"})

    code, out = sweeplab("prune", "ae_sweep", f"--params={PARAMS}", "--keep", "1", "--dry-run")
    assert code == 0, out
    assert "would remove 2 versions of 2 datasets" in out
    assert versions(project, f"data/07_model_output/ae_sweep/{a}/summary.json") == [V1, V2, V3], "dry run"

    code, out = sweeplab("prune", "ae_sweep", f"--params={PARAMS}", "--keep", "1")
    assert code == 0 and "removed 2 versions of 2 datasets" in out
    # V3 is the newest; V2 is what the kept report (V2) read; V1 goes, with its weights
    assert versions(project, f"data/07_model_output/ae_sweep/{a}/summary.json") == [V2, V3]
    assert versions(project, f"data/06_models/ae_sweep/{a}/model.pt") == [V2, V3]
    assert versions(project, f"data/07_model_output/ae_sweep/{b}/summary.json") == [V1], "its only version"
    # the kept versions are whole, though the weights were hard links to V1's file
    opened = open_sweep("ae_sweep", env=None, conf_source=None, params=_params())
    assert opened.catalog.load(f"ae_sweep.{a}.model")["w"].sum().item() == 3


def test_keep_must_be_at_least_one(project):
    code, out = sweeplab("prune", "ae_sweep", "--keep", "0")
    assert code == 2 and "--keep" in out
