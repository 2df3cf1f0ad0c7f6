"""Log lines that do not grow with the sweep: the project's logging configuration, applied."""

from __future__ import annotations

import importlib
import logging

import pytest
import yaml
from kedro.pipeline import Node

from sweeplab import logs
from sweeplab.logs import MAX_NODE_LINE, NODE_LOGGER
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
