"""One variant on several processes (``trainer.distributed``): data-parallel training that the
loop owns, on N GPUs with NCCL or on CPU processes with gloo.

The training node stays one Kedro node. For a world size above 1, ``launch`` starts the ranks
itself (``spawn``), they meet through a file in a fresh folder (no port to race for), and the
node gets rank 0's run record back. Every rank draws the same permutation of the training
rows and takes its share of each global batch, so the number of steps and the learning-rate
schedule do not depend on the world size. A rank's loss is weighted by its share of the
batch's rows before the gradients are summed across ranks, so that for a loss that is a
mean over samples the step equals one process's at the same global batch (up to float
rounding). Metrics are summed across ranks once per epoch, so every rank's stop rules and
best epoch decide on the same numbers.

A family whose model keeps statistics of its own (the AE's EMA codebook) sums them with
:func:`all_reduce_sum` and shares a rank-0 draw with :func:`broadcast`; outside a
distributed run both do nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException

from sweeplab.config import PositiveInt
from sweeplab.errors import InputError

TORCHRUN_ENV = ("TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE")  # set by torchrun in every process it starts


@dataclass(frozen=True)
class DistributedConfig:
    world_size: PositiveInt | Literal["auto"] = 1  # auto: every visible GPU (1 on a CPU-only machine)
    backend: Literal["auto", "nccl", "gloo"] = "auto"  # auto: NCCL on CUDA, gloo on the CPU
    timeout_s: PositiveInt = 300  # a rank that waits longer on the others fails the variant


class DistributedError(InputError):
    """A distributed setting that cannot run here; the message names the parameter."""


def world_size(cfg: DistributedConfig, device: torch.device) -> int:
    """How many ranks ``cfg`` asks for on ``device``; refuses torchrun, which would start a
    copy of the whole Kedro run per process."""
    if any(name in os.environ for name in TORCHRUN_ENV) and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise DistributedError(
            "trainer.distributed: this run was started by torchrun, which would run the whole pipeline once per "
            "process; run `kedro run` once, with --params <family>.trainer.distributed.world_size=N (or auto), "
            "and Sweeplab starts the ranks of each variant itself")
    if cfg.world_size == "auto":
        return max(1, torch.cuda.device_count()) if device.type == "cuda" else 1
    if device.type == "cuda" and cfg.world_size > torch.cuda.device_count():
        raise DistributedError(f"trainer.distributed.world_size: got {cfg.world_size}, but this process sees "
                               f"{torch.cuda.device_count()} GPU(s); ask the scheduler for as many")
    if device.type == "mps" and cfg.world_size > 1:
        raise DistributedError("trainer.distributed.world_size: MPS is one device; expected 1 on a Mac")
    return cfg.world_size


@dataclass(frozen=True)
class Ranks:
    """This process's place in a run: rank ``rank`` of ``world`` (1: a plain run)."""

    rank: int = 0
    world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch (every world-th, from its rank on): shares differ
        by at most one row."""
        return rows[self.rank :: self.world] if self.distributed else rows

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over ranks, in place."""
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor

    def reduce_gradients(self, parameters: list[torch.nn.Parameter]) -> None:
        """Every gradient summed over ranks, in one collective and without reading anything on
        the host. Every rank runs the same code on the same model, so the same parameters have
        a gradient on each (a rank without rows computes on one, weighted zero, for this)."""
        if not self.distributed:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` from every rank, in rank order (random states for a checkpoint)."""
        if not self.distributed:
            return [obj]
        found: list[Any] = [None] * self.world
        dist.all_gather_object(found, obj)
        return found

    def from_rank0(self, obj: Any) -> Any:
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """For a model's own statistics: ``tensor`` summed over ranks in place (no-op in one process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def broadcast(tensor: torch.Tensor) -> torch.Tensor:
    """For a model's own draws: rank 0's ``tensor`` on every rank, in place (no-op in one process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.broadcast(tensor, src=0)
    return tensor


def rank_device(device: torch.device, rank: int) -> torch.device:
    return torch.device("cuda", rank) if device.type == "cuda" else device


def backend(cfg: DistributedConfig, device: torch.device) -> str:
    if cfg.backend == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if cfg.backend == "nccl" and device.type != "cuda":
        raise DistributedError(f"trainer.distributed.backend: nccl needs CUDA; this variant trains on {device.type}")
    return cfg.backend


class RankFailed(RuntimeError):
    """A rank ended with an error; the message names the rank and the error."""


def _first_failure(exc: ProcessException, folder: Path) -> str:
    """Which rank failed first, and how. A rank that raised left its error in ``folder``; one
    killed (out of memory, a signal) left none, and the others then lose their peer."""
    errors = {int(path.stem.removeprefix("error-")): path for path in folder.glob("error-*.txt")}
    rank = exc.error_index
    if isinstance(exc, mp.ProcessExitedException) and rank not in errors:
        how = f"killed by {exc.signal_name}" if exc.signal_name else f"exited with status {exc.exit_code}"
        return f"rank {rank}: its process was {how}"
    if errors:  # the first to fail wrote first; the others wrote when they lost it
        rank = min(errors, key=lambda r: errors[r].stat().st_mtime_ns)
        return f"rank {rank}: {errors[rank].read_text().splitlines()[0]}"
    return f"rank {rank}: {' '.join(str(exc).split())[:300]}"


def _rank_main(rank: int, world: int, folder: str, backend_name: str, timeout_s: int,
               work: Callable[[Ranks], Any]) -> None:
    """One rank: join the group, run ``work``, and leave its result (rank 0) or its error."""
    out = Path(folder)
    try:
        dist.init_process_group(backend_name, init_method=f"file://{out / 'rendezvous'}", rank=rank,
                                world_size=world, timeout=datetime.timedelta(seconds=timeout_s))
        result = work(Ranks(rank, world))
        if rank == 0:
            torch.save(result, out / "result.pt")
        dist.barrier()  # no rank tears its connections down while another still uses them
    except BaseException as exc:
        (out / f"error-{rank}.txt").write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# A spawned rank imports the parent's entry point (Kedro's CLI), which sets logging up from
# KEDRO_LOGGING_CONFIG; the project's file would have every rank announce it and write to the
# run's log file. Ranks log to the terminal instead: this package's INFO lines (rank 0 is the
# only one that reports progress) and everyone's warnings.
RANKS_LOGGING = """\
version: 1
disable_existing_loggers: False
formatters:
  plain: {format: "%(asctime)s %(levelname)s %(message)s", datefmt: "%H:%M:%S"}
handlers:
  console: {class: logging.StreamHandler, stream: ext://sys.stderr, formatter: plain}
loggers:
  sweeplab: {level: INFO}
root: {level: WARNING, handlers: [console]}
"""


@contextlib.contextmanager
def _ranks_logging(folder: Path) -> Iterator[None]:
    path = folder / "logging.yml"
    path.write_text(RANKS_LOGGING)
    before = os.environ.get("KEDRO_LOGGING_CONFIG")
    os.environ["KEDRO_LOGGING_CONFIG"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("KEDRO_LOGGING_CONFIG", None)
        else:
            os.environ["KEDRO_LOGGING_CONFIG"] = before


def launch(work: Callable[[Ranks], Any], *, world: int, backend_name: str, timeout_s: int,
           folder: Path | None = None) -> Any:
    """Run ``work(ranks)`` on ``world`` spawned processes and return rank 0's result, which
    must be plain data (tensors in dicts and lists, numbers, strings). When a
    rank fails the others are stopped, and ``RankFailed`` names the first rank that failed."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ranks-", dir=folder) as tmp, _ranks_logging(Path(tmp)):
        try:
            mp.start_processes(_rank_main, args=(world, tmp, backend_name, timeout_s, work), nprocs=world,
                               join=True, start_method="spawn")
        except ProcessException as exc:  # a rank raised, or its process died
            raise RankFailed(_first_failure(exc, Path(tmp))) from None
        # rank 0's result is plain data (tensors, dicts, lists, numbers, strings): nothing to unpickle as code
        return torch.load(Path(tmp) / "result.pt", weights_only=True)
