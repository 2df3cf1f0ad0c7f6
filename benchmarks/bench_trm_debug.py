"""Wall time of the default ``kedro run --pipelines=trm_debug`` from an empty scratch project:
ARC data prep, the nine experiments and the report. Target: at most 10 minutes on 2 cores.

It ends with the last run's results and the decision tree's walk: what the README quotes.

    python benchmarks/bench_trm_debug.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _scratch import scratch_project

ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
COLUMNS = ["experiment", "train_pairs_accuracy", "accuracy", "train_pairs_exact_accuracy", "exact_accuracy", "loss", "q_halt_accuracy", "cond_norm", "cond_cosine",
           "wall_s"]
TARGET_S = 600


def newest(project: Path, relative: str) -> Path:
    return sorted((project / relative).glob(f"*/{Path(relative).name}"))[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    times = []
    for i in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as tmp:
            project = scratch_project(Path(tmp))
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines=trm_debug"], cwd=project, env=ENV,
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
            table = pd.read_csv(newest(project, "data/08_reporting/trm_debug/results.csv"))
            walk = json.loads((newest(project, "data/08_reporting/trm_debug/report") / "decision_tree.json").read_text())
        print(f"run {i}: {times[-1]:.1f} s", flush=True)  # noqa: T201
    print(f"trm_debug: median {statistics.median(times):.1f} s, range {min(times):.1f}-{max(times):.1f} s "  # noqa: T201
          f"(target <= {TARGET_S} s)")
    print(table[[c for c in COLUMNS if c in table]].sort_values("accuracy", ascending=False)  # noqa: T201
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for step in walk["path"]:
        print(f"  {step['node']}: {step['values']} {step['threshold']} -> {step['met']}")  # noqa: T201
    print(f"  conclusion: {walk['conclusion']}; next: {walk['next_phase']}; level: {walk['level']}")  # noqa: T201


if __name__ == "__main__":
    main()
