"""G-code training: one node for the three approaches of the comparison.

- ``baseline``: one token head, the training windows as they are;
- ``augmented``: the same model, rare-command windows oversampled and sensors augmented;
- ``multihead``: four part heads with per-head loss weights, predictions composed back into
  tokens; augmentation when ``augment_multihead`` says so.

Every epoch the validation split is decoded with teacher forcing and scored on token, type,
command and parameter-type accuracy and on how many distinct tokens the model predicts. A
run whose distinct predictions stay below ``collapse.min_unique`` with no new best stops as
``collapsed``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Literal

import torch

from sweeplab.config import NonNegativeFloat, NonNegativeInt, PositiveInt
from sweeplab.families import Training
from sweeplab.gcode_language.tokens import PAD, Vocabulary
from sweeplab.pipelines.gcode.augment import AugmentConfig, augment_sensors, oversample
from sweeplab.pipelines.gcode.model import (
    Composer,
    GCodeModel,
    GCodeModelConfig,
    head_losses,
    token_metrics,
)
from sweeplab.training import Stop, TrainerConfig


@dataclass(frozen=True)
class HeadWeights:
    type: NonNegativeFloat = 1.0
    symbol: NonNegativeFloat = 3.0  # the command head: commands are what the baseline loses
    parameter: NonNegativeFloat = 1.0
    value: NonNegativeFloat = 1.0


@dataclass(frozen=True)
class CollapseConfig:
    min_unique: NonNegativeInt = 20  # distinct tokens predicted on val below this counts as collapsed ...
    patience: PositiveInt = 3  # ... for this many epochs in a row, with no new best among them ...
    min_epochs: PositiveInt = 4  # ... once this many epochs have run

    def check(self, history: list[dict[str, Any]]) -> Stop | None:
        """The stop rule: the run has collapsed onto a handful of tokens and stays there. A run
        still climbing (a new best count within the window) is learning, not collapsed: a
        single-head model typically starts on a handful of tokens and grows out of it."""
        unique = [row["unique_tokens"] for row in history if row["split"] == "val"]
        before, recent = unique[: -self.patience], unique[-self.patience :]
        if len(unique) < max(self.min_epochs, self.patience + 1) or max(recent) >= self.min_unique:
            return None
        if max(recent) > max(before):
            return None
        return Stop("collapsed", f"collapsed: val unique_tokens {[int(u) for u in recent]} stayed below "
                                 f"{self.min_unique} for {self.patience} epochs without a new best")


@dataclass(frozen=True)
class GCodeConfig:
    approach: Literal["baseline", "augmented", "multihead"]
    augment_multihead: bool  # whether the multi-head model also trains on rebalanced data
    model: GCodeModelConfig
    augment: AugmentConfig
    head_weights: HeadWeights
    collapse: CollapseConfig
    trainer: TrainerConfig

    @property
    def augmented(self) -> bool:
        return self.approach == "augmented" or (self.approach == "multihead" and self.augment_multihead)


def _composer(vocab: Vocabulary) -> Composer:
    tables = vocab.compose_tables()
    return Composer(torch.as_tensor(vocab.part_tables()), *(torch.as_tensor(tables[k])
                                                            for k in ("symbol", "parameter", "numeric")))


def _batch_metrics(model: GCodeModel, batch: dict[str, torch.Tensor], *, weights: dict[str, float]
                   ) -> dict[str, torch.Tensor]:
    composer = model.composer
    tokens = batch["tokens"]
    logits = model(batch["x"], tokens[:, :-1])
    target = tokens[:, 1:]
    metrics = head_losses(logits, target, composer, weights)
    with torch.no_grad():
        predicted = composer.predict(logits)
        metrics |= token_metrics(predicted, target, composer.parts)
        metrics["token_error"] = 1 - metrics["token_acc"]
    return metrics


def _split_metrics(model: GCodeModel, data: dict[str, torch.Tensor], *, batch_size: int) -> dict[str, float]:
    """Exact metrics over the whole split (the per-batch means weight batches, not tokens)."""
    composer = model.composer
    predicted, targets = [], []
    for start in range(0, len(data["tokens"]), batch_size):
        tokens = data["tokens"][start : start + batch_size]
        predicted.append(composer.predict(model(data["x"][start : start + batch_size], tokens[:, :-1])))
        targets.append(tokens[:, 1:])
    predicted_all, target = torch.cat(predicted), torch.cat(targets)
    metrics = {k: float(v) for k, v in token_metrics(predicted_all, target, composer.parts).items()}
    metrics["token_error"] = 1 - metrics["token_acc"]
    metrics["unique_tokens"] = float(predicted_all[target != PAD].unique().numel())
    return metrics


def gcode_training(cfg: GCodeConfig, gcode_inputs: dict[str, Any]) -> Training:
    """One variant's setup for the shared training node (``sweeplab.families.train_variant``)."""
    vocab = Vocabulary.from_dict(gcode_inputs["vocabulary"])
    train_data = {k: gcode_inputs["train"][k] for k in ("x", "tokens")}
    if cfg.augmented:
        train_data = oversample(train_data, gcode_inputs["train"]["rare"], cfg.augment.oversample)
    x, tokens = train_data["x"], train_data["tokens"]
    return Training(
        build_model=functools.partial(
            GCodeModel, cfg.model, channels=x.shape[1], length=x.shape[2], max_tokens=tokens.shape[1] - 1,
            composer=_composer(vocab), heads="multi" if cfg.approach == "multihead" else "single"),
        batch_metrics=functools.partial(_batch_metrics, weights=dataclasses.asdict(cfg.head_weights)),
        train_data=train_data,
        val_data={k: gcode_inputs["val"][k] for k in ("x", "tokens")},
        stop_rules=[cfg.collapse.check],
        augment=functools.partial(_augment, cfg=cfg.augment) if cfg.augmented else None,
        split_metrics=functools.partial(_split_metrics, batch_size=cfg.trainer.eval_batch_size),
        summary={"vocabulary_size": len(vocab)},
    )


def _augment(batch: dict[str, torch.Tensor], *, cfg: AugmentConfig) -> dict[str, torch.Tensor]:
    return batch | {"x": augment_sensors(batch["x"], cfg)}
