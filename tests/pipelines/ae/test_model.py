import functools

import pytest
import torch

from sweeplab.pipelines.ae.model import (
    EventAutoencoder,
    ModelConfig,
    VectorQuantizer,
    autoencoder_metrics,
)


def config(latent_space="vq", **kw):
    base = dict(latent_space=latent_space, hidden_dim=32, latent_dim=8, codebook_size=16, vq_ema=True, ema_decay=0.9)
    return ModelConfig(**{**base, **kw})


def batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    types = torch.randint(0, 8, (n, 18), generator=g)
    mask = types > 0
    return {"features": torch.randn(n, 18, 4, generator=g) * mask[..., None], "types": types, "mask": mask,
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


def test_ema_moves_codes_towards_assigned_vectors():
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 4, ema=True, decay=0.5)
    z = torch.tensor([[[5.0, 5.0]] * 8])
    mask = torch.ones(1, 8, dtype=torch.bool)
    vq(z, mask)
    before = vq.codebook.clone()
    for _ in range(5):
        vq(z, mask)
    used = (before - 5).norm(dim=1).argmin()
    assert (vq.codebook[used] - 5).norm() <= (before[used] - 5).norm() + 1e-6


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
