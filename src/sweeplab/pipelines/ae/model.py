"""The event autoencoder. Reads bottom-up: token embedding, set encoder, latent spaces
(identity, linear, vector-quantised), decoders, then the autoencoder and its losses.

Shapes: B events, N = 18 object slots, F = 4 token features, V = 4 transverse-plane
inputs, D hidden, L latent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.config import PositiveInt, Range
from sweeplab.training.distributed import all_reduce_sum, broadcast

N_TYPES = 8  # object type ids 0..7, 0 = padding
N_TRANSVERSE = 4  # per object: cos phi, sin phi, px and py in units of a typical pT


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, N, D), (B, N) -> (B, D): mean over real tokens (an event with none gives zeros)."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def slot_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, N, D), (B, N) -> (B, D): the sum over real tokens divided by the slot count N.

    Unlike :func:`masked_mean` it keeps how many objects there are, so a linear read-out
    can form vector sums over objects, which is what momentum balance asks for.
    """
    return (x * mask.unsqueeze(-1).to(x.dtype)).sum(1) / mask.shape[1]


class SetEncoder(nn.Module):
    """Tokens (inputs + type embedding) -> per-token states that also see the whole event.

    A permutation-equivariant block: each token is updated from itself and from the masked
    mean of all real tokens, so padding never leaks into real tokens. It ends without a
    LayerNorm: normalising over channels would divide out each token's scale, which carries
    the momentum that the MET head has to add up.
    """

    def __init__(self, n_inputs: int, d_hidden: int):
        super().__init__()
        self.features = nn.Linear(n_inputs, d_hidden)
        self.types = nn.Embedding(N_TYPES, d_hidden)
        self.local = mlp(d_hidden, 2 * d_hidden, d_hidden)
        self.mix = mlp(2 * d_hidden, 2 * d_hidden, d_hidden)

    def forward(self, inputs: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.features(inputs) + self.types(types)  # (B, N, D)
        h = h + self.local(h)
        context = masked_mean(h, mask).unsqueeze(1).expand_as(h)  # (B, N, D)
        h = h + self.mix(torch.cat([h, context], -1))
        return h * mask.unsqueeze(-1)


class VQLosses(NamedTuple):
    commit: torch.Tensor  # ||z - sg(q)||^2: pulls the encoder towards its codes
    codebook: torch.Tensor  # ||sg(z) - q||^2: pulls codes towards the encoder (unless EMA)
    perplexity: torch.Tensor  # exp(entropy) of code usage over real tokens in the batch
    codes_used: torch.Tensor  # distinct codes used by real tokens in the batch


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation with straight-through gradients.

    With ``ema=True`` the codes follow exponential moving averages of the vectors assigned
    to them (no codebook gradient); otherwise they are learned through the codebook loss.
    The codebook is initialised from the first training batch, so no code starts dead.
    """

    def __init__(self, dim: int, codebook_size: int, *, ema: bool, decay: float = 0.99, eps: float = 1e-5):
        super().__init__()
        if codebook_size < 2:
            raise ValueError(f"codebook_size must be at least 2, got {codebook_size}")
        if ema and not 0 < decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.ema, self.decay, self.eps = ema, decay, eps
        codes = torch.randn(codebook_size, dim)
        if ema:
            self.register_buffer("codebook", codes)
            self.register_buffer("cluster_size", torch.zeros(codebook_size))
            self.register_buffer("code_sum", codes.clone())
        else:
            self.codebook = nn.Parameter(codes)
        self.register_buffer("initialised", torch.tensor(False))

    @torch.no_grad()
    def _init_from(self, flat: torch.Tensor) -> None:
        pick = torch.randint(len(flat), (len(self.codebook),), device=flat.device)
        self.codebook.data.copy_(flat[pick] + 1e-3 * torch.randn_like(flat[pick]))
        broadcast(self.codebook.data)  # over several ranks: rank 0's draw, on every rank
        if self.ema:
            self.code_sum.copy_(self.codebook)
            self.cluster_size.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, onehot: torch.Tensor) -> None:
        # over several ranks, the whole batch's statistics: every rank's sums, added up
        counts, sums = all_reduce_sum(onehot.sum(0)), all_reduce_sum(onehot.T @ flat)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + len(self.codebook) * self.eps) * n
        self.codebook.copy_(self.code_sum / smoothed.unsqueeze(1))

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, VQLosses]:
        # in fp32 whatever the autocast: nearest-code distances in bf16 pick the wrong code, and
        # the codebook and its EMA statistics are fp32 buffers
        with torch.autocast(z.device.type, enabled=False):
            return self._quantise(z.float(), mask)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._known_initialised = False  # read the loaded flag once, at the next training step

    def _needs_init(self) -> bool:
        """Whether the codebook still waits for its first batch. The flag is read from the
        device until it is seen set, then never again: not a host read per step."""
        if not getattr(self, "_known_initialised", False):
            self._known_initialised = bool(self.initialised)
        return not self._known_initialised

    def _quantise(self, z: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, VQLosses]:
        # Every slot is quantised and padding is weighted out, rather than the real tokens
        # selected: selecting by a mask (and bincount) waits for the device at every step.
        if self.training and self._needs_init() and bool(mask.any()):
            self._init_from(z[mask].detach())  # once per run: the real tokens of the first batch
        weight = mask.reshape(-1, 1).to(z.dtype)  # (B*N, 1): 1 for a real token, 0 for padding
        n_real = weight.sum()
        flat = z.reshape(-1, z.shape[-1])  # (B*N, L)
        distances = (
            flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T + self.codebook.pow(2).sum(1)
        )  # (B*N, K)
        codes = distances.argmin(1)  # (B*N,)
        q = self.codebook[codes]  # (B*N, L)

        def real_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # over real tokens' entries
            return ((a - b).pow(2) * weight).sum() / (n_real * flat.shape[1])

        commit, codebook = real_mse(flat, q.detach()), real_mse(q, flat.detach())
        # (B*N, K): a real token's row is one-hot at its code, a padding row zero (F.one_hot
        # would check the codes' range on the host)
        assigned = flat.new_zeros(len(flat), len(self.codebook)).scatter_(1, codes.unsqueeze(1), weight)
        counts = assigned.sum(0)  # (K,)
        probs = counts / counts.sum().clamp_min(1.0)
        perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-12))).sum())
        if self.training and self.ema:
            self._ema_update(flat.detach(), assigned)
        # straight-through (the gradient skips argmin); padding slots stay zero
        quantised = (flat + (q - flat).detach()) * weight
        return quantised.reshape(z.shape), VQLosses(commit, codebook, perplexity, (counts > 0).sum().to(z.dtype))


@dataclass(frozen=True)
class ModelConfig:
    latent_space: Literal["none", "linear", "vq"]
    hidden_dim: PositiveInt
    latent_dim: PositiveInt  # ignored by "none": the latent is the encoder state itself
    codebook_size: PositiveInt  # vq only
    vq_ema: bool  # vq only: EMA codebook updates instead of a codebook loss
    ema_decay: Annotated[float, Range(low=0, high=1, low_open=True)]


class AEOutput(NamedTuple):
    features: torch.Tensor  # (B, N, F) reconstructed token features
    met: torch.Tensor  # (B,) predicted normalised log MET
    met_direction: torch.Tensor  # (B, 2) predicted unit (cos, sin) of METphi
    vq: VQLosses | None


class EventAutoencoder(nn.Module):
    """Encoder -> latent (identity | linear | VQ) -> per-token decoder, plus a globals head.

    The encoder reads each object's token features and its transverse-plane vectors (the
    direction as cos/sin, so phi has no seam at +-pi, and the momentum's x and y), the
    decoder reconstructs the token features. The globals head reads only the latent tokens,
    pooled by :func:`slot_mean` so that it can balance momentum, so weighting its loss
    (``globals_beta``) makes the latent spend capacity on MET at the tokens' expense: the
    trade-off studied.
    """

    def __init__(self, config: ModelConfig, n_features: int = 4):
        super().__init__()
        d, latent = config.hidden_dim, config.latent_dim
        if config.latent_space != "none" and latent < 1:
            raise ValueError(f"model.latent_dim must be at least 1, got {latent}")
        self.encoder = SetEncoder(n_features + N_TRANSVERSE, d)
        self.project = nn.Identity() if config.latent_space == "none" else nn.Linear(d, latent)
        self.quantizer = (
            VectorQuantizer(latent, config.codebook_size, ema=config.vq_ema, decay=config.ema_decay)
            if config.latent_space == "vq" else None
        )
        d_latent = d if config.latent_space == "none" else latent
        self.decoder = mlp(d_latent, 2 * d, n_features)
        self.globals_head = mlp(d_latent, 2 * d, 3)  # (log MET, cos phi, sin phi)

    def forward(self, features: torch.Tensor, transverse: torch.Tensor, types: torch.Tensor,
                mask: torch.Tensor) -> AEOutput:
        h = self.encoder(torch.cat([features, transverse], -1), types, mask)  # (B, N, D)
        z = self.project(h)  # (B, N, L)
        vq = None
        if self.quantizer is not None:
            z, vq = self.quantizer(z, mask)
        g = self.globals_head(slot_mean(z, mask))  # (B, 3)
        direction = F.normalize(g[:, 1:], dim=1, eps=1e-6)
        return AEOutput(self.decoder(z), g[:, 0], direction, vq)


def autoencoder_metrics(
    model: EventAutoencoder, batch: dict[str, torch.Tensor], *, globals_beta: float, commitment_weight: float
) -> dict[str, torch.Tensor]:
    """Named losses for one batch; ``total_loss`` is what the trainer minimises.

    rec_tokens: MSE over real tokens' normalised features (padding excluded).
    rec_globals: MSE of normalised log MET + (1 - cos) of the METphi error, an angle loss.
    """
    mask = batch["mask"]
    out = model(batch["features"], batch["transverse"], batch["types"], mask)
    # a mean over real tokens' features, in fp32 as mse_loss is under autocast; weighting
    # padding out, rather than selecting real tokens, does not wait for the device
    weight = mask.unsqueeze(-1).float()
    error = (out.features.float() - batch["features"]).pow(2)
    rec_tokens = (error * weight).sum() / (weight.sum() * error.shape[-1])
    cos_error = out.met_direction[:, 0] * torch.cos(batch["met_phi"]) + out.met_direction[:, 1] * torch.sin(batch["met_phi"])
    rec_globals = F.mse_loss(out.met, batch["met"]) + (1 - cos_error).mean()
    total = rec_tokens + globals_beta * rec_globals
    metrics = {"rec_tokens": rec_tokens, "rec_globals": rec_globals}
    if out.vq is not None:
        total = total + commitment_weight * out.vq.commit
        if not model.quantizer.ema:
            total = total + out.vq.codebook
        metrics |= {"commit": out.vq.commit, "codebook": out.vq.codebook,
                    "perplex": out.vq.perplexity, "codes_used": out.vq.codes_used}
    return {"total_loss": total, **metrics}
