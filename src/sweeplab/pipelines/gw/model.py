"""The global workspace. Reads bottom-up: domain encoders and decoders, fusion, the
synergy head and the read-out probes, then the losses.

Shapes: B samples, A = 11 attribute columns, V visual columns, D = ``workspace_dim``.
Single-domain workspace states are ``tanh(e_x(x))``; the fused state is
``tanh(w_attr e_attr(attr) + w_v e_v(v))``, bounded like them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.config import NonNegativeFloat, PositiveFloat, PositiveInt

N_CLASSES = 8


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_hidden), nn.GELU(),
                         nn.Linear(d_hidden, d_out))


@dataclass(frozen=True)
class GWModelConfig:
    workspace_dim: PositiveInt
    hidden_dim: PositiveInt
    fusion_attr: NonNegativeFloat  # weight of the attribute domain in the fused state
    fusion_v: NonNegativeFloat
    synergy_hidden: PositiveInt


class GlobalWorkspace(nn.Module):
    """Encoders into and decoders out of a workspace of ``workspace_dim``, for two domains,
    with a synergy classifier on the fused state and linear probes that read features from
    it without shaping it (their input is detached)."""

    def __init__(self, config: GWModelConfig, attr_dim: int, v_dim: int, n_probe: int):
        super().__init__()
        if config.workspace_dim < 1:
            raise ValueError(f"model.workspace_dim must be at least 1, got {config.workspace_dim}")
        d, h = config.workspace_dim, config.hidden_dim
        self.encoders = nn.ModuleDict({"attr": mlp(attr_dim, h, d), "v": mlp(v_dim, h, d)})
        self.decoders = nn.ModuleDict({"attr": mlp(d, h, attr_dim), "v": mlp(d, h, v_dim)})
        self.fusion = {"attr": config.fusion_attr, "v": config.fusion_v}
        self.synergy_head = mlp(d, config.synergy_hidden, N_CLASSES)
        self.probe = nn.Linear(d, n_probe)

    def encode(self, domain: str, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoders[domain](x))  # (B, D)

    def fuse(self, pre_attr: torch.Tensor, pre_v: torch.Tensor) -> torch.Tensor:
        """The fused state from the encoders' pre-activations: bounded like a single state."""
        return torch.tanh(self.fusion["attr"] * pre_attr + self.fusion["v"] * pre_v)  # (B, D)


@dataclass(frozen=True)
class LossWeights:
    """Weight of each workspace loss; 0 switches it off (and skips computing it)."""

    demi_cycle: NonNegativeFloat
    cycle: NonNegativeFloat
    translation: NonNegativeFloat
    contrastive: NonNegativeFloat
    temperature: PositiveFloat  # of the contrastive (InfoNCE) loss


def contrastive(za: torch.Tensor, zv: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: each sample's two states should match each other, not the batch."""
    logits = F.normalize(za, dim=1) @ F.normalize(zv, dim=1).T / temperature  # (B, B)
    labels = torch.arange(len(za), device=za.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def r2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over columns of 1 - SSE / SST."""
    sse = ((pred - target) ** 2).sum(0)
    sst = ((target - target.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return (1 - sse / sst).mean()


def workspace_metrics(model: GlobalWorkspace, batch: dict[str, torch.Tensor], *, weights: LossWeights,
                      synergy_scale: float, synergy_column: int, unique: list[int],
                      redundant: list[int]) -> dict[str, torch.Tensor]:
    """Named losses and metrics for one batch. ``gw_loss`` is the workspace objective (with
    the synergy prior); ``total_loss`` adds the probes' own loss, which reaches only them."""
    attr, v, target, probe_target = batch["attr"], batch["v"], batch["synergy"], batch["probe_target"]
    n = len(attr)
    pre_attr, pre_v = model.encoders["attr"](attr), model.encoders["v"](v)
    za, zv, z = torch.tanh(pre_attr), torch.tanh(pre_v), model.fuse(pre_attr, pre_v)  # (B, D) each
    # each decoder runs once over every state it reads, stacked: (3B, A) and (2B, V)
    to_attr = model.decoders["attr"](torch.cat([za, zv, z]))
    to_v = model.decoders["v"](torch.cat([za, zv]))
    attr_from_attr, attr_from_v, fused_attr = to_attr[:n], to_attr[n : 2 * n], to_attr[2 * n :]
    v_from_attr, v_from_v = to_v[:n], to_v[n:]
    zero = attr.new_zeros(())
    losses = {}
    if weights.demi_cycle:
        losses["demi_cycle"] = F.mse_loss(attr_from_attr, attr) + F.mse_loss(v_from_v, v)
    if weights.translation:
        losses["translation"] = F.mse_loss(v_from_attr, v) + F.mse_loss(attr_from_v, attr)
    if weights.cycle:  # attr -> v -> attr and v -> attr -> v through the workspace
        back_attr = model.decoders["attr"](model.encode("v", v_from_attr))
        back_v = model.decoders["v"](model.encode("attr", attr_from_v))
        losses["cycle"] = F.mse_loss(back_attr, attr) + F.mse_loss(back_v, v)
    if weights.contrastive:
        losses["contrastive"] = contrastive(za, zv, weights.temperature)
    logits = model.synergy_head(z)
    synergy_ce = F.cross_entropy(logits, target)
    gw_loss = sum((getattr(weights, k) * value for k, value in losses.items()), zero) + synergy_scale * synergy_ce
    probe = model.probe(z.detach())
    probe_loss = F.mse_loss(probe, probe_target)
    others = [i for i in range(attr.shape[1]) if i != synergy_column]
    return {
        "total_loss": gw_loss + probe_loss,
        "gw_loss": gw_loss,
        **losses,
        "synergy_ce": synergy_ce,
        "synergy_acc": (logits.argmax(1) == target).float().mean(),
        "synergy_norm_ce": 1 - synergy_ce / math.log(N_CLASSES),
        "rec_synergy": F.mse_loss(fused_attr[:, synergy_column], attr[:, synergy_column]),
        "rec_other": F.mse_loss(fused_attr[:, others], attr[:, others]),
        "r2_unique": r2(probe[:, unique], probe_target[:, unique]),
        "r2_redundant": r2(probe[:, redundant], probe_target[:, redundant]),
    }
