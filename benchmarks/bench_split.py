"""Splitting a large unsplit event file: peak memory, and time beside a plain file copy.

Writes a synthetic unsplit file of ``--events`` events (default 1,000,000, about 370 MB),
then, each in a fresh process: splits it exactly as the ``split_events`` node and the
catalog's HDF5 dataset do, and copies the file byte for byte. Peak memory is the split
process's maximum resident set size. Target: under 400 MB.

    python benchmarks/bench_split.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweeplab.datasets.hdf5 import H5ArraysDataset
from sweeplab.pipelines.events.synthetic import generate_events

SPLIT = """
import json, resource, sys, time
from sweeplab.datasets.hdf5 import H5ArraysDataset, H5File
from sweeplab.pipelines.events.nodes import split_events
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
params = {"fractions": {"train": 0.7, "val": 0.15, "test": 0.15}, "seed": 0, "step_size": 65536}
H5ArraysDataset(filepath=sys.argv[2]).save(split_events(H5File(sys.argv[1]), params))
print(json.dumps({"seconds": time.perf_counter() - start, "imports_mb": base / 1024,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

COPY = """
import json, shutil, sys, time
start = time.perf_counter()
shutil.copyfile(sys.argv[1], sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    n = parser.parse_args().events

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "unsplit.h5"
        start = time.perf_counter()
        H5ArraysDataset(filepath=str(source)).save(generate_events({"n_events": n, "seed": 1}))
        size_mb = source.stat().st_size / 2**20
        print(f"generated {n:,} events ({size_mb:.0f} MB) in {time.perf_counter() - start:.1f} s")  # noqa: T201
        split = child(SPLIT, str(source), str(Path(tmp) / "split.h5"))
        copy = child(COPY, str(source), str(Path(tmp) / "copy.h5"))
    print(f"split: {split['seconds']:6.2f} s   copy: {copy['seconds']:6.2f} s   "  # noqa: T201
          f"ratio {split['seconds'] / copy['seconds']:.1f}x")
    print(f"split peak memory: {split['peak_mb']:.0f} MB (after imports {split['imports_mb']:.0f} MB); "  # noqa: T201
          f"target < 400 MB")


if __name__ == "__main__":
    main()
