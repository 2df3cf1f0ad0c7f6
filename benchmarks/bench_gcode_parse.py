"""Parsing and token extraction speed for G-code, in lines per second (target >= 200,000).

Builds a program of ``--lines`` lines in the style CNC programs use (line numbers, motion
with coordinates and feeds, arcs, modal continuation lines, comments), then times
``parse_program`` plus ``iter_tokens`` over it, best of ``--repeat`` runs.

    python benchmarks/bench_gcode_parse.py [--lines 500000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sweeplab.pipelines.gcode.parser import iter_tokens, parse_program


def program(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    xs, ys = rng.uniform(-50, 150, n).round(3), rng.uniform(-50, 150, n).round(3)
    kinds = rng.choice(6, n, p=[0.35, 0.3, 0.15, 0.1, 0.05, 0.05])
    lines = []
    for i in range(n):
        k, x, y = kinds[i], xs[i], ys[i]
        if k == 0:
            lines.append(f"N{10 * i} G1 X{x} Y{y} F{600 + i % 5 * 100}")
        elif k == 1:
            lines.append(f"X{x} Y{y}")  # modal continuation
        elif k == 2:
            lines.append(f"N{10 * i} G2 X{x} Y{y} I{(x - y) / 4:.3f} J0. ; arc")
        elif k == 3:
            lines.append(f"G0 Z{abs(y) / 10:.2f} (retract)")
        elif k == 4:
            lines.append("S8000 M3")
        else:
            lines.append(f"G3X{x}Y{y}R12.5")  # no spaces
    return ["G21 G90", "G0 X0 Y0", *lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lines = program(args.lines)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        report = parse_program(lines, source="bench.nc")
        n_tokens = sum(1 for _ in iter_tokens(report.blocks))
        best = min(best, time.perf_counter() - start)
    print(f"{len(lines):,} lines, {n_tokens:,} tokens in {best:.2f} s: "  # noqa: T201
          f"{len(lines) / best:,.0f} lines/s (target >= 200,000)")


if __name__ == "__main__":
    main()
