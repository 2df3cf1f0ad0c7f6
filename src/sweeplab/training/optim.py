"""The optimiser every family trains with: named parameter groups (each with its own learning
rate if the family asks), weight decay on weight matrices only, a learning-rate schedule that
is a pure function of the step, and per-group gradient norms for the history.

Weight decay pulls weights towards zero; on a norm's gain, a bias, an embedding table or a
codebook it only distorts what they represent, so (as nanoGPT does) it applies to parameters
of two or more dimensions that are neither.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from sweeplab.training.trainer import TrainerConfig

# a family's naming of its parameters: model -> {group name: parameters}
ParameterGroups = Callable[[nn.Module], Mapping[str, Iterable[nn.Parameter]]]
NOT_DECAYED_NAMES = ("embed", "codebook")  # parameter names that hold tables, not weights


def lr_factor(step: int, *, trainer: TrainerConfig, total_steps: int) -> float:
    """The multiple of each group's learning rate at ``step`` (counted from 0).

    Linear warm-up over ``warmup_steps`` (step s gets (s + 1) / warmup_steps), then
    ``constant`` (1) or ``cosine``: from 1 down to ``min_lr_ratio`` at the last step,
    factor = r + (1 - r) * (1 + cos(pi * t)) / 2, t the fraction of post-warm-up steps done.
    """
    if step < trainer.warmup_steps:
        return (step + 1) / trainer.warmup_steps
    if trainer.lr_schedule == "constant":
        return 1.0
    remaining = max(1, total_steps - trainer.warmup_steps - 1)
    t = min(1.0, (step - trainer.warmup_steps) / remaining)
    r = trainer.min_lr_ratio
    return r + (1 - r) * (1 + math.cos(math.pi * t)) / 2


def top_level_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The default groups: one per direct child module, and one per parameter held by the model
    itself (a puzzle embedding, say), each by its attribute name."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        groups.setdefault(name.split(".", 1)[0], []).append(parameter)
    return groups


def decayed(model: nn.Module) -> set[int]:
    """ids of the parameters weight decay applies to: matrices outside embeddings and codebooks."""
    tables = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return {id(p) for name, p in model.named_parameters()
            if p.ndim >= 2 and id(p) not in tables and not any(word in name.lower() for word in NOT_DECAYED_NAMES)}


def build_optimiser(model: nn.Module, trainer: TrainerConfig, groups: Mapping[str, Iterable[nn.Parameter]],
                    group_lr: Mapping[str, float]) -> torch.optim.AdamW:
    """AdamW over the named groups, each split into decayed and not; ``group_lr`` overrides
    a group's learning rate. Every trainable parameter must be in exactly one group."""
    unknown = sorted(set(group_lr) - set(groups))
    if unknown:
        raise ValueError(f"learning rates given for {unknown}, which are not parameter groups {sorted(groups)}")
    decay = decayed(model)
    seen: set[int] = set()
    param_groups = []
    for name, parameters in groups.items():
        members = [p for p in parameters if p.requires_grad]
        if seen & {id(p) for p in members}:
            raise ValueError(f"parameter group '{name}' shares parameters with another group")
        seen |= {id(p) for p in members}
        lr = group_lr.get(name, trainer.lr)
        for with_decay in (True, False):
            chosen = [p for p in members if (id(p) in decay) == with_decay]
            if chosen:
                param_groups.append({"params": chosen, "name": name, "lr": lr, "base_lr": lr,
                                     "weight_decay": trainer.weight_decay if with_decay else 0.0})
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise ValueError(f"parameters in no group: {missing[:5]}")
    return torch.optim.AdamW(param_groups, lr=trainer.lr)


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


@torch.no_grad()
def gradient_norms(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Each parameter's gradient norm, computed once, on its device (no host sync): their norm
    per named group (decayed and not together), for the history, and their norm over the
    model's parameters in order, which is the total ``clip_grad_norm_`` would compute."""
    norms = {id(p): torch.linalg.vector_norm(p.grad) for p in model.parameters() if p.grad is not None}
    total = torch.linalg.vector_norm(torch.stack(list(norms.values()))) if norms else torch.zeros(())
    by_group: dict[str, list[torch.Tensor]] = {}
    for group in optimizer.param_groups:
        by_group.setdefault(group["name"], []).extend(norms[id(p)] for p in group["params"] if id(p) in norms)
    return ({f"grad_norm/{name}": torch.linalg.vector_norm(torch.stack(found)) if found else total.new_zeros(())
             for name, found in by_group.items()}, total)
