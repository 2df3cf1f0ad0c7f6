"""Wall time of the default ``kedro run --pipelines=vae_configs`` from an empty scratch project
(the splat fit included), then of the same command again (the fit read from its cache, the
variants restored from checkpoints). Target: the first at most 5 minutes on 2 cores; the
second refits nothing.

It ends with the last fresh run's results: what the README's story quotes.

    python benchmarks/bench_vae_configs.py [--repeat 2]
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
COLUMNS = ["experiment", "rec_xy", "rec_scale", "rec_rot", "rec_feat", "kl", "active_units", "std_ratio_xy",
           "std_ratio_scale", "std_ratio_rot", "std_ratio_feat", "best_epoch"]


def newest(project: Path, relative: str) -> Path:
    return sorted((project / relative).glob(f"*/{Path(relative).name}"))[-1]


def timed_run(project: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines=vae_configs"], cwd=project, env=ENV,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    firsts, agains = [], []
    for i in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as tmp:
            project = scratch_project(Path(tmp))
            first = timed_run(project)
            fit = json.loads(newest(project, "data/08_reporting/splats/fit_report.json").read_text())
            table = pd.read_csv(newest(project, "data/08_reporting/vae_configs/results.csv"))
            again = timed_run(project)
            refit = json.loads(newest(project, "data/08_reporting/splats/fit_report.json").read_text())
        firsts.append(first)
        agains.append(again)
        print(f"run {i}: first {first:5.1f} s (fit {fit['fit_s']:.1f} s, PSNR {fit['psnr_final']:.1f} dB, "  # noqa: T201
              f"cached {fit['cached']})   again {again:5.1f} s (fit cached {refit['cached']})", flush=True)
    print(f"first run: median {statistics.median(firsts):.1f} s, range {min(firsts):.1f}-{max(firsts):.1f} s "  # noqa: T201
          f"(target <= 300 s); again: median {statistics.median(agains):.1f} s")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[COLUMNS].round(3).to_string(index=False))  # noqa: T201


if __name__ == "__main__":
    main()
