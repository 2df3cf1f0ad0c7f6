"""A GPU check, for a machine with one NVIDIA GPU (and a CPU-only run of the same code, to test it).

For every discovered family, on its ``--env=tiny`` data:

1. the first variant of its first sweep trained for 2 epochs on the CPU and on CUDA from the
   same seed (fp32, TF32 off), their best validation metrics compared: each within
   ``TOLERANCE`` (relative, plus a small absolute floor; float sums and kernels differ);
2. the CPU-trained weights evaluated on CUDA against the CPU's own evaluation of them
   (``EVAL_TOLERANCE``): a checkpoint moves between devices;
3. steps per second and peak CUDA memory at the family's ``--env=full`` model size for one
   epoch, in fp32 and bf16;

and the TRM at its ``--env=full`` size on 30x30 grids: one training step at batch 8, 16,
32, ... until memory runs out, fp32 and bf16 (``benchmarks/bench_trm_memory.py`` measures the
same on CPU without a GPU); and the splat fit at its ``--env=full`` size (G, patch side,
steps) on one batch of patches, on the CPU and on CUDA: the time of each and their PSNRs
(within ``SPLAT_PSNR_TOLERANCE_DB``).

It writes a JSON summary (``--out``) and prints one line per check; a check that needs CUDA
on a machine without it is recorded as skipped. It must finish in under 8 minutes on an
H100.

    pip install -e . && python benchmarks/gpu_check.py --project /tmp/gpu_check --out gpu_check.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
from bench_steps import first_variant, tiny_inputs
from bench_trm_memory import full_model_config
from kedro.config import OmegaConfigLoader

from sweeplab.integration.session import CONFIG_LOADER_ARGS
from sweeplab.pipelines.arc.data import VOCAB_SIZE
from sweeplab.pipelines.splats import render
from sweeplab.pipelines.trm.model import TRM, trm_metrics
from sweeplab.training import evaluate, train
from sweeplab.training.devices import Precision

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = (0.05, 1e-3)  # relative, absolute: CPU and CUDA training after 2 epochs
EVAL_TOLERANCE = (1e-3, 1e-5)  # the same weights evaluated on both devices
SPLAT_PSNR_TOLERANCE_DB = 0.5  # the same start fitted on both devices: float rounding only
BUDGET_S = 8 * 60


def close(a: float, b: float, tolerance: tuple[float, float]) -> bool:
    return abs(a - b) <= tolerance[0] * abs(a) + tolerance[1]


def trained(family, config: dict, inputs: dict, device: str, *, epochs: int = 2, precision: str = "fp32"):
    cfg, setup = family.setup(config, inputs)
    trainer = dataclasses.replace(cfg.trainer, epochs=epochs, device=device, precision=precision, tf32=False,
                                  patience=None)
    start = time.perf_counter()
    record = train(setup, trainer=trainer, run=config)
    return record, setup, cfg, time.perf_counter() - start


def device_agreement(family, config: dict, inputs: dict, cuda: bool) -> dict[str, Any]:
    cpu, setup, cfg, _ = trained(family, config, inputs, "cpu")
    out: dict[str, Any] = {"cpu": cpu.summary["best"]["val"], "cpu_status": cpu.summary["status"]}
    if not cuda:
        return out | {"cuda": "skipped: no CUDA device"}
    gpu, *_ = trained(family, config, inputs, "cuda")
    pairs = {k: (v, gpu.summary["best"]["val"].get(k)) for k, v in cpu.summary["best"]["val"].items()}
    out |= {"cuda": gpu.summary["best"]["val"], "cuda_status": gpu.summary["status"],
            "train_agrees": all(b is not None and close(a, b, TOLERANCE) for a, b in pairs.values())}
    model = setup.build_model()
    model.load_state_dict(cpu.weights)
    on_cpu = evaluate(model, setup.batch_metrics, setup.val_data, batch_size=cfg.trainer.eval_batch_size)
    on_gpu = evaluate(model.to("cuda"), setup.batch_metrics, setup.val_data, batch_size=cfg.trainer.eval_batch_size)
    out |= {"eval_cpu_weights_on_cuda": on_gpu,
            "eval_agrees": all(close(v, on_gpu[k], EVAL_TOLERANCE) for k, v in on_cpu.items())}
    return out


def full_size_throughput(family, config: dict, full: dict, inputs: dict, cuda: bool) -> dict[str, Any]:
    if not cuda:
        return {"skipped": "no CUDA device"}
    sizes = {key: full[family.name][key] for key in ("model",) if key in full[family.name]}
    trainer = {**config["config"]["trainer"], "batch_size": full[family.name]["trainer"]["batch_size"]}
    config = {**config, "config": {**config["config"], **sizes, "trainer": trainer}}
    found = {}
    for precision in ("fp32", "bf16"):
        torch.cuda.reset_peak_memory_stats()
        record, *_ = trained(family, config, inputs, "cuda", epochs=1, precision=precision)
        history = record.history[record.history["split"] == "train"]
        found[precision] = {"status": record.summary["status"],
                            "samples_per_s": float(history["samples_per_s"].iloc[-1]) if len(history) else None,
                            "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20}
    return found


def trm_batches(cuda: bool, deadline: float) -> dict[str, Any]:
    if not cuda:
        return {"skipped": "no CUDA device"}
    cfg, max_size = full_model_config()
    length = max_size**2
    model = TRM(cfg, length=length, n_puzzles=4, demos=torch.zeros(4, 1, 2, length, dtype=torch.long),
                demo_mask=torch.ones(4, 1, dtype=torch.bool)).cuda().train()
    found: dict[str, Any] = {}
    for precision in ("fp32", "bf16"):
        rows, batch = [], 8
        while time.perf_counter() < deadline:
            data = {"inputs": torch.randint(2, VOCAB_SIZE, (batch, length), device="cuda"),
                    "labels": torch.randint(2, VOCAB_SIZE, (batch, length), device="cuda"),
                    "puzzle": torch.arange(batch, device="cuda") % 4,
                    "query_demo": torch.full((batch,), -1, device="cuda")}
            try:
                torch.cuda.reset_peak_memory_stats()
                model.train()  # fresh sequences at this batch size
                start = time.perf_counter()
                with Precision(precision, torch.device("cuda")).autocast():
                    loss = trm_metrics(model, data)["total_loss"]
                loss.backward()
                torch.cuda.synchronize()
                rows.append({"batch": batch, "step_s": time.perf_counter() - start,
                             "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20})
            except torch.OutOfMemoryError:
                rows.append({"batch": batch, "out_of_memory": True})
                break
            finally:
                model.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
            batch *= 2
        found[precision] = rows
    return found


def splat_fit(full: dict, cuda: bool, n_patches: int = 16) -> dict[str, Any]:
    """One batch of the full-size fit on each device: seconds and PSNR (the CPU's always)."""
    fit = dict(full["splats"]["synthetic"], n_patches=n_patches, batch_size=n_patches)
    patches = render.load_patches(images=tuple(fit["images"]), n_patches=n_patches, size=fit["patch_size"],
                                  seed=fit["seed"], downscale=fit["downscale"])
    found: dict[str, Any] = {"n_patches": n_patches, "n_gaussians": fit["n_gaussians"], "steps": fit["steps"]}
    for device in ("cpu", "cuda") if cuda else ("cpu",):
        start = time.perf_counter()
        _, diagnostics = render.fit_splats(patches, n_gaussians=fit["n_gaussians"], steps=fit["steps"], lr=fit["lr"],
                                           seed=fit["seed"], batch_size=n_patches, device=device)
        found[device] = {"fit_s": time.perf_counter() - start, "psnr": diagnostics["psnr_final"]}
    if cuda:
        found["agree"] = abs(found["cpu"]["psnr"] - found["cuda"]["psnr"]) <= SPLAT_PSNR_TOLERANCE_DB
    else:
        found["cuda"] = "skipped: no CUDA device"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    cuda = torch.cuda.is_available()
    families, params, inputs = tiny_inputs(args.project)
    full = OmegaConfigLoader(conf_source=str(REPO / "conf"), env="full", **CONFIG_LOADER_ARGS)["parameters"]
    summary: dict[str, Any] = {"device": torch.cuda.get_device_name() if cuda else "cpu only",
                               "torch": torch.__version__, "tolerance": TOLERANCE,
                               "eval_tolerance": EVAL_TOLERANCE, "families": {}}
    for name, family in sorted(families.items()):
        config = first_variant(family, params)
        summary["families"][name] = {"agreement": device_agreement(family, config, inputs[name], cuda),
                                     "full_size": full_size_throughput(family, config, full, inputs[name], cuda)}
        print(f"{name}: {json.dumps(summary['families'][name], default=str)[:300]}", flush=True)  # noqa: T201
    summary["splat_fit"] = splat_fit(full, cuda)
    print(f"splat fit: {json.dumps(summary['splat_fit'], default=str)}", flush=True)  # noqa: T201
    summary["trm_full_batches"] = trm_batches(cuda, started + BUDGET_S - 60)
    summary["wall_s"] = time.perf_counter() - started
    args.out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"gpu check: {summary['device']}, {summary['wall_s']:.0f} s, written to {args.out}", flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
