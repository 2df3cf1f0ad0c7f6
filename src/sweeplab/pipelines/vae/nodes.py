"""Splat VAE nodes: the family's config, one variant's training setup, and the figure of
true against reconstructed images."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

import matplotlib.figure
import numpy as np
import torch

from sweeplab.config import from_dict
from sweeplab.families import Training
from sweeplab.figures import no_weights, run_title
from sweeplab.pipelines.splats import render
from sweeplab.pipelines.splats.nodes import CHANNELS, N_FIGURE_IMAGES, ROTATION
from sweeplab.pipelines.vae.model import (
    SplatVAE,
    VAELossConfig,
    VAEModelConfig,
    active_units,
    beta_at,
    groups,
    vae_metrics,
)
from sweeplab.training import TrainerConfig


@dataclass(frozen=True)
class VAEConfig:
    rotation_encoding: Literal["angle", "doubled_angle"]  # angle: 1 channel; doubled_angle: cos 2t, sin 2t
    model: VAEModelConfig
    loss: VAELossConfig
    trainer: TrainerConfig


def channel_columns(encoding: str) -> list[int]:
    """The columns of the model inputs' ``CHANNELS`` a variant reads, in group order."""
    names = ["x", "y", "scale_x", "scale_y", *ROTATION[encoding], "f1", "f2", "f3"]
    return [CHANNELS.index(name) for name in names]


class KLWeight:
    """The beta in force: set by the loop before each epoch, read by every batch."""

    def __init__(self, loss: VAELossConfig, epochs: int):
        self.loss, self.epochs, self.value = loss, epochs, 0.0

    def set_epoch(self, epoch: int) -> None:
        self.value = beta_at(epoch, self.loss, epochs=self.epochs)


def scheduled_metrics(model: SplatVAE, batch: dict[str, torch.Tensor], *, weight: KLWeight,
                      slices: dict[str, slice]) -> dict[str, torch.Tensor]:
    """``vae_metrics`` at the beta in force, plus ``objective``: reconstruction + beta_max * KL,
    the loss the run is heading for. It picks the best epoch: the total under a warming-up
    beta would favour the first epochs, before the KL weighed anything."""
    metrics = vae_metrics(model, batch, beta=weight.value, loss=weight.loss, groups=slices)
    metrics["objective"] = (metrics["rec_loss"] + weight.loss.beta_max * metrics["kl"]).detach()
    return metrics


@torch.no_grad()
def split_metrics(model: SplatVAE, data: dict[str, torch.Tensor], *, slices: dict[str, slice], batch_size: int
                  ) -> dict[str, float]:
    """Over the whole split: active units (posterior means that vary by more than 0.01) and,
    per group, the spread of the reconstructions over the data's (1 = as varied as the data)."""
    mus, recons = [], []
    for start in range(0, len(data["x"]), batch_size):
        out = model(data["x"][start : start + batch_size])
        mus.append(out.mu)
        recons.append(out.recon)
    mu, recon, x = torch.cat(mus), torch.cat(recons), data["x"]
    metrics = {"active_units": float(active_units(mu))}
    for name, s in slices.items():
        metrics[f"std_ratio_{name}"] = float(recon[..., s].std(0).mean() / x[..., s].std(0).mean())
    return metrics


def vae_training(cfg: VAEConfig, vae_inputs: dict[str, Any]) -> Training:
    """One variant's setup for the shared training node (``sweeplab.families.train_variant``)."""
    columns = channel_columns(cfg.rotation_encoding)
    train_data, val_data = ({"x": vae_inputs[split]["x"][..., columns]} for split in ("train", "val"))
    slices = groups(len(ROTATION[cfg.rotation_encoding]))
    weight = KLWeight(cfg.loss, cfg.trainer.epochs)
    _, length, channels = train_data["x"].shape
    return Training(
        build_model=functools.partial(SplatVAE, cfg.model, channels=channels, length=length),
        batch_metrics=functools.partial(scheduled_metrics, weight=weight, slices=slices),
        train_data=train_data,
        val_data=val_data,
        split_metrics=functools.partial(split_metrics, slices=slices, batch_size=cfg.trainer.eval_batch_size),
        on_epoch=weight.set_epoch,
    )


# ----------------------------------------------------------------------------------------------
# the figure


def to_splats(x: np.ndarray, normaliser: dict[str, Any], encoding: str) -> np.ndarray:
    """Standardised model channels (N, G, C) -> splats in the file's units (N, G, 8)."""
    columns = channel_columns(encoding)
    mean, std = np.asarray(normaliser["mean"])[columns], np.asarray(normaliser["std"])[columns]
    values = x * std + mean
    named = dict(zip([CHANNELS[c] for c in columns], np.moveaxis(values, -1, 0), strict=True))
    if encoding == "doubled_angle":
        named["rotation"] = np.arctan2(named["rotation_sin2"], named["rotation_cos2"]) / 2
    return np.stack([named[c] for c in render.COLUMNS], axis=-1).astype(np.float32)


def plot_reconstruction(weights: dict[str, torch.Tensor], config: dict[str, Any], summary: dict[str, Any],
                        vae_inputs: dict[str, Any], normaliser: dict[str, Any]) -> matplotlib.figure.Figure:
    """Node: ``recon.png``: validation images as photographed (when the data has them), as
    their splats render, and as the VAE reconstructs the splats."""
    if not weights:
        return no_weights(config, summary)
    cfg = from_dict(VAEConfig, config["config"], where="vae")
    photos = vae_inputs.get("val_images", {}).get("images")  # the first validation images, when the data has them
    n_shown = len(photos) if photos is not None else N_FIGURE_IMAGES
    x = vae_inputs["val"]["x"][:n_shown, :, channel_columns(cfg.rotation_encoding)]
    model = SplatVAE(cfg.model, channels=x.shape[2], length=x.shape[1])
    model.load_state_dict(weights)
    model.eval()
    with torch.no_grad():
        recon = model(torch.as_tensor(x)).recon.numpy()
    size = photos.shape[1] if photos is not None else 32
    rows = {"splats": to_splats(x, normaliser, cfg.rotation_encoding),
            "reconstruction": to_splats(recon, normaliser, cfg.rotation_encoding)}
    pictures = {"photograph": photos} if photos is not None else {}
    with torch.no_grad():
        pictures |= {name: render.render(torch.as_tensor(s), size, size).numpy() for name, s in rows.items()}
    n = len(x)
    fig = matplotlib.figure.Figure(figsize=(1.4 * n, 1.5 * len(pictures) + 0.4))
    axes = fig.subplots(len(pictures), n, squeeze=False)
    for r, (name, images) in enumerate(pictures.items()):
        for c in range(n):
            axes[r, c].imshow(np.clip(images[c], 0, 1))
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(f"{run_title(config)}: validation images, best epoch {summary['best_epoch']}", fontsize=9)
    return fig
