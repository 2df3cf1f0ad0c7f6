"""Property-based tests of everything that reads what a user gives: any input gives a result or
the project's own error (``InputError``), never a numpy, h5py, torch or Kedro internal; what is
saved is what is restored.

``HYPOTHESIS_PROFILE=thorough pytest tests/test_fuzz.py`` runs 2,000 examples per property
(CI runs the default profile, under a minute in all).
"""

from __future__ import annotations

import copy
import json
import warnings

import h5py
import numpy as np
import pandas as pd
import torch
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kedro.io import DatasetError
from torch import nn

from sweeplab.config import from_dict, to_dict
from sweeplab.datasets.hdf5 import H5ArraysDataset, H5File
from sweeplab.datasets.run_records import RunHistoryDataset, RunSummaryDataset
from sweeplab.datasets.torch_weights import TorchWeightsDataset
from sweeplab.errors import InputError, explained
from sweeplab.integration.registry import plan
from sweeplab.pipeline_registry import FAMILIES
from sweeplab.pipelines.events.format import N_COLUMNS, check_labels, check_rows
from sweeplab.pipelines.events.nodes import fit_normaliser, split_events
from sweeplab.pipelines.reporting.config import ReportConfig
from sweeplab.pipelines.splats.nodes import build_vae_inputs
from sweeplab.sweeps import SweepSpec, expand, find_sweeps
from sweeplab.training import CheckpointSlot, TrainerConfig, Training, train
from tests.conftest import REPO

PARAMS = {}
for path in sorted((REPO / "conf/base").glob("parameters_*.yml")):
    PARAMS |= yaml.safe_load(path.read_text())

# integers as YAML writes them: small, and now and then too long for any float (10**309) or for repr
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.integers(-10**400, 10**400),
                    st.floats(allow_nan=True), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.one_of(st.text(max_size=6), st.integers()),
                                                                       inner, max_size=3)), max_leaves=8)


def project_error(exc: BaseException) -> bool:
    return isinstance(explained(exc), InputError)


# ----------------------------------------------------------------------------------------------
# configs: every section a user writes


SWEEPS = sorted(find_sweeps(PARAMS))  # every family's shipped sweeps
SECTIONS = {name: kind for family in FAMILIES.values() for name, kind in family.data_sections.items()}
SECTIONS |= {name: family.config_type for name, family in FAMILIES.items()}


def mutated(tree, draw):
    """The tree with one leaf or key replaced, added or removed."""
    tree = copy.deepcopy(tree)
    node, path = tree, []
    while isinstance(node, dict) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node, key=str)))
        path.append(key)
        if not isinstance(node[key], dict):
            break
        node = node[key]
    if not isinstance(node, dict):
        return tree
    action = draw(st.sampled_from(["replace", "add", "remove"]))
    key = draw(st.sampled_from(sorted(node, key=str))) if node else "x"
    if action == "remove":
        node.pop(key, None)
    else:
        node[key if action == "replace" else draw(st.one_of(st.text(max_size=6), st.integers()))] = draw(values)
    return tree


def checked(kind, tree, where: str):
    """A config that round-trips through its plain form, or an error that names its section."""
    try:
        config = from_dict(kind, tree, where=where)
    except InputError as exc:
        assert str(exc).startswith(where) and "\n" not in str(exc), exc
        return None
    assert isinstance(config, kind) and repr(from_dict(kind, to_dict(config), where=where)) == repr(config)
    return config


@given(st.sampled_from(sorted(SECTIONS)), st.data())
def test_every_config_section_gives_a_config_or_a_config_error(section, data):
    checked(SECTIONS[section], mutated(PARAMS[section], data.draw), section)


@given(st.sampled_from(SWEEPS), st.data())
def test_every_sweep_spec_expands_or_names_its_error(sweep, data):
    spec = mutated(PARAMS[sweep], data.draw)
    if checked(SweepSpec, spec, sweep) is None:
        return
    try:
        variants = expand(sweep, spec)
    except InputError as exc:
        assert sweep in str(exc), exc
    else:
        assert variants and len({v.name for v in variants}) == len(variants)
    checked(ReportConfig, spec.get("report") or {}, f"{sweep}.report")


@given(st.sampled_from(SWEEPS), st.data())
@example("ae_sweep", {"family": []})
@example("ae_sweep", {"family": {"ae": 1}})
@example("ae_sweep", {"grid": {"loss": {"globals_beta": [10**309]}}})
def test_the_checker_accepts_a_sweep_or_names_its_key(sweep, data):
    """The whole check a run starts with (every section, the sweep expanded, each condition's
    config resolved), on a sweep with one key replaced, added or removed: checked, or one line."""
    spec = data if isinstance(data, dict) else mutated(PARAMS[sweep], data.draw)
    params = {**PARAMS, sweep: {**PARAMS[sweep], **spec} if isinstance(data, dict) else spec}
    try:
        planned = plan(params, FAMILIES, only={sweep})
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc), exc
    else:
        assert planned[sweep][1]


@given(values)
def test_arbitrary_values_for_any_config(tree):
    for kind in (TrainerConfig, ReportConfig, *SECTIONS.values()):
        checked(kind, tree, kind.__name__)


# ----------------------------------------------------------------------------------------------
# events: the checks and the streamed splitter

dtypes = st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.complex_number_dtypes(),
                   hnp.unicode_string_dtypes(max_len=3), hnp.byte_string_dtypes(max_len=3), st.just(np.dtype(bool)))
shapes = st.one_of(st.just(()), st.tuples(st.integers(0, 4)), st.tuples(st.integers(0, 4), st.sampled_from([1, 2, 92])))


@given(hnp.arrays(dtypes, shapes))
def test_event_checks_accept_or_name_the_problem(array):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for check in (lambda: check_rows(array, "f.h5:X"), lambda: check_labels(array, "f.h5:y")):
            try:
                check()
            except InputError:
                pass


def event_rows(n: int) -> st.SearchStrategy[np.ndarray]:
    """Rows that are mostly well-formed (types 0..7, physical ranges), with any value now and then."""
    cell = st.one_of(st.floats(0, 500, width=32), st.sampled_from([0.0, 1.0, 7.0, -1.0, 1e30, np.nan, 2.5]))
    return hnp.arrays(np.float32, (n, N_COLUMNS), elements=cell)


@given(st.integers(0, 30).flatmap(lambda n: st.tuples(event_rows(n), hnp.arrays(
    np.float64, (n,), elements=st.one_of(st.integers(1, 5).map(float), st.floats(allow_nan=True))))),
    st.integers(1, 8))
def test_the_splitter_and_normaliser_give_files_or_name_the_problem(tmp_path_factory, arrays, step):
    X, y = arrays
    folder = tmp_path_factory.mktemp("split")
    source = folder / "in.h5"
    with h5py.File(source, "w") as f:
        f["X"], f["y"] = X, y
    split = {"fractions": {"train": 0.6, "val": 0.2, "test": 0.2}, "seed": 0, "step_size": step}
    try:
        H5ArraysDataset(filepath=str(folder / "out.h5")).save(split_events(H5File(source), split))
        fit_normaliser(H5File(folder / "out.h5"), split)
    except DatasetError as exc:
        assert project_error(exc), exc
    except InputError:
        pass
    else:
        out = H5File(folder / "out.h5")
        assert sum(out.shape(f"X_{s}")[0] for s in ("train", "val", "test")) == len(X)


# ----------------------------------------------------------------------------------------------
# custom datasets: load anything, or say which file is wrong


h5_values = st.one_of(hnp.arrays(st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.complex_number_dtypes(),
                                           hnp.byte_string_dtypes(max_len=3)), hnp.array_shapes(min_dims=0, max_dims=3,
                                                                                                 max_side=3)),
                      st.just(h5py.Empty("f8")))


@given(st.dictionaries(st.sampled_from(["X", "y", "X_train", "y_train", "x", "attr_train"]), h5_values, max_size=4))
def test_h5_files_load_lazily_and_checks_name_the_key(tmp_path_factory, contents):
    path = tmp_path_factory.mktemp("h5") / "file.h5"
    with h5py.File(path, "w") as f:
        for key, value in contents.items():
            f.create_dataset(key, data=value)
    handle = H5ArraysDataset(filepath=str(path)).load()
    for key in handle.keys():
        for read in (lambda: handle.numeric(key, 1), lambda: handle.numeric(key, 2), lambda: handle.read(key),
                     lambda: handle.read(key, slice(0, 2)), lambda: next(handle.iter_chunks(key, step_size=2), None)):
            try:
                read()
            except InputError as exc:
                assert key in str(exc)
    try:  # the unsplit reader, on whatever X and y hold
        split_events(handle, {"fractions": {"train": 0.6, "val": 0.2, "test": 0.2}, "seed": 0, "step_size": 2})
    except InputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)


@given(st.dictionaries(st.sampled_from(["a", "b", "X_train"]), st.one_of(
    hnp.arrays(st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), st.just(np.dtype(bool))),
               hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)),
    hnp.from_dtype(np.dtype("f8")).map(np.float64), st.integers(-2**63, 2**63 - 1).map(np.int64)), max_size=3))
def test_arrays_restore_as_saved(tmp_path_factory, arrays):
    """What ``H5ArraysDataset`` saves (scalars and empty arrays included) loads back equal."""
    dataset = H5ArraysDataset(filepath=str(tmp_path_factory.mktemp("h5") / "out.h5"))
    dataset.save(arrays)
    handle = dataset.load()
    assert sorted(handle.keys()) == sorted(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(handle.read(key), np.asarray(value))
        assert handle.shape(key) == np.shape(value) and handle.dtype(key) == np.asarray(value).dtype


# ----------------------------------------------------------------------------------------------
# splats: a file of any values gives finite model inputs, or names the file and the value

SPLAT_PARAMS = {"source": "file", "order": "hilbert", "val_fraction": 0.25, "split_seed": 0,
                "synthetic": PARAMS["splats"]["synthetic"]}
splat_cells = st.one_of(st.floats(0, 1, width=32), st.floats(-5, 5, width=32), st.floats(width=32),
                        st.sampled_from([1e38, -3e38, 3.4e38, np.nan, np.inf]))


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    hnp.arrays(np.float32, (n, 3, 8), elements=splat_cells),
    st.none() | hnp.arrays(np.float32, (n, 2, 2, 3), elements=splat_cells))))
def test_any_splats_file_gives_finite_inputs_or_names_the_value(tmp_path_factory, arrays):
    splats, images = arrays
    path = tmp_path_factory.mktemp("splats") / "splats.h5"
    with h5py.File(path, "w") as f:
        f["splats"] = splats
        if images is not None:
            f["images"] = images
    try:
        inputs, _ = build_vae_inputs(H5File(path), SPLAT_PARAMS)
    except InputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        assert all(np.isfinite(inputs[split]["x"]).all() for split in ("train", "val"))
        assert "val_images" not in inputs or ((inputs["val_images"]["images"] >= 0)
                                              & (inputs["val_images"]["images"] <= 1)).all()


@given(st.one_of(st.binary(max_size=40), values.map(lambda v: json.dumps(v, allow_nan=True).encode())))
def test_run_summaries_load_as_mappings_or_name_the_file(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("summary") / "summary.json"
    path.write_bytes(content)
    try:
        summary = RunSummaryDataset(filepath=str(path)).load()
    except DatasetError as exc:
        assert project_error(exc) and str(path) in str(explained(exc))
    else:
        assert isinstance(summary, dict) and isinstance(summary["status"], str)


@given(st.binary(max_size=60))
def test_run_histories_load_as_frames_or_name_the_file(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("history") / "history.csv"
    path.write_bytes(content)
    try:
        history = RunHistoryDataset(filepath=str(path)).load()
    except DatasetError as exc:
        assert project_error(exc), exc
    else:
        assert {"epoch", "split"} <= set(history.columns)


torch_objects = st.recursive(
    st.one_of(st.none(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=4),
              st.integers(0, 3).map(torch.zeros)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6)


@given(st.one_of(torch_objects, st.binary(max_size=30)))
def test_weights_files_load_as_state_dicts_or_name_the_file(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("weights") / "model.pt"
    if isinstance(obj, bytes):
        path.write_bytes(obj)
    else:
        torch.save(obj, path)
    try:
        weights = TorchWeightsDataset(filepath=str(path)).load()
    except DatasetError as exc:
        assert project_error(exc) and "weights_only=False" not in str(exc.__cause__)
    else:
        assert all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items())


# ----------------------------------------------------------------------------------------------
# checkpoints: whatever a slot holds, train() returns a record; a real record restores as saved


def regression(model, batch):
    loss = ((model(batch["x"]) - batch["y"]) ** 2).mean()
    return {"total_loss": loss}


DATA = {"x": np.linspace(-1, 1, 32, dtype=np.float32)[:, None], "y": np.linspace(0, 2, 32, dtype=np.float32)[:, None]}
RUN = {"sweep": "s", "variant": "v", "seed": 0, "condition": {}, "config_hash": "h"}


def fit(slot: CheckpointSlot):
    return train(Training(build_model=lambda: nn.Linear(1, 1), batch_metrics=regression, train_data=DATA,
                          val_data=DATA), trainer=TrainerConfig(epochs=2, batch_size=16), run=RUN, checkpoint=slot)


@settings(max_examples=min(settings().max_examples, 40))
@given(st.sampled_from(["final.pt", "last.pt"]), st.one_of(torch_objects, st.binary(max_size=30),
                                                          st.fixed_dictionaries({"summary": torch_objects,
                                                                                 "weights": torch_objects,
                                                                                 "history": torch_objects}),
                                                          st.fixed_dictionaries({"epoch": st.integers(-2, 5),
                                                                                 "model": torch_objects})))
def test_any_checkpoint_gives_a_run_record(tmp_path_factory, name, obj):
    slot = CheckpointSlot(tmp_path_factory.mktemp("slot"))
    if isinstance(obj, bytes):
        (slot.folder / name).write_bytes(obj)
    else:
        torch.save(obj, slot.folder / name)
    record = fit(slot)
    # the contract: a checkpoint this project did not write is set aside, and the run retrains
    assert record.summary["status"] == "completed" and not record.summary.get("restored")
    assert (slot.folder / name).with_suffix(".corrupt").exists() and isinstance(record.history, pd.DataFrame)


def test_a_finished_record_restores_as_it_was_saved(tmp_path):
    slot = CheckpointSlot(tmp_path)
    first = fit(slot)
    again = fit(slot)
    assert again.summary["restored"] is True
    assert {k: v for k, v in again.summary.items() if k != "restored"} == first.summary
    pd.testing.assert_frame_equal(again.history, first.history)
    assert all(torch.equal(again.weights[k], first.weights[k]) for k in first.weights)


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(allow_nan=False),
                                     st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=8)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4).map(lambda v: {**v, "status": "completed"}))
def test_summaries_restore_as_saved(tmp_path_factory, summary):
    dataset = RunSummaryDataset(filepath=str(tmp_path_factory.mktemp("s") / "summary.json"))
    dataset.save(summary)
    assert json.dumps(dataset.load(), sort_keys=True) == json.dumps(summary, sort_keys=True)


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 3).map(lambda n: torch.randn(n, 2)), max_size=4))
def test_weights_restore_as_saved(tmp_path_factory, weights):
    dataset = TorchWeightsDataset(filepath=str(tmp_path_factory.mktemp("w") / "model.pt"))
    dataset.save(weights)
    loaded = dataset.load()
    assert loaded.keys() == weights.keys() and all(torch.equal(loaded[k], weights[k]) for k in weights)

