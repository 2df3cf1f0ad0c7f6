"""Lineage in kedro-viz: the namespace tree Sweeplab gives it, and what a person sees in a
real browser (Debian's headless Chromium, driven through chromedriver)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro_viz.data_access.repositories.modular_pipelines import ModularPipelinesRepository
from kedro_viz.utils import _hash_input_output

from sweeplab.integration import viz
from tests.conftest import REPO, copy_project

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTEFACTS = Path(os.environ.get("SWEEPLAB_TEST_ARTEFACTS", REPO / "test-artefacts"))
VARIANTS = [f"{latent}_beta{beta}_s0" for latent in ("none", "linear", "vq") for beta in (0, 1, 10)]


def tree(pipeline, populate) -> dict:
    repository = ModularPipelinesRepository()
    populate(repository, pipeline)
    return {key: (set(mp.inputs), set(mp.outputs), set(mp.children), set(mp.tags))
            for key, mp in repository.tree.items()}


@pytest.mark.parametrize("name", ["ae_sweep", "__default__"])
def test_the_tree_is_kedro_vizs_own_but_for_what_no_node_reads(name):
    bootstrap_project(REPO)
    with KedroSession.create(project_path=REPO) as session:
        session.load_context()  # the project's own parameters, whatever an earlier session ran with
    pipeline = pipelines[name]
    viz.install()
    theirs = tree(pipeline, viz.KEDRO_VIZ["populate_tree"])
    assert tree(pipeline, lambda repo, p: viz.populate_tree(repo, p, unread_inside=False)) == theirs
    ours = tree(pipeline, viz.populate_tree)
    assert ours.keys() == theirs.keys()
    read = {_hash_input_output(name) for node in pipeline.nodes for name in node.inputs}
    moved = set()
    for key, (inputs, outputs, _, tags) in ours.items():
        their_inputs, their_outputs, _, their_tags = theirs[key]
        assert (inputs, tags) == (their_inputs, their_tags)
        assert outputs <= their_outputs
        moved |= their_outputs - outputs
    assert moved, "some datasets that no node reads are kept inside their boxes"
    assert not moved & read, "only datasets that no node reads"


def test_the_tree_is_replaced_only_under_kedro_viz():
    code = "import sys; from sweeplab.integration import viz; print(viz.install(), 'kedro_viz' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------------------------
# a real browser


def free_port() -> int:
    """A free port below 49152: kedro-viz refuses the ephemeral range."""
    while True:
        port = random.randint(20000, 40000)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port


@pytest.fixture
def viz_server(tmp_path):
    """The default 9-variant ae_sweep, small and quick, one variant trained, served by `kedro viz run`."""
    project = copy_project(tmp_path / "project")
    tiny = {"events": {"synthetic": {"n_events": 3000}}, "ae": {"trainer": {"epochs": 1, "batch_size": 256}}}
    (project / "conf/local/parameters.yml").write_text(yaml.safe_dump(tiny))
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines=ae_sweep_train",
                    "--namespaces=ae_prep,ae_sweep.vq_beta0_s0"], cwd=project, env=env, check=True,
                   capture_output=True, timeout=600)
    port = free_port()
    log = tmp_path / "viz.log"
    server = subprocess.Popen([sys.executable, "-m", "kedro", "viz", "run", "--no-browser", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=project, env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/main", timeout=10) as answer:
                    json.load(answer)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"kedro viz run did not serve {url} (exit {server.poll()}):\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have stopped by itself
            os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def visible_nodes(driver) -> dict[str, object]:
    """The flowchart's nodes by label, once drawing has settled (the same labels twice running)."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    def labels() -> dict[str, object]:
        return {node.text: node for node in driver.find_elements(By.CSS_SELECTOR, "g.pipeline-node")}

    before, now = None, labels()
    while before is None or before.keys() != now.keys():
        time.sleep(1)
        before, now = now, labels()
    return now


def click(driver, element) -> None:
    # an SVG group: a synthetic click reaches kedro-viz's handler wherever the node is drawn
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", element)


def wait_for(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"the browser never showed {what}")
        time.sleep(0.5)
    return found


def screenshot(driver, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTEFACTS / f"{name}.png"))


@pytest.mark.slow
def test_a_sweep_reads_as_prep_then_one_box_then_its_report(viz_server, browser):
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    # kedro-viz opens __default__ (every family); the URL picks the sweep (README)
    browser.get(f"{viz_server}/?pid=ae_sweep")
    top = wait_for(lambda: (nodes := visible_nodes(browser)) and "ae_sweep" in nodes and nodes, "the flowchart")
    # kedro-viz's tour of its new features, and its "new version" banner (which cannot check offline)
    for button in browser.find_elements(By.CSS_SELECTOR, ".feature-hints__close"):
        click(browser, button)
    for button in browser.find_elements(By.XPATH, "//button[normalize-space()='Dismiss']"):
        click(browser, button)
    time.sleep(1)
    screenshot(browser, "kedro_viz_collapsed")
    assert {"ae_prep", "ae_sweep", "ae_sweep_report"} <= top.keys()
    assert len(top) <= 15, sorted(top)
    assert not [name for name in top if name.startswith("ae_sweep.")], "no variant's output outside the sweep"

    click(browser, top["ae_sweep"])
    boxes = {f"ae_sweep.{v}" for v in VARIANTS}
    expanded = wait_for(lambda: boxes <= (nodes := visible_nodes(browser)).keys() and nodes, "the variant boxes")
    screenshot(browser, "kedro_viz_expanded")
    kinds = {name: element.get_attribute("class") for name, element in expanded.items()}
    assert all("modularPipeline" in kinds[box] for box in boxes)
    assert not [n for n in expanded if n.endswith(("_plot", ".model", ".config"))], "a variant's own outputs stay inside"

    click(browser, expanded["ae_sweep.vq_beta0_s0.summary"])
    panel = wait_for(lambda: [p.text for p in browser.find_elements(By.CSS_SELECTOR, ".pipeline-metadata")
                              if '"status"' in p.text], "the summary's preview")
    screenshot(browser, "kedro_viz_summary_preview")
    assert '"variant":"vq_beta0_s0"' in panel[0].replace(" ", "") and '"completed"' in panel[0]
