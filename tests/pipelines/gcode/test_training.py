"""Training the three approaches for a few steps: metrics, determinism, augmentation on the
training split only, and collapse detection."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sweeplab.datasets.hdf5 import H5File
from sweeplab.families import train_variant
from sweeplab.pipelines.cnc import data
from sweeplab.pipelines.gcode.nodes import CollapseConfig
from sweeplab.pipelines.gcode.pipeline import FAMILY
from sweeplab.sweeps import Variant, resolve_variant_config
from sweeplab.training import CheckpointStore, TrainerConfig, Training, reproducible, train
from tests.conftest import REPO, write_h5
from tests.pipelines.cnc.test_data import PARAMS, as_partitions, generate

DEFAULTS = yaml.safe_load((REPO / "conf/base/parameters_gcode.yml").read_text())["gcode"]
METRICS = {"token_acc", "type_acc", "command_acc", "param_acc", "unique_tokens", "token_error"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    programs, sensors = generate(6, 1)
    recordings = data.load_recordings(as_partitions(programs), as_partitions(sensors), PARAMS)
    _, v2, _ = data.build_vocabularies(recordings, PARAMS["vocabulary"])
    stream, _ = data.build_windows(recordings, v2, PARAMS["windows"])
    path = write_h5(tmp_path_factory.mktemp("gcode") / "windows.h5", stream)
    return data.load_windows(H5File(path), v2)


def train_gcode(config: dict, inputs: dict, store: CheckpointStore):
    return train_variant(config, inputs, store, family=FAMILY)


def config(approach: str, seed: int = 0, **changes) -> dict:
    defaults = copy.deepcopy(DEFAULTS)
    defaults["model"] |= {"d_model": 32, "ff_dim": 64, "encoder_layers": 1, "decoder_layers": 1}
    defaults["trainer"] |= {"epochs": 2, "batch_size": 32}
    for section, values in changes.items():
        defaults[section] |= values
    return resolve_variant_config(defaults, family=FAMILY,
                                  variant=Variant("t", f"{approach}_s{seed}", (("approach", approach),), seed))


@pytest.mark.parametrize("approach", ["baseline", "augmented", "multihead"])
def test_each_approach_trains_and_reports_the_comparison_metrics(approach, inputs, tmp_path):
    weights, history, summary = train_gcode(config(approach), inputs, CheckpointStore(tmp_path))
    assert summary["status"] == "completed", summary["reason"]
    assert METRICS <= set(summary["best"]["val"])
    val = history[history["split"] == "val"]
    assert len(val) == 2 and np.isfinite(val[sorted(METRICS)].to_numpy()).all()
    assert 1 <= val["unique_tokens"].max() <= summary["vocabulary_size"]
    assert all(0 <= val[m].max() <= 1 for m in METRICS - {"unique_tokens"})
    heads = {k.removeprefix("heads.head_").split(".")[0] for k in weights if k.startswith("heads.")}
    assert heads == ({"type", "symbol", "parameter", "value"} if approach == "multihead" else {"token"})
    if approach == "multihead":
        assert {"type_ce", "symbol_ce", "parameter_ce", "value_ce"} <= set(history.columns)


def test_same_seed_same_numbers_with_augmentation(inputs, tmp_path):
    first = train_gcode(config("augmented"), inputs, CheckpointStore(tmp_path / "a"))[1]
    again = train_gcode(config("augmented"), inputs, CheckpointStore(tmp_path / "b"))[1]
    other = train_gcode(config("augmented", seed=1), inputs, CheckpointStore(tmp_path / "c"))[1]
    pd.testing.assert_frame_equal(reproducible(first), reproducible(again))
    assert not first["total_loss"].equals(other["total_loss"])


def test_the_loop_augments_training_batches_only():
    seen = []

    def spy(batch):
        seen.append(len(batch["x"]))
        return batch | {"x": batch["x"] + 1.0}

    x = torch.randn(100, 3)
    data_ = {"x": x, "y": x.sum(1, keepdim=True)}
    record = train(Training(build_model=lambda: torch.nn.Linear(3, 1),
                            batch_metrics=lambda m, b: {"total_loss": ((m(b["x"]) - b["y"]) ** 2).mean()},
                            train_data=data_, val_data={"x": x[:40], "y": data_["y"][:40]}, augment=spy),
                   trainer=TrainerConfig(epochs=3, batch_size=32), run={"seed": 0})
    assert record.summary["status"] == "completed"
    assert sum(seen) == 3 * 100  # every training row, every epoch; never a validation row


def test_a_run_that_predicts_few_distinct_tokens_stops_as_collapsed(inputs, tmp_path):
    collapse = {"min_unique": 100_000, "patience": 2, "min_epochs": 3}
    frozen = {"epochs": 6, "lr": 1e-12}  # a model that does not learn predicts the same tokens every epoch
    _, history, summary = train_gcode(config("baseline", trainer=frozen, collapse=collapse), inputs,
                                      CheckpointStore(tmp_path))
    assert summary["status"] == "collapsed" and summary["epochs_run"] == 3
    assert "stayed below 100000 for 2 epochs without a new best" in summary["reason"]


@pytest.mark.parametrize(("counts", "collapsed"), [
    ((5, 8, 12), False),  # too early to tell
    ((5, 8, 7, 8, 6), True),  # stuck below 20
    ((4, 5, 11, 18), False),  # below 20, but climbing: still learning
    ((5, 8, 12, 25), False),
    ((30, 12, 11, 10), True),  # fell onto a handful and stayed
])
def test_the_collapse_rule(counts, collapsed):
    rule = CollapseConfig(min_unique=20, patience=3, min_epochs=4)
    stop = rule.check([{"split": "val", "unique_tokens": u} for u in counts])
    assert (stop is not None and stop.status == "collapsed") == collapsed
