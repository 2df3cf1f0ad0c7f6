"""One variant, anywhere: ParallelRunner workers and a variant run alone in a fresh process
load the shared inputs from files and give the numbers of a sequential run."""

from __future__ import annotations

import json
import pickle
import re
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import MemoryDataset

from sweeplab.integration import session
from sweeplab.integration.registry import plan
from sweeplab.pipeline_registry import FAMILIES
from sweeplab.pipelines import node_function
from sweeplab.sweeps import find_sweeps, resolve_variant_config
from sweeplab.training.loop import default_threads
from tests.conftest import REPO, copy_project
from tests.test_kedro_run import kedro_cli, latest

pytestmark = pytest.mark.slow  # whole runs in fresh processes, every family twice

PARALLEL = ("--runner=ParallelRunner", "--runner-params=max_workers=2")
TINY_ENV = "--env=tiny"
# conf/tiny/parameters.yml over conf/base: every shipped sweep in seconds
TINY = dict(OmegaConfigLoader(conf_source=str(REPO / "conf"), env="tiny", **session.CONFIG_LOADER_ARGS)["parameters"])


def tiny_sweep(family: str) -> tuple[str, list[str]]:
    """The family's first sweep under ``--env=tiny`` and the variants it plans there; a sweep of
    fixed conditions before a search, whose trials' values depend on when results arrive."""
    found = {name: spec for name, spec in find_sweeps(TINY).items() if spec["family"] == family}
    sweeps = sorted(found, key=lambda name: ("search" in found[name], name))
    assert sweeps, f"conf/tiny/parameters.yml: no sweep of family '{family}'; give it tiny settings there"
    return sweeps[0], [v.name for v in plan(TINY, FAMILIES, only={sweeps[0]})[sweeps[0]][1].variants]


def summaries(project: Path, sweep: str, variants: list[str]) -> dict[str, dict]:
    return {v: json.loads(latest(project, f"data/07_model_output/{sweep}/{v}/summary.json").read_text())
            for v in variants}


def numbers(summary: dict, expected: bool = False) -> dict:
    """What a run produced. Expected metrics match to 1e-6, absolute or relative: a worker
    process may still add up some float32 sums in another order."""
    close = (lambda v: pytest.approx(v, rel=1e-6, abs=1e-6, nan_ok=True)) if expected else (lambda v: v)  # noqa: E731
    return {"status": summary["status"], "best_epoch": summary["best_epoch"],
            **{f"{at}.{split}.{k}": close(v)
               for at in ("best", "final") for split, values in summary[at].items() for k, v in values.items()}}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_parallel_runner_gives_the_sequential_numbers(tmp_path, kedro_project, family):
    sweep, variants = tiny_sweep(family)
    # the sequential run trains with a worker's share of the cores: with another thread count
    # some float32 sums add up in another order, which a VQ's code assignment can amplify
    # (seen: 2.6e-4 relative after 2 epochs with 2 threads against 1)
    share = max(1, default_threads() // 2)
    sequential = kedro_cli(kedro_project, f"--pipelines={sweep}", TINY_ENV, f"--params={family}.trainer.threads={share}")
    parallel_project = copy_project(tmp_path / "parallel")
    parallel = kedro_cli(parallel_project, f"--pipelines={sweep}", TINY_ENV, *PARALLEL)

    assert (sequential.returncode, parallel.returncode) == (0, 0), parallel.stderr[-3000:]
    one, two = summaries(kedro_project, sweep, variants), summaries(parallel_project, sweep, variants)
    assert {v: numbers(s) for v, s in two.items()} == {v: numbers(s, expected=True) for v, s in one.items()}
    assert {s["threads"] for s in two.values()} == {share}, "cores / workers"
    report = latest(parallel_project, f"data/08_reporting/{sweep}/results.md").read_text()
    assert f"{len(variants)} completed, 0 failed, 0 missing" in report
    # workers warn no more than one process (was: a partial's name lost in pickling, kedro-viz's hooks)
    assert warnings_printed(parallel) <= warnings_printed(sequential), parallel.stdout[-3000:]


def warnings_printed(result) -> set[str]:
    lines = (result.stdout + result.stderr).splitlines()
    return {re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in lines if "WARNING" in line or "Warning:" in line}


def test_a_failed_variant_under_parallel_runner_fails_the_run_and_the_report_counts_it(kedro_project):
    lr = "ae_sweep.grid.trainer.lr=1e-3 1e30"  # lr=1e30 makes the loss non-finite
    parallel = kedro_cli(kedro_project, "--pipelines=ae_sweep", TINY_ENV, f"--params={lr}", *PARALLEL)
    assert parallel.returncode == 1 and "2 variant(s) failed" in parallel.stdout + parallel.stderr
    report = latest(kedro_project, "data/08_reporting/ae_sweep/results.md").read_text()
    assert "2 completed, 2 failed, 0 missing" in report
    statuses = summaries(kedro_project, "ae_sweep", ["none_beta1_lr1e30_s0", "vq_beta1_lr1e30_s0",
                                                     "none_beta1_lr0p001_s0"])
    assert [s["status"] for s in statuses.values()] == ["failed", "failed", "completed"]


def test_one_variant_runs_alone_in_a_fresh_process(kedro_project):
    sweep, variants = tiny_sweep("ae")
    prep = kedro_cli(kedro_project, "--pipelines=ae_prep", TINY_ENV)
    assert prep.returncode == 0, prep.stderr[-3000:]
    assert latest(kedro_project, "data/05_model_input/ae_inputs.h5").stat().st_size > 10_000
    alone = kedro_cli(kedro_project, f"--pipelines={sweep}_train", f"--namespaces={sweep}.{variants[0]}", TINY_ENV)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert summaries(kedro_project, sweep, variants[:1])[variants[0]]["status"] == "completed"
    assert not (kedro_project / f"data/07_model_output/{sweep}/{variants[1]}").exists(), "only that variant ran"
    assert "train_autoencoder" in alone.stdout + alone.stderr and "split_events" not in alone.stdout + alone.stderr


def test_every_dataset_can_travel_to_another_process(kedro_project):
    """ParallelRunner pickles every dataset; a declared MemoryDataset would reach a worker as a
    bare placeholder object, so no catalog entry may be one."""
    bootstrap_project(kedro_project)
    with KedroSession.create(project_path=kedro_project) as session:
        catalog = session.load_context().catalog  # built anew on every access of context.catalog
        from kedro.framework.project import pipelines  # noqa: PLC0415 - after the session configured it

        for name in sorted(pipelines["__default__"].datasets()):
            if name.startswith("params:"):
                continue
            dataset = catalog.get(name)
            if dataset is None:
                continue  # an undeclared intermediate: ParallelRunner shares it through its manager
            assert not isinstance(dataset, MemoryDataset), f"{name} is a declared MemoryDataset"
            ForkingPickler.dumps(dataset)


def test_a_node_function_keeps_its_name_in_a_worker():
    """ParallelRunner hands nodes to workers with multiprocessing's pickler, which rebuilds a
    ``functools.partial`` without its name; Kedro then logs and warns ``<partial>``."""
    bound = node_function(resolve_variant_config, family="ae", variant="v")
    copied = pickle.loads(ForkingPickler.dumps(bound))
    assert copied.__name__ == "resolve_variant_config"
    assert copied.keywords == {"family": "ae", "variant": "v"}
