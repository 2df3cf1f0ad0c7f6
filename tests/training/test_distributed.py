"""One variant on two CPU ranks (gloo), through ``train()``: the same global batch gives the
numbers of one process; a failing rank fails the run in time and says which; a checkpointed
distributed run resumes identically."""

from __future__ import annotations

import functools
import os
import signal
import time

import pandas as pd
import pytest
import torch
from torch import nn

from sweeplab.config import ConfigError, from_dict
from sweeplab.training import CheckpointStore, TrainerConfig, Training, reproducible, train
from sweeplab.training.distributed import DistributedConfig, Ranks

RUN = {"sweep": "t", "variant": "v", "condition": {}, "seed": 3, "config_hash": "abc"}
N_TRAIN, BATCH = 203, 32  # a last batch of 11 rows: divisible neither by the batch size nor by 2


def data(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    return {"x": x, "y": x @ torch.arange(5.0) + 0.1 * torch.randn(n, generator=g)}


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))


STEPS = {"n": 0}  # training steps this process has taken


def regression(model: nn.Module, batch: dict[str, torch.Tensor], *, fail_on_rank: int | None = None,
               nan_on_rank: int | None = None, kill_rank_at_step: tuple[int, int] | None = None
               ) -> dict[str, torch.Tensor]:
    """Means over the batch's samples; optionally a failure on one rank only: an exception, a
    NaN, or its process killed at a training step."""
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    if rank == fail_on_rank and model.training:
        raise RuntimeError("out of memory, say")
    if model.training:
        STEPS["n"] += 1
        if kill_rank_at_step is not None and (rank, STEPS["n"]) == kill_rank_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
    pred = model(batch["x"]).squeeze(-1)
    mse = nn.functional.mse_loss(pred, batch["y"])
    if rank == nan_on_rank:
        mse = mse * float("nan")
    return {"total_loss": mse, "mae": (pred - batch["y"]).abs().mean()}


def fit(world: int, *, epochs: int = 3, checkpoint=None, metrics=regression, **trainer):
    settings = {"batch_size": BATCH, "lr": 0.02, "grad_clip": 1.0, "threads": 1, **trainer}
    cfg = TrainerConfig(epochs=epochs, distributed=DistributedConfig(world_size=world, timeout_s=30), **settings)
    setup = Training(build_model=model, batch_metrics=metrics, train_data=data(N_TRAIN, 0), val_data=data(61, 1))
    return train(setup, trainer=cfg, run=RUN, checkpoint=checkpoint)


@pytest.fixture(scope="module")
def one_process():
    return fit(1)


def test_two_ranks_give_the_numbers_of_one_process_at_the_same_global_batch(one_process):
    two = fit(2)
    assert two.summary["status"] == "completed" and two.summary["world_size"] == 2
    assert one_process.summary["world_size"] == 1
    pd.testing.assert_frame_equal(reproducible(two.history), reproducible(one_process.history), rtol=1e-5, atol=1e-6)
    for key, weight in one_process.weights.items():
        torch.testing.assert_close(two.weights[key], weight, rtol=1e-5, atol=1e-6)


def test_a_rank_that_fails_fails_the_run_naming_it():
    record = fit(2, metrics=functools.partial(regression, fail_on_rank=1))
    assert record.summary["status"] == "failed"
    assert record.summary["reason"].startswith("RankFailed: rank 1: RuntimeError: out of memory, say"), \
        record.summary["reason"]


def test_a_non_finite_loss_on_one_rank_stops_every_rank():
    record = fit(2, metrics=functools.partial(regression, nan_on_rank=1))
    assert record.summary["status"] == "failed"
    # rank 1's NaN gradients, summed into every rank's, make rank 0's loss NaN from the next step
    assert record.summary["reason"] == "NonFiniteLoss: non-finite total_loss at epoch 1 (train) on rank 0, 1"


def test_a_distributed_run_resumes_identically(tmp_path, one_process):
    store = CheckpointStore(tmp_path)
    slot = store.slot("t", "v", "abc", "data", "code")
    first = fit(2, epochs=2, checkpoint=slot)
    assert first.summary["epochs_run"] == 2
    (slot.folder / "final.pt").unlink()  # as if the job had been stopped after epoch 2
    resumed = fit(2, checkpoint=slot)
    uninterrupted = fit(2)
    pd.testing.assert_frame_equal(reproducible(resumed.history), reproducible(uninterrupted.history))
    assert not list(slot.folder.glob("ranks-*")), "the rendezvous folder is removed"


def test_a_killed_rank_fails_the_run_in_time_and_a_rerun_resumes_identically(tmp_path):
    slot = CheckpointStore(tmp_path).slot("t", "v", "abc", "data", "code")
    start = time.perf_counter()
    killed = fit(2, epochs=3, checkpoint=slot, metrics=functools.partial(regression, kill_rank_at_step=(1, 10)))
    assert time.perf_counter() - start < 30, "the others are stopped, not left waiting"
    assert killed.summary["status"] == "failed" and killed.summary["epochs_run"] == 1, killed.summary
    assert killed.summary["reason"] == "RankFailed: rank 1: its process was killed by SIGKILL"
    resumed = fit(2, epochs=3, checkpoint=slot)
    pd.testing.assert_frame_equal(reproducible(resumed.history), reproducible(fit(2, epochs=3).history))


def test_world_size_is_checked():
    cfg = from_dict(TrainerConfig, {"distributed": {"world_size": "auto"}})
    assert cfg.distributed.world_size == "auto"
    with pytest.raises(ConfigError, match="trainer.distributed.world_size: got 0"):
        from_dict(TrainerConfig, {"distributed": {"world_size": 0}}, where="trainer")
    assert fit(2, batch_size=1).summary["reason"].startswith("DistributedError: trainer.batch_size: got 1")


def test_a_run_under_torchrun_is_refused(monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    monkeypatch.setenv("WORLD_SIZE", "4")
    reason = fit(1).summary["reason"]
    assert reason.startswith("DistributedError: trainer.distributed: this run was started by torchrun"), reason


def test_shares_of_a_batch_cover_it_once():
    rows = torch.arange(11)
    shares = [Ranks(r, 3).share(rows) for r in range(3)]
    assert sorted(torch.cat(shares).tolist()) == list(range(11)) and [len(s) for s in shares] == [4, 4, 3]
    assert os.environ.get("RANK") is None, "no torchrun variables leak into the tests"


def quantise(ranks: Ranks, *, drawn: bool = True) -> dict[str, list[torch.Tensor]]:
    """One EMA step of a fresh quantiser on this rank's share of a batch: every rank's
    buffers. ``drawn``: the codebook is drawn from the batch (else set from a fixed seed)."""
    from sweeplab.pipelines.ae.model import VectorQuantizer  # noqa: PLC0415 - a family's model, in a rank

    torch.manual_seed(0)
    vq = VectorQuantizer(4, 8, ema=True)
    if not drawn:
        vq.initialised.fill_(True)
    z, mask = torch.randn(6, 5, 4, generator=torch.Generator().manual_seed(1)), torch.ones(6, 5, dtype=torch.bool)
    torch.manual_seed(10 + ranks.rank)  # ranks draw differently: the codebook must still be rank 0's
    vq(ranks.share(z), ranks.share(mask))
    return {name: ranks.gather(buffer) for name, buffer in vq.state_dict().items()}


def test_the_quantiser_keeps_one_codebook_across_ranks_and_counts_the_whole_batch():
    from sweeplab.training.distributed import launch  # noqa: PLC0415

    for drawn in (True, False):
        buffers = launch(functools.partial(quantise, drawn=drawn), world=2, backend_name="gloo", timeout_s=30)
        for name, (rank0, rank1) in buffers.items():
            torch.testing.assert_close(rank0, rank1, msg=f"{name} differs between ranks")
    alone = quantise(Ranks(), drawn=False)  # the same codebook, the whole batch in one process
    for name in ("cluster_size", "code_sum", "codebook"):
        torch.testing.assert_close(buffers[name][0], alone[name][0], msg=f"{name}: not the whole batch's")
