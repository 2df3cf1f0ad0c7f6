import numpy as np
import pytest
import torch

from sweeplab.datasets.hdf5 import H5File
from sweeplab.pipelines.shapes.nodes import generate_shapes, load_shapes
from sweeplab.pipelines.shapes.synthetic import ATTR_COLUMNS, FEATURES, SIZE_RANGE, bin8
from tests.conftest import write_h5

PARAMS = {"n_samples": 6000, "seed": 3, "fractions": {"train": 0.7, "val": 0.15, "test": 0.15},
          "visual_dim": 32, "embedding_seed": 7, "noise": 0.02}


@pytest.fixture(scope="module")
def shapes():
    return generate_shapes(PARAMS)


def test_domains_and_metadata(shapes):
    arrays, meta = shapes
    assert arrays["attr_train"].shape == (4200, len(ATTR_COLUMNS)) and arrays["v_val"].shape == (900, 32)
    features = arrays["features_train"]
    size, u = features[:, FEATURES.index("size")], features[:, FEATURES.index("u")]
    expected = (bin8(size, *SIZE_RANGE) + bin8(u, 0, 1)) % 8
    assert np.array_equal(arrays["synergy_train"], expected)
    assert np.allclose(arrays["attr_train"][:, ATTR_COLUMNS.index("u")], 2 * u - 1, atol=1e-6), "u scaled to [-1, 1]"
    assert "size" not in ATTR_COLUMNS
    assert meta["roles"]["unique"] == {"attr": ["u"], "v": ["size"]}
    assert meta["synergy"]["chance"] == 0.125 and meta["sizes"] == {"train": 4200, "val": 900, "test": 900}
    again, _ = generate_shapes(PARAMS)
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays), "deterministic from the seed"


def accuracy(arrays, domains, steps=600):
    torch.manual_seed(0)
    X = torch.tensor(np.concatenate([arrays[f"{d}_train"] for d in domains], 1))
    Xv = torch.tensor(np.concatenate([arrays[f"{d}_val"] for d in domains], 1))
    y, yv = torch.tensor(arrays["synergy_train"]), torch.tensor(arrays["synergy_val"])
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 128), torch.nn.GELU(), torch.nn.Linear(128, 128),
                                torch.nn.GELU(), torch.nn.Linear(128, 8))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(steps):
        idx = torch.randint(len(X), (256,))
        loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (model(Xv).argmax(1) == yv).float().mean().item()


def test_target_needs_both_domains(shapes):
    arrays, _ = shapes
    alone = {d: accuracy(arrays, [d]) for d in ("attr", "v")}
    both = accuracy(arrays, ["attr", "v"])
    assert all(acc < 0.17 for acc in alone.values()), f"one domain stays near chance (0.125): {alone}"
    assert both > 0.3, f"both domains together predict it: {both:.2f}"


def test_bad_dataset_is_named(tmp_path, shapes):
    arrays, _ = shapes
    good = write_h5(tmp_path / "good.h5", arrays)
    assert load_shapes(H5File(good))["val"]["attr"].shape == (900, 11)
    bad = dict(arrays, synergy_val=arrays["synergy_val"] + 8)
    with pytest.raises(ValueError, match=r"bad.h5:synergy_val: label \d+ at row 0; expected a whole number in 0..7"):
        load_shapes(H5File(write_h5(tmp_path / "bad.h5", bad)))
    short = dict(arrays, attr_test=arrays["attr_test"][:, :10])
    with pytest.raises(ValueError, match=r"short.h5:attr_test: expected 11 columns"):
        load_shapes(H5File(write_h5(tmp_path / "short.h5", short)))
    missing = {k: v for k, v in arrays.items() if k != "v_train"}
    with pytest.raises(ValueError, match=r"missing dataset 'v_train'"):
        load_shapes(H5File(write_h5(tmp_path / "missing.h5", missing)))
