"""The splat VAE. Reads bottom-up: channel groups, layers and residual blocks, the configs,
the encoder and decoder, the VAE, then its schedule, losses and diagnostics.

An image is G Gaussian splats x C channels, each channel standardised. The channels come in
parameter groups, in this order: xy (2), scale (2), rot (1 as an angle, or 2 as cos/sin of
the doubled angle) and feat (3 colour channels), so C is 8 or 9. The convolutions run along
the Gaussian axis.

Shapes: B images, G Gaussians (a multiple of 2**S for S stages), C channels, F filters,
D latent dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from sweeplab.config import ConfigError, NonNegativeFloat, NonNegativeInt, PositiveInt

GROUP_NAMES = ("xy", "scale", "rot", "feat")


def groups(rotation_channels: int) -> dict[str, slice]:
    """The channel slices of each parameter group: xy, scale, rot, feat, in channel order.

    ``rotation_channels`` is 1 for a rotation stored as an angle, 2 for cos/sin of the
    doubled angle (which has no seam, and a splat rotated by pi is the same splat).
    """
    if rotation_channels not in (1, 2):
        raise ValueError(f"rotation_channels: got {rotation_channels!r}; expected 1 or 2")
    rot_end = 4 + rotation_channels
    return {"xy": slice(0, 2), "scale": slice(2, 4), "rot": slice(4, rot_end),
            "feat": slice(rot_end, rot_end + 3)}


def _width(s: slice) -> int:
    return s.stop - s.start


def _activation(kind: str) -> nn.Module:
    return nn.SiLU() if kind == "silu" else nn.GELU()


def _norm(channels: int, kind: str) -> nn.Module:
    # groups of up to 8 channels; gcd keeps the group count a divisor of any width
    return nn.GroupNorm(math.gcd(8, channels), channels) if kind == "group" else nn.Identity()


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)  # odd kernel: "same"


class ResBlock(nn.Module):
    """(B, F, G) -> (B, F, G): two convolutions and a skip, x + conv(act(conv(x)))."""

    def __init__(self, channels: int, kernel: int, *, norm: str, activation: str):
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, kernel), _norm(channels, norm), _activation(activation),
            _conv(channels, channels, kernel), _norm(channels, norm),
        )
        self.act = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


def down(c_in: int, c_out: int, kernel: int, *, norm: str, activation: str) -> nn.Sequential:
    """(B, c_in, G) -> (B, c_out, G / 2): a stride-2 convolution."""
    return nn.Sequential(_conv(c_in, c_out, kernel, stride=2), _norm(c_out, norm),
                         _activation(activation))


def up(c_in: int, c_out: int, kernel: int, *, norm: str, activation: str) -> nn.Sequential:
    """(B, c_in, G) -> (B, c_out, 2G): nearest upsampling then a convolution.

    Preferred to a stride-2 transposed convolution, whose uneven overlaps print a
    period-2 pattern along the Gaussian axis; the parameter count is the same.
    """
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(c_in, c_out, kernel),
                         _norm(c_out, norm), _activation(activation))


@dataclass(frozen=True)
class VAEModelConfig:
    arch: Literal["conv1d", "resnet"]  # resnet: each stage adds a residual block (~3x the convs)
    latent_dim: PositiveInt
    encoder_filters: tuple[PositiveInt, ...] = (32, 64, 128)  # one stride-2 stage each
    decoder_filters: tuple[PositiveInt, ...] = (64, 32, 16)  # one upsampling stage each
    kernel_size: PositiveInt = 5  # odd, so that a convolution keeps its length
    activation: Literal["silu", "gelu"] = "silu"
    norm: Literal["group", "none"] = "group"  # GroupNorm after every convolution

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size: got {self.kernel_size}; expected an odd number")
        if not self.encoder_filters:
            raise ConfigError("encoder_filters: got an empty list; expected at least one stage")
        if len(self.decoder_filters) != len(self.encoder_filters):
            raise ConfigError(
                f"decoder_filters: got {len(self.decoder_filters)} stages; expected as many as "
                f"encoder_filters ({len(self.encoder_filters)}), so that the decoder restores G"
            )

    @property
    def stages(self) -> int:
        return len(self.encoder_filters)


@dataclass(frozen=True)
class VAELossConfig:
    weighting: Literal["equal", "per_group"]  # per_group: each group's error / its channels
    beta_max: NonNegativeFloat
    beta_warmup_epochs: NonNegativeInt  # linear only
    beta_schedule: Literal["linear", "cyclical"] = "linear"
    beta_cycles: PositiveInt = 4  # cyclical only
    free_bits: NonNegativeFloat = 0.0  # nats per latent dimension; 0 = off
    # sum: the squared error summed over an image's G x C numbers (the ELBO of a fixed-variance
    # Gaussian decoder); mean: averaged over them instead, which against a KL summed over the
    # latent weighs the KL G x C times more (4,096 at G = 512)
    reduction: Literal["sum", "mean"] = "sum"


class VAEOutput(NamedTuple):
    recon: torch.Tensor  # (B, G, C) reconstruction
    mu: torch.Tensor  # (B, D) posterior mean
    logvar: torch.Tensor  # (B, D) posterior log variance


class Encoder(nn.Module):
    """(B, C, G) -> mu, logvar (B, D): strided stages, flatten, two linear heads."""

    def __init__(self, cfg: VAEModelConfig, channels: int, length: int):
        super().__init__()
        widths = (channels, *cfg.encoder_filters)
        layer = {"norm": cfg.norm, "activation": cfg.activation}
        stages = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            stage = [down(c_in, c_out, cfg.kernel_size, **layer)]
            if cfg.arch == "resnet":
                stage.append(ResBlock(c_out, cfg.kernel_size, **layer))
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        flat = widths[-1] * (length >> cfg.stages)
        self.mu = nn.Linear(flat, cfg.latent_dim)
        self.logvar = nn.Linear(flat, cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.stages(x).flatten(1)  # (B, F_last * G / 2**S)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """(B, D) -> (B, C, G): a linear map to (F_0, G / 2**S), upsampling stages, a 1x1 head."""

    def __init__(self, cfg: VAEModelConfig, channels: int, length: int):
        super().__init__()
        filters = cfg.decoder_filters
        self.start = (filters[0], length >> cfg.stages)
        self.project = nn.Linear(cfg.latent_dim, filters[0] * self.start[1])
        layer = {"norm": cfg.norm, "activation": cfg.activation}
        stages = []
        for c_in, c_out in zip((filters[0], *filters[:-1]), filters, strict=True):
            stage = [up(c_in, c_out, cfg.kernel_size, **layer)]
            if cfg.arch == "resnet":
                stage.append(ResBlock(c_out, cfg.kernel_size, **layer))
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Conv1d(filters[-1], channels, 1)  # linear read-out: standardised values

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(len(z), *self.start)  # (B, F_0, G / 2**S)
        return self.head(self.stages(h))  # (B, C, G)


class SplatVAE(nn.Module):
    """Conv1d VAE along the Gaussian axis: (B, G, C) -> VAEOutput(recon, mu, logvar).

    In train mode z = mu + exp(logvar / 2) * eps with eps drawn from torch's global random
    stream (the trainer seeds it and saves it in checkpoints); in eval mode z = mu.
    """

    def __init__(self, cfg: VAEModelConfig, *, channels: int, length: int):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels: got {channels}; expected at least 1")
        factor = 2**cfg.stages
        if length < factor or length % factor:
            raise ValueError(
                f"length: got {length} Gaussians; expected a multiple of {factor} "
                f"(2**{cfg.stages}, one halving per encoder stage)"
            )
        self.channels, self.length = channels, length
        self.encoder = Encoder(cfg, channels, length)
        self.decoder = Decoder(cfg, channels, length)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.length, self.channels):
            raise ValueError(
                f"x: got shape {tuple(x.shape)}; expected (B, {self.length}, {self.channels})"
            )
        mu, logvar = self.encoder(x.transpose(1, 2))  # (B, D) each
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        recon = self.decoder(z).transpose(1, 2)  # (B, G, C)
        return VAEOutput(recon, mu, logvar)


def beta_at(epoch: int, loss: VAELossConfig, *, epochs: int) -> float:
    """The KL weight for ``epoch`` (counted from 1) of a run of ``epochs``.

    linear: beta = beta_max * min(1, (epoch - 1) / beta_warmup_epochs), so 0 at epoch 1 and
    beta_max from epoch beta_warmup_epochs + 1 on; beta_max throughout when the warm-up is 0.

    cyclical (Fu et al. 2019, with half of each cycle rising): the run is cut into
    ``beta_cycles`` cycles of T = epochs / beta_cycles epochs (T need not be whole); with
    tau = ((epoch - 1) mod T) / T in [0, 1), beta = beta_max * min(1, 2 * tau), rising from
    0 over the first half of each cycle and held at beta_max in the second.
    ``beta_warmup_epochs`` is not used.
    """
    if epoch < 1:
        raise ValueError(f"epoch: got {epoch}; expected an epoch counted from 1")
    if epochs < 1:
        raise ValueError(f"epochs: got {epochs}; expected at least 1")
    if loss.beta_schedule == "linear":
        if loss.beta_warmup_epochs == 0:
            return loss.beta_max
        return loss.beta_max * min(1.0, (epoch - 1) / loss.beta_warmup_epochs)
    if loss.beta_cycles > epochs:
        raise ValueError(
            f"beta_cycles: got {loss.beta_cycles}; expected at most epochs ({epochs}), "
            "so that each cycle lasts at least one epoch"
        )
    period = epochs / loss.beta_cycles
    tau = ((epoch - 1) % period) / period
    return loss.beta_max * min(1.0, 2 * tau)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B, D), (B, D) -> (D,): KL(N(mu, exp(logvar)) || N(0, 1)) per dimension, batch mean.

    KL = (mu^2 + exp(logvar) - 1 - logvar) / 2 in nats.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(0)


def vae_metrics(
    model: nn.Module, batch: dict[str, torch.Tensor], *, beta: float, loss: VAELossConfig,
    groups: dict[str, slice],
) -> dict[str, torch.Tensor]:
    """Named losses for one batch ``{"x": (B, G, C)}``; ``total_loss`` is what is minimised.

    Reductions, written out so that beta means the same thing at any G, C or D:

    - rec_g = sum over the group's channels and the G Gaussians of the squared error,
      averaged over the batch;
    - rec_loss = sum_g rec_g ("equal": the same as summing over all channels) or
      sum_g rec_g / n_channels(g) ("per_group": each group weighs as one channel), divided
      by G x C when ``loss.reduction`` is "mean";
    - kl = sum over dimensions of the batch-mean KL (:func:`kl_per_dim`); the optimised
      term clamps each dimension's batch-mean KL below at ``free_bits`` first (when > 0);
    - total_loss = rec_loss + beta * (kl, free bits applied).

    Reported per group g, as 0-dim tensors: ``rec_<g>`` = rec_g / (G * n_channels(g)), the
    mean squared error per element (1.0 = predicting the mean of standardised data), and
    ``std_pred_<g>`` / ``std_data_<g>``: the standard deviation over the batch (ddof 0, so
    a batch of one gives 0, not NaN) of the reconstruction / the input, per channel and
    Gaussian, then averaged. A reconstruction far less spread than the data is collapsing
    to the mean.
    """
    x = batch["x"]
    covered = sorted((s.start, s.stop) for s in groups.values())
    if covered[0][0] != 0 or covered[-1][1] != x.shape[-1] or any(
        a[1] != b[0] for a, b in zip(covered[:-1], covered[1:], strict=True)
    ):
        raise ValueError(f"groups: {groups} do not tile the {x.shape[-1]} channels of x")
    out = model(x)
    error = (out.recon - x).pow(2)  # (B, G, C)
    rec_groups = {name: error[..., s].sum((1, 2)).mean() for name, s in groups.items()}
    if loss.weighting == "equal":
        rec = sum(rec_groups.values())
    else:
        rec = sum(r / _width(groups[name]) for name, r in rec_groups.items())
    if loss.reduction == "mean":
        rec = rec / (x.shape[1] * x.shape[2])
    kl_dims = kl_per_dim(out.mu, out.logvar)  # (D,)
    kl = kl_dims.sum()
    kl_objective = kl_dims.clamp_min(loss.free_bits).sum() if loss.free_bits > 0 else kl
    metrics = {
        "total_loss": rec + beta * kl_objective,
        "rec_loss": rec,
        "kl": kl,
        "beta": x.new_full((), beta),  # filled on the device: no copy from the host per step
    }
    length = x.shape[1]
    for name, s in groups.items():
        metrics[f"rec_{name}"] = rec_groups[name].detach() / (length * _width(s))
    with torch.no_grad():
        for name, s in groups.items():
            metrics[f"std_pred_{name}"] = out.recon[..., s].std(0, correction=0).mean()
            metrics[f"std_data_{name}"] = x[..., s].std(0, correction=0).mean()
    return metrics


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions in use (Burda et al. 2015): Var over samples of mu_d > threshold.

    ``mu`` is (N, D), the posterior means of N samples; the variance is the population one
    (ddof 0, numpy's default, not torch's).
    """
    if mu.dim() != 2:
        raise ValueError(f"mu: got shape {tuple(mu.shape)}; expected (samples, latent_dim)")
    return int((mu.var(0, correction=0) > threshold).sum())


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters (weights and biases) in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
