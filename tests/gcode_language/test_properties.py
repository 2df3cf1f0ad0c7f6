"""Property-based tests of the G-code parser, the NGC interpreter and the tokeniser: any text
parses or raises ``GCodeSyntaxError`` (never a numpy, regex or Python internal, never a hang),
and the whole-file pass and the line parser agree on every program both accept.

``HYPOTHESIS_PROFILE=thorough`` runs 2,000 examples per property (``tests/conftest.py``); CI
runs 300, in well under a minute in all.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from sweeplab.gcode_language.parser import (
    COMMAND_LETTERS,
    PARAMETER_LETTERS,
    GCodeSyntaxError,
    parse_line,
    parse_program,
)
from sweeplab.gcode_language.tokens import TokenSpec, Vocabulary, program_tokens
from sweeplab.pipelines.cnc.programs import generate_program
from tests.conftest import examples

FUZZ = examples(300)
UNITS = dict.fromkeys(PARAMETER_LETTERS, 1.0)
SPECS = (TokenSpec("v1", 0.01), TokenSpec("v2", units=UNITS))
NGC_PROGRAM = """#<depth> = 1.5
#1 = 0
o<pass> sub
  G1 Z[-#1] F#<feed>
  G1 X[#1 * 10] Y[ABS[#1 - 2]]
o<pass> endsub
#<feed> = 300
G0 X0 Y0
o10 while [#1 LT #<depth>]
  o<pass> call [#1]
  #1 = [#1 + 0.5]
o10 endwhile
o20 repeat [2]
  G2 X5 Y5 I[SQRT[4]] J0
o20 endrepeat
M5"""
PLAIN_PROGRAM = generate_program(np.random.default_rng(0), "p0")


def assert_parses_or_names_the_line(text: str, on_error: str) -> None:
    """The contract: a program, whose tokens can be made and looked up, or the parser's error."""
    try:
        program = parse_program(text, source="fuzz.nc", on_error=on_error, max_blocks=20_000)
    except GCodeSyntaxError as exc:
        assert str(exc).startswith("fuzz.nc:") and "\n" not in str(exc)
        return
    assert len(program.lines) == len(program.modal) == len(program.origin)
    for spec in SPECS:
        tokens = program_tokens(program, spec)
        ids, unknown = Vocabulary.build([tokens], spec).encode(tokens)
        assert len(ids) == len(tokens.key) and unknown == 0, "a vocabulary knows the tokens it was built from"


@FUZZ
@given(st.lists(st.text(max_size=40), max_size=8), st.sampled_from(["raise", "skip"]))
def test_any_text_parses_or_names_the_line(lines, on_error):
    assert_parses_or_names_the_line("\n".join(lines), on_error)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["raise", "skip"]))
def test_any_bytes_parse_or_name_the_line(data, on_error):
    assert_parses_or_names_the_line(data.decode("utf-8", "surrogateescape"), on_error)


# characters that make G-code, so that random text reaches deep into the grammar
GCODE_CHARS = st.sampled_from(list("GMXYZIJKRFSTPQNOo0123456789.+- #<>_=[]()/;*%\t") + ["\n", "\n", "EQ", "LT",
                                                                                         "MOD", "**", "SIN", "sub",
                                                                                         "while", "endwhile", "if",
                                                                                         "endif", "call", "repeat"])


@FUZZ
@given(st.lists(GCODE_CHARS, max_size=120), st.sampled_from(["raise", "skip"]))
def test_gcode_like_text_parses_or_names_the_line(pieces, on_error):
    assert_parses_or_names_the_line("".join(pieces), on_error)


@st.composite
def mutated(draw, text: str) -> str:
    """A valid program with a few edits: characters deleted, words swapped, stray brackets."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        edit = draw(st.sampled_from(["delete", "swap", "insert"]))
        if edit == "delete" and line:
            at = draw(st.integers(0, len(line) - 1))
            line = line[:at] + line[at + draw(st.integers(1, 3)):]
        elif edit == "swap":
            words = line.split()
            if len(words) > 1:
                a, b = draw(st.integers(0, len(words) - 1)), draw(st.integers(0, len(words) - 1))
                words[a], words[b] = words[b], words[a]
            line = " ".join(words)
        else:
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(st.sampled_from(list("[]()#<>o=") + ["o10 endwhile", "o<x> call"])) + line[at:]
        lines[i] = line
    return "\n".join(lines)


@FUZZ
@given(st.one_of(mutated(NGC_PROGRAM), mutated(PLAIN_PROGRAM)), st.sampled_from(["raise", "skip"]))
def test_mutated_programs_parse_or_name_the_line(text, on_error):
    assert_parses_or_names_the_line(text, on_error)


# ----------------------------------------------------------------------------------------------
# the two paths agree, and agree with a plain per-word reading

numbers = st.one_of(
    st.integers(0, 10**9).map(str),
    st.tuples(st.integers(0, 99999), st.integers(0, 99999)).map(lambda p: f"{p[0]}.{p[1]}"),
    st.integers(0, 999).map(lambda n: f".{n}"),
    st.integers(0, 999).map(lambda n: f"{n}."),
)
words = st.tuples(st.sampled_from(list(COMMAND_LETTERS + PARAMETER_LETTERS + "N")),
                  st.sampled_from(["", "", "-", "+"]), numbers)
lines = st.tuples(st.lists(words, max_size=5), st.sampled_from([" ", "", "\t"]),
                  st.sampled_from(["", " (note)", " ; end", "(a)"]))


def write(line: tuple) -> str:
    parts, gap, comment = line
    return gap.join(f"{letter}{sign}{number}" for letter, sign, number in parts) + comment


@FUZZ
@given(st.lists(lines, min_size=1, max_size=10), st.sampled_from(["raise", "skip"]))
def test_the_whole_file_pass_agrees_with_the_line_parser(program, on_error):
    """Each line once through the numpy pass, once forced through the line parser (a
    non-ASCII comment sends a line there): the same blocks, or the same error."""
    text = [write(line) for line in program]
    results = []
    for version in (text, [line + " (\u00b0)" for line in text]):
        try:
            parsed = parse_program(version, source="p.nc", on_error=on_error)
            results.append((parsed.blocks, parsed.skipped and [line for line, _ in parsed.skipped]))
        except GCodeSyntaxError as exc:
            results.append(str(exc).split(" in ")[0])
    assert results[0] == results[1]


@FUZZ
@given(lines)
def test_the_line_parser_reads_each_word_as_written(line):
    """Against the plainest reference there is: float() of each number, N words dropped."""
    parts, _, _ = line
    try:
        parsed = parse_line(write(line), "p.nc:1")
    except GCodeSyntaxError:
        assume(False)  # out of range or a command with too many decimals: named, tested elsewhere
        return
    expected = [(letter, float(sign + number)) for letter, sign, number in parts if letter != "N"]
    assert (parsed or []) == expected
