"""The training loop: seeding, device, in-memory batching, validation, best epoch, early
stopping, stop rules, gradient clipping, the non-finite guard, checkpoints and resume.

A family supplies ``build_model`` (called after seeding, so initialisation is reproducible)
and ``batch_metrics(model, batch) -> {name: scalar tensor}``; the entry ``total_loss`` is the
one optimised, every entry is logged per epoch for train and val.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from sweeplab.training.checkpoints import CheckpointSlot

logger = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
BatchMetrics = Callable[[nn.Module, Batch], dict[str, torch.Tensor]]
# A stop rule sees (epoch, {"train/x": .., "val/x": ..}) and returns a reason to stop, or None.
StopRule = Callable[[int, dict[str, float]], str | None]

OBJECTIVE = "total_loss"


@dataclass(frozen=True)
class TrainerConfig:
    epochs: int = 5
    batch_size: int = 512
    eval_batch_size: int = 4096
    lr: float = 1.0e-3
    weight_decay: float = 0.0
    grad_clip: float | None = None  # max global gradient norm; None: no clipping
    patience: int | None = None  # epochs without val improvement before stopping; None: never
    monitor: str = OBJECTIVE  # the val metric that picks the best epoch (lower is better)
    device: str = "auto"  # auto: CUDA when present, else CPU

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"trainer.{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"trainer.lr must be positive, got {self.lr}")


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


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to_tensors(data: Mapping[str, Any], device: torch.device) -> Batch:
    return {k: torch.as_tensor(v).to(device) for k, v in data.items()}


def _n_rows(data: Batch) -> int:
    sizes = {len(v) for v in data.values()}
    if len(sizes) != 1:
        raise ValueError(f"training arrays differ in length: { {k: len(v) for k, v in data.items()} }")
    return sizes.pop()


def _batches(data: Batch, batch_size: int, order: torch.Tensor | None):
    n = _n_rows(data)
    for start in range(0, n, batch_size):
        if order is None:
            yield {k: v[start : start + batch_size] for k, v in data.items()}
        else:
            idx = order[start : start + batch_size]
            yield {k: v.index_select(0, idx) for k, v in data.items()}


def _check_finite(metrics: dict[str, torch.Tensor], epoch: int, split: str) -> None:
    values = torch.stack([m.detach().float() for m in metrics.values()])
    if not torch.isfinite(values).all():
        bad = next(k for k, m in metrics.items() if not torch.isfinite(m).all())
        raise NonFiniteLoss(f"non-finite {bad} at epoch {epoch} ({split})")


def _run_epoch(model, batch_metrics, data, batch_size, epoch, split, optimizer=None, grad_clip=None, generator=None):
    training = optimizer is not None
    model.train(training)
    order = torch.randperm(_n_rows(data), generator=generator).to(next(iter(data.values())).device) if training else None
    sums: dict[str, float] = {}
    seen = 0
    with torch.set_grad_enabled(training):
        for batch in _batches(data, batch_size, order):
            metrics = batch_metrics(model, batch)
            _check_finite(metrics, epoch, split)
            if training:
                optimizer.zero_grad(set_to_none=True)
                metrics[OBJECTIVE].backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
            n = len(next(iter(batch.values())))
            seen += n
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * n
    model.train()
    return {k: s / seen for k, s in sums.items()}


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _summary(run: Mapping[str, Any], status: str, reason: str, history: list[dict], best_epoch: int | None, wall_s: float) -> dict[str, Any]:
    def metrics_at(epoch: int | None, split: str) -> dict[str, float]:
        rows = [r for r in history if r["epoch"] == epoch and r["split"] == split]
        return {k: v for k, v in rows[0].items() if k not in ("epoch", "split")} if rows else {}

    last = max((r["epoch"] for r in history), default=None)
    return {
        "sweep": run.get("sweep"),
        "variant": run.get("variant"),
        "condition": dict(run.get("condition", {})),
        "seed": run.get("seed"),
        "status": status,
        "reason": reason,
        "best_epoch": best_epoch,
        "epochs_run": last or 0,
        "final": {"train": metrics_at(last, "train"), "val": metrics_at(last, "val")},
        "best": {"train": metrics_at(best_epoch, "train"), "val": metrics_at(best_epoch, "val")},
        "wall_s": round(wall_s, 3),
        "config_hash": run.get("config_hash"),
    }


def history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> the history DataFrame; it keeps its columns even when no epoch finished."""
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["epoch", "split"])


def failed_record(run: Mapping[str, Any], reason: str, wall_s: float = 0.0) -> RunRecord:
    """The record of a variant that failed before it trained an epoch."""
    return RunRecord({}, history_frame([]), _summary(run, "failed", reason, [], None, wall_s))


def train(
    *,
    build_model: Callable[[], nn.Module],
    batch_metrics: BatchMetrics,
    train_data: Mapping[str, Any],
    val_data: Mapping[str, Any],
    trainer: TrainerConfig,
    run: Mapping[str, Any],
    checkpoint: CheckpointSlot | None = None,
    stop_rules: Sequence[StopRule] = (),
) -> RunRecord:
    """Train one variant and return its run record; never raises for a failed run.

    ``run`` carries the resolved config's identity: sweep, variant, condition, seed and
    config_hash. Any exception or non-finite metric ends the run as ``failed`` with the
    reason; the last good epoch stays checkpointed so that running again continues from it.
    """
    start_time = time.perf_counter()
    name = f"{run.get('sweep')}.{run.get('variant')}"
    if checkpoint is not None and (done := checkpoint.final()) is not None:
        logger.info("%s: restored finished run from %s (no retraining)", name, checkpoint.folder)
        summary = dict(done["summary"], restored=True)
        return RunRecord(done["weights"], history_frame(done["history"]), summary)

    history: list[dict[str, Any]] = []
    best_epoch, best_value, best_weights = None, math.inf, {}
    try:
        seed = int(run["seed"])
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # for any third-party code that still draws from numpy
        generator = torch.Generator().manual_seed(seed)
        device = pick_device(trainer.device)
        model = build_model().to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=trainer.lr, weight_decay=trainer.weight_decay)
        train_t, val_t = _to_tensors(train_data, device), _to_tensors(val_data, device)

        start_epoch, stale = 0, 0
        state = checkpoint.latest() if checkpoint is not None else None
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            generator.set_state(state["generator"])
            start_epoch, stale, history = state["epoch"], state["stale"], list(state["history"])
            best_epoch, best_value, best_weights = state["best_epoch"], state["best_value"], state["best_weights"]
            logger.info("%s: continuing from the checkpoint of epoch %d", name, start_epoch)

        status, reason = "completed", "finished all epochs"
        bar = tqdm(total=trainer.epochs, initial=start_epoch, desc=name, unit="epoch", leave=False, disable=None)
        for epoch in range(start_epoch + 1, trainer.epochs + 1):
            train_m = _run_epoch(model, batch_metrics, train_t, trainer.batch_size, epoch, "train",
                                 optimizer, trainer.grad_clip, generator)
            val_m = _run_epoch(model, batch_metrics, val_t, trainer.eval_batch_size, epoch, "val")
            history += [{"epoch": epoch, "split": "train", **train_m}, {"epoch": epoch, "split": "val", **val_m}]
            if trainer.monitor not in val_m:
                raise KeyError(f"trainer.monitor '{trainer.monitor}' is not a metric; have {sorted(val_m)}")
            if val_m[trainer.monitor] < best_value:
                best_epoch, best_value, best_weights, stale = epoch, val_m[trainer.monitor], _copy_state(model), 0
            else:
                stale += 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in val_m.items() if k == trainer.monitor})
            if checkpoint is not None:
                checkpoint.save_epoch({
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "torch_rng": torch.get_rng_state(), "generator": generator.get_state(),
                    "epoch": epoch, "stale": stale, "history": history,
                    "best_epoch": best_epoch, "best_value": best_value, "best_weights": best_weights,
                })
            flat = {f"train/{k}": v for k, v in train_m.items()} | {f"val/{k}": v for k, v in val_m.items()}
            stop = next((r for rule in stop_rules if (r := rule(epoch, flat))), None)
            if stop:
                reason = stop
                break
            if trainer.patience is not None and stale >= trainer.patience:
                reason = f"early stop: val {trainer.monitor} did not improve for {stale} epochs"
                break
        bar.close()
    except Exception as exc:  # isolate the variant: a failed record, never a crashed sweep
        logger.error("%s failed: %s\n%s", name, exc, traceback.format_exc(limit=-3))
        summary = _summary(run, "failed", f"{type(exc).__name__}: {exc}", history, best_epoch,
                           time.perf_counter() - start_time)
        return RunRecord(best_weights, history_frame(history), summary)

    summary = _summary(run, status, reason, history, best_epoch, time.perf_counter() - start_time)
    record = RunRecord(best_weights, history_frame(history), summary)
    if checkpoint is not None:
        checkpoint.save_final({"weights": best_weights, "history": history, "summary": summary})
    logger.info("%s: %s after %d epochs (best epoch %s)", name, status, summary["epochs_run"], best_epoch)
    return record
