"""The upstream contract: every point of Kedro, kedro-datasets and kedro-viz beyond their public
API that the project relies on, in one list.

Each entry names the upstream object, what of it is relied on (that it exists, its
parameters, a message text) and the project file that relies on it. On an upgrade, a
failing case says which point moved and which file to revisit; nothing degrades silently.
The pins in ``pyproject.toml`` are checked first: a new version fails here by name even when
every point still holds, so that someone reads this list.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from sweeplab.integration import viz
from tests.conftest import REPO

INTEGRATION = "src/sweeplab/integration"


@dataclass(frozen=True)
class Point:
    upstream: str  # module:qualified.name
    relied_on: str  # "exists", "params: a, b, c", or "text: ..." (found in the module's source)
    revisit: str  # the project file that relies on it

    @property
    def id(self) -> str:
        return self.upstream


CONTRACT = [
    # the runners: Kedro's loop with another order and a constant-time release rule
    Point("kedro.runner.runner:AbstractRunner._run", "params: self, pipeline, catalog, hook_manager, run_id",
          f"{INTEGRATION}/runners.py"),
    Point("kedro.runner.runner:AbstractRunner._release_datasets", "params: node, catalog, load_counts, pipeline",
          f"{INTEGRATION}/runners.py"),
    Point("kedro.runner.runner:AbstractRunner._run", "text: self._release_datasets(node, catalog, load_counts, "
          "pipeline)", f"{INTEGRATION}/runners.py"),
    Point("kedro.runner.runner:AbstractRunner._suggest_resume_scenario", "params: self, pipeline, done_nodes, catalog",
          f"{INTEGRATION}/runners.py"),
    Point("kedro.runner.runner:AbstractRunner._get_executor", "params: self, max_workers", f"{INTEGRATION}/runners.py"),
    Point("kedro.runner.runner:AbstractRunner.__init__", "text: self._is_async = is_async", f"{INTEGRATION}/runners.py"),
    Point("kedro.runner.task:Task.__init__", "params: self, node, catalog, is_async, hook_manager, run_id, parallel",
          f"{INTEGRATION}/runners.py"),
    Point("kedro.framework.project:settings.configure", "exists", f"{INTEGRATION}/runners.py"),
    # nodes copied per variant, versions pinned after the catalog is made
    Point("kedro.pipeline.node:Node._copy", "params: self, overwrite_params", f"{INTEGRATION}/upstream.py"),
    Point("kedro.pipeline.node:Node.__init__", "text: self._inputs = inputs", f"{INTEGRATION}/upstream.py"),
    Point("kedro.pipeline.node:Node.__init__", "text: self._outputs", f"{INTEGRATION}/upstream.py"),
    Point("kedro.pipeline.transcoding:_strip_transcoding", "params: element", f"{INTEGRATION}/upstream.py"),
    Point("kedro.io.core:AbstractVersionedDataset.__init__", "text: self._version = version",
          f"{INTEGRATION}/upstream.py"),
    Point("kedro.io.core:AbstractVersionedDataset.__init__", "text: self._filepath = filepath",
          f"{INTEGRATION}/upstream.py"),
    # the project's datasets extend Kedro's versioned dataset the documented way
    Point("kedro.io.core:AbstractVersionedDataset._get_load_path", "params: self", "src/sweeplab/datasets/_files.py"),
    Point("kedro.io.core:AbstractVersionedDataset._get_save_path", "params: self", "src/sweeplab/datasets/_files.py"),
    Point("kedro.io.core:generate_timestamp", "params: ", "src/sweeplab/cluster/submission.py"),
    Point("kedro_datasets._typing:TablePreview", "exists", "src/sweeplab/datasets/run_records.py"),
    Point("kedro_datasets._typing:JSONPreview", "exists", "src/sweeplab/datasets/run_records.py"),
    Point("kedro_datasets._typing:HTMLPreview", "exists", "src/sweeplab/datasets/folder.py"),
    # the run command: Kedro's own, with --params read by the project
    Point("kedro.framework.cli.project:run", "exists", "src/sweeplab/cli.py"),
    Point("kedro.framework.cli.project:run.callback", "params: tags, env, runner, is_async, runner_params, node_names, "
          "to_nodes, from_nodes, from_inputs, to_outputs, load_versions, pipeline, pipelines, config, conf_source, "
          "params, namespaces, only_missing_outputs", "src/sweeplab/cli.py"),
    # log lines filtered by their text
    Point("kedro.pipeline.node:Node.run", "text: \"Running node: %s\"", f"{INTEGRATION}/logs.py"),
    Point("kedro.io.data_catalog:DataCatalog.load", "text: \"Loading data from %s (%s)...\"", f"{INTEGRATION}/logs.py"),
    Point("kedro.io.data_catalog:DataCatalog.save", "text: \"Saving data to %s (%s)...\"", f"{INTEGRATION}/logs.py"),
    # kedro-viz's namespace tree, replaced by a linear-time one
    Point("kedro_viz.data_access.repositories.modular_pipelines:ModularPipelinesRepository.populate_tree",
          "params: self, pipeline", f"{INTEGRATION}/viz.py"),
    Point("kedro_viz.data_access.repositories.modular_pipelines:ModularPipelinesRepository._explode_namespace",
          "params: nested_namespace", f"{INTEGRATION}/viz.py"),
    Point("kedro_viz.data_access.repositories.modular_pipelines:ModularPipelinesRepository._add_inputs",
          "params: self, modular_pipeline_id, inputs", f"{INTEGRATION}/viz.py"),
    Point("kedro_viz.data_access.repositories.modular_pipelines:ModularPipelinesRepository._add_outputs",
          "params: self, modular_pipeline_id, outputs", f"{INTEGRATION}/viz.py"),
    Point("kedro_viz.data_access.repositories.modular_pipelines:ModularPipelinesRepository._add_children",
          "params: self, modular_pipeline_id, kedro_nodes", f"{INTEGRATION}/viz.py"),
    Point("kedro_viz.data_access.repositories.modular_pipelines:ModularPipelinesRepository"
          ".get_or_create_modular_pipeline", "exists", f"{INTEGRATION}/viz.py"),
]


def resolve(upstream: str):
    """The upstream object; the original where the project replaced it (``viz.install``)."""
    module_name, _, qualified = upstream.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualified.split("."):
        obj = getattr(obj, part)
    return viz.KEDRO_VIZ.get(qualified.rsplit(".", 1)[-1], obj) if obj is viz.populate_tree else obj


def broken(point: Point) -> str | None:
    """Why ``point`` no longer holds, or None."""
    try:
        obj = resolve(point.upstream)
    except (ImportError, AttributeError) as exc:
        return f"it is gone ({exc})"
    kind, _, detail = point.relied_on.partition(": ")
    if kind == "params":
        wanted = [p.strip() for p in detail.split(",") if p.strip()]
        found = list(inspect.signature(obj).parameters)
        if found != wanted:
            return f"its parameters are {found}, not {wanted}"
    elif kind == "text":
        source = inspect.getsource(obj)
        if detail not in source:
            return f"its source no longer says {detail}"
    return None


def message(point: Point, why: str) -> str:
    return f"{point.upstream} ({point.relied_on}): {why}; revisit {point.revisit}"


@pytest.mark.parametrize("point", CONTRACT, ids=[p.id + (f" [{p.relied_on[:30]}]") for p in CONTRACT])
def test_each_private_point_holds(point):
    why = broken(point)
    assert why is None, message(point, why)


def pins() -> dict[str, str]:
    text = (REPO / "pyproject.toml").read_text()
    return {name: version for name, version in re.findall(r'"(kedro(?:-datasets|-viz)?)(?:\[[^\]]*\])?==([\d.]+)"', text)}


def test_the_pinned_versions_are_installed():
    """A new Kedro, kedro-datasets or kedro-viz fails here first: read this file's list again."""
    pinned = pins()
    assert set(pinned) == {"kedro", "kedro-datasets", "kedro-viz"}
    for name, version in pinned.items():
        assert importlib.metadata.version(name) == version, (
            f"{name} {importlib.metadata.version(name)} installed, {version} pinned: check every point of "
            "tests/test_upstream_contract.py, then the pin in pyproject.toml")


def test_a_moved_point_fails_by_name(monkeypatch):
    """What an upgrade that renames a point looks like."""
    from kedro.runner.runner import AbstractRunner  # noqa: PLC0415

    monkeypatch.delattr(AbstractRunner, "_release_datasets")
    point = next(p for p in CONTRACT if p.upstream.endswith("_release_datasets"))
    why = broken(point)
    assert why is not None and message(point, why).endswith("revisit src/sweeplab/integration/runners.py")


def test_every_private_access_of_the_source_is_in_the_integration_package():
    """ruff's SLF rule, on: outside ``integration/`` the source reads no one's private member."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "SLF", "--no-cache",
                             "--output-format", "concise", "src"], cwd=REPO, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout
    silenced = subprocess.run(["grep", "-rln", "noqa: SLF001", "src/sweeplab"], cwd=REPO, capture_output=True,
                              text=True, check=False).stdout.split()
    assert silenced and all(path.startswith("src/sweeplab/integration/") for path in silenced), silenced


def test_a_run_of_one_sweep_expands_only_that_sweep(kedro_project, monkeypatch):
    """The project's ``run`` sees ``--pipelines`` first and the registry plans that sweep alone
    (a bad setting stops the run right after planning, so nothing trains)."""
    from click.testing import CliRunner  # noqa: PLC0415
    from kedro.framework.cli.cli import KedroCLI  # noqa: PLC0415

    from sweeplab.integration import registry  # noqa: PLC0415

    planned = []
    plan = registry.plan
    monkeypatch.setattr(registry, "plan", lambda params, families, only=None: planned.append(only) or plan(
        params, families, only=only))
    monkeypatch.chdir(kedro_project)
    result = CliRunner().invoke(KedroCLI(kedro_project), ["run", "--pipelines=ae_sweep",
                                                          "--params=ae.model.hidden_dim=-5"])
    assert result.exit_code == 1 and "ae.model.hidden_dim: got -5" in result.output
    assert planned == [{"ae_sweep"}]


def test_the_report_and_the_sweep_engine_load_without_kedro_or_torch():
    """Reporting receives the planned sweep (``sweeps.Plan``) and expands nothing itself: it
    and the pure spec -> variants logic import neither the framework nor the models."""
    code = ("import sys, sweeplab.sweeps, sweeplab.pipelines.reporting.nodes; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'kedro', 'kedro_viz', 'torch'}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert loaded.stdout.strip() == "[]", loaded.stdout


def test_optunas_private_trial_id_is_where_upstream_reads_it():
    """``upstream.live_trial``: a trial rebuilt by its storage id in another study object
    reports and is pruned as the asked one would be."""
    import optuna  # noqa: PLC0415

    from sweeplab.integration import upstream  # noqa: PLC0415

    study = optuna.create_study()
    asked = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert isinstance(study.get_trials(deepcopy=False)[asked.number]._trial_id, int), \
        "optuna's FrozenTrial._trial_id moved: update sweeplab.integration.upstream.live_trial"
    live = upstream.live_trial(study, asked.number)
    live.report(0.5, step=1)
    assert live.params == asked.params and study.trials[asked.number].intermediate_values == {1: 0.5}
