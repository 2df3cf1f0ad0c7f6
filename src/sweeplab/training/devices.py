"""Where and in what precision a variant trains: the device ``auto`` picks, the autocast and
gradient scaler of ``trainer.precision``, and the random streams a checkpoint must hold for a
resumed run on that device to continue identically.

GPU paths are written against torch's device-generic APIs (``torch.autocast``,
``torch.amp.GradScaler``, the per-backend RNG state functions), so that the code CPU tests
run is the code a GPU runs; ``benchmarks/gpu_check.py`` checks them on a GPU when one is lent.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

import torch

from sweeplab.errors import InputError

logger = logging.getLogger(__name__)

DEVICES = ("cpu", "cuda", "mps")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(InputError):
    """A requested device this machine does not have; the message names the parameter."""


def available() -> list[str]:
    """The device kinds this process can train on, in the order ``auto`` prefers them."""
    found = ["cuda"] if torch.cuda.is_available() else []
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def unavailable(name: str) -> str | None:
    """Why ``trainer.device: name`` cannot run here, or None when it can (``auto`` always can)."""
    if name == "auto" or name in available():
        return None
    return f"got {name!r}, which this machine does not have; available: {available()} (or auto)"


@functools.cache
def _log_auto_choice(where: str, choice: str) -> None:
    logger.info("%s auto: running on %s (available here: %s)", where, choice, ", ".join(available()))


def pick_device(name: str, where: str = "trainer.device") -> torch.device:
    """``auto``: CUDA, then MPS, then CPU, logged once per process. A named device that is
    absent is an error, never a silent fallback."""
    if name == "auto":
        choice = available()[0]
        _log_auto_choice(where, choice)
        return torch.device(choice)
    if (why := unavailable(name)) is not None:
        raise DeviceError(f"{where}: {why}")
    return torch.device(name)


def configure_matmul(device: torch.device, *, tf32: bool) -> None:
    """TF32 for fp32 matrix products and convolutions on CUDA (Ampere and later), unless off."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


class Precision:
    """``trainer.precision`` on a device: the autocast around forward passes, and for fp16 a
    gradient scaler (bf16 keeps fp32's exponent range and needs none). fp32 is the plain
    path: no autocast, and a scaler that does nothing."""

    def __init__(self, name: str, device: torch.device):
        if name not in DTYPES:
            raise ValueError(f"trainer.precision: got {name!r}; expected one of {list(DTYPES)}")
        self.name, self.device = name, device
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.name])

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                 reduce: Callable[[], None] | None = None) -> None:
        """Backward, then ``reduce`` (the ranks' gradients summed, while still scaled), and the
        gradients unscaled in place: norms and clipping see true values."""
        self.scaler.scale(loss).backward()
        if reduce is not None:
            reduce()
        if self.scaler.is_enabled():
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimiser step; with fp16 it is skipped when a gradient overflowed, and the
        scale adapts."""
        if self.scaler.is_enabled():
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler.is_enabled() else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler.is_enabled() and state:
            self.scaler.load_state_dict(state)


# The accelerator's own random streams, by device kind: (get, set). CUDA keeps one generator
# per visible GPU; MPS one. Sampling on the device (augmentation, dropout, exploration) draws
# from these, so a resumed GPU run needs them as much as the CPU one.
DEVICE_RNG: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = {
    "cuda": (torch.cuda.get_rng_state_all, torch.cuda.set_rng_state_all),
    "mps": (torch.mps.get_rng_state, torch.mps.set_rng_state),
}


def rng_states(device: torch.device) -> dict[str, Any]:
    """torch's CPU stream, and the device's when it has one of its own."""
    states: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type in DEVICE_RNG:
        states[device.type] = DEVICE_RNG[device.type][0]()
    return states


def set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    """Put back what ``rng_states`` saved. A state saved on another kind of device than this
    run's is left out: the run continues, but not draw for draw (it is logged)."""
    torch.set_rng_state(states["cpu"])
    if device.type in DEVICE_RNG:
        if device.type in states:
            DEVICE_RNG[device.type][1](states[device.type])
        else:
            logger.warning("the checkpoint holds no %s random state (saved on another device): the run continues "
                           "from its epoch, with fresh %s draws", device.type, device.type)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float | None:
    """The most memory tensors took on the device since the last reset (CUDA), in MiB; None
    where torch keeps no such count (the CPU; MPS reports only what it holds now)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None
