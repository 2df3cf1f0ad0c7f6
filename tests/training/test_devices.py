"""Device choice, mixed precision and the device's random streams in checkpoints
(``sweeplab.training.devices``), through the real training loop on CPU."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sweeplab.training import CheckpointStore, devices, reproducible
from sweeplab.training.devices import (
    DeviceError,
    Precision,
    pick_device,
    rng_states,
    set_rng_states,
)
from tests.training.test_loop import fit, regression


def noisy(model, batch):
    """A regression whose loss draws from torch's global stream, as augmentation and dropout do."""
    out = regression(model, batch)
    return out | {"total_loss": out["total_loss"] + 1e-3 * torch.rand(()) }


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_run_trains_under_autocast_and_records_its_precision(precision):
    record = fit(precision=precision)
    reference = fit()
    assert record.summary["status"] == "completed" and record.summary["precision"] == precision
    assert reference.summary["precision"] == "fp32" and record.summary["device"] == "cpu"
    val = record.history[record.history["split"] == "val"]["total_loss"].to_numpy()
    assert np.isfinite(val).all() and val[-1] < val[0], "it learns"
    fp32 = reference.history[reference.history["split"] == "val"]["total_loss"].to_numpy()
    assert not np.array_equal(val, fp32), "the forward pass really ran in reduced precision"
    if precision == "bf16":  # fp16 skips its first steps while the scaler's scale (2**16) overflows
        np.testing.assert_allclose(val, fp32, rtol=0.05)


def test_fp32_runs_without_autocast_or_scaler():
    precision = Precision("fp32", torch.device("cpu"))
    assert not precision.scaler.is_enabled() and precision.state_dict() == {}
    with precision.autocast():
        assert not torch.is_autocast_enabled("cpu")
    with Precision("bf16", torch.device("cpu")).autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_fp16_skips_a_step_whose_gradient_overflowed_and_lowers_the_scale():
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    precision = Precision("fp16", torch.device("cpu"))
    before = model.weight.detach().clone()
    scale = precision.scaler.get_scale()
    loss = model(torch.ones(1, 2)).sum() * float("inf")
    precision.backward(loss, optimizer)
    precision.step(optimizer)
    assert torch.equal(model.weight, before), "an overflowed step changes nothing"
    assert precision.scaler.get_scale() == scale / 2
    assert precision.state_dict()["scale"] == scale / 2


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_resumed_run_continues_draw_for_draw_with_its_gradient_scale(tmp_path, precision):
    """Interrupted in epoch 3, resumed: the same history and weights as one uninterrupted run,
    with a loss that draws from torch's stream and (fp16) a scaler whose state must carry over."""
    reference = fit(epochs=5, metrics=noisy, precision=precision)
    calls = {"n": 0}

    def crashes_in_epoch_3(model, batch):
        calls["n"] += 1
        if calls["n"] == 2 * 9 + 3:
            raise RuntimeError("node lost")
        return noisy(model, batch)

    slot = CheckpointStore(tmp_path).slot("t", "v", "abc", "data", "code")
    assert fit(epochs=5, checkpoint=slot, metrics=crashes_in_epoch_3, precision=precision).summary["status"] == "failed"
    resumed = fit(epochs=5, checkpoint=slot, metrics=noisy, precision=precision)
    pd.testing.assert_frame_equal(reproducible(resumed.history), reproducible(reference.history))
    assert torch.equal(resumed.weights["weight"], reference.weights["weight"])


def test_checkpoints_hold_the_device_stream_and_put_it_back(monkeypatch):
    """The CUDA path, without a GPU: the loop saves and restores whatever the device's stream
    functions give, and those functions are torch's own."""
    assert devices.DEVICE_RNG["cuda"] == (torch.cuda.get_rng_state_all, torch.cuda.set_rng_state_all)
    stream = {"state": [torch.tensor([1, 2, 3], dtype=torch.uint8)]}
    monkeypatch.setitem(devices.DEVICE_RNG, "cuda", (lambda: [s.clone() for s in stream["state"]],
                                                      lambda state: stream.update(state=state)))
    cuda = torch.device("cuda")
    saved = rng_states(cuda)
    assert set(saved) == {"cpu", "cuda"} and torch.equal(saved["cuda"][0], stream["state"][0])
    stream["state"] = [torch.tensor([9], dtype=torch.uint8)]  # the run draws on
    cpu_draw = torch.rand(3)
    set_rng_states(saved, cuda)
    assert torch.equal(stream["state"][0], torch.tensor([1, 2, 3], dtype=torch.uint8))
    assert torch.equal(torch.rand(3), cpu_draw), "torch's CPU stream is put back too"
    assert set(rng_states(torch.device("cpu"))) == {"cpu"}


@contextlib.contextmanager
def logged(level: int) -> Iterator[list[str]]:
    """The messages ``sweeplab.training.devices`` logs at ``level`` or above, caught on the logger
    itself: Kedro's logging set-up, run by other tests in this process, replaces the root's
    handlers (pytest's capture among them)."""
    lines: list[str] = []
    handler = logging.Handler(level)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger(devices.__name__)
    logger.addHandler(handler)
    before, logger.level = logger.level, level
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def test_a_state_saved_on_another_device_is_said(monkeypatch):
    monkeypatch.setitem(devices.DEVICE_RNG, "cuda", (lambda: [], lambda state: None))
    with logged(logging.WARNING) as lines:
        set_rng_states(rng_states(torch.device("cpu")), torch.device("cuda"))
    assert any("holds no cuda random state" in line for line in lines), lines


def test_auto_prefers_cuda_then_mps_then_cpu_and_says_so_once(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.available() == ["mps", "cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.available() == ["cuda", "mps", "cpu"]
    monkeypatch.undo()
    devices._log_auto_choice.cache_clear()  # noqa: SLF001 - the once-per-process memo, reset for the test
    with logged(logging.INFO) as lines:
        assert pick_device("auto") == torch.device(devices.available()[0])
        pick_device("auto")
    assert sum("trainer.device auto: running on" in line for line in lines) == 1, lines


def test_a_device_this_machine_lacks_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"^ae\.trainer\.device: got 'cuda', which this machine does not have; "
                                          r"available: \['cpu'\] \(or auto\)$"):
        pick_device("cuda", "ae.trainer.device")
    record = fit(device="mps")
    assert record.summary["status"] == "failed" and "DeviceError: trainer.device: got 'mps'" in record.summary["reason"]
