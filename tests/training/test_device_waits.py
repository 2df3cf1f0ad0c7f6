"""No training step makes the host wait for the device: every discovered family's variants
train an epoch with as many operations that synchronise (a read of a value, a selection by
mask, a count of codes) at N steps as at 2N. Checked on CPU by recording the operators torch
dispatches, so that a GPU is not needed to find a per-step wait."""

from __future__ import annotations

import collections
import dataclasses
import sys
from pathlib import Path

import pytest
import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from torch.utils._python_dispatch import TorchDispatchMode

from sweeplab.pipeline_registry import FAMILIES
from sweeplab.sweeps import expand, resolve_variant_config
from sweeplab.training import train
from tests.conftest import copy_project
from tests.test_kedro_run import kedro_cli
from tests.test_processes import TINY, TINY_ENV, tiny_sweep

# operators whose result size or value the host needs before it can go on: on a GPU each one
# waits for every kernel queued before it
WAITING = {"_local_scalar_dense", "nonzero", "masked_select", "bincount", "_unique2", "unique_dim",
           "unique_consecutive", "repeat_interleave"}
INDEXING = {"index", "index_put", "index_put_", "_index_put_impl_"}  # wait when an index is a mask
# waits a family keeps on purpose, each for a reason its code states
BY_DESIGN = {
    # the TRM's demonstration encoder encodes only the batch's distinct puzzles' real pairs
    "_unique2 in pipelines/trm/model.py:DemoEncoder.forward",
    "nonzero in pipelines/trm/model.py:DemoEncoder.forward",
}


def caller() -> str:
    """Where in the project the operator was called: ``path:qualified function name``."""
    frame = sys._getframe(2)
    while frame is not None and "/sweeplab/" not in frame.f_code.co_filename:
        frame = frame.f_back
    if frame is None:
        return "torch"
    return f"{frame.f_code.co_filename.split('/sweeplab/')[-1]}:{frame.f_code.co_qualname}"


def from_optimiser() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if "torch/optim/" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


class DeviceWaits(TorchDispatchMode):
    """Counts synchronising operators by the project line that called them. AdamW's reads of
    its step count are left out: that tensor lives on the host whatever the device."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._overloadpacket.__name__
        if name in WAITING or (name in INDEXING and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1])):
            if not from_optimiser():
                self.calls[f"{name} in {caller()}"] += 1
        return func(*args, **(kwargs or {}))


def test_the_counter_sees_what_waits_and_not_what_does_not():
    x, mask = torch.arange(6.0), torch.tensor([True, False] * 3)
    with DeviceWaits() as waits:
        _ = x * mask, x.sum() / mask.sum().clamp_min(1), torch.zeros(4).index_add_(0, torch.tensor([1]), x[:1])
    assert not waits.calls
    with DeviceWaits() as waits:
        _ = x[mask], bool(x.sum()), torch.bincount(torch.tensor([0, 2]))
        x[mask] = 0
    assert sorted(c.split(" in ")[0] for c in waits.calls.elements()) == [
        "_local_scalar_dense", "bincount", "index", "index_put_"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("waits") / "project")


def model_inputs(project: Path, family: str) -> dict:
    prep = kedro_cli(project, f"--pipelines={family}_prep", TINY_ENV)
    assert prep.returncode == 0, prep.stderr[-3000:]
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="tiny") as session:
        return session.load_context().catalog.load(FAMILIES[family].inputs)


@pytest.mark.slow  # a data prep per family
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_no_training_step_waits_for_the_device(project, family):
    inputs = model_inputs(project, family)
    sweep, _ = tiny_sweep(family)
    for variant in expand(sweep, TINY[sweep]):
        config = resolve_variant_config(TINY[family], family=FAMILIES[family], variant=variant)
        cfg, setup = FAMILIES[family].setup(config, inputs)
        n_train = len(next(iter(setup.train_data.values())))
        counts = []
        for batch_size in (n_train // 4, n_train // 8):  # 4 steps and 8 (or 5 and 9)
            trainer = dataclasses.replace(cfg.trainer, epochs=1, batch_size=batch_size, threads=1, patience=None)
            with DeviceWaits() as waits:
                train(setup, trainer=trainer, run=config)
            counts.append({call: n for call, n in waits.calls.items() if call not in BY_DESIGN})
        assert counts[0] == counts[1], f"{variant.name}: waits per epoch at 4 steps {counts[0]}, at 8 {counts[1]}"
