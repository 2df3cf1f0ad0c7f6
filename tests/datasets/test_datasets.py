import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import DatasetError, Version
from matplotlib.figure import Figure

from sweeplab.datasets import atomic
from sweeplab.datasets.checkpoints import CheckpointStoreDataset
from sweeplab.datasets.hdf5 import ArrayStream, H5ArraysDataset
from sweeplab.datasets.torch_weights import TorchWeightsDataset


def test_weights_round_trip_versioned(tmp_path):
    path = str(tmp_path / "model.pt")
    weights = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
    TorchWeightsDataset(filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")).save(weights)
    TorchWeightsDataset(filepath=path, version=Version(None, "2026-01-02T00.00.00.000Z")).save({"w": torch.ones(1)})
    latest = TorchWeightsDataset(filepath=path, version=Version(None, None)).load()
    pinned = TorchWeightsDataset(filepath=path, version=Version("2026-01-01T00.00.00.000Z", None)).load()
    assert torch.equal(latest["w"], torch.ones(1))
    assert torch.equal(pinned["w"], weights["w"]) and set(pinned) == {"w", "b"}


def test_weights_refuse_non_state_dicts(tmp_path):
    dataset = TorchWeightsDataset(filepath=str(tmp_path / "m.pt"))
    with pytest.raises(DatasetError, match="expected a state dict"):
        dataset.save(torch.nn.Linear(2, 2))
    assert not dataset.exists() and not list(tmp_path.iterdir())


def test_h5_stream_writes_blocks_and_failed_stream_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.h5"
    dataset = H5ArraysDataset(filepath=str(path))
    dataset.save({"x": np.arange(10)})

    def blocks():
        yield "x", 0, np.arange(5)
        raise RuntimeError("source vanished")

    with pytest.raises(DatasetError, match="source vanished"):
        dataset.save(ArrayStream({"x": ((10,), np.int64)}, blocks))
    assert np.array_equal(dataset.load().read("x"), np.arange(10)), "the good file is untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"], "no temporary file left"


def test_checkpoint_store_comes_from_the_catalog_and_is_read_only(tmp_path):
    dataset = CheckpointStoreDataset(path=str(tmp_path / "ckpt"))
    store = dataset.load()
    assert store.slot("s", "v", "hash", "fingerprint" * 3, "c0de").folder == tmp_path / "ckpt/s/v/hash-fingerprintfinge-c0de"
    with pytest.raises(DatasetError, match="a CheckpointStore is written through the object it loads"):
        dataset.save(store)


@pytest.mark.parametrize(("kind", "good", "bad"), [
    (atomic.JSONDataset, {"a": 1}, {"a": object()}),
    (atomic.CSVDataset, pd.DataFrame({"a": [1, 2]}), "not a frame"),
    (atomic.YAMLDataset, {"a": [1, 2]}, {"a": (i for i in range(2))}),
    (atomic.TextDataset, "text", 12),
])
def test_kedro_file_datasets_write_whole_versions_or_none(tmp_path, kind, good, bad):
    path = tmp_path / "out" / "file.ext"
    first = kind(filepath=str(path), version=Version(None, None))
    first.save(good)
    saved = list((tmp_path / "out").rglob("*"))
    again = kind(filepath=str(path), version=Version(None, None))
    with pytest.raises(DatasetError):
        again.save(bad)
    assert list((tmp_path / "out").rglob("*")) == saved, "no torn file, no temporary file, no empty version folder"
    loaded = kind(filepath=str(path), version=Version(None, None)).load()
    assert loaded.equals(good) if isinstance(good, pd.DataFrame) else loaded == good


def test_figures_are_written_atomically_too(tmp_path):
    figure = Figure()
    figure.subplots().plot([1, 2])
    path = tmp_path / "plot.png"
    atomic.MatplotlibDataset(filepath=str(path)).save(figure)
    assert path.read_bytes().startswith(b"\x89PNG") and [p.name for p in tmp_path.iterdir()] == ["plot.png"]
