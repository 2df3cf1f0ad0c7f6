"""Parsing and tokenising speed for G-code, in lines per second (target >= 200,000).

Builds a program of ``--lines`` lines in the style CNC programs use (line numbers, motion
with coordinates and feeds, arcs, modal continuation lines, comments), then times, best of
``--repeat`` runs each: the per-line parser alone (``parse_line`` on every line: the
baseline), ``parse_program`` (the whole-file pass), and ``parse_program`` plus tokenising
into v2 token ids (``program_tokens`` + ``Vocabulary.encode``).

    python benchmarks/bench_gcode_parse.py [--lines 500000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml

from sweeplab.pipelines.cnc.parser import parse_line, parse_program
from sweeplab.pipelines.cnc.tokens import TokenSpec, Vocabulary, program_tokens

UNITS = yaml.safe_load(Path("conf/base/parameters_gcode.yml").read_text())["cnc"]["vocabulary"]["units"]


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


def tokenise(text: str, vocab: Vocabulary) -> int:
    ids, _ = vocab.encode(program_tokens(parse_program(text, source="bench.nc"), vocab.spec))
    return len(ids)


def line_by_line(lines: list[str]) -> int:
    return sum(parse_line(line, "bench.nc") is not None for line in lines)


def best_of(repeat: int, work) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lines = program(args.lines)
    text = "\n".join(lines)
    spec = TokenSpec("v2", units=UNITS)
    vocab = Vocabulary.build([program_tokens(parse_program(lines[:20_000]), spec)], spec)
    baseline_s, _ = best_of(args.repeat, lambda: line_by_line(lines))
    parse_s, _ = best_of(args.repeat, lambda: len(parse_program(text, source="bench.nc").lines))
    both_s, n_tokens = best_of(args.repeat, lambda: tokenise(text, vocab))
    rate = {name: len(lines) / s for name, s in [("line", baseline_s), ("parse", parse_s), ("both", both_s)]}
    print(f"{len(lines):,} lines; per-line parser (baseline): {rate['line']:,.0f} lines/s; "  # noqa: T201
          f"whole-file parse: {rate['parse']:,.0f} lines/s ({rate['parse'] / rate['line']:.1f}x); "
          f"parse + tokenise ({n_tokens:,} v2 ids): {rate['both']:,.0f} lines/s "
          f"({rate['both'] / rate['line']:.1f}x; target >= 200,000)")

if __name__ == "__main__":
    main()
