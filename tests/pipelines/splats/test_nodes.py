"""Splat data prep on real HDF5 files: the cached fit, splitting, ordering, standardising,
and bad files named before anything is written."""

from __future__ import annotations

import numpy as np
import pytest

from sweeplab.datasets.hdf5 import H5File
from sweeplab.datasets.results_cache import ResultsCache
from sweeplab.errors import DataFileError
from sweeplab.pipelines.splats import nodes, render
from sweeplab.training import devices
from tests.conftest import write_h5

TINY_FIT = {"images": ["astronaut", "coffee"], "n_patches": 4, "patch_size": 16, "downscale": 4, "n_gaussians": 16,
            "steps": 5, "lr": 0.05, "batch_size": 4, "seed": 0}
PARAMS = {"source": "file", "order": "hilbert", "val_fraction": 0.25, "split_seed": 0, "synthetic": TINY_FIT}


def random_splats(n: int, g: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    splats = np.concatenate([rng.uniform(0, 1, (n, g, 2)), rng.normal(-2.5, 0.3, (n, g, 2)),
                             rng.uniform(0, np.pi, (n, g, 1)), rng.uniform(0, 1, (n, g, 3))], axis=-1)
    return splats.astype(np.float32)


def test_the_fit_is_cached_on_its_parameters(tmp_path, monkeypatch):
    cache = ResultsCache(tmp_path / "fits")
    first, report = nodes.fit_photo_splats(TINY_FIT, cache)
    assert first["splats"].shape == (4, 16, 8) and first["images"].shape == (4, 16, 16, 3)
    assert report["cached"] is False and report["mse_final"] < report["mse_initial"]
    assert report["device"] == devices.pick_device("auto").type, "where the fit was made"

    def refit(*args, **kwargs):
        raise AssertionError("refitted although the parameters did not change")

    monkeypatch.setattr(render, "fit_splats", refit)
    again, report = nodes.fit_photo_splats(TINY_FIT, cache)
    assert report["cached"] is True
    np.testing.assert_array_equal(again["splats"], first["splats"])
    with pytest.raises(AssertionError, match="refitted"):
        nodes.fit_photo_splats({**TINY_FIT, "steps": 6}, cache)
    _, report = nodes.fit_photo_splats({**TINY_FIT, "device": "cpu"}, cache)
    assert report["cached"] is True, "a fit made on one device serves a run on another"


def test_a_fit_on_a_named_device_is_the_fit_of_auto_there(tmp_path):
    auto, _ = nodes.fit_photo_splats(TINY_FIT, ResultsCache(tmp_path / "a"))
    named, report = nodes.fit_photo_splats({**TINY_FIT, "device": devices.pick_device("auto").type},
                                           ResultsCache(tmp_path / "b"))
    assert report["cached"] is False
    np.testing.assert_array_equal(named["splats"], auto["splats"])


def test_an_unsplit_file_is_split_ordered_and_standardised(tmp_path):
    splats = random_splats(8)
    images = np.random.default_rng(1).uniform(0, 1, (8, 16, 16, 3)).astype(np.float32)
    path = write_h5(tmp_path / "splats.h5", {"splats": splats, "images": images})
    inputs, normaliser = nodes.build_vae_inputs(H5File(path), PARAMS)
    assert inputs["train"]["x"].shape == (6, 16, len(nodes.CHANNELS)) and inputs["val"]["x"].shape == (2, 16, 10)
    train = inputs["train"]["x"].reshape(-1, 10)
    np.testing.assert_allclose(train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(0), 1, atol=1e-4)
    assert normaliser["order"] == "hilbert" and normaliser["images"] == {"train": 6, "val": 2}
    assert inputs["val_images"]["images"].shape == (2, 16, 16, 3)
    # every image's Gaussians run along the curve: x, y back in the file's units
    mean, std = np.array(normaliser["mean"]), np.array(normaliser["std"])
    xy = inputs["train"]["x"][..., :2] * std[:2] + mean[:2]
    index = render.hilbert_index(xy[..., 0], xy[..., 1])
    assert (np.diff(index, axis=1) >= 0).all()
    # the doubled angle is there too, and a variant picks one encoding
    cos2, sin2 = (inputs["train"]["x"][..., i] * std[i] + mean[i] for i in (5, 6))
    np.testing.assert_allclose(cos2**2 + sin2**2, 1, atol=1e-4)


def test_a_split_file_is_read_as_split(tmp_path):
    path = write_h5(tmp_path / "split.h5", {"splats_train": random_splats(5), "splats_val": random_splats(3, seed=1)})
    inputs, normaliser = nodes.build_vae_inputs(H5File(path), {**PARAMS, "order": "none"})
    assert len(inputs["train"]["x"]) == 5 and len(inputs["val"]["x"]) == 3 and "val_images" not in inputs
    assert normaliser["order"] == "none"


@pytest.mark.parametrize(("arrays", "message"), [
    ({"splats": np.zeros((4, 16, 7), np.float32)}, r"splats.h5:splats: expected shape \(images, Gaussians, 8\)"),
    ({"splats": np.zeros((4, 16), np.float32)}, r"splats.h5:splats: expected a 3-D array"),
    ({"splat": np.zeros((4, 16, 8), np.float32)}, r"splats.h5: missing dataset 'splats'"),
    ({"splats": np.full((4, 16, 8), np.nan, np.float32)}, r"splats.h5:splats: non-finite x at image 0, Gaussian 0"),
    ({"splats": np.zeros((4, 16, 8), np.float32), "images": np.zeros((3, 8, 8, 3), np.float32)},
     r"splats.h5:images: expected shape \(4, H, W, 3\)"),
    ({"splats": np.zeros((1, 16, 8), np.float32)}, r"1 images cannot be split with val_fraction 0.25"),
])
def test_a_bad_file_is_named_with_its_key(tmp_path, arrays, message):
    path = write_h5(tmp_path / "splats.h5", arrays)
    with pytest.raises(DataFileError, match=message):
        nodes.build_vae_inputs(H5File(path), PARAMS)


def test_a_cache_entry_that_cannot_be_read_is_recomputed(tmp_path):
    cache = ResultsCache(tmp_path)
    cache.put("ab12cd34", {"a": np.arange(3)})
    np.testing.assert_array_equal(cache.get("ab12cd34")["a"], np.arange(3))
    (tmp_path / "ab12cd34.h5").write_bytes(b"truncated")
    assert cache.get("ab12cd34") is None
    with pytest.raises(ValueError, match="expected a hexadecimal hash"):
        cache.get("../escape")


def test_the_cache_comes_from_the_catalog_and_is_not_saved(tmp_path):
    from kedro.io import DatasetError  # noqa: PLC0415

    from sweeplab.datasets.results_cache import ResultsCacheDataset  # noqa: PLC0415

    dataset = ResultsCacheDataset(path=str(tmp_path / "fits"))
    assert dataset.load().root == tmp_path / "fits"
    with pytest.raises(DatasetError, match="a ResultsCache is written through the object it loads"):
        dataset.save({})
