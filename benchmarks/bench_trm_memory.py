"""Activation memory of one TRM training step at the paper's model size (``conf/full``), on CPU.

The figure is what autograd saves for the backward of one training call (the bytes of every
tensor it packs), which is what a GPU must hold beside the weights and optimiser state. It is
measured for sequences that have run 1, then more supervision steps, at batch 1 and 2, and
extrapolated linearly to the group's global batch (256).

    python benchmarks/bench_trm_memory.py [--batches 1 2] [--calls 4] [--precision fp32]

Run against other code with ``PYTHONPATH=<clone>/src`` (the model's public API is all it uses).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch
import yaml

from sweeplab.pipelines.arc.data import VOCAB_SIZE
from sweeplab.pipelines.trm.model import TRM, TRMModelConfig, trm_metrics

REPO = Path(__file__).resolve().parents[1]
GLOBAL_BATCH = 256


def full_model_config() -> TRMModelConfig:
    base = yaml.safe_load((REPO / "conf/base/parameters_trm.yml").read_text())["trm"]["model"]
    full = yaml.safe_load((REPO / "conf/full/parameters.yml").read_text())["trm"]["model"]
    max_size = yaml.safe_load((REPO / "conf/full/parameters.yml").read_text())["arc"]["max_size"]
    return TRMModelConfig(**(base | full)), max_size


def saved_bytes(model: TRM, rows: dict[str, torch.Tensor], precision: str) -> tuple[int, float]:
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext())
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
        metrics = trm_metrics(model, rows)
    metrics["total_loss"].backward()
    model.zero_grad(set_to_none=True)
    return total, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--calls", type=int, default=4, help="training calls per batch size (steps run)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg, max_size = full_model_config()
    length = max_size * max_size
    print(f"TRM at conf/full: hidden {cfg.hidden}, H_cycles {cfg.H_cycles}, L_cycles {cfg.L_cycles}, "  # noqa: T201
          f"halt_max_steps {cfg.halt_max_steps}, {cfg.prefix_len + length} tokens, {args.precision}")
    results = []
    for batch in args.batches:
        torch.manual_seed(0)
        model = TRM(cfg, length=length, n_puzzles=4, demos=torch.zeros(4, 1, 2, length, dtype=torch.long),
                    demo_mask=torch.ones(4, 1, dtype=torch.bool)).train()
        generator = torch.Generator().manual_seed(batch)
        rows = {"inputs": torch.randint(2, VOCAB_SIZE, (batch, length), generator=generator),
                "labels": torch.randint(2, VOCAB_SIZE, (batch, length), generator=generator),
                "puzzle": torch.arange(batch) % 4, "query_demo": torch.full((batch,), -1)}
        for call in range(1, args.calls + 1):
            held, seconds = saved_bytes(model, rows, args.precision)
            carry = getattr(model, "carry", None)  # code without a carry runs every step in one call
            steps = int(carry.steps.max()) if carry is not None else cfg.halt_max_steps
            per_sequence = held / batch
            results.append({"batch": batch, "call": call, "steps_run": steps, "held_bytes": held,
                            "per_sequence_mb": per_sequence / 2**20,
                            "at_global_batch_gb": per_sequence * GLOBAL_BATCH / 2**30, "seconds": seconds})
            print(f"batch {batch}, call {call} (sequences at step {steps}): {held / 2**20:,.0f} MiB held for "  # noqa: T201
                  f"the backward, {per_sequence / 2**20:,.0f} MiB a sequence, "
                  f"{per_sequence * GLOBAL_BATCH / 2**30:,.1f} GiB at batch {GLOBAL_BATCH}; {seconds:.1f} s", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
