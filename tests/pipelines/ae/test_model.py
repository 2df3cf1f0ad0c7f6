import functools

import numpy as np
import pytest
import torch

from sweeplab.datasets.hdf5 import H5File
from sweeplab.pipelines.ae.model import (
    EventAutoencoder,
    ModelConfig,
    VectorQuantizer,
    autoencoder_metrics,
    masked_mean,
    slot_mean,
)
from sweeplab.pipelines.ae.nodes import build_ae_inputs, transverse_vectors
from sweeplab.pipelines.events.nodes import fit_normaliser, split_events
from sweeplab.pipelines.events.synthetic import generate_events
from tests.conftest import write_h5

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def config(latent_space="vq", **kw):
    base = dict(latent_space=latent_space, hidden_dim=32, latent_dim=8, codebook_size=16, vq_ema=True, ema_decay=0.9)
    return ModelConfig(**{**base, **kw})


def batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    types = torch.randint(0, 8, (n, 18), generator=g)
    mask = types > 0
    return {"features": torch.randn(n, 18, 4, generator=g) * mask[..., None],
            "transverse": torch.randn(n, 18, 4, generator=g) * mask[..., None], "types": types, "mask": mask,
            "met": torch.randn(n, generator=g), "met_phi": torch.rand(n, generator=g) * 6.28 - 3.14}


metrics = functools.partial(autoencoder_metrics, globals_beta=1.0, commitment_weight=0.25)


def test_vq_uses_many_codes_and_reports_them():
    torch.manual_seed(0)
    model = EventAutoencoder(config())
    out = metrics(model, batch())
    assert {"commit", "codebook", "perplex", "codes_used"} <= set(out)
    assert out["codes_used"] > 4 and out["perplex"] > 2, "codebook initialised from data: codes in use"


@pytest.mark.parametrize("ema", [True, False])
def test_gradients_reach_the_encoder_through_the_quantiser(ema):
    torch.manual_seed(0)
    model = EventAutoencoder(config(vq_ema=ema))
    metrics(model, batch())["total_loss"].backward()
    grad = model.encoder.features.weight.grad
    assert grad is not None and grad.abs().sum() > 0, "straight-through estimator passes gradients"
    if ema:
        assert not isinstance(model.quantizer.codebook, torch.nn.Parameter)
    else:
        assert model.quantizer.codebook.grad.abs().sum() > 0, "codebook learned by its loss"


def test_ema_moves_codes_towards_the_vectors_assigned_to_them():
    vq = VectorQuantizer(2, 3, ema=True, decay=0.5)
    codes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    vq.codebook.copy_(codes)
    vq.code_sum.copy_(codes)
    vq.cluster_size.fill_(1.0)
    vq.initialised.fill_(True)
    # two vectors nearest code 0, two nearest code 1, none nearest code 2
    z = torch.tensor([[[2.0, 1.0], [2.2, 0.8], [8.0, 3.0], [7.8, 3.2]]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    targets = torch.tensor([[2.1, 0.9], [7.9, 3.1]])
    gaps = [(vq.codebook[:2] - targets).norm(dim=1)]
    for _ in range(8):
        vq(z, mask)
        gaps.append((vq.codebook[:2] - targets).norm(dim=1))
    gaps = torch.stack(gaps)  # (steps + 1, 2)
    assert (gaps[1:] < gaps[:-1]).all(), f"each step brings both codes closer to their vectors: {gaps}"
    assert (gaps[-1] < 0.01 * gaps[0]).all(), f"the codes reach their vectors' means: {gaps[-1]}"
    assert torch.allclose(vq.codebook[2], codes[2], atol=0.05), "a code with no vectors stays put (up to smoothing)"
    vq.eval()
    before = vq.codebook.clone()
    vq(z + 5.0, mask)
    assert torch.equal(vq.codebook, before), "evaluation never moves the codebook"


@pytest.mark.parametrize("ema", [True, False])
def test_padding_changes_nothing_the_quantiser_computes(ema):
    """Padding slots are weighted out, not selected away: the losses, code counts, EMA
    statistics and real tokens' outputs are those of the real tokens quantised alone."""
    torch.manual_seed(0)
    padded, alone = VectorQuantizer(8, 16, ema=ema), VectorQuantizer(8, 16, ema=ema)
    alone.load_state_dict(padded.state_dict())
    for vq in (padded, alone):
        vq.initialised.fill_(True)
    mask = batch()["mask"]
    z = torch.randn(*mask.shape, 8) + 1e3 * (~mask)[..., None]  # padding far from every code
    out, losses = padded(z, mask)
    out_alone, losses_alone = alone(z[mask].unsqueeze(0), torch.ones(1, int(mask.sum()), dtype=torch.bool))
    assert torch.allclose(out[mask], out_alone[0]) and not out[~mask].any(), "real tokens quantised; padding zero"
    for got, expected in zip(losses, losses_alone, strict=True):
        assert torch.allclose(got, expected)
    assert torch.allclose(padded.codebook, alone.codebook)
    if ema:
        assert torch.allclose(padded.cluster_size, alone.cluster_size)


def step(model, state, seed):
    """A model given ``state``, one training step on a seeded batch: its codebook after."""
    model.load_state_dict(state)
    torch.manual_seed(seed)
    metrics(model, batch(seed=seed))
    return model.quantizer.codebook.clone()


def test_a_loaded_codebook_continues_and_an_unset_one_is_drawn_again():
    """Whether the codebook still waits for its first batch is read from the loaded state,
    whatever the model did before the load."""
    torch.manual_seed(0)
    trained = EventAutoencoder(config())
    metrics(trained, batch(seed=0))  # the codebook drawn from this batch
    state, unset = trained.state_dict(), {**trained.state_dict(), "quantizer.initialised": torch.tensor(False)}
    stepped = EventAutoencoder(config())
    metrics(stepped, batch(seed=1))  # a model that has drawn its own codebook
    continued = step(stepped, state, seed=2)
    assert torch.equal(continued, step(EventAutoencoder(config()), state, seed=2)), "an EMA step from the state"
    drawn = step(stepped, unset, seed=2)
    assert torch.equal(drawn, step(EventAutoencoder(config()), unset, seed=2)), "drawn again from the batch"
    assert not torch.allclose(drawn, continued)


def test_padding_is_excluded_from_the_token_loss():
    torch.manual_seed(0)
    model = EventAutoencoder(config("linear"))
    model.eval()
    b = batch()
    noisy = dict(b, features=b["features"] + 100.0 * (~b["mask"])[..., None])
    assert torch.allclose(metrics(model, b)["rec_tokens"], metrics(model, noisy)["rec_tokens"])


@pytest.mark.parametrize("latent", ["none", "linear", "vq"])
def test_every_latent_space_trains(latent):
    torch.manual_seed(0)
    model = EventAutoencoder(config(latent))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    b = batch(256)
    first = metrics(model, b)["rec_tokens"].item()
    for _ in range(30):
        opt.zero_grad()
        metrics(model, b)["total_loss"].backward()
        opt.step()
    assert metrics(model, b)["rec_tokens"].item() < 0.8 * first


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="codebook_size must be at least 2"):
        EventAutoencoder(config(codebook_size=1))
    with pytest.raises(ValueError, match="ema_decay must be in"):
        EventAutoencoder(config(ema_decay=1.5))


def test_slot_mean_keeps_the_object_count():
    x = torch.ones(2, 18, 3)
    mask = torch.zeros(2, 18, dtype=torch.bool)
    mask[0, :2], mask[1, :6] = True, True
    assert torch.allclose(slot_mean(x, mask)[:, 0], torch.tensor([2 / 18, 6 / 18]))
    assert torch.allclose(masked_mean(x, mask)[:, 0], torch.ones(2)), "a plain mean forgets it"


def test_transverse_vectors_are_the_objects_momenta():
    raw = np.zeros((1, 18, 4))
    raw[0, 0] = [120.0, 50.0, 0.3, np.pi / 2]  # E, pT, eta, phi
    raw[0, 1] = [80.0, 25.0, -1.0, np.pi]
    mask = np.zeros((1, 18), bool)
    mask[0, :2] = True
    v = transverse_vectors(raw, mask, pt_scale=25.0)
    np.testing.assert_allclose(v[0, 0], [0.0, 1.0, 0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(v[0, 1], [-1.0, 0.0, -1.0, 0.0], atol=1e-6)
    assert (v[0, 2:] == 0).all(), "padding carries no momentum"


def test_the_globals_head_learns_met_from_momentum_balance(tmp_path):
    """On balanced events, training the MET head (beta 1) must beat not training it (beta 0)
    by far on validation events; a head that cannot see the balance stays near beta 0."""
    events = write_h5(tmp_path / "events.h5", generate_events({"n_events": 8000, "seed": 1}))
    split = write_h5(tmp_path / "split.h5", split_events(H5File(events), {"fractions": FRACTIONS, "seed": 0}))
    inputs = build_ae_inputs(H5File(split), fit_normaliser(H5File(split), {}))
    train = {k: torch.as_tensor(v) for k, v in inputs["train"].items()}
    val = {k: torch.as_tensor(v) for k, v in inputs["val"].items()}
    rec_globals = {}
    for beta in (0.0, 1.0):
        torch.manual_seed(0)
        model = EventAutoencoder(config("linear", hidden_dim=64, latent_dim=16))
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        for _epoch in range(4):
            for idx in torch.randperm(len(train["met"])).split(128):
                loss = autoencoder_metrics(model, {k: v[idx] for k, v in train.items()}, globals_beta=beta,
                                           commitment_weight=0.0)["total_loss"]
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            rec_globals[beta] = float(metrics(model.eval(), val)["rec_globals"])
    assert rec_globals[1.0] < 0.6 * rec_globals[0.0], rec_globals
