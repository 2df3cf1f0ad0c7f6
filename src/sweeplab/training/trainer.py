"""The training loop's settings, each family's ``trainer:`` section (``sweeplab.training.loop``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sweeplab.config import Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from sweeplab.training.distributed import DistributedConfig

OBJECTIVE = "total_loss"


@dataclass(frozen=True)
class TrainerConfig:
    epochs: PositiveInt = 5
    batch_size: PositiveInt = 512
    eval_batch_size: PositiveInt = 4096
    lr: PositiveFloat = 1.0e-3
    weight_decay: NonNegativeFloat = 0.0
    grad_clip: PositiveFloat | None = None  # max global gradient norm; None: no clipping
    patience: PositiveInt | None = None  # epochs without val improvement before stopping; None: never
    monitor: str = OBJECTIVE  # the val metric that picks the best epoch (lower is better)
    warmup_steps: NonNegativeInt = 0  # linear learning-rate warm-up over this many steps
    lr_schedule: Literal["constant", "cosine"] = "constant"  # after the warm-up
    min_lr_ratio: Fraction = 0.1  # cosine: the last step's learning rate over lr
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: CUDA, else MPS, else CPU; absent: an error
    # autocast dtype of forward passes (fp16 with a gradient scaler); fp32: none
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    tf32: bool = True  # on CUDA, fp32 matrix products in TF32 (Ampere and later); false: full fp32
    # ranks that train the variant together (sweeplab.training.distributed); numbers depend on it
    distributed: DistributedConfig = DistributedConfig()
    threads: PositiveInt | None = None  # torch CPU threads; None: this process's share of the cores
