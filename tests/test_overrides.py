"""``--params`` as people type it: lists with commas, the space-separated form, and one-line
errors that show the accepted forms. Kedro's reading is the reference where it can read a value."""

from __future__ import annotations

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kedro.framework.cli.utils import _split_params

from sweeplab.integration.overrides import OverrideError, parse_overrides, split_overrides
from tests.conftest import examples


@pytest.mark.parametrize(("text", "expected"), [
    ("ae_sweep.seeds=[0,1,2]", {"ae_sweep": {"seeds": [0, 1, 2]}}),
    ("ae_sweep.grid.loss.globals_beta=[0,0.5,1]", {"ae_sweep": {"grid": {"loss": {"globals_beta": [0, 0.5, 1]}}}}),
    ("ae_sweep.seeds=0 1 2", {"ae_sweep": {"seeds": "0 1 2"}}),  # the space-separated form, read by sweeps
    ("a=[1, 2],b.c=3", {"a": [1, 2], "b": {"c": 3}}),
    ("a={x: [1,2], y: 3}", {"a": {"x": [1, 2], "y": 3}}),
    ('title="a, b",n=2', {"title": "a, b", "n": 2}),
    ("a=[[1,2],[3]]", {"a": [[1, 2], [3]]}),
    ("", {}),
])
def test_overrides_as_people_type_them(text, expected):
    assert parse_overrides(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("ae_sweep.seeds", r"^--params: 'ae_sweep.seeds' is not key=value; accepted: key=value"),
    ("=3", r"^--params: '=3' is not key=value"),
    ("ae_sweep.seeds=[0 1 2]", r"^--params: 'ae_sweep.seeds=\[0 1 2\]' puts spaces between list items inside brackets"),
    ("a=[1,2", r"^--params: cannot read 'a=\[1,2' \(while parsing a flow sequence\); accepted"),
    ("a=1,b=[2,3]]", r"^--params: cannot read 'b=\[2,3\]\]'"),
])
def test_a_malformed_override_is_named_with_the_accepted_forms(text, message):
    with pytest.raises(OverrideError, match=message) as error:
        parse_overrides(text)
    assert "\n" not in str(error.value) and "key=[0,1,2]" in str(error.value)


plain_values = st.from_regex(r"[a-z0-9_. -]{1,8}", fullmatch=True).filter(lambda v: v.strip() and v.strip() == v)


@given(st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9_]{0,5}(\.[a-z][a-z0-9_]{0,5}){0,2}", fullmatch=True),
                          plain_values), min_size=1, max_size=4, unique_by=lambda kv: kv[0].split(".")[0]))
@examples(200)
def test_without_brackets_or_quotes_it_reads_as_kedro_does(pairs):
    text = ",".join(f"{key}={value}" for key, value in pairs)
    ctx = click.Context(click.Command("run"))
    try:
        kedro_reads = _split_params(ctx, click.Option(["--params"]), text)
    except Exception:  # a value neither can read ('0x_'): ours names it
        with pytest.raises(OverrideError, match="^--params: cannot read"):
            parse_overrides(text)
        return
    assert parse_overrides(text) == kedro_reads


@given(st.text(max_size=60))
@examples(300)
def test_any_text_gives_overrides_or_names_the_override(text):
    try:
        parsed = parse_overrides(text)
    except OverrideError as error:
        assert str(error).startswith("--params: ") and "\n" not in str(error)
        return
    assert isinstance(parsed, dict)
    assert len(split_overrides(text)) >= len(parsed)  # no override is invented


keys = st.sampled_from(["a", "a.b", "a.0", "a.1", "a.b.c", "b"])
override_values = st.sampled_from(["1", "x", "[]", "[1,2]", "{}", "{c: 1}", "[[1]]", "null"])


@examples(300)
@given(st.lists(st.tuples(keys, override_values), min_size=1, max_size=4))
def test_overrides_that_overlap_give_overrides_or_name_both(pairs):
    """Several overrides of one key (as a value, a list, a section, an index), each readable alone."""
    text = ",".join(f"{key}={value}" for key, value in pairs)
    try:
        parsed = parse_overrides(text)
    except OverrideError as error:
        assert str(error).startswith("--params: ") and "\n" not in str(error)
        assert "do not combine" in str(error) or "cannot read" in str(error)
        return
    assert isinstance(parsed, dict) and set(parsed) <= {"a", "b"}
