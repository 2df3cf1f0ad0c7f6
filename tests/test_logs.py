"""Log lines that do not grow with the sweep: the project's logging configuration, applied."""

from __future__ import annotations

import importlib
import logging

import pytest
import yaml
from kedro.pipeline import Node

import sweeplab.settings  # noqa: F401 - Kedro configures logging on import, the settings add the filters
from sweeplab.integration import logs
from sweeplab.integration.logs import MAX_NODE_LINE, NODE_LOGGER
from tests.conftest import REPO


def report(*inputs: str) -> list:
    return []


@pytest.fixture
def configured(caplog):
    """The node logger as a run sets it up (conf/logging.yml's level, the project's filter)."""
    level = yaml.safe_load((REPO / "conf/logging.yml").read_text())["loggers"].get(NODE_LOGGER, {}).get("level", "INFO")
    logger = logging.getLogger(NODE_LOGGER)
    saved = logger.level, list(logger.filters)
    logger.setLevel(level)
    importlib.import_module("sweeplab.settings")  # installs the filter, as bootstrapping a run does
    logs.install()  # and again: once is enough
    assert sum(isinstance(f, logs.ShortNodeLines) for f in logger.filters) == 1
    caplog.set_level(logging.INFO, logger=NODE_LOGGER)
    caplog.handler.addFilter(logging.Filter(NODE_LOGGER))  # the node lines alone, not warnings
    yield logger
    logger.setLevel(saved[0])
    logger.filters[:] = saved[1]


def test_a_node_with_hundreds_of_inputs_is_logged_by_its_name_and_counts(configured, caplog):
    inputs = [f"ae_sweep.variant_{i:03d}_s0.summary" for i in range(450)]
    node = Node(report, inputs, "ae_sweep_report.results_table", name="ae_sweep_report.results_table_node")
    assert len(str(node)) > 14_000
    node.run({name: {} for name in inputs})
    assert caplog.messages[0] == "Running node: ae_sweep_report.results_table_node (450 inputs, 1 outputs)"
    small = Node(report, ["a", "b"], "c", name="small")
    small.run({"a": 1, "b": 2})
    assert caplog.messages[1] == f"Running node: {small}" and len(str(small)) <= MAX_NODE_LINE


def test_at_debug_nothing_is_shortened(configured, caplog):
    configured.setLevel(logging.DEBUG)
    inputs = [f"x{i}" for i in range(200)]
    node = Node(report, inputs, "out", name="wide")
    node.run(dict.fromkeys(inputs, 0))
    assert caplog.messages[0] == f"Running node: {node}"


def test_dataset_loads_and_saves_are_logged_at_debug():
    from kedro.io import DataCatalog, MemoryDataset  # noqa: PLC0415

    logger, records = logging.getLogger("kedro.io.data_catalog"), []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        catalog = DataCatalog({"numbers": MemoryDataset()})
        catalog.save("numbers", [1, 2])
        catalog.load("numbers")
    finally:
        logger.removeHandler(handler)
    assert [(r.levelname, r.getMessage().split(" ")[0]) for r in records] == [("DEBUG", "Saving"), ("DEBUG", "Loading")]


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_kedros_deprecation_warnings_are_logged_at_debug(level):
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = ("import logging, warnings; import sweeplab.settings; from kedro import KedroDeprecationWarning; "
            f"[h.setLevel(logging.{level}) for h in logging.getLogger().handlers]; "
            "warnings.warn('an old option', KedroDeprecationWarning); warnings.warn('a real problem', UserWarning)")
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "WARNING <string>:1: UserWarning: a real problem" in said
    assert ("DEBUG <string>:1: KedroDeprecationWarning: an old option" in said) == (level == "DEBUG")
    assert ("an old option" in said) == (level == "DEBUG")
