"""``notebooks/explore_sweep.ipynb``, executed in a Jupyter kernel (nbclient) on a tiny ae_sweep
in a copy of the project, opened from that copy's ``notebooks/`` folder as a user would."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO, copy_project
from tests.test_kedro_run import VARIANTS, run_session

pytestmark = pytest.mark.slow  # the notebook run on a tiny sweep


NOTEBOOK = REPO / "notebooks" / "explore_sweep.ipynb"

# appended to the notebook under test: what its cells computed, as one JSON line
PROBE = """import json, sweeplab
print(json.dumps({"variant": variant, "listed": list(results["variant"]), "saved": saved,
                  "recomputed": recomputed, "few": few, "shapes": {k: list(v.shape) for k, v in batch.items()},
                  "examples": examples, "sweeplab": sweeplab.__file__}))"""


def outputs_of(notebook: nbformat.NotebookNode, cell_id: str) -> list[dict]:
    return next(cell for cell in notebook.cells if cell.get("id") == cell_id).outputs


def text_of(outputs: list[dict]) -> str:
    """Streams and every textual form of a display (tables as HTML, Markdown); Kedro's notebook
    extension colours the plain-text forms, so those are matched as parts only."""
    parts = [o.get("text", "") for o in outputs]
    parts += [value for o in outputs for kind, value in o.get("data", {}).items() if kind.startswith("text/")]
    return "\n".join(parts)


def test_the_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    assert notebook.metadata.kernelspec.name == "python3"


def test_the_notebook_explores_a_tiny_sweep_and_rebuilds_its_best_variant(tmp_path: Path):
    project = copy_project(tmp_path / "project")
    run_session(project)  # TINY_PARAMS: 4 variants, 2 epochs
    summaries = {v: json.loads(next((project / f"data/07_model_output/ae_sweep/{v}/summary.json").glob("*/summary.json"))
                               .read_text()) for v in VARIANTS}

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE, id="test-probe"))
    (project / "notebooks").mkdir()
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(project / "notebooks")}}).execute()  # a cell's error raises

    probe = json.loads(text_of(outputs_of(notebook, "test-probe")).strip().splitlines()[-1])
    assert Path(probe["sweeplab"]).is_relative_to(REPO / "src"), "the kernel imports the code under test"
    assert sorted(probe["listed"]) == VARIANTS
    results = text_of(outputs_of(notebook, "results"))
    assert all(v in results for v in VARIANTS) and "rec_tokens" in results
    stats = text_of(outputs_of(notebook, "stats"))
    assert "ci_lower" in stats and "t, n-1 degrees of freedom, 95%" in stats
    assert any("image/png" in o.get("data", {}) for o in outputs_of(notebook, "curves")), "the curves are drawn"

    best = min(VARIANTS, key=lambda v: summaries[v]["best_val_loss"])
    assert probe["variant"] == best
    assert "EventAutoencoder" in text_of(outputs_of(notebook, "rebuild"))
    assert probe["saved"] == summaries[best]["best"]["val"]
    assert probe["recomputed"] == pytest.approx(probe["saved"], rel=1e-5), "the rebuilt model is the trained one"
    assert {k: len(v) and v[0] for k, v in probe["shapes"].items()} == dict.fromkeys(probe["shapes"], probe["examples"])
    assert set(probe["few"]) == set(probe["saved"]) and all(math.isfinite(x) for x in probe["few"].values())
