"""Training steps per second of every discovered family on CPU: the first variant of its first
sweep under ``--env=tiny`` (its data and model sizes), trained through the one loop, evaluation
included, one thread. Small models, where the loop's own per-step costs (host reads of metrics,
norms and guards) weigh most.

    python benchmarks/bench_steps.py --project /tmp/steps [--epochs 4] [--repeat 3] [--also ae:model.latent_space=vq]

The project folder is prepared once (each family's data prep under ``--env=tiny``) and can be
reused, so that other code can be timed on the same inputs: ``PYTHONPATH=<clone>/src python
benchmarks/bench_steps.py --project /tmp/steps``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from _scratch import scratch_project
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from sweeplab.families import discover
from sweeplab.sweeps import expand, find_sweeps, resolve_variant_config, set_dotted
from sweeplab.training import train

ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}


def prepared(project: Path, families: list[str]) -> Path:
    if not (project / "conf").exists():
        scratch_project(project)
    for name in families:
        if not any((project / "data/05_model_input").glob(f"{name}_inputs*")):
            subprocess.run([sys.executable, "-m", "kedro", "run", f"--pipelines={name}_prep", "--env=tiny"],
                           cwd=project, env=ENV, check=True, capture_output=True)
    return project


def tiny_inputs(project: Path) -> tuple[dict, dict, dict]:
    """Every discovered family, the ``--env=tiny`` parameters and each family's model inputs,
    prepared in ``project`` once."""
    families = discover()
    project = prepared(project.resolve(), sorted(families))
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="tiny") as session:
        context = session.load_context()
        params = dict(context.config_loader["parameters"])
        inputs = {name: context.catalog.load(family.inputs) for name, family in families.items()}
    return families, params, inputs


def first_variant(family, params: dict) -> dict:
    """The resolved config of the first variant of the family's first sweep."""
    sweep = next(n for n, spec in sorted(find_sweeps(params).items()) if spec["family"] == family.name)
    return resolve_variant_config(params[family.name], family=family, variant=expand(sweep, params[sweep])[0])


def row_options(parser: argparse.ArgumentParser) -> None:
    """``--project`` and ``--also``: the prepared project and the extra rows (see ``rows``)."""
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--also", action="append", default=[], metavar="FAMILY:KEY=VALUE",
                        help="an extra row: the family's first variant with one override")


def rows(families: dict, params: dict, also: list[str]) -> list[tuple[str, str, dict]]:
    """``(label, family, config)``: each family's first variant, then one per ``also`` entry
    ``FAMILY:KEY=VALUE`` (that family's first variant with the override, the value read as YAML)."""
    found = [(name, name, first_variant(family, params)) for name, family in sorted(families.items())]
    for extra in also:
        name, _, override = extra.partition(":")
        key, _, value = override.partition("=")
        config = copy.deepcopy(first_variant(families[name], params))
        set_dotted(config["config"], key, yaml.safe_load(value), where=extra)
        found.append((f"{name} ({override})", name, config))
    return found


def steps_per_second(family, config: dict, inputs: dict, epochs: int) -> float:
    cfg, setup = family.setup(config, inputs)
    trainer = dataclasses.replace(cfg.trainer, epochs=epochs, threads=1, patience=None)
    n_train = len(next(iter(setup.train_data.values())))
    start = time.perf_counter()
    record = train(setup, trainer=trainer, run=config)
    seconds = time.perf_counter() - start
    assert record.summary["status"] in ("completed", "stopped") or record.summary["epochs_run"], record.summary
    return record.summary["epochs_run"] * math.ceil(n_train / trainer.batch_size) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    row_options(parser)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    families, params, inputs = tiny_inputs(args.project)
    torch.set_num_threads(1)
    results = {}
    for label, name, config in rows(families, params, args.also):
        runs = [steps_per_second(families[name], config, inputs[name], args.epochs) for _ in range(args.repeat)]
        results[label] = {"median": statistics.median(runs), "runs": runs}
        print(f"{label}: {statistics.median(runs):.1f} steps/s (runs {', '.join(f'{r:.1f}' for r in runs)})",  # noqa: T201
              flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
