import math

import pytest
import torch
from torch import nn

from sweeplab.config import ConfigError, from_dict
from sweeplab.pipelines.vae.model import (
    SplatVAE,
    VAELossConfig,
    VAEModelConfig,
    VAEOutput,
    active_units,
    beta_at,
    count_parameters,
    groups,
    kl_per_dim,
    vae_metrics,
)

SMALL = {"encoder_filters": (8, 16, 16), "decoder_filters": (16, 8, 8), "kernel_size": 3}


def model_config(arch="conv1d", latent_dim=4, **kw):
    return VAEModelConfig(arch=arch, latent_dim=latent_dim, **{**SMALL, **kw})


def loss_config(**kw):
    base = {"weighting": "equal", "beta_max": 1.0, "beta_warmup_epochs": 10}
    return VAELossConfig(**{**base, **kw})


def splats(b=4, g=64, c=8, seed=0):
    return torch.randn(b, g, c, generator=torch.Generator().manual_seed(seed))


class Fixed(nn.Module):
    """A stand-in model that returns given outputs, for sums worked out by hand."""

    def __init__(self, recon, mu, logvar):
        super().__init__()
        self.out = VAEOutput(recon, mu, logvar)

    def forward(self, x):
        return self.out


def zero_latent(b, d=2):
    return torch.zeros(b, d), torch.zeros(b, d)


# --- configs -----------------------------------------------------------------------------


def test_config_from_dict_makes_filters_tuples():
    cfg = from_dict(VAEModelConfig, {"arch": "resnet", "latent_dim": 8, "encoder_filters": [4, 8]
                                     , "decoder_filters": [8, 4]})
    assert cfg.encoder_filters == (4, 8) and cfg.stages == 2


@pytest.mark.parametrize(("change", "field"), [
    ({"kernel_size": 4}, "kernel_size"),
    ({"decoder_filters": (16, 8)}, "decoder_filters"),
    ({"encoder_filters": (), "decoder_filters": ()}, "encoder_filters"),
])
def test_incompatible_model_options_are_named(change, field):
    with pytest.raises(ConfigError, match=field):
        model_config(**change)


@pytest.mark.parametrize(("data", "message"), [
    ({"weighting": "mean", "beta_max": 1.0, "beta_warmup_epochs": 0}, "weighting"),
    ({"weighting": "equal", "beta_max": -1.0, "beta_warmup_epochs": 0}, "beta_max"),
    ({"weighting": "equal", "beta_max": 1.0, "beta_warmup_epochs": 0, "free_bits": -0.1},
     "free_bits"),
])
def test_bad_loss_options_are_named(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(VAELossConfig, data)


# --- groups ------------------------------------------------------------------------------


@pytest.mark.parametrize(("rotation", "rot", "feat"), [(1, (4, 5), (5, 8)), (2, (4, 6), (6, 9))])
def test_groups_tile_the_channels_in_order(rotation, rot, feat):
    g = groups(rotation)
    assert list(g) == ["xy", "scale", "rot", "feat"]
    assert (g["xy"].start, g["xy"].stop) == (0, 2)
    assert (g["scale"].start, g["scale"].stop) == (2, 4)
    assert (g["rot"].start, g["rot"].stop) == rot
    assert (g["feat"].start, g["feat"].stop) == feat
    assert len(torch.zeros(7 + rotation)[g["feat"]]) == 3


def test_groups_reject_other_rotation_encodings():
    with pytest.raises(ValueError, match="rotation_channels"):
        groups(3)


# --- model -------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["conv1d", "resnet"])
@pytest.mark.parametrize("length", [64, 512])
@pytest.mark.parametrize("channels", [8, 9])
def test_shapes(arch, length, channels):
    torch.manual_seed(0)
    model = SplatVAE(model_config(arch, latent_dim=6), channels=channels, length=length)
    out = model(splats(2, length, channels))
    assert out.recon.shape == (2, length, channels)
    assert out.mu.shape == out.logvar.shape == (2, 6)


@pytest.mark.parametrize("length", [60, 4])
def test_length_must_halve_once_per_stage(length):
    with pytest.raises(ValueError, match=rf"length: got {length} .* multiple of 8"):
        SplatVAE(model_config(), channels=8, length=length)


def test_input_of_the_wrong_shape_is_named():
    model = SplatVAE(model_config(), channels=8, length=64)
    with pytest.raises(ValueError, match=r"x: got shape \(2, 8, 64\)"):
        model(torch.zeros(2, 8, 64))


def test_resnet_has_about_three_times_the_parameters():
    counts = {arch: count_parameters(SplatVAE(VAEModelConfig(arch=arch, latent_dim=8),
                                              channels=8, length=64))
              for arch in ("conv1d", "resnet")}
    assert 2 <= counts["resnet"] / counts["conv1d"] <= 4, counts


def test_count_parameters_counts_weights_and_biases():
    assert count_parameters(nn.Linear(3, 5)) == 20
    frozen = nn.Linear(3, 5).requires_grad_(False)
    assert count_parameters(frozen) == 0


def test_eval_mode_is_deterministic_and_train_mode_samples():
    torch.manual_seed(0)
    model = SplatVAE(model_config(), channels=8, length=64)
    x = splats()
    model.eval()
    first, second = model(x), model(x)
    assert torch.equal(first.recon, second.recon)
    assert torch.equal(first.recon, model.decoder(first.mu).transpose(1, 2)), "z = mu in eval"
    model.train()
    assert not torch.equal(model(x).recon, model(x).recon), "reparameterised in training"


def test_a_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = SplatVAE(model_config(), channels=8, length=64)
    batch = {"x": splats(8)}
    loss = loss_config(beta_max=0.1)

    def evaluate():
        model.eval()
        with torch.no_grad():
            value = vae_metrics(model, batch, beta=0.1, loss=loss, groups=groups(1))
        model.train()
        return value["total_loss"].item()

    before = evaluate()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(15):
        optimizer.zero_grad()
        vae_metrics(model, batch, beta=0.1, loss=loss, groups=groups(1))["total_loss"].backward()
        optimizer.step()
    assert evaluate() < 0.95 * before  # noise: the floor is predicting the mean, ~G*C


# --- losses ------------------------------------------------------------------------------


@pytest.mark.parametrize(("rotation", "group", "n"), [
    (1, "xy", 2), (1, "scale", 2), (1, "rot", 1), (2, "rot", 2), (1, "feat", 3),
])
def test_per_group_weighting_divides_by_the_group_width(rotation, group, n):
    b, g, c = 3, 4, 7 + rotation
    split = groups(rotation)
    x = torch.zeros(b, g, c)
    recon = torch.zeros(b, g, c)
    recon[..., split[group]] = 2.0  # squared error 4 per element of the group, 0 elsewhere
    model = Fixed(recon, *zero_latent(b))
    total = {w: vae_metrics(model, {"x": x}, beta=1.0, loss=loss_config(weighting=w),
                            groups=split)
             for w in ("equal", "per_group")}
    summed = 4.0 * g * n  # summed over the group's channels and G, per image
    assert total["equal"]["total_loss"].item() == pytest.approx(summed)
    assert total["per_group"]["total_loss"].item() == pytest.approx(summed / n)
    for m in total.values():
        assert m[f"rec_{group}"].item() == pytest.approx(4.0), "per element"
        others = [k for k in split if k != group]
        assert all(m[f"rec_{k}"].item() == 0 for k in others)


def test_equal_weighting_sums_over_all_channels():
    x, recon = splats(seed=1), splats(seed=2)
    m = vae_metrics(Fixed(recon, *zero_latent(4)), {"x": x}, beta=0.0,
                    loss=loss_config(), groups=groups(1))
    assert m["rec_loss"].item() == pytest.approx((recon - x).pow(2).sum((1, 2)).mean().item())


@pytest.mark.parametrize("weighting", ["equal", "per_group"])
def test_mean_reduction_divides_the_reconstruction_by_the_numbers_per_image(weighting):
    x, recon = splats(g=16, seed=1), splats(g=16, seed=2)
    mu, logvar = torch.ones(4, 3), torch.zeros(4, 3)
    summed, mean = (vae_metrics(Fixed(recon, mu, logvar), {"x": x}, beta=1.0, groups=groups(1),
                                loss=loss_config(weighting=weighting, reduction=r)) for r in ("sum", "mean"))
    assert mean["rec_loss"].item() == pytest.approx(summed["rec_loss"].item() / (16 * 8))
    assert mean["kl"].item() == summed["kl"].item() == pytest.approx(1.5), "the KL is not rescaled"
    assert mean["rec_rot"].item() == summed["rec_rot"].item(), "per-element group errors do not change"


def test_kl_is_summed_over_dimensions_and_averaged_over_the_batch():
    mu = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, math.log(2.0)]])
    # per element (mu^2 + var - 1 - log var) / 2
    dim0 = (0.5 * 1 + 0.5 * 9) / 2  # 2.5
    dim1 = (0.5 * (4 + 1 - math.log(2)) + 0.5 * (1 - math.log(2))) / 2
    assert kl_per_dim(mu, logvar).tolist() == pytest.approx([dim0, dim1])
    x = torch.zeros(2, 64, 8)
    m = vae_metrics(Fixed(x.clone(), mu, logvar), {"x": x}, beta=0.5, loss=loss_config(),
                    groups=groups(1))
    assert m["rec_loss"].item() == 0
    assert m["kl"].item() == pytest.approx(dim0 + dim1)
    assert m["total_loss"].item() == pytest.approx(0.5 * (dim0 + dim1))
    assert m["beta"].item() == 0.5


def test_free_bits_clamp_each_dimension_in_the_objective_only():
    mu = torch.tensor([[1.0, 2.0], [3.0, 0.0]])  # batch-mean KL per dimension: 2.5, 1.0
    x = torch.zeros(2, 64, 8)
    model = Fixed(x.clone(), mu, torch.zeros(2, 2))
    m = vae_metrics(model, {"x": x}, beta=2.0, loss=loss_config(free_bits=1.5), groups=groups(1))
    assert m["kl"].item() == pytest.approx(3.5), "reported KL is not clamped"
    assert m["total_loss"].item() == pytest.approx(2.0 * (2.5 + 1.5))


def test_free_bits_stop_the_gradient_of_a_dimension_below_the_floor():
    mu = torch.tensor([[1.0, 0.1], [1.0, 0.1]], requires_grad=True)  # KL 0.5 and 0.005
    x = torch.zeros(2, 64, 8)
    m = vae_metrics(Fixed(x.clone(), mu, torch.zeros(2, 2)), {"x": x}, beta=1.0,
                    loss=loss_config(free_bits=0.1), groups=groups(1))
    m["total_loss"].backward()
    assert mu.grad[:, 0].abs().sum() > 0 and mu.grad[:, 1].abs().sum() == 0


def test_spreads_are_over_the_batch_with_ddof_0():
    x = torch.zeros(2, 4, 8)
    x[0, :, 0:2], x[1, :, 0:2] = 1.0, -1.0  # xy: std 1 at every position and channel
    recon = torch.full((2, 4, 8), 0.3)  # constant over the batch: std 0
    m = vae_metrics(Fixed(recon, *zero_latent(2)), {"x": x}, beta=1.0, loss=loss_config(),
                    groups=groups(1))
    assert m["std_data_xy"].item() == pytest.approx(1.0)
    assert m["std_data_feat"].item() == 0 and m["std_pred_xy"].item() == 0
    single = vae_metrics(Fixed(recon[:1], *zero_latent(1)), {"x": x[:1]}, beta=1.0,
                         loss=loss_config(), groups=groups(1))
    assert all(torch.isfinite(v) for v in single.values()), "a batch of one is finite"
    assert all(v.dim() == 0 for v in single.values())


def test_groups_that_do_not_cover_the_channels_are_rejected():
    x = torch.zeros(2, 64, 9)
    with pytest.raises(ValueError, match="groups"):
        vae_metrics(Fixed(x, *zero_latent(2)), {"x": x}, beta=1.0, loss=loss_config(),
                    groups=groups(1))


# --- beta schedule -----------------------------------------------------------------------


def test_linear_warmup():
    loss = loss_config(beta_max=2.0, beta_warmup_epochs=10)
    assert beta_at(1, loss, epochs=50) == 0
    assert beta_at(6, loss, epochs=50) == pytest.approx(1.0)
    assert beta_at(11, loss, epochs=50) == 2.0
    assert beta_at(40, loss, epochs=50) == 2.0
    assert beta_at(1, loss_config(beta_max=2.0, beta_warmup_epochs=0), epochs=50) == 2.0


def test_cyclical_rises_over_half_of_each_cycle():
    loss = loss_config(beta_max=2.0, beta_schedule="cyclical", beta_cycles=2)
    values = [beta_at(e, loss, epochs=8) for e in range(1, 9)]
    assert values == pytest.approx([0, 1, 2, 2, 0, 1, 2, 2])


def test_cyclical_cycles_need_not_be_whole_epochs():
    loss = loss_config(beta_max=1.0, beta_schedule="cyclical", beta_cycles=3)
    values = [beta_at(e, loss, epochs=10) for e in range(1, 11)]
    starts = [e for e, v in enumerate(values, 1) if v < 0.5]
    assert len([e for e in starts if e - 1 not in starts]) == 3, values
    assert max(values) == 1.0 and min(values) == 0


def test_beta_rejects_bad_epochs():
    with pytest.raises(ValueError, match="epoch"):
        beta_at(0, loss_config(), epochs=10)
    with pytest.raises(ValueError, match="beta_cycles"):
        beta_at(1, loss_config(beta_schedule="cyclical", beta_cycles=4), epochs=3)


# --- active units ------------------------------------------------------------------------


def test_active_units_count_dimensions_whose_mean_varies():
    mu = torch.zeros(100, 5)
    mu[:, 0] = torch.linspace(-1, 1, 100)  # variance ~0.34: active
    mu[:, 1] = 7.0  # constant: inactive however large
    mu[:, 2] = torch.linspace(-0.1, 0.1, 100)  # variance ~0.0034: below 0.01
    mu[:50, 3], mu[50:, 3] = 0.2, -0.2  # variance 0.04 with ddof 0 (0.0404 with ddof 1)
    mu[:, 4] = torch.linspace(-0.3, 0.3, 100)  # variance ~0.031: active
    assert active_units(mu) == 3
    assert active_units(mu, threshold=0.001) == 4
    assert active_units(mu, threshold=0.035) == 2


def test_active_units_need_a_matrix():
    with pytest.raises(ValueError, match="mu"):
        active_units(torch.zeros(5))
