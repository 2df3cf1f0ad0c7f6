import h5py
import numpy as np
import pytest
from kedro.io import DatasetError

from sweeplab.config import ConfigError, SplitFractions, from_dict
from sweeplab.datasets.hdf5 import H5ArraysDataset, H5File
from sweeplab.errors import DataFileError
from sweeplab.pipelines.events.format import object_features, object_types
from sweeplab.pipelines.events.nodes import (
    assign_splits,
    fit_normaliser,
    split_events,
    token_transform,
)
from tests.conftest import write_h5

SPLIT = {"fractions": {"train": 0.6, "val": 0.2, "test": 0.2}, "seed": 5, "step_size": 700}


def split_to(tmp_path, source, name="split.h5", **overrides):
    return H5File(write_h5(tmp_path / name, split_events(H5File(source), {**SPLIT, **overrides})))


def rows_as_set(X):
    return {row.tobytes() for row in X}


def test_split_is_disjoint_complete_and_stratified(tmp_path, unsplit_file):
    source = H5File(unsplit_file)
    X, y = source.read("X"), source.read("y")
    out = split_to(tmp_path, unsplit_file)
    parts = {s: (out.read(f"X_{s}"), out.read(f"y_{s}")) for s in ("train", "val", "test")}
    seen = [rows_as_set(Xs) for Xs, _ in parts.values()]
    assert sum(map(len, seen)) == len(rows_as_set(X)) == len(X), "complete, no duplicates"
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2]), "disjoint"
    for split, fraction in SPLIT["fractions"].items():
        Xs, ys = parts[split]
        assert abs(len(ys) / len(y) - fraction) < 0.01
        for label in range(1, 6):  # each process keeps its share in every split
            assert abs((ys == label).sum() - fraction * (y == label).sum()) <= 1
        # labels still belong to their rows
        lookup = {row.tobytes(): label for row, label in zip(X, y, strict=True)}
        assert all(lookup[row.tobytes()] == label for row, label in zip(Xs, ys, strict=True))


def test_split_is_deterministic_and_chunk_size_free(tmp_path, unsplit_file):
    a = split_to(tmp_path, unsplit_file, "a.h5")
    b = split_to(tmp_path, unsplit_file, "b.h5", step_size=100_000)
    c = split_to(tmp_path, unsplit_file, "c.h5", seed=6)
    for key in ("X_train", "y_val", "X_test"):
        assert np.array_equal(a.read(key), b.read(key))
    assert not np.array_equal(a.read("y_train"), c.read("y_train"))


def test_bad_fractions_are_named():
    with pytest.raises(ConfigError, match=r"events.split.fractions.train \+ val \+ test: got 0.9; expected them to sum to 1"):
        from_dict(SplitFractions, {"train": 0.5, "val": 0.2, "test": 0.2}, where="events.split.fractions")
    with pytest.raises(ConfigError, match=r"events.split.fractions.test: missing required key"):
        from_dict(SplitFractions, {"train": 0.5, "val": 0.5}, where="events.split.fractions")


def test_a_process_too_small_for_every_split_is_named(caplog):
    y = np.array([1] * 50 + [3])
    with caplog.at_level("WARNING"):
        assignment = assign_splits(y, {"train": 0.7, "val": 0.15, "test": 0.15}, 0)
    assert set(assignment[:50]) == {0, 1, 2}
    assert "process ttW has 1 event(s), too few to appear in every split; none in val, test" in caplog.text


def test_normaliser_is_fitted_on_train_only(tmp_path, unsplit_file):
    out = split_to(tmp_path, unsplit_file)
    norm = fit_normaliser(out, SPLIT)
    X = out.read("X_train")
    tokens = token_transform(object_features(X))[object_types(X) > 0]
    np.testing.assert_allclose(norm["mean"], tokens.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm["std"], tokens.std(0), rtol=1e-5)
    np.testing.assert_allclose(norm["log_met"]["mean"], np.log1p(X[:, 18].astype(float)).mean(), rtol=1e-6)
    assert norm["fitted_on"]["events"] == len(X)


def test_real_file_key_case_is_accepted(tmp_path, unsplit_file):
    out = split_to(tmp_path, unsplit_file)
    arrays = {k: out.read(k) for k in out.keys()}
    arrays["Y_train"] = arrays.pop("y_train")  # the real file mixes Y_/y_
    mixed = H5File(write_h5(tmp_path / "mixed.h5", arrays))
    assert fit_normaliser(mixed, SPLIT)["fitted_on"]["events"] == len(arrays["X_train"])


def test_failed_save_leaves_no_file(tmp_path, unsplit_file):
    source = H5File(unsplit_file)
    X = source.read("X")
    X[2500, 40] = np.nan  # found only in the last chunk, after others were written
    bad = write_h5(tmp_path / "bad.h5", {"X": X, "y": source.read("y")})
    target = tmp_path / "out.h5"
    with pytest.raises(DatasetError, match="row 2500"):  # kedro wraps the node's error
        H5ArraysDataset(filepath=str(target)).save(split_events(H5File(bad), SPLIT))
    assert not target.exists() and not list(tmp_path.glob(".out.h5*"))


# --- bad input: every message names the file and the key ------------------------------------

def _corrupt(tmp_path, unsplit_file, edit):
    source = H5File(unsplit_file)
    arrays = {"X": source.read("X"), "y": source.read("y")}
    edit(arrays)
    return write_h5(tmp_path / "corrupt.h5", arrays)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda a: a.pop("y"), r"missing dataset 'y'"),
    (lambda a: a.update(X=a["X"][:, :90]), r":X: expected 92 columns per event, got shape \(3000, 90\)"),
    (lambda a: a["X"].__setitem__((7, 30), np.inf), r":X: non-finite value inf at row 7, column 30"),
    (lambda a: a["X"].__setitem__((9, 3), 11), r":X: unknown object type id 11.0 at row 9, slot 3"),
    (lambda a: a["y"].__setitem__(4, 9), r":y: label 9 at row 4; expected a process id"),
    (lambda a: a.update(y=a["y"][:-1]), r"X has 3000 rows but y has 2999"),
])
def test_bad_input_is_named(tmp_path, unsplit_file, edit, message):
    path = _corrupt(tmp_path, unsplit_file, edit)
    with pytest.raises((ValueError, KeyError, DatasetError), match=message) as info:
        write_h5(tmp_path / "never.h5", split_events(H5File(path), SPLIT))
    assert str(path) in str(info.value)
    assert not (tmp_path / "never.h5").exists()


def test_empty_split_is_refused(tmp_path, unsplit_file):
    source = H5File(unsplit_file)
    tiny = write_h5(tmp_path / "tiny.h5", {"X": source.read("X", slice(0, 2)), "y": source.read("y", slice(0, 2))})
    with pytest.raises(ValueError, match=r"split '.*' would be empty"):
        split_events(H5File(tiny), SPLIT)


def test_not_hdf5_and_missing_file(tmp_path):
    text = tmp_path / "events.h5"
    text.write_text("not an hdf5 file")
    with pytest.raises(Exception, match=f"{text}: not a readable HDF5 file"):
        H5ArraysDataset(filepath=str(text)).load()
    with pytest.raises(Exception, match="no such file"):
        H5File(tmp_path / "absent.h5")


def test_split_file_with_missing_split_is_named(tmp_path, unsplit_file):
    out = split_to(tmp_path, unsplit_file)
    arrays = {k: out.read(k) for k in out.keys() if not k.endswith("_val")}
    broken = H5File(write_h5(tmp_path / "noval.h5", arrays))
    with pytest.raises(DataFileError, match=r"noval.h5: missing dataset 'X_val'"):
        fit_normaliser(broken, SPLIT)
    with h5py.File(tmp_path / "noval.h5") as f:  # the file is a real HDF5 file
        assert "X_train" in f
