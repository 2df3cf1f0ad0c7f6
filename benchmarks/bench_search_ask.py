"""What asking the sampler costs a trial: ``sweeplab.search.ask`` on studies of 0 to N told trials.

A trial's config node opens the study (Optuna replays the whole journal file), takes the ask
lock, opens it again with the sampler seeded by the study's size, and asks. This measures that
call as the node makes it, in a fresh store object each time (as each node has), on a journal
already holding ``n`` completed trials of ``ae_search``'s space with 4 reported epochs each.
The baseline is the random sampler on the same study (journal replay and bookkeeping only);
TPE adds its model of the results. Sizes and samplers alternate within each repeat; it prints
the median and range of each, and TPE / random.

    python benchmarks/bench_search_ask.py [--sizes 0 30 300 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from sweeplab import search

REPO = Path(__file__).resolve().parents[1]


def filled(root: Path, spec: search.SearchSpec, n: int) -> None:
    """A journal of ``n`` completed trials, each with 4 reported epochs."""
    optuna = search.optuna_module()
    study = search.StudyStore(root).open("bench", "k", spec)
    rng = np.random.default_rng(0)
    distributions = {k: p.distribution() for k, p in spec.params.items()}
    for k in range(n):
        params = {name: d.to_external_repr(d.to_internal_repr(_draw(d, rng))) for name, d in distributions.items()}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions, value=float(rng.uniform(0.8, 2.0)),
            intermediate_values={e: float(rng.uniform(0.8, 3.0)) for e in range(1, 5)},
            user_attrs={search.VARIANT_ATTR: f"t{k:04d}"}))


def _draw(distribution, rng):
    if hasattr(distribution, "choices"):
        return distribution.choices[int(rng.integers(len(distribution.choices)))]
    low, high = distribution.low, distribution.high
    value = float(np.exp(rng.uniform(np.log(low), np.log(high)))) if distribution.log else float(rng.uniform(low, high))
    return int(round(value)) if isinstance(low, int) else value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 30, 300, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    base = yaml.safe_load((REPO / "conf/base/parameters_ae.yml").read_text())["ae_search"]["search"]
    specs = {sampler: search.checked("bench", {**base, "sampler": sampler, "trials": max(args.sizes) + 1}, [0])
             for sampler in ("random", "tpe")}
    work = Path(tempfile.mkdtemp())
    seconds: dict[tuple[int, str], list[float]] = {}
    try:
        for repeat in range(args.repeat):
            for n in args.sizes:
                for sampler, spec in specs.items():
                    root = work / f"{sampler}-{n}-{repeat}"
                    filled(root, spec, n)
                    start = time.perf_counter()
                    search.ask(search.StudyStore(root), "bench", "k", spec, "next", epochs=4)
                    seconds.setdefault((n, sampler), []).append(time.perf_counter() - start)
                    shutil.rmtree(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"ask per trial, median [min, max] of {args.repeat} (ms)")  # noqa: T201
    for n in args.sizes:
        cells = {s: seconds[(n, s)] for s in specs}
        shown = "  ".join(f"{s} {statistics.median(v) * 1e3:7.1f} [{min(v) * 1e3:.1f}, {max(v) * 1e3:.1f}]"
                          for s, v in cells.items())
        ratio = statistics.median(cells["tpe"]) / statistics.median(cells["random"])
        print(f"  {n:5d} told trials: {shown}  tpe/random {ratio:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
