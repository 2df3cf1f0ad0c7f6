"""Rebalancing for the training split only: oversampling of windows with rare commands, and
on-the-fly sensor augmentation (noise, temporal shift, magnitude scaling).

Augmentation draws from torch's global random stream, which the training loop seeds and
checkpoints, so an augmented run is the same on every run with the same seed, and the loop
applies it to training batches only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sweeplab.config import (
    ConfigError,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)


@dataclass(frozen=True)
class AugmentConfig:
    oversample: PositiveInt = 3  # training windows with a rare command appear this many times
    noise: NonNegativeFloat = 0.02  # Gaussian noise, in units of each channel's (standardised) scale
    max_shift: NonNegativeInt = 2  # temporal shift, steps either way
    scale_low: PositiveFloat = 0.95
    scale_high: PositiveFloat = 1.05

    def __post_init__(self) -> None:
        if self.scale_low > self.scale_high:
            raise ConfigError(f"scale_low: got {self.scale_low}; expected at most scale_high ({self.scale_high})")


def oversample(data: dict[str, Any], rare: np.ndarray, k: int) -> dict[str, Any]:
    """Rows flagged ``rare`` appear ``k`` times in all, the others once; order kept."""
    repeats = np.where(np.asarray(rare, dtype=bool), k, 1)
    return {name: np.repeat(np.asarray(values), repeats, axis=0) for name, values in data.items()}


def augment_sensors(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """[batch, channels, time] -> the same, each window scaled, shifted and noised on its own."""
    batch, _, steps = x.shape
    scale = torch.empty(batch, 1, 1, device=x.device).uniform_(cfg.scale_low, cfg.scale_high)
    shift = torch.randint(-cfg.max_shift, cfg.max_shift + 1, (batch, 1, 1), device=x.device)
    # a shifted window repeats its edge sample rather than wrapping round
    index = (torch.arange(steps, device=x.device).view(1, 1, -1) - shift).clamp(0, steps - 1)
    shifted = x.gather(2, index.expand_as(x))
    return shifted * scale + cfg.noise * torch.randn_like(x)
