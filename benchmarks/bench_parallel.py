"""Wall time of the default ``kedro run --pipelines=ae_sweep`` with 2 ParallelRunner workers
against the sequential run (1 worker), in alternation, each from an empty scratch project.

Besides the whole run it prints the training phase, from the first training node's start to
the last one's end (read from ``info.log``): data prep and the report are serial, so that is
where workers can help. Target on 2 cores: the whole run at least 1.5x faster.

    python benchmarks/bench_parallel.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _scratch import scratch_project

ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
LOG_LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - \S+ - \w+ - (Running|Completed) node: (\S+)")


def training_phase(log: Path) -> float:
    """Seconds from the first training node's start to the last training node's end."""
    starts, ends = [], []
    for line in log.read_text().splitlines():
        match = LOG_LINE.match(line)
        if match and "train_autoencoder" in line:
            when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            (starts if match.group(2) == "Running" else ends).append(when)
    return max(ends) - min(starts)


def one_run(workers: int) -> tuple[float, float]:
    """(whole run, training phase) in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        project = scratch_project(Path(tmp))
        runner = [] if workers == 1 else ["--runner=ParallelRunner", f"--runner-params=max_workers={workers}"]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines=ae_sweep", *runner], cwd=project,
                       env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start, training_phase(project / "info.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    pairs = [(one_run(1), one_run(args.workers)) for _ in range(args.repeat)]
    for i, ((one, one_train), (many, many_train)) in enumerate(pairs, 1):
        print(f"pair {i}: 1 worker {one:5.1f} s (training {one_train:5.1f} s)   "  # noqa: T201
              f"{args.workers} workers {many:5.1f} s (training {many_train:5.1f} s)   "
              f"speed-up {one / many:.2f} (training {one_train / many_train:.2f})")
    whole = statistics.median(o / m for (o, _), (m, _) in pairs)
    train = statistics.median(o / m for (_, o), (_, m) in pairs)
    print(f"speed-up with {args.workers} workers: median {whole:.2f} whole run (target >= 1.5), "  # noqa: T201
          f"{train:.2f} training phase")


if __name__ == "__main__":
    main()
