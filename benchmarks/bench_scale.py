"""How a sweep's overheads grow with its variants: ``ae_sweep`` widened by seeds to 10, 100 and
1,000 variants (1 epoch on 2,000 events), each size really run in an empty scratch project.

Per size it prints:
- ``register_pipelines()`` and building the pipeline the run asks for (target at 1,000
  variants: at most 1 s);
- ``kedro run``: from the command's start to the first training node (target: at most 15 s);
- the runner's pause between two tasks, from a node's "Completed" line to the next "Running"
  line in info.log: median and max (target: the median at 1,000 at most twice the one at 10);
- the whole run, and the report run alone on the saved records (target: at most 30 s);
- a re-run of the finished sweep: its wall time and the bytes it added (target: no new copy
  of unchanged weights or figures).
Then the whole run's least-squares slope in seconds per variant.

    python benchmarks/bench_scale.py [--sizes 10 100 1000] [--startup-only]
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
REGISTER = """
import sys, time
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.framework.cli.utils import _split_params
from sweeplab.integration import session
from sweeplab.pipeline_registry import register_pipelines
bootstrap_project(".")
with KedroSession.create(runtime_params=_split_params(None, None, sys.argv[1])) as kedro_session:
    session.record_parameters(dict(kedro_session.load_context().config_loader["parameters"]))
start = time.perf_counter()
with session.requesting(["ae_sweep"]):  # as `kedro run --pipelines=ae_sweep` does
    nodes = len(register_pipelines()["ae_sweep"].nodes)  # registered, and the one pipeline a run asks for built
print(time.perf_counter() - start, nodes)
"""


def params(variants: int) -> str:
    seeds = " ".join(str(s) for s in range(variants))
    return ("events.synthetic.n_events=2000,ae.trainer.epochs=1,ae_sweep.grid.model.latent_space=linear,"
            f"ae_sweep.grid.loss.globals_beta=1,ae_sweep.seeds={seeds}")


def node_times(log: Path) -> list[tuple[float, str, str]]:
    """(time, Running|Completed, node) for every node line of info.log."""
    rows = []
    for line in log.read_text().splitlines():
        match = LOG_LINE.match(line)
        if match:
            when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            rows.append((when, match.group(2), match.group(3)))
    return rows


def kedro_run(project: Path, pipeline: str, variants: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kedro", "run", f"--pipelines={pipeline}", f"--params={params(variants)}"],
                   cwd=project, env=ENV, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def until_first_training_node(project: Path, variants: int) -> float:
    """Start a run, stop it once the first training node has started; seconds until then."""
    log = project / "info.log"
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipelines=ae_sweep",
                             f"--params={params(variants)}"], cwd=project, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            if log.exists():
                first = [t for t, what, node in node_times(log) if what == "Running" and "train_" in node]
                if first:
                    return first[0] - started
            time.sleep(0.2)
        raise RuntimeError("the run ended before any training node started")
    finally:
        proc.kill()
        proc.wait()


def folder_bytes(folder: Path) -> int:
    """Bytes of the distinct files under ``folder`` (a hard link counts once)."""
    seen = {}
    for path in folder.rglob("*"):
        if path.is_file():
            stat = path.stat()
            seen[(stat.st_dev, stat.st_ino)] = stat.st_size
    return sum(seen.values())


def measure(variants: int, startup_only: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        project = scratch_project(Path(tmp))
        out = subprocess.run([sys.executable, "-c", REGISTER, params(variants)], cwd=project, env=ENV,
                             check=True, capture_output=True, text=True).stdout.splitlines()[-1].split()
        row = {"register": float(out[0])}
        row["first_node"] = until_first_training_node(project, variants)
        if startup_only:
            return row
        (project / "info.log").unlink()
        row["whole"] = kedro_run(project, "ae_sweep", variants)
        nodes = node_times(project / "info.log")
        pauses = [b[0] - a[0] for a, b in zip(nodes, nodes[1:], strict=False)
                  if a[1] == "Completed" and b[1] == "Running"]
        row["pause_median_ms"] = 1000 * statistics.median(pauses)
        row["pause_max_ms"] = 1000 * max(pauses)
        row["report"] = kedro_run(project, "ae_sweep_report", variants)
        before = folder_bytes(project / "data")
        row["rerun"] = kedro_run(project, "ae_sweep", variants)
        row["rerun_added_kb_per_variant"] = (folder_bytes(project / "data") - before) / 1024 / variants
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--startup-only", action="store_true", help="registration and start-up only")
    args = parser.parse_args()
    rows = {}
    for n in args.sizes:
        rows[n] = measure(n, args.startup_only)
        print(f"{n:5d} variants: " + ", ".join(f"{k} {v:.3g}" for k, v in rows[n].items()), flush=True)  # noqa: T201
    if not args.startup_only and len(rows) > 1:
        xs, ys = list(rows), [r["whole"] for r in rows.values()]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
        print(f"whole run: {slope:.3f} s per variant (least squares), "  # noqa: T201
              + ", ".join(f"{r['whole'] / n:.3f} s/variant at {n}" for n, r in rows.items()))
        small, large = min(rows), max(rows)
        print(f"pause median at {large} / at {small}: "  # noqa: T201
              f"{rows[large]['pause_median_ms'] / rows[small]['pause_median_ms']:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
