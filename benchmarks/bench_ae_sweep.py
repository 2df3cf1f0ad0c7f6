"""Wall time of the default ``kedro run --pipelines=ae_sweep`` against a plain PyTorch script.

Both run here, one after the other, as whole processes (interpreter start and imports
included). The Kedro run starts from a scratch copy of the project (no data, no
checkpoints), so it generates, splits, trains all 9 variants, draws every figure and
writes the report. The plain script then trains the same 9 models on the arrays that run
produced. Target: ratio <= 1.15.

Timings on a shared 2-core machine drift by 20% from minute to minute, so the two are
run in alternation ``--repeat`` times (default 3) and the median of the paired ratios is
the figure; every pair is printed. CPU time (user + system, of the process and its children)
is printed beside wall time: it is steadier here, though it counts both cores while training.

    python benchmarks/bench_ae_sweep.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _scratch import REPO, scratch_project

ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process."""
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, children_cpu() - cpu


def latest(folder: Path) -> Path:
    return sorted(folder.glob("*/*"))[-1]


def one_pair() -> tuple[tuple[float, float], tuple[float, float]]:
    """(kedro (wall, cpu), plain (wall, cpu)), the Kedro run from an empty scratch project."""
    with tempfile.TemporaryDirectory() as tmp:
        project = scratch_project(Path(tmp))
        kedro_s = timed([sys.executable, "-m", "kedro", "run", "--pipelines=ae_sweep"], project)
        split = latest(project / "data/03_primary/events_split.h5")
        norm = latest(project / "data/04_feature/events_normaliser.json")
        plain_s = timed([sys.executable, str(REPO / "benchmarks/plain_ae_sweep.py"), str(split), str(norm)], project)
    return kedro_s, plain_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    pairs = [one_pair() for _ in range(parser.parse_args().repeat)]
    for i, ((kedro_s, kedro_cpu), (plain_s, plain_cpu)) in enumerate(pairs, 1):
        print(f"pair {i}: kedro run {kedro_s:6.1f} s (CPU {kedro_cpu:6.1f} s)   "  # noqa: T201
              f"plain script {plain_s:6.1f} s (CPU {plain_cpu:6.1f} s)   "
              f"ratio {kedro_s / plain_s:.3f} (CPU {kedro_cpu / plain_cpu:.3f})")
    kedro_med = statistics.median(k[0] for k, _ in pairs)
    ratio = statistics.median(k[0] / p[0] for k, p in pairs)
    cpu_ratio = statistics.median(k[1] / p[1] for k, p in pairs)
    print(f"kedro run --pipelines=ae_sweep : median {kedro_med:6.1f} s  (target <= 90 s)")  # noqa: T201
    print(f"ratio kedro / plain            : median {ratio:6.3f}  (target <= 1.15); CPU time {cpu_ratio:.3f}")  # noqa: T201


if __name__ == "__main__":
    main()
