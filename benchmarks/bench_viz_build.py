"""kedro-viz at sweep scale: ``kedro viz build`` of ``ae_sweep`` widened by seeds.

Two measurements, each in an empty scratch project whose ``conf/local`` sets the seeds:

- ``kedro viz build`` end to end, as a user runs it, for each size (target at 1,000
  variants: at most 60 s; kedro-viz itself stops at 300 s, writes nothing and exits 0);
- the namespace tree alone (kedro-viz's ``populate_tree``) on the sizes' ``ae_sweep``
  pipeline, kedro-viz's own method against Sweeplab's (``sweeplab.integration.viz``), in one process:
  the ratio is the baseline.

    python benchmarks/bench_viz_build.py [--sizes 9 90 1008] [--tree-sizes 90 450]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _scratch import scratch_project

ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
CONDITIONS = 9  # ae_sweep's grid: 3 latent spaces x 3 betas

TREE = """
import sys, time
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from kedro_viz.data_access.repositories.modular_pipelines import ModularPipelinesRepository
from sweeplab.integration import viz
bootstrap_project(".")
pipeline = pipelines["ae_sweep"]
viz.install()
for name, method in (("kedro-viz", viz.KEDRO_VIZ["populate_tree"]), ("sweeplab", viz.populate_tree)):
    start = time.perf_counter()
    method(ModularPipelinesRepository(), pipeline)
    print(name, time.perf_counter() - start, len(pipeline.nodes))
"""


def with_variants(project: Path, variants: int) -> int:
    seeds = -(-variants // CONDITIONS)
    (project / "conf/local/parameters.yml").write_text(yaml.safe_dump({"ae_sweep": {"seeds": list(range(seeds))}}))
    return seeds * CONDITIONS


def build(project: Path) -> tuple[float, bool]:
    """Seconds of ``kedro viz build``, and whether it wrote the sweep's pipeline."""
    built = project / "build/api/pipelines/ae_sweep"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kedro", "viz", "build"], cwd=project, env=ENV, check=True,
                   capture_output=True)
    return time.perf_counter() - start, built.exists()


def say(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - a benchmark's output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[9, 90, 1008])
    parser.add_argument("--tree-sizes", type=int, nargs="+", default=[90, 450])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = scratch_project(Path(tmp))
        say("kedro viz build (every registered pipeline; ae_sweep widened by seeds)")
        for size in args.sizes:
            variants = with_variants(project, size)
            seconds, wrote = build(project)
            say(f"  {variants:5d} variants: {seconds:6.1f} s{'' if wrote else '  (wrote no ae_sweep: timed out?)'}")
        say("namespace tree of ae_sweep: kedro-viz's method / Sweeplab's, same process")
        for size in args.tree_sizes:
            variants = with_variants(project, size)
            said = subprocess.run([sys.executable, "-c", TREE], cwd=project, env=ENV, check=True,
                                  capture_output=True, text=True).stdout.split("\n")
            times = {line.split()[0]: (float(line.split()[1]), int(line.split()[2])) for line in said if line}
            (theirs, nodes), (ours, _) = times["kedro-viz"], times["sweeplab"]
            say(f"  {variants:5d} variants ({nodes} nodes): kedro-viz {theirs:7.2f} s, sweeplab {ours:6.3f} s, "
                  f"ratio {theirs / ours:7.0f}x")


if __name__ == "__main__":
    main()
