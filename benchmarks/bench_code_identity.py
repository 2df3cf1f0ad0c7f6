"""What code identities cost a run's start: ``ae_sweep`` widened by seeds to 10 and 1,000 variants.

Each repeat is a fresh process (nothing cached), in a scratch project, and measures:
- ``register``: ``register_pipelines()`` and building ``ae_sweep``, as ``kedro run`` does (the
  baseline);
- ``identity``: the ae family's code identity (parse and hash what its training imports);
- ``all_families``: every family's identity after it (what ``__default__`` needs);
- ``scan``: the check that says, before a run, how many finished variants other code trained
  (every variant's config resolved, its checkpoint folder listed), once over an empty
  checkpoint store and once (``scan_outdated``) over one where every variant has a run of
  other code.
Sizes alternate within each repeat; it prints each figure's median and range, and
(identity + scan) / register, the share these add to the start of a run.

    python benchmarks/bench_code_identity.py [--sizes 10 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _scratch import scratch_project

ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
CHILD = """
import json, sys, time
from pathlib import Path
from kedro.framework.cli.utils import _split_params
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from sweeplab import sweeps
from sweeplab.families import discover, finished_by_other_code
from sweeplab.integration import session
from sweeplab.pipeline_registry import register_pipelines
from sweeplab.training import CheckpointStore

bootstrap_project(".")
with KedroSession.create(runtime_params=_split_params(None, None, sys.argv[1])) as kedro_session:
    session.record_parameters(dict(kedro_session.load_context().config_loader["parameters"]))
out = {}
start = time.perf_counter()
with session.requesting(["ae_sweep"]):
    register_pipelines()["ae_sweep"]
out["register"] = time.perf_counter() - start
family = discover()["ae"]
start = time.perf_counter()
family.code_identity()
out["identity"] = time.perf_counter() - start
start = time.perf_counter()
for other in discover().values():
    other.code_identity()
out["all_families"] = time.perf_counter() - start

params = session.parameters()
store = CheckpointStore(Path(sys.argv[2]))
def scan():
    start = time.perf_counter()
    configs = sweeps.resolve_variant_configs(params["ae"], family=family,
                                             variants=sweeps.expand("ae_sweep", params["ae_sweep"]))
    found = finished_by_other_code(family, configs, store)
    return time.perf_counter() - start, configs, found
out["scan"], configs, found = scan()
assert not found.variants
for config in configs:  # every variant finished by other code
    slot = store.slot_for(config, "f" * 16, "0123456789ab")
    slot.folder.mkdir(parents=True)
    (slot.folder / "final.pt").write_bytes(b"x")
    slot.record_code({**family.code_identity().as_dict(), "identity": "0123456789ab"})
out["scan_outdated"], _, found = scan()
assert len(found.variants) == len(configs)
print(json.dumps(out))
"""
FIGURES = ("register", "identity", "all_families", "scan", "scan_outdated")


def params(variants: int) -> str:
    seeds = " ".join(str(s) for s in range(variants))
    return ("ae_sweep.grid.model.latent_space=linear,ae_sweep.grid.loss.globals_beta=1,"
            f"ae_sweep.seeds={seeds}")


def measure(size: int, folder: Path) -> dict[str, float]:
    project = scratch_project(folder / "project")
    result = subprocess.run([sys.executable, "-c", CHILD, params(size), str(folder / "store")], cwd=project,
                            env=ENV, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs: dict[int, list[dict[str, float]]] = {size: [] for size in args.sizes}
    for _ in range(args.repeat):
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                runs[size].append(measure(size, Path(tmp)))
    for size, results in runs.items():
        print(f"{size} variants, {len(results)} fresh processes: median [min, max]")  # noqa: T201
        for figure in FIGURES:
            values = [r[figure] * 1000 for r in results]
            print(f"  {figure:<14} {statistics.median(values):8.1f} ms  [{min(values):.1f}, {max(values):.1f}]")  # noqa: T201
        ratios = [(r["identity"] + r["scan"]) / r["register"] for r in results]
        print(f"  (identity + scan) / register: {statistics.median(ratios):.3f} "  # noqa: T201
              f"[{min(ratios):.3f}, {max(ratios):.3f}]")


if __name__ == "__main__":
    main()
