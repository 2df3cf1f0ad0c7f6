"""Two CPU ranks (gloo) against one process, per discovered family: how far the numbers are
apart at the same global batch, and the time of an epoch each way.

For each family, the first variant of its first sweep under ``--env=tiny`` (its data and
model sizes) trains ``--epochs`` epochs at world size 1 and 2, one thread per rank. The
difference is the largest over every best-epoch metric of the summary (train and val),
relative to the one-process value with an absolute floor of 1e-6. Families whose losses are
not all means over samples differ by more than rounding (README, "Beyond one process");
``--also gw.loss.contrastive=0`` adds a row with an override, to show the rest of a family.

    python benchmarks/bench_ranks.py --project /tmp/steps [--epochs 2] [--also gw:loss.contrastive=0]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

from bench_steps import row_options, rows, tiny_inputs

from sweeplab.training import train
from sweeplab.training.distributed import DistributedConfig


def run(family, config: dict, inputs: dict, world: int, epochs: int) -> tuple[dict, float, float]:
    """The summary, the whole call's seconds (starting the ranks included) and the median
    training epoch's seconds (from the history's samples per second)."""
    cfg, setup = family.setup(config, inputs)
    trainer = dataclasses.replace(cfg.trainer, epochs=epochs, threads=1, patience=None,
                                  distributed=DistributedConfig(world_size=world))
    start = time.perf_counter()
    record = train(setup, trainer=trainer, run=config)
    seconds = time.perf_counter() - start
    assert record.summary["status"] == "completed", record.summary["reason"]
    n_train = len(next(iter(setup.train_data.values())))
    epoch_s = statistics.median(n_train / record.history.loc[record.history["split"] == "train", "samples_per_s"])
    return record.summary, seconds, epoch_s


def differences(one: dict, two: dict) -> dict[str, float]:
    """Per metric, |two - one| / max(|one|, 1e-6), over the best epoch's train and val metrics."""
    return {f"{split}.{k}": abs(two["best"][split][k] - v) / max(abs(v), 1e-6)
            for split in ("train", "val") for k, v in one["best"][split].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    row_options(parser)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    families, params, inputs = tiny_inputs(args.project)
    results = {}
    for label, name, config in rows(families, params, args.also):
        one, call_one, epoch_one = run(families[name], config, inputs[name], 1, args.epochs)
        two, call_two, epoch_two = run(families[name], config, inputs[name], 2, args.epochs)
        diffs = differences(one, two)
        worst = max(diffs, key=diffs.get)
        results[label] = {"max_relative_difference": diffs[worst], "metric": worst, "differences": diffs,
                          "train_epoch_s": {"1": epoch_one, "2": epoch_two}, "call_s": {"1": call_one, "2": call_two}}
        print(f"{label}: max difference {diffs[worst]:.2g} ({worst}); training epoch {epoch_one:.3f} s at 1 rank, "  # noqa: T201
              f"{epoch_two:.3f} s at 2; whole call {call_one:.1f} s and {call_two:.1f} s", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
