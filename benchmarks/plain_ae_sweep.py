"""Baseline: the 9 ae_sweep models trained by a plain PyTorch script, no Kedro.

What a researcher would write by hand: the same model and loss, the same arrays, the same
epochs, batch size and optimiser, a shuffled loop and a validation pass per epoch. No
checkpoints, no run records, no figures.

    python benchmarks/plain_ae_sweep.py SPLIT_FILE NORMALISER_JSON
"""

from __future__ import annotations

import functools
import itertools
import json
import sys
import time
from pathlib import Path

import torch
import yaml

from sweeplab.datasets.hdf5 import H5File
from sweeplab.pipelines.ae.model import EventAutoencoder, ModelConfig, autoencoder_metrics
from sweeplab.pipelines.ae.nodes import build_ae_inputs

CONF = Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters_ae.yml"


def main(split_file: str, normaliser_file: str) -> None:
    start = time.perf_counter()
    params = yaml.safe_load(CONF.read_text())
    defaults, grid = params["ae"], params["ae_sweep"]["grid"]
    trainer = defaults["trainer"]
    inputs = build_ae_inputs(H5File(split_file), json.loads(Path(normaliser_file).read_text()))
    train = {k: torch.as_tensor(v) for k, v in inputs["train"].items()}
    val = {k: torch.as_tensor(v) for k, v in inputs["val"].items()}
    n = len(train["met"])
    for latent, beta in itertools.product(grid["model"]["latent_space"], grid["loss"]["globals_beta"]):
        torch.manual_seed(0)
        model = EventAutoencoder(ModelConfig(**{**defaults["model"], "latent_space": latent}))
        loss_fn = functools.partial(autoencoder_metrics, globals_beta=beta,
                                    commitment_weight=defaults["loss"]["commitment_weight"])
        opt = torch.optim.AdamW(model.parameters(), lr=trainer["lr"], weight_decay=trainer["weight_decay"])
        for _epoch in range(trainer["epochs"]):
            model.train()
            order = torch.randperm(n)
            for i in range(0, n, trainer["batch_size"]):
                idx = order[i : i + trainer["batch_size"]]
                loss = loss_fn(model, {k: v[idx] for k, v in train.items()})["total_loss"]
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), trainer["grad_clip"])
                opt.step()
            model.eval()
            with torch.no_grad():
                val_loss = loss_fn(model, val)["total_loss"].item()
        print(f"{latent:>6} beta={beta:<3} val total_loss {val_loss:.4f}", flush=True)  # noqa: T201
    print(f"plain script wall {time.perf_counter() - start:.1f} s", flush=True)  # noqa: T201


if __name__ == "__main__":
    main(*sys.argv[1:3])
