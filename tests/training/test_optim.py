"""The shared optimiser: learning-rate schedule, weight decay on matrices only, per-group
learning rates and gradient norms."""

import math

import pytest
import torch
from torch import nn

from sweeplab.training import TrainerConfig, Training, train
from sweeplab.training.optim import build_optimiser, decayed, lr_factor, top_level_groups
from tests.training.test_loop import RUN, data, regression


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(4, 3)
        self.puzzle_embedding = nn.Parameter(torch.zeros(4, 3))
        self.codebook = nn.Parameter(torch.randn(8, 3))
        self.norm = nn.LayerNorm(3)
        self.head = nn.Linear(5, 1)

    def forward(self, x):
        return self.head(x)


def test_warm_up_then_constant_or_cosine():
    warm = TrainerConfig(warmup_steps=4)
    assert [lr_factor(s, trainer=warm, total_steps=20) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = TrainerConfig(warmup_steps=2, lr_schedule="cosine", min_lr_ratio=0.1)
    values = [lr_factor(s, trainer=cosine, total_steps=12) for s in range(12)]
    assert values[:3] == [0.5, 1.0, 1.0] and values[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[2:], values[3:], strict=False)), "cosine only decreases"
    assert values[7] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 5 / 9)) / 2)


def test_weight_decay_only_on_weight_matrices():
    model = Tiny()
    names = {name for name, p in model.named_parameters() if id(p) in decayed(model)}
    assert names == {"head.weight"}, "not embeddings, codebooks, norms or biases"
    optimiser = build_optimiser(model, TrainerConfig(weight_decay=0.1), top_level_groups(model),
                                {"puzzle_embedding": 0.5})
    by_name = {(g["name"], g["weight_decay"]): g["lr"] for g in optimiser.param_groups}
    assert by_name[("head", 0.1)] == by_name[("head", 0.0)] == 1e-3
    assert by_name[("puzzle_embedding", 0.0)] == 0.5 and ("puzzle_embedding", 0.1) not in by_name


def test_bad_groups_are_refused():
    model = Tiny()
    with pytest.raises(ValueError, match=r"learning rates given for \['encoder'\]"):
        build_optimiser(model, TrainerConfig(), top_level_groups(model), {"encoder": 1.0})
    with pytest.raises(ValueError, match="parameters in no group"):
        build_optimiser(model, TrainerConfig(), {"head": model.head.parameters()}, {})


class TwoPart(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(5, 4), nn.Linear(4, 1)

    def forward(self, x):
        return self.second(self.first(x))


def test_each_group_logs_its_gradient_norm_and_keeps_its_learning_rate():
    cfg = TrainerConfig(epochs=2, batch_size=32, lr=0.01, warmup_steps=8)
    record = train(Training(build_model=TwoPart, batch_metrics=regression, train_data=data(128, 0),
                            val_data=data(32, 1), group_lr={"first": 0.0}), trainer=cfg, run=RUN)
    train_rows = record.history[record.history["split"] == "train"]
    assert (train_rows[["grad_norm/first", "grad_norm/second"]] > 0).all().all()
    assert train_rows["lr_factor"].tolist() == [0.5, 1.0], "the last step of each epoch: 4 and 8 of 8 warm-up steps"
    torch.manual_seed(RUN["seed"])  # as the loop seeds before it builds the model
    fresh = TwoPart()
    assert torch.equal(record.weights["first.weight"], fresh.first.weight), "lr 0: the group never moves"
    assert not torch.equal(record.weights["second.weight"], fresh.second.weight)
