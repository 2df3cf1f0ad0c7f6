"""The training loop: seeding, device, in-memory batching, validation, best epoch, early
stopping, stop rules, gradient clipping, the non-finite guard, checkpoints and resume.

A family supplies ``build_model`` (called after seeding, so initialisation is reproducible)
and ``batch_metrics(model, batch) -> {name: scalar tensor}``; the entry ``total_loss`` is the
one optimised, every entry is logged per epoch for train and val. Optional extras:

- ``augment(batch) -> batch``: applied to training batches only, drawing from torch's global
  random stream (seeded, and saved in checkpoints, so augmented runs resume identically);
- ``split_metrics(model, data) -> {name: float}``: metrics of the whole validation split that
  are not means over batches (how many distinct tokens a model predicts, say);
- ``stop_rules``: each sees the history so far and may end the run with its own status;
- ``on_epoch(epoch)``: called before each epoch's training (a resumed run included), for
  schedules that depend on the epoch (a KL weight's warm-up, say);
- ``parameter_groups(model) -> {name: parameters}`` (default: one per top-level module) and
  ``group_lr`` (a group's own learning rate). Every group's gradient norm before clipping is
  logged per epoch as ``grad_norm/<group>``; the learning rate follows ``lr_factor`` each
  step (``sweeplab.training.optim``), with weight decay on weight matrices only.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from sweeplab.datasets.torch_weights import is_state_dict
from sweeplab.run_records import COMPLETED, FAILED, THROUGHPUT, make_summary
from sweeplab.training import distributed
from sweeplab.training.checkpoints import CheckpointSlot
from sweeplab.training.devices import (
    DeviceError,
    Precision,
    configure_matmul,
    peak_memory_mb,
    pick_device,
    reset_peak_memory,
    rng_states,
    set_rng_states,
)
from sweeplab.training.distributed import Ranks
from sweeplab.training.optim import (
    ParameterGroups,
    build_optimiser,
    gradient_norms,
    lr_factor,
    set_lr,
    top_level_groups,
)
from sweeplab.training.trainer import OBJECTIVE, TrainerConfig

logger = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
BatchMetrics = Callable[[nn.Module, Batch], dict[str, torch.Tensor]]


class Stop(NamedTuple):
    """Why a stop rule ended a run, and the status the run record gets (e.g. ``collapsed``)."""

    status: str
    reason: str


# A stop rule sees the history rows so far ({"epoch", "split", metrics...}), returns Stop or None.
StopRule = Callable[[list[dict[str, Any]]], Stop | None]
SplitMetrics = Callable[[nn.Module, Batch], dict[str, float]]

WORKERS_ENV = "SWEEPLAB_WORKERS"  # how many training processes share this machine (set by ``run``)

# Told of each epoch as it ends (``<sweep>.<variant>``, the epoch, its history rows): the live
# view of trackers. Rank 0 of a one-process run tells them; ranks of a distributed run run in
# processes of their own, whose epochs a tracker sees when the run ends.
EpochListener = Callable[[str, int, list[dict[str, Any]]], None]
_listeners: list[EpochListener] = []


def add_epoch_listener(listener: EpochListener) -> None:
    """Tell ``listener`` of every epoch from now on; adding it again changes nothing (a worker
    process trains many variants, and a tracker listens once per variant)."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_epoch_listener(listener: EpochListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _tell(name: str, epoch: int, rows: list[dict[str, Any]]) -> None:
    for listener in list(_listeners):
        try:
            listener(name, epoch, rows)
        except Exception as exc:  # a view of the run, never a reason for it to fail
            logger.warning("%s: an epoch listener failed with %s: %s", name, type(exc).__name__, exc)


def default_threads() -> int:
    """This process's share of the cores it may run on (Slurm's and taskset's limits included):
    N parallel workers each using every core would slow one another down many times over."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    # a Slurm task may see every core of a shared node (no task affinity plugin), but owns only
    # what it was given: --cpus-per-task, else the job's CPUs on this node (1 unless asked)
    for variable in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"):
        allotted = os.environ.get(variable, "")
        if allotted.isdigit() and int(allotted) > 0:
            cores = min(cores, int(allotted))
            break
    try:
        workers = max(1, int(os.environ.get(WORKERS_ENV, "1")))
    except ValueError:
        workers = 1
    return max(1, cores // workers)


@dataclass(frozen=True)
class Training:
    """One variant's training, as its family sets it up (``Family.training``): everything
    ``train`` takes beyond the trainer config, the run's identity and its checkpoint."""

    build_model: Callable[[], nn.Module]
    batch_metrics: BatchMetrics
    train_data: Mapping[str, Any]
    val_data: Mapping[str, Any]
    stop_rules: Sequence[StopRule] = ()
    augment: Callable[[Batch], Batch] | None = None
    split_metrics: SplitMetrics | None = None
    on_epoch: Callable[[int], None] | None = None
    parameter_groups: ParameterGroups = top_level_groups  # named groups: grad norms, own learning rates
    group_lr: Mapping[str, float] = field(default_factory=dict)  # a group's own learning rate
    summary: Mapping[str, Any] = field(default_factory=dict)  # extra entries for the run's summary


@dataclass
class RunRecord:
    """What every training node returns: weights, per-epoch history, summary."""

    weights: dict[str, torch.Tensor]
    history: pd.DataFrame
    summary: dict[str, Any]

    def as_outputs(self) -> tuple[dict[str, torch.Tensor], pd.DataFrame, dict[str, Any]]:
        return self.weights, self.history, self.summary


class NonFiniteLoss(RuntimeError):
    pass


def _to_tensors(data: Mapping[str, Any], device: torch.device) -> Batch:
    return {k: torch.as_tensor(v).to(device) for k, v in data.items()}


def _n_rows(data: Batch) -> int:
    sizes = {len(v) for v in data.values()}
    if len(sizes) != 1:
        raise ValueError(f"training arrays differ in length: { {k: len(v) for k, v in data.items()} }")
    return sizes.pop()


def _batches(data: Batch, batch_size: int, order: torch.Tensor | None, ranks: Ranks):
    """``(rows, global rows)`` per batch: this rank's share of each batch of ``batch_size``
    rows (all of it in one process) and how many rows the whole batch has."""
    n = _n_rows(data)
    if order is None and ranks.distributed:  # evaluation in order, shared across ranks
        order = torch.arange(n, device=next(iter(data.values())).device)
    for start in range(0, n, batch_size):
        if order is None:
            yield {k: v[start : start + batch_size] for k, v in data.items()}, min(batch_size, n - start)
        else:
            idx = order[start : start + batch_size]
            yield {k: v.index_select(0, ranks.share(idx)) for k, v in data.items()}, len(idx)


def _sum_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


class _EpochMetrics:
    """An epoch's per-batch metrics, kept on their device as one vector: the sample-weighted
    sums in float64 (the very sums a host would make) and, when ``epoch`` is given, which ones
    went non-finite. The host reads them once, at the epoch's end (``result``); a non-finite
    metric still fails the run naming the epoch and the metric."""

    def __init__(self, epoch: int | None = None, split: str = "train", ranks: Ranks = Ranks()) -> None:
        self.epoch, self.split, self.ranks = epoch, split, ranks  # ranks: whose sums to add up
        self.names: list[str] = []
        self.sums: torch.Tensor | None = None
        self.bad: torch.Tensor | None = None
        self.settled: dict[str, float] = {}  # sums of earlier metric sets, were a batch to change them
        self.seen = 0
        self.device = torch.device("cpu")

    def add(self, metrics: Mapping[str, torch.Tensor | float], n: int) -> None:
        if list(metrics) != self.names:
            self._settle()
            self.names = list(metrics)
        device = self.device = next((v.device for v in metrics.values() if isinstance(v, torch.Tensor)),
                                    torch.device("cpu"))
        dtype = _sum_dtype(device)
        values = torch.stack([v.detach().to(dtype) if isinstance(v, torch.Tensor)
                              else torch.tensor(float(v), dtype=dtype, device=device) for v in metrics.values()])
        self.seen += n
        if self.epoch is not None:
            flags = ~torch.isfinite(values)
            self.bad = flags if self.bad is None else self.bad | flags
        self.sums = values * n if self.sums is None else self.sums + values * n

    def check(self) -> None:
        if self.bad is not None and bool(self.bad.any()):
            where = ""
            if self.ranks.distributed:  # bit r of a flag: rank r saw it
                bits = int(self.bad[self.bad > 0][0])
                where = " on rank " + ", ".join(str(r) for r in range(self.ranks.world) if bits >> r & 1)
            raise NonFiniteLoss(f"non-finite {self.names[int(self.bad.nonzero()[0])]} at epoch {self.epoch} "
                                f"({self.split}){where}")

    def _settle(self) -> None:
        if self.sums is not None and self.ranks.distributed:  # every rank's sums and flags, added up
            flags = (self.bad.to(self.sums.dtype) * 2**self.ranks.rank if self.bad is not None
                     else torch.zeros_like(self.sums))
            both = self.ranks.sum_(torch.cat([self.sums, flags]))
            self.sums, self.bad = both[: len(self.names)], None if self.bad is None else both[len(self.names) :]
        self.check()
        if self.sums is not None:
            for name, total in zip(self.names, self.sums.tolist(), strict=True):
                self.settled[name] = self.settled.get(name, 0.0) + total
        self.sums = self.bad = None

    def result(self) -> dict[str, float]:
        self._settle()
        seen = self.seen
        if self.ranks.distributed:
            seen = int(self.ranks.sum_(torch.tensor([seen], dtype=_sum_dtype(self.device), device=self.device)).item())
        return {k: s / seen for k, s in self.settled.items()}


def _train_epoch(model, batch_metrics, data, *, trainer: TrainerConfig, optimizer, generator, epoch: int,
                 augment: Callable[[Batch], Batch] | None, precision: Precision, ranks: Ranks = Ranks()):
    model.train()
    start = time.perf_counter()
    reset_peak_memory(precision.device)
    n_rows = _n_rows(data)
    order = torch.randperm(n_rows, generator=generator).to(next(iter(data.values())).device)
    steps_per_epoch = math.ceil(n_rows / trainer.batch_size)
    means, norms = _EpochMetrics(epoch, "train", ranks), _EpochMetrics()  # norms: the same on every rank
    parameters = [p for p in model.parameters() if p.requires_grad]
    reduce = functools.partial(ranks.reduce_gradients, parameters) if ranks.distributed else None
    for i, (share, n_global) in enumerate(_batches(data, trainer.batch_size, order, ranks)):
        # the step is derived from the epoch, so a resumed run follows the same schedule
        factor = lr_factor((epoch - 1) * steps_per_epoch + i, trainer=trainer,
                           total_steps=trainer.epochs * steps_per_epoch)
        set_lr(optimizer, factor)
        n = len(next(iter(share.values())))
        # a last batch smaller than the world leaves a rank without rows: it computes on one,
        # weighted zero, so that it takes part in every collective
        rows = share if n else {k: v[:1] for k, v in data.items()}
        batch = augment(rows) if augment is not None else rows
        with precision.autocast():
            metrics = batch_metrics(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss = metrics[OBJECTIVE]
        if ranks.distributed:  # this rank's share of the batch mean; the ranks' gradients are summed
            loss = loss * (n / n_global)
        precision.backward(loss, optimizer, reduce=reduce)
        group_norms, total_norm = gradient_norms(model, optimizer)  # before clipping; one computation
        norms.add(group_norms, 1)
        if trainer.grad_clip is not None:
            nn.utils.clip_grads_with_norm_(model.parameters(), trainer.grad_clip, total_norm)
        precision.step(optimizer)
        if n:
            means.add(metrics, len(next(iter(batch.values()))))
    result = means.result() | norms.result() | {"lr_factor": factor}  # the host's one read of the epoch
    result["samples_per_s"] = n_rows / (time.perf_counter() - start)
    if (peak := peak_memory_mb(precision.device)) is not None:
        result["peak_memory_mb"] = peak
    return result


@torch.no_grad()
def _evaluate(model, batch_metrics, data, *, batch_size: int, epoch: int | None, split_metrics: SplitMetrics | None,
              precision: Precision | None = None, ranks: Ranks = Ranks()):
    """Sample-weighted means over batches, plus the split's own metrics; leaves train mode on.
    ``epoch`` None (outside training): a non-finite metric is returned rather than raised.
    Over several ranks each evaluates its share of every batch, and rank 0 the split's own
    metrics (of the whole split), which every rank then receives."""
    model.eval()
    means = _EpochMetrics(epoch, "val", ranks)
    for batch, _ in _batches(data, batch_size, None, ranks):
        if n := len(next(iter(batch.values()))):
            with precision.autocast() if precision is not None else contextlib.nullcontext():
                metrics = batch_metrics(model, batch)
            means.add(metrics, n)
    result = means.result()
    if split_metrics is not None:
        result |= ranks.from_rank0(split_metrics(model, data) if ranks.rank == 0 else None)
    model.train()
    return result


def evaluate(model: nn.Module, batch_metrics: BatchMetrics, data: Mapping[str, Any], *, batch_size: int,
             split_metrics: SplitMetrics | None = None) -> dict[str, float]:
    """A trained model's metrics over a whole split (arrays or tensors), as the loop computes
    its validation metrics each epoch; on the model's device, and the model keeps its mode."""
    was_training = model.training
    device = next(model.parameters(), torch.empty(0)).device
    try:
        return _evaluate(model, batch_metrics, _to_tensors(data, device), batch_size=batch_size, epoch=None,
                         split_metrics=split_metrics)
    finally:
        model.train(was_training)


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _summary(run: Mapping[str, Any], status: str, reason: str, history: list[dict], best_epoch: int | None,
             *, wall_s: float, monitor: str = OBJECTIVE, threads: int | None = None,
             device: torch.device | str | None = None, precision: str | None = None,
             world_size: int | str | None = None) -> dict[str, Any]:
    def metrics_at(epoch: int | None, split: str) -> dict[str, float]:
        rows = [r for r in history if r["epoch"] == epoch and r["split"] == split]
        return {k: v for k, v in rows[0].items() if k not in ("epoch", "split", *THROUGHPUT)} if rows else {}

    last = max((r["epoch"] for r in history), default=None)
    best_val = metrics_at(best_epoch, "val")
    return make_summary(**{
        "sweep": run.get("sweep"),
        "variant": run.get("variant"),
        "condition": dict(run.get("condition", {})),
        "seed": run.get("seed"),
        "status": status,
        "reason": reason,
        "best_epoch": best_epoch,
        "epochs_run": last or 0,
        "final": {"train": metrics_at(last, "train"), "val": metrics_at(last, "val")},
        "best": {"train": metrics_at(best_epoch, "train"), "val": best_val},
        "monitor": monitor,
        "best_val_loss": best_val.get(monitor),  # the monitored val metric at the best epoch
        "wall_s": round(wall_s, 3),
        "threads": threads,
        "config_hash": run.get("config_hash"),
        # which code made the numbers, on what (``sweeplab.code_identity``)
        "code_identity": run.get("code_identity"),
        "code_version": run.get("code_version"),
        "torch_version": str(torch.__version__),  # a str subclass that weights_only loading refuses
        "device": None if device is None else str(device),
        "precision": precision,
        "world_size": world_size,
    })


def reproducible(history: pd.DataFrame) -> pd.DataFrame:
    """A history without its timings (``THROUGHPUT``): what the same config and seed give again."""
    return history.drop(columns=[c for c in THROUGHPUT if c in history])


def history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> the history DataFrame; it keeps its columns even when no epoch finished."""
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["epoch", "split"])


@dataclass
class _Progress:
    """Where a run stands after its latest finished epoch: all a checkpoint has to hold."""

    epoch: int = 0
    stale: int = 0  # epochs since the monitored val metric last improved
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float = math.inf
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def record(self, epoch: int, train_m: dict, val_m: dict, monitor: str, model: nn.Module) -> None:
        if monitor not in val_m:
            raise KeyError(f"trainer.monitor '{monitor}' is not a metric; have {sorted(val_m)}")
        self.epoch = epoch
        self.history += [{"epoch": epoch, "split": "train", **train_m}, {"epoch": epoch, "split": "val", **val_m}]
        if val_m[monitor] < self.best_value:
            self.best_epoch, self.best_value, self.best_weights, self.stale = epoch, val_m[monitor], _copy_state(model), 0
        else:
            self.stale += 1


def _save_checkpoint(slot: CheckpointSlot, progress: _Progress, model, optimizer, generator,
                     precision: Precision, ranks: Ranks = Ranks()) -> None:
    """Rank 0 writes; over several ranks the checkpoint holds every rank's random streams."""
    streams = ranks.gather(rng_states(precision.device))
    if ranks.rank == 0:
        slot.save_epoch({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": precision.state_dict(),
            "rng": streams if ranks.distributed else streams[0], "generator": generator.get_state(),
            **{f.name: getattr(progress, f.name) for f in fields(progress)},
        })


def _restore_checkpoint(state: dict[str, Any], model, optimizer, generator, precision: Precision,
                        ranks: Ranks = Ranks()) -> _Progress:
    """Model, optimiser, gradient scale and every random stream (torch's CPU one, the
    device's, the shuffling generator) as they were: the run goes on identically.
    Raises ``ValueError`` (or torch's own error) when the state does not fit this run."""
    progress = _Progress(**{f.name: state[f.name] for f in fields(_Progress)})
    if not (isinstance(progress.history, list) and all(isinstance(r, dict) for r in progress.history)
            and isinstance(progress.stale, int) and isinstance(progress.best_value, float)
            and (progress.best_epoch is None or isinstance(progress.best_epoch, int))
            and is_state_dict(progress.best_weights)):
        raise ValueError("progress fields of the wrong types")
    streams = state["rng"]
    if isinstance(streams, list) != ranks.distributed or (ranks.distributed and len(streams) != ranks.world):
        raise ValueError("random streams of another world size")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    precision.load_state_dict(state["scaler"])
    set_rng_states(streams[ranks.rank] if ranks.distributed else streams, precision.device)
    generator.set_state(state["generator"])
    return progress


def _fresh_start(build_model: Callable[[], nn.Module], trainer: TrainerConfig, seed: int, device: torch.device,
                 groups: ParameterGroups, group_lr: Mapping[str, float], ranks: Ranks = Ranks()):
    """Seeded model, optimiser and shuffling generator: the same seed, the same numbers on CPU.
    Every rank builds the same model and draws the same permutations; their other draws
    (augmentation, sampling, dropout) differ, each rank seeded from the seed and its rank."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # for any third-party code that still draws from numpy
    generator = torch.Generator().manual_seed(seed)
    model = build_model().to(device)
    optimizer = build_optimiser(model, trainer, groups(model), group_lr)
    if ranks.rank > 0:
        torch.manual_seed(hash((seed, ranks.rank)) % 2**63)
    return model, optimizer, generator


def _start(setup: Training, trainer: TrainerConfig, seed: int, device: torch.device,
           checkpoint: CheckpointSlot | None, name: str, ranks: Ranks = Ranks()):
    """A fresh seeded start, or the slot's last epoch when it holds one this run can continue;
    a checkpoint that does not fit (other code, another run) is set aside."""
    def fresh():
        return (*_fresh_start(setup.build_model, trainer, seed, device, setup.parameter_groups, setup.group_lr,
                              ranks), Precision(trainer.precision, device))

    model, optimizer, generator, precision = fresh()
    if checkpoint is None or (state := checkpoint.latest()) is None:
        return model, optimizer, generator, precision, _Progress()
    try:
        progress = _restore_checkpoint(state, model, optimizer, generator, precision, ranks)
    except (KeyError, TypeError, ValueError, RuntimeError):  # written by other code or another run
        if ranks.rank == 0:
            checkpoint.set_aside(checkpoint.folder / "last.pt")
        return (*fresh(), _Progress())
    if ranks.rank == 0:
        logger.info("%s: continuing from the checkpoint of epoch %d", name, progress.epoch)
    return model, optimizer, generator, precision, progress


def restored(checkpoint: CheckpointSlot, name: str, how: str = "restored finished run") -> RunRecord | None:
    """The finished run record a slot holds, marked ``restored``; None when it holds none."""
    if (done := checkpoint.final()) is None:
        return None
    logger.info("%s: %s from %s (no retraining)", name, how, checkpoint.folder)
    return RunRecord(done["weights"], history_frame(done["history"]), dict(done["summary"], restored=True))


def train(setup: Training, *, trainer: TrainerConfig, run: Mapping[str, Any],
          checkpoint: CheckpointSlot | None = None) -> RunRecord:
    """Train one variant and return its run record; never raises for a failed run.

    ``run`` carries the resolved config's identity: sweep, variant, condition, seed and
    config_hash. Any exception or non-finite metric ends the run as ``failed`` with the
    reason; the last good epoch stays checkpointed so that running again continues from it.
    With ``trainer.distributed`` above one rank the ranks are started here and rank 0's
    record returned (``sweeplab.training.distributed``); a rank that fails fails the run.
    """
    start_time = time.perf_counter()
    name = f"{run.get('sweep')}.{run.get('variant')}"
    if checkpoint is not None and (done := restored(checkpoint, name)) is not None:
        return done
    threads = trainer.threads or default_threads()
    try:
        device = pick_device(trainer.device)
        world = distributed.world_size(trainer.distributed, device)
        if world > 1 and trainer.batch_size < world:
            raise distributed.DistributedError(f"trainer.batch_size: got {trainer.batch_size}; expected at least "
                                               f"one row per rank (world size {world})")
        backend = distributed.backend(trainer.distributed, device) if world > 1 else None
    except (DeviceError, distributed.DistributedError) as exc:
        return _failed(run, trainer, exc, _Progress(), start_time, threads, trainer.device,
                       trainer.distributed.world_size)
    if world == 1:
        return _train(setup, trainer=trainer, run=run, checkpoint=checkpoint, device=device, threads=threads,
                      start_time=start_time)
    rank_threads = trainer.threads or max(1, default_threads() // world)
    work = functools.partial(_train_rank, setup, trainer, run, checkpoint, device, rank_threads)
    logger.info("%s: training on %d ranks (%s, %s)", name, world, device.type, backend)
    try:
        plain = distributed.launch(work, world=world, backend_name=backend, timeout_s=trainer.distributed.timeout_s,
                                   folder=checkpoint.folder if checkpoint is not None else None)
        return RunRecord(plain["weights"], history_frame(plain["history"]), plain["summary"])
    except distributed.RankFailed as exc:
        state = checkpoint.latest() if checkpoint is not None else None
        progress = _Progress(**{f.name: state[f.name] for f in fields(_Progress)}) if state else _Progress()
        return _failed(run, trainer, exc, progress, start_time, rank_threads, device, world)


def _train_rank(setup: Training, trainer: TrainerConfig, run: Mapping[str, Any], checkpoint: CheckpointSlot | None,
                device: torch.device, threads: int, ranks: Ranks) -> dict[str, Any]:
    """One rank of a distributed run (in its own process): its device, and the loop; its run
    record as plain data, for the parent to read back without unpickling objects."""
    device = distributed.rank_device(device, ranks.rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    record = _train(setup, trainer=trainer, run=run, checkpoint=checkpoint, device=device, threads=threads,
                    start_time=time.perf_counter(), ranks=ranks)
    return {"weights": record.weights, "history": record.history.to_dict("records"), "summary": record.summary}


def not_trained(run: Mapping[str, Any], trainer: TrainerConfig, why: Exception) -> RunRecord:
    """The failed record of a run that was never started, saying why."""
    return _failed(run, trainer, why, _Progress(), time.perf_counter(), trainer.threads or default_threads(),
                   trainer.device, trainer.distributed.world_size)


def _failed(run: Mapping[str, Any], trainer: TrainerConfig, exc: BaseException, progress: _Progress,
            start_time: float, threads: int, device: torch.device | str, world: int | str) -> RunRecord:
    summary = _summary(run, FAILED, f"{type(exc).__name__}: {exc}", progress.history, progress.best_epoch,
                       wall_s=time.perf_counter() - start_time, monitor=trainer.monitor, threads=threads,
                       device=device, precision=trainer.precision, world_size=world)
    return RunRecord(progress.best_weights, history_frame(progress.history), summary)


def _train(setup: Training, *, trainer: TrainerConfig, run: Mapping[str, Any], checkpoint: CheckpointSlot | None,
           device: torch.device, threads: int, start_time: float, ranks: Ranks = Ranks()) -> RunRecord:
    """The loop itself, in one process or as one rank of several."""
    name = f"{run.get('sweep')}.{run.get('variant')}"
    progress = _Progress()
    status, reason = COMPLETED, "finished all epochs"
    torch.set_num_threads(threads)
    talk = ranks.rank == 0
    try:
        seed = int(run["seed"])
        configure_matmul(device, tf32=trainer.tf32)
        model, optimizer, generator, precision, progress = _start(setup, trainer, seed, device, checkpoint, name,
                                                                  ranks)
        train_t, val_t = _to_tensors(setup.train_data, device), _to_tensors(setup.val_data, device)

        bar = tqdm(total=trainer.epochs, initial=progress.epoch, desc=name, unit="epoch", leave=False,
                   disable=None if talk else True)
        for epoch in range(progress.epoch + 1, trainer.epochs + 1):
            if setup.on_epoch is not None:
                setup.on_epoch(epoch)
            train_m = _train_epoch(model, setup.batch_metrics, train_t, trainer=trainer, optimizer=optimizer,
                                   generator=generator, epoch=epoch, augment=setup.augment, precision=precision,
                                   ranks=ranks)
            val_m = _evaluate(model, setup.batch_metrics, val_t, batch_size=trainer.eval_batch_size, epoch=epoch,
                              split_metrics=setup.split_metrics, precision=precision, ranks=ranks)
            progress.record(epoch, train_m, val_m, trainer.monitor, model)
            bar.update(1)
            bar.set_postfix({trainer.monitor: f"{val_m[trainer.monitor]:.4g}"})
            if bar.disable and talk:  # no terminal (a batch job's log): a line per epoch instead of the bar
                logger.info("%s: epoch %d/%d, val %s %.4g", name, epoch, trainer.epochs, trainer.monitor,
                            val_m[trainer.monitor])
            if checkpoint is not None:
                _save_checkpoint(checkpoint, progress, model, optimizer, generator, precision, ranks)
            if talk and _listeners and not ranks.distributed:
                _tell(name, epoch, progress.history[-2:])
            if stop := next((r for rule in setup.stop_rules if (r := rule(progress.history))), None):
                status, reason = stop
                break
            if trainer.patience is not None and progress.stale >= trainer.patience:
                reason = f"early stop: val {trainer.monitor} did not improve for {progress.stale} epochs"
                break
        bar.close()
    except Exception as exc:  # isolate the variant: a failed record, never a crashed sweep
        if ranks.distributed and not isinstance(exc, NonFiniteLoss):
            raise  # the other ranks wait on this one: its process ends, and launch() stops them
        trace = "" if isinstance(exc, NonFiniteLoss) else "\n" + traceback.format_exc(limit=-3)
        if talk:
            logger.error("%s failed: %s%s", name, exc, trace)
        return _failed(run, trainer, exc, progress, start_time, threads, device, ranks.world)

    summary = _summary(run, status, reason, progress.history, progress.best_epoch,
                       wall_s=time.perf_counter() - start_time, monitor=trainer.monitor, threads=threads,
                       device=device, precision=trainer.precision, world_size=ranks.world)
    if checkpoint is not None and talk:
        checkpoint.save_final({"weights": progress.best_weights, "history": progress.history, "summary": summary})
    if talk:
        logger.info("%s: %s after %d epochs (best epoch %s)", name, status, summary["epochs_run"], progress.best_epoch)
    return RunRecord(progress.best_weights, history_frame(progress.history), summary)
