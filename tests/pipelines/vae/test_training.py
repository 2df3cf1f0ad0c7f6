"""The splat VAE through the shared training node, and a real Kedro run of a tiny
``vae_configs``: fit (then no refit), train, figures, report."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from sweeplab.datasets.hdf5 import H5File
from sweeplab.families import train_variant
from sweeplab.pipelines.splats import nodes as splat_nodes
from sweeplab.pipelines.vae.nodes import to_splats
from sweeplab.pipelines.vae.pipeline import FAMILY
from sweeplab.sweeps import expand, resolve_variant_config
from sweeplab.training import CheckpointStore, reproducible
from tests.conftest import REPO, write_h5
from tests.pipelines.splats.test_nodes import PARAMS, random_splats
from tests.test_kedro_run import latest, run_session

DEFAULTS = yaml.safe_load((REPO / "conf/base/parameters_vae.yml").read_text())["vae"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    path = write_h5(tmp_path_factory.mktemp("splats") / "splats.h5", {"splats": random_splats(40)})
    return splat_nodes.build_vae_inputs(H5File(path), PARAMS)


def config(experiment: dict, epochs: int = 3) -> dict:
    defaults = copy.deepcopy(DEFAULTS)
    defaults["model"] |= {"latent_dim": 4, "encoder_filters": [8, 8, 8], "decoder_filters": [8, 8, 8]}
    defaults["trainer"] |= {"epochs": epochs, "batch_size": 8}
    defaults["loss"] |= {"beta_warmup_epochs": 2}
    variant = expand("t", {"family": "vae", "experiments": {"e": experiment}})[0]
    return resolve_variant_config(defaults, family=FAMILY, variant=variant)


@pytest.mark.parametrize("encoding", ["angle", "doubled_angle"])
def test_a_variant_trains_and_logs_the_beta_in_force_and_every_group(inputs, tmp_path, encoding):
    weights, history, summary = train_variant(config({"rotation_encoding": encoding}), inputs[0],
                                              CheckpointStore(tmp_path), family=FAMILY)
    assert summary["status"] == "completed", summary["reason"]
    val = history[history["split"] == "val"].set_index("epoch")
    assert val["beta"].tolist() == [0.0, 0.5, 1.0], "linear warm-up over 2 epochs, from 0"
    for group in ("xy", "scale", "rot", "feat"):
        assert np.isfinite(val[f"rec_{group}"]).all() and (val[f"std_ratio_{group}"] >= 0).all()
    assert val["active_units"].between(0, 4).all()
    assert summary["monitor"] == "objective"
    channels = 9 if encoding == "doubled_angle" else 8
    assert weights["decoder.head.weight"].shape[0] == channels


def test_the_same_seed_gives_the_same_numbers(inputs, tmp_path):
    runs = [train_variant(config({"loss.beta_max": 0.5}, epochs=2), inputs[0], CheckpointStore(tmp_path / str(i)),
                          family=FAMILY)[1] for i in range(2)]
    pd.testing.assert_frame_equal(*map(reproducible, runs))


def test_model_channels_map_back_to_splats(inputs):
    vae_inputs, normaliser = inputs
    x = vae_inputs["val"]["x"]
    for encoding, columns in (("angle", [0, 1, 2, 3, 4, 7, 8, 9]), ("doubled_angle", [0, 1, 2, 3, 5, 6, 7, 8, 9])):
        splats = to_splats(x[..., columns], normaliser, encoding)
        assert splats.shape == (*x.shape[:2], 8)
        assert ((splats[..., 4] >= -np.pi / 2 - 1e-5) & (splats[..., 4] <= np.pi)).all()
    np.testing.assert_allclose(np.cos(2 * to_splats(x[..., [0, 1, 2, 3, 5, 6, 7, 8, 9]], normaliser, "doubled_angle")[..., 4]),
                               np.cos(2 * to_splats(x[..., [0, 1, 2, 3, 4, 7, 8, 9]], normaliser, "angle")[..., 4]),
                               atol=1e-4)


TINY = {
    "splats": {"synthetic": {"n_patches": 40, "patch_size": 16, "n_gaussians": 16, "steps": 5, "batch_size": 20}},
    "vae": {"model": {"encoder_filters": [8, 8, 8], "decoder_filters": [8, 8, 8]},
            "trainer": {"epochs": 2, "batch_size": 16}},
    "vae_configs": {"only": "conv1d_base resnet_conv1d_512d doubled_angle_512d_beta0"},
}


@pytest.mark.slow
def test_a_tiny_vae_configs_run_fits_once_trains_and_reports(kedro_project):
    run_session(kedro_project, pipeline="vae_configs", params=TINY)
    fit = json.loads(latest(kedro_project, "data/08_reporting/splats/fit_report.json").read_text())
    assert fit["cached"] is False and fit["psnr_final"] > 0
    table = pd.read_csv(latest(kedro_project, "data/08_reporting/vae_configs/results.csv"))
    assert table["experiment"].tolist() == ["conv1d_base", "resnet_conv1d_512d", "doubled_angle_512d_beta0"]
    assert (table["status"] == "completed").all()
    assert {"rec_rot", "kl", "active_units", "std_ratio_feat"} <= set(table.columns)
    figures = latest(kedro_project, "data/08_reporting/vae_configs/report") / "figures"
    assert (figures / "conditions.png").read_bytes().startswith(b"\x89PNG"), "experiments side by side"
    for variant in table["variant"]:
        png = latest(kedro_project, f"data/08_reporting/vae_configs/{variant}/recon.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5_000
    run_session(kedro_project, pipeline="vae_configs", params=TINY)  # again: no refit, no retraining
    fit = json.loads(latest(kedro_project, "data/08_reporting/splats/fit_report.json").read_text())
    assert fit["cached"] is True
