import os
import traceback

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sweeplab.config import ConfigError, from_dict
from sweeplab.training import (
    CheckpointStore,
    TrainerConfig,
    Training,
    fingerprint,
    reproducible,
    train,
)

RUN = {"sweep": "t", "variant": "v", "condition": {"lr": 0.01}, "seed": 3, "config_hash": "abc"}


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    return {"x": x, "y": x @ torch.arange(5.0) + 0.1 * torch.randn(n, generator=g)}


def regression(model, batch):
    pred = model(batch["x"]).squeeze(-1)
    mse = nn.functional.mse_loss(pred, batch["y"])
    return {"total_loss": mse, "mae": (pred - batch["y"]).abs().mean()}


def fit(epochs=4, checkpoint=None, metrics=regression, **trainer):
    cfg = TrainerConfig(epochs=epochs, batch_size=32, lr=0.05, **trainer)
    return train(Training(build_model=lambda: nn.Linear(5, 1), batch_metrics=metrics, train_data=data(256, 0),
                          val_data=data(64, 1)), trainer=cfg, run=RUN, checkpoint=checkpoint)


def test_a_run_record_with_history_and_summary():
    record = fit()
    h = record.history
    assert list(h.columns[:2]) == ["epoch", "split"] and len(h) == 8
    assert set(h["split"]) == {"train", "val"}
    val = h[h["split"] == "val"]["total_loss"].to_numpy()
    assert val[-1] < val[0], "it learns"
    s = record.summary
    assert s["status"] == "completed" and s["epochs_run"] == 4 and s["best_epoch"] in range(1, 5)
    assert s["best"]["val"]["total_loss"] == pytest.approx(val.min())
    assert s["config_hash"] == "abc" and s["condition"] == {"lr": 0.01}
    assert set(record.weights) == {"weight", "bias"}


def test_same_seed_same_numbers():
    pd.testing.assert_frame_equal(reproducible(fit().history), reproducible(fit().history))


def test_non_finite_loss_becomes_a_failed_record():
    calls = {"n": 0}

    def explodes(model, batch):
        calls["n"] += 1
        out = regression(model, batch)
        if calls["n"] > 12:  # inside epoch 2 (8 batches per epoch)
            out["mae"] = out["mae"] * float("nan")
        return out

    record = fit(metrics=explodes)
    assert record.summary["status"] == "failed"
    assert record.summary["reason"] == "NonFiniteLoss: non-finite mae at epoch 2 (train)"
    assert record.summary["epochs_run"] == 1 and record.weights, "the best weights so far are kept"


def test_early_stopping_and_clipping(monkeypatch):
    stepped = []
    step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        stepped.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    record = fit(epochs=30, patience=2, grad_clip=0.5)
    assert record.summary["status"] == "completed"
    assert record.summary["reason"].startswith("early stop") and record.summary["epochs_run"] < 30
    before = record.history.loc[record.history["split"] == "train", "grad_norm/weight"]
    assert before.max() > 5, "the unclipped gradient is large, so clipping has work to do"
    assert stepped and max(stepped) <= 0.5 + 1e-5, "every step sees a gradient clipped to 0.5"


def test_interrupted_run_continues_from_its_checkpoint(tmp_path):
    store = CheckpointStore(tmp_path)
    reference = fit(epochs=5)

    calls = {"n": 0}

    def crashes_in_epoch_3(model, batch):
        calls["n"] += 1
        if calls["n"] == 2 * 9 + 3:  # 8 train + 1 val batches per epoch
            raise RuntimeError("node lost")
        return regression(model, batch)

    first = fit(epochs=5, checkpoint=store.slot("t", "v", "abc", "data", "code"), metrics=crashes_in_epoch_3)
    assert first.summary["status"] == "failed" and "node lost" in first.summary["reason"]

    resumed_calls = {"n": 0}

    def counting(model, batch):
        resumed_calls["n"] += 1
        return regression(model, batch)

    second = fit(epochs=5, checkpoint=store.slot("t", "v", "abc", "data", "code"), metrics=counting)
    assert resumed_calls["n"] == 3 * 9, "only epochs 3-5 ran again"
    pd.testing.assert_frame_equal(reproducible(second.history), reproducible(reference.history))
    assert torch.equal(second.weights["weight"], reference.weights["weight"])

    restored_calls = {"n": 0}

    def never(model, batch):
        restored_calls["n"] += 1
        return regression(model, batch)

    third = fit(epochs=5, checkpoint=store.slot("t", "v", "abc", "data", "code"), metrics=never)
    assert restored_calls["n"] == 0 and third.summary["restored"] is True
    pd.testing.assert_frame_equal(reproducible(third.history), reproducible(reference.history), check_dtype=False)
    other = fit(epochs=5, checkpoint=store.slot("t", "v", "abc", "other-data", "code"), metrics=never)
    assert restored_calls["n"] == 5 * 9 and "restored" not in other.summary, "new data: no reuse"
    fit(epochs=5, checkpoint=store.slot("t", "v", "abc", "data", "other-code"), metrics=never)
    assert restored_calls["n"] == 10 * 9, "new code: no reuse"


def test_failure_before_any_epoch_keeps_history_columns():
    def broken(model, batch):
        raise ValueError("shape mismatch")

    record = fit(metrics=broken)
    assert record.summary["status"] == "failed" and record.summary["epochs_run"] == 0
    assert list(record.history.columns) == ["epoch", "split"], "a CSV that loads back"


def test_bad_trainer_settings_are_named():
    with pytest.raises(ConfigError, match="trainer.epochs: got 0; expected an integer >= 1"):
        from_dict(TrainerConfig, {"epochs": 0}, where="trainer")
    with pytest.raises(ConfigError, match="trainer.device: got 'tpu'; expected one of auto | cpu | cuda | mps"):
        from_dict(TrainerConfig, {"device": "tpu"}, where="trainer")
    record = fit(monitor="accuracy")
    assert record.summary["status"] == "failed" and "trainer.monitor 'accuracy'" in record.summary["reason"]


def test_data_fingerprint_follows_the_arrays():
    data = {"train": {"x": np.arange(6.0)}, "val": {"x": np.ones(3)}}
    same = {"train": {"x": np.arange(6.0)}, "val": {"x": np.ones(3)}}
    changed = {"train": {"x": np.arange(6.0)}, "val": {"x": np.array([1.0, 1.0, 1.5])}}
    assert fingerprint(data) == fingerprint(same) != fingerprint(changed)


def test_the_loop_reads_from_the_device_once_per_epoch_not_per_step(monkeypatch):
    """Metrics, gradient norms and the non-finite guard stay on the device during an epoch: the
    number of host reads does not grow with the number of steps. (AdamW reads its step count,
    a tensor it keeps on the host whatever the device: not a device read, not counted.)"""
    reads = {"n": 0}
    for name in ("__float__", "__bool__", "item", "tolist", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            caller = traceback.extract_stack(limit=2)[0].filename
            reads["n"] += f"torch{os.sep}optim{os.sep}" not in caller
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)

    def host_reads(batch_size):
        reads["n"] = 0
        cfg = TrainerConfig(epochs=1, batch_size=batch_size, lr=0.05, grad_clip=1.0)
        train(Training(build_model=lambda: nn.Linear(5, 1), batch_metrics=regression, train_data=data(256, 0),
                       val_data=data(64, 1)), trainer=cfg, run=RUN)
        return reads["n"]

    assert host_reads(64) == host_reads(8), "4 steps or 32: the same reads"


def test_the_history_records_throughput_beside_the_numbers():
    record = fit(epochs=2)
    train_rows = record.history[record.history["split"] == "train"]
    assert (train_rows["samples_per_s"] > 0).all()
    assert "samples_per_s" not in record.summary["best"]["train"], "a timing, not a result"
    assert "peak_memory_mb" not in record.history, "the CPU keeps no peak count"


def test_epoch_listeners_hear_each_epoch_once_as_it_ends_and_never_fail_the_run():
    from sweeplab.training.loop import add_epoch_listener, remove_epoch_listener  # noqa: PLC0415

    heard, seen_by_then = [], []

    def listener(name, epoch, rows):
        heard.append((name, epoch, [row["split"] for row in rows]))

    def broken(name, epoch, rows):
        raise RuntimeError("a tracker's store is down")

    for added in (listener, listener, broken):  # a tracker listens once per variant: added again, heard once
        add_epoch_listener(added)
    try:
        record = fit(epochs=3)
        seen_by_then.append(len(heard))
        fit(epochs=2)
    finally:
        remove_epoch_listener(listener)
        remove_epoch_listener(broken)
    assert record.summary["status"] == "completed", "a listener that raises is a warning, not a failure"
    assert heard == [("t.v", e, ["train", "val"]) for e in (1, 2, 3, 1, 2)]
    assert seen_by_then == [3]
    fit(epochs=1)
    assert len(heard) == 5, "removed: heard no more"
