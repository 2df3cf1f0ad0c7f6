"""Sensor windows -> G-code tokens: a convolutional + transformer sensor encoder, an
autoregressive transformer decoder over v2 tokens, and either one token head or four part
heads (type gate, symbol, parameter letter, value bucket) whose predictions compose back
into tokens. Also the metrics the comparison reads, from predicted and target token ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.config import ConfigError, Fraction, PositiveInt
from sweeplab.gcode_language.tokens import (
    COMMAND,
    N_BUCKETS,
    NUMERIC,
    PAD,
    PARAMETER,
    SPECIAL,
    SPECIALS,
    TYPES,
)

HEADS = ("type", "symbol", "parameter", "value")  # the parts of a token, in decomposition order


@dataclass(frozen=True)
class GCodeModelConfig:
    d_model: PositiveInt = 64
    n_heads: PositiveInt = 4
    encoder_layers: PositiveInt = 2
    decoder_layers: PositiveInt = 2
    ff_dim: PositiveInt = 128
    dropout: Fraction = 0.1

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model: got {self.d_model}; expected a multiple of n_heads ({self.n_heads})")


class Composer(nn.Module):
    """Turns head outputs into token ids; holds the vocabulary's decomposition tables."""

    def __init__(self, parts: torch.Tensor, symbol_ids: torch.Tensor, parameter_ids: torch.Tensor,
                 numeric_ids: torch.Tensor):
        super().__init__()
        self.register_buffer("parts", parts, persistent=False)  # [vocab, 4]: type, symbol, parameter, bucket
        self.register_buffer("symbol_ids", symbol_ids, persistent=False)
        self.register_buffer("parameter_ids", parameter_ids, persistent=False)
        self.register_buffer("numeric_ids", numeric_ids, persistent=False)

    def sizes(self) -> tuple[int, int, int]:
        """Vocabulary size, symbol classes, parameter letters."""
        return len(self.parts), len(self.symbol_ids), len(self.parameter_ids)

    def predict(self, logits: dict[str, torch.Tensor]) -> torch.Tensor:
        if "token" in logits:
            return logits["token"].argmax(-1)
        kind = logits["type"].argmax(-1)
        # the symbol head covers specials then commands; the type gate says which part to read
        symbols = logits["symbol"].clone()
        is_special = kind == SPECIAL
        symbols[..., : len(SPECIALS)] = symbols[..., : len(SPECIALS)].masked_fill(~is_special[..., None], -torch.inf)
        symbols[..., len(SPECIALS):] = symbols[..., len(SPECIALS):].masked_fill(is_special[..., None], -torch.inf)
        symbol = self.symbol_ids[symbols.argmax(-1)]
        letter = logits["parameter"].argmax(-1)
        numeric = self.numeric_ids[letter, logits["value"].argmax(-1)]
        return torch.where(kind <= COMMAND, symbol, torch.where(kind == PARAMETER, self.parameter_ids[letter], numeric))

    def targets(self, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per head, the target part of each target token; -1 where it does not apply or at padding."""
        parts = self.parts[target].masked_fill((target == PAD)[..., None], -1)
        return {name: parts[..., i] for i, name in enumerate(HEADS)}


class SensorEncoder(nn.Module):
    """[batch, channels, time] -> [batch, time / 4, d]: two strided convolutions, then attention."""

    def __init__(self, channels: int, length: int, cfg: GCodeModelConfig):
        super().__init__()
        d = cfg.d_model
        self.stem = nn.Sequential(nn.Conv1d(channels, d, 5, stride=2, padding=2), nn.GELU(),
                                  nn.Conv1d(d, d, 5, stride=2, padding=2), nn.GELU())
        steps = self.stem(torch.zeros(1, channels, length)).shape[-1]
        self.position = nn.Parameter(torch.zeros(1, steps, d))
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, cfg.ff_dim, cfg.dropout, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.encoder_layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x).transpose(1, 2) + self.position)


class GCodeModel(nn.Module):
    """Encoder + causal decoder body; ``heads`` = ``single`` (one token head) or ``multi``."""

    def __init__(self, cfg: GCodeModelConfig, *, channels: int, length: int, max_tokens: int,
                 composer: Composer, heads: str):
        super().__init__()
        d = cfg.d_model
        vocab_size, n_symbols, n_letters = composer.sizes()
        self.composer = composer  # moves with the model; its tables are not weights
        self.encoder = SensorEncoder(channels, length, cfg)
        self.embed = nn.Embedding(vocab_size, d, padding_idx=PAD)
        self.position = nn.Parameter(torch.zeros(1, max_tokens, d))
        layer = nn.TransformerDecoderLayer(d, cfg.n_heads, cfg.ff_dim, cfg.dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, cfg.decoder_layers)
        self.norm = nn.LayerNorm(d)
        sizes = ({"token": vocab_size} if heads == "single" else
                 {"type": len(TYPES), "symbol": n_symbols, "parameter": n_letters, "value": N_BUCKETS})
        # "type" would clash with nn.Module.type, hence the prefix
        self.heads = nn.ModuleDict({f"head_{name}": nn.Linear(d, size) for name, size in sizes.items()})
        # True = may not attend: a boolean mask, like the padding mask
        mask = torch.ones(max_tokens, max_tokens, dtype=torch.bool).triu(diagonal=1)
        self.register_buffer("causal", mask, persistent=False)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per head for the next token after each of ``tokens`` [batch, T]."""
        memory = self.encoder(x)
        t = tokens.shape[1]
        h = self.embed(tokens) + self.position[:, :t]
        h = self.decoder(h, memory, tgt_mask=self.causal[:t, :t], tgt_key_padding_mask=tokens == PAD,
                         tgt_is_causal=True)
        h = self.norm(h)
        return {name.removeprefix("head_"): head(h) for name, head in self.heads.items()}


def token_metrics(predicted: torch.Tensor, target: torch.Tensor, parts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracies over the non-padding target positions: token, type, command (targets that are
    G/M commands) and parameter type (targets that are a letter or a value)."""
    real = target != PAD
    pred_parts, tgt_parts = parts[predicted], parts[target]
    commands = real & (tgt_parts[..., 0] == COMMAND)
    with_letter = real & ((tgt_parts[..., 0] == PARAMETER) | (tgt_parts[..., 0] == NUMERIC))

    def mean(hit: torch.Tensor, where: torch.Tensor) -> torch.Tensor:  # 0 where there is none
        return (hit & where).sum() / where.sum().clamp_min(1)  # not selecting: no wait for the device

    return {
        "token_acc": mean(predicted == target, real),
        "type_acc": mean(pred_parts[..., 0] == tgt_parts[..., 0], real),
        "command_acc": mean(predicted == target, commands),
        "param_acc": mean(pred_parts[..., 2] == tgt_parts[..., 2], with_letter),
    }


def head_losses(logits: dict[str, torch.Tensor], target: torch.Tensor, composer: Composer,
                weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """Cross-entropy per head (``token`` for the single head), and their weighted sum."""
    if "token" in logits:
        ce = F.cross_entropy(logits["token"].flatten(0, 1), target.flatten(), ignore_index=PAD)
        return {"token_ce": ce, "total_loss": ce}
    losses = {}
    for name, parts in composer.targets(target).items():
        flat = parts.flatten()
        # the mean over the head's targets; a batch may hold none (no values, say), and the loss
        # is then zero. A sum over a count, so that no step waits for the device to ask which.
        total = F.cross_entropy(logits[name].flatten(0, 1), flat, ignore_index=-1, reduction="sum")
        losses[f"{name}_ce"] = total / (flat >= 0).sum().clamp_min(1)
    losses["total_loss"] = sum(weights[name] * losses[f"{name}_ce"] for name in HEADS)
    return losses
