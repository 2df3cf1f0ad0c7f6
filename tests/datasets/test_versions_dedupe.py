"""A re-run that saves the same bytes adds a version without a new copy on disk."""

from __future__ import annotations

from kedro.io import Version

from sweeplab.datasets.folder import FolderDataset
from sweeplab.datasets.torch_weights import TorchWeightsDataset


def versions(folder, name):
    return sorted(folder.glob(f"*/{name}"))


def test_unchanged_weights_are_linked_changed_ones_are_copied(tmp_path):
    import torch  # noqa: PLC0415

    weights = {"w": torch.arange(1000, dtype=torch.float32)}
    for version in ("2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"):
        TorchWeightsDataset(filepath=str(tmp_path / "model.pt"), version=Version(None, version)).save(weights)
    TorchWeightsDataset(filepath=str(tmp_path / "model.pt"),
                        version=Version(None, "2026-01-03T00.00.00.000Z")).save({"w": weights["w"] + 1})
    first, second, third = versions(tmp_path / "model.pt", "model.pt")
    assert first.stat().st_ino == second.stat().st_ino and first.stat().st_nlink == 2
    assert third.stat().st_ino != second.stat().st_ino and third.stat().st_nlink == 1
    loaded = TorchWeightsDataset(filepath=str(tmp_path / "model.pt"), version=Version(None, None)).load()
    assert torch.equal(loaded["w"], weights["w"] + 1)
    first.unlink()  # removing one version leaves the other whole
    assert torch.equal(torch.load(second, weights_only=True)["w"], weights["w"])


def test_a_folder_links_only_its_unchanged_files(tmp_path):
    target = tmp_path / "report"
    FolderDataset(filepath=str(target), version=Version(None, "2026-01-01T00.00.00.000Z")).save(
        {"a.md": "same", "b.md": "old"})
    FolderDataset(filepath=str(target), version=Version(None, "2026-01-02T00.00.00.000Z")).save(
        {"a.md": "same", "b.md": "new"})
    old, new = sorted(target.iterdir())
    assert (old / "report/a.md").stat().st_ino == (new / "report/a.md").stat().st_ino
    assert (new / "report/b.md").read_text() == "new" and (old / "report/b.md").read_text() == "old"


def test_unversioned_saves_never_link(tmp_path):
    import torch  # noqa: PLC0415

    (tmp_path / "a").mkdir()
    TorchWeightsDataset(filepath=str(tmp_path / "a" / "model.pt")).save({"w": torch.ones(3)})
    TorchWeightsDataset(filepath=str(tmp_path / "b" / "model.pt")).save({"w": torch.ones(3)})
    assert (tmp_path / "b" / "model.pt").stat().st_nlink == 1
