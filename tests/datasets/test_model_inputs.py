import pickle

import h5py
import numpy as np
import pytest
from kedro.io import DataCatalog, DatasetError, Version
from kedro.pipeline import Node, Pipeline

from sweeplab.datasets.model_inputs import ModelInputsDataset
from sweeplab.errors import DataFileError, explained
from sweeplab.integration.hooks import RunVersionsHook
from sweeplab.training.loop import WORKERS_ENV, default_threads


def inputs(scale=1.0):
    return {"train": {"x": np.arange(6, dtype=np.float32).reshape(3, 2) * scale, "mask": np.array([True, False, True])},
            "val": {"x": np.ones((1, 2), np.float32)},
            "fingerprint": "abc123", "vocabulary": {"tokens": ["<pad>", "G1"], "counts": {"G1": 3}}}


def test_nested_inputs_round_trip_and_travel_without_their_cache(tmp_path):
    dataset = ModelInputsDataset(filepath=str(tmp_path / "inputs.h5"), version=Version(None, None))
    dataset.save(inputs())
    loaded = dataset.load()
    np.testing.assert_array_equal(loaded["train"]["x"], inputs()["train"]["x"])
    assert loaded["train"]["mask"].dtype == bool and loaded["train"]["x"].dtype == np.float32
    assert loaded["fingerprint"] == "abc123" and loaded["vocabulary"] == inputs()["vocabulary"]
    assert dataset.load() is loaded, "one copy per process, shared by the variants"
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._cache is None, "the arrays do not travel with the dataset"
    np.testing.assert_array_equal(copy.load()["val"]["x"], loaded["val"]["x"])


def test_a_file_this_project_did_not_write_is_refused(tmp_path):
    path = tmp_path / "inputs.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    for content, message in ((None, "inputs.h5: not model inputs this project wrote"),
                             ("not hdf5", "inputs.h5: not a readable HDF5 file")):
        if content:
            path.write_text(content)
        with pytest.raises(DatasetError) as caught:
            ModelInputsDataset(filepath=str(path)).load()
        assert isinstance(explained(caught.value), DataFileError) and message in str(explained(caught.value))


def test_a_run_reads_back_the_version_it_wrote_not_the_newest(tmp_path):
    """Two runs sharing a data folder: the other run's inputs are newer on disk, yet this run's
    variants read the inputs its own data prep wrote."""
    filepath = str(tmp_path / "inputs.h5")
    ModelInputsDataset(filepath=filepath, version=Version(None, "2099-01-01T00.00.00.000Z")).save(inputs(scale=-1))
    ours = ModelInputsDataset(filepath=filepath, version=Version(None, "2026-01-01T00.00.00.000Z"))
    catalog = DataCatalog({"inputs": ours})
    pipeline = Pipeline([Node(lambda: None, None, "inputs", name="prep"), Node(lambda x: x, "inputs", "out", name="use")])
    RunVersionsHook().before_pipeline_run({}, pipeline, catalog)
    catalog["inputs"].save(inputs(scale=1))
    worker_copy = pickle.loads(pickle.dumps(catalog["inputs"]))
    assert worker_copy.load()["train"]["x"][1, 0] == 2.0, "not the other run's newer -2.0"


def test_threads_are_this_processs_share_of_the_cores(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert default_threads() == 2
    monkeypatch.setenv(WORKERS_ENV, "16")
    assert default_threads() == 1
    monkeypatch.delenv(WORKERS_ENV)
    assert default_threads() == 8


def test_a_slurm_task_uses_only_the_cpus_it_was_given(monkeypatch):
    """Without an affinity plugin a task sees every core of the node; tasks that each took
    them all ran many times slower on a 2-core node."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "1")
    assert default_threads() == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert default_threads() == 4, "--cpus-per-task first"
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "64")
    assert default_threads() == 8, "never more than the affinity"
