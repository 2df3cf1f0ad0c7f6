"""A saved variant rebuilt from its config, the model inputs and its weights (``Family.rebuild``),
and evaluated as the training loop evaluated it (``sweeplab.training.evaluate``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from kedro.pipeline import Pipeline
from torch import nn

from sweeplab.config import ConfigError
from sweeplab.errors import DataFileError
from sweeplab.families import Family, Training, train_variant
from sweeplab.training import CheckpointStore, TrainerConfig, evaluate
from tests.training.test_loop import data, regression


@dataclass(frozen=True)
class ToyConfig:
    trainer: TrainerConfig


def toy_training(cfg: ToyConfig, inputs: dict) -> Training:
    state = {"epoch": 0}

    def metrics(model, batch):  # one metric follows the epoch, as a KL weight's warm-up does
        out = regression(model, batch)
        return out | {"scheduled": out["total_loss"] * state["epoch"]}

    return Training(build_model=lambda: nn.Linear(5, 1), batch_metrics=metrics, train_data=inputs["train"],
                    val_data=inputs["val"], on_epoch=lambda epoch: state.update(epoch=epoch))


TOY = Family(name="toy", config_type=ToyConfig, data_prep=lambda params: Pipeline([]),
             training=toy_training)
INPUTS = {"train": data(256, 0), "val": data(70, 1), "fingerprint": "0123456789abcdef"}
CONFIG = {"sweep": "t", "variant": "v_s3", "family": "toy", "condition": {}, "seed": 3, "config_hash": "abc",
          # val in batches of 32, 32 and 6: the means are weighted by rows, as the loop's are
          "config": {"trainer": {"epochs": 4, "batch_size": 32, "eval_batch_size": 32, "lr": 0.05}}}


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    weights, history, summary = train_variant(CONFIG, INPUTS, CheckpointStore(tmp_path_factory.mktemp("ckpt")),
                                              family=TOY)
    assert summary["status"] == "completed"
    return weights, history, summary


def test_a_rebuilt_variant_gives_back_its_best_epoch_metrics(record):
    weights, _, summary = record
    rebuilt = TOY.rebuild(CONFIG, INPUTS, weights)
    assert not rebuilt.model.training, "in eval mode"
    assert rebuilt.config.trainer.eval_batch_size == 32
    assert all(torch.equal(rebuilt.model.state_dict()[k], w) for k, w in weights.items())
    recomputed = rebuilt.evaluate(epoch=summary["best_epoch"])
    assert recomputed == pytest.approx(summary["best"]["val"], rel=1e-6)
    assert recomputed["scheduled"] == pytest.approx(recomputed["total_loss"] * summary["best_epoch"])
    few = rebuilt.evaluate({k: v[:5] for k, v in INPUTS["val"].items()})
    assert set(few) == set(recomputed) and few["total_loss"] != recomputed["total_loss"]


def test_evaluate_keeps_the_models_mode_and_returns_non_finite_values():
    model = nn.Linear(5, 1).train()

    def nan_metrics(model, batch):
        return regression(model, batch) | {"ratio": torch.tensor(math.nan)}

    result = evaluate(model, nan_metrics, {k: v.numpy() for k, v in data(10, 2).items()}, batch_size=4)
    assert model.training and math.isnan(result["ratio"]) and math.isfinite(result["total_loss"])


def test_weights_that_do_not_fit_are_refused_naming_the_variant(record):
    weights, _, _ = record
    with pytest.raises(DataFileError, match=r"t\.v_s3: its saved weights are empty"):
        TOY.rebuild(CONFIG, INPUTS, {})
    with pytest.raises(DataFileError, match=r"t\.v_s3: its saved weights do not fit .*size mismatch for weight"):
        TOY.rebuild(CONFIG, INPUTS, {**weights, "weight": torch.zeros(2, 5)})
    with pytest.raises(ConfigError, match=r"t\.v_s3: its config is of family 'ae', not 'toy'"):
        TOY.rebuild({**CONFIG, "family": "ae"}, INPUTS, weights)
