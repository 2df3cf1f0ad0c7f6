import numpy as np
import pytest

from sweeplab.gcode_language.parser import (
    EVALUATED,
    EXPANDED,
    WRITTEN,
    Block,
    GCodeSyntaxError,
    parse_line,
    parse_program,
)
from sweeplab.gcode_language.tokens import TokenSpec, program_tokens
from sweeplab.pipelines.cnc.programs import generate_program

PROGRAM = """%
(facing pass, tool 1)
N10 G21 G90 ; metric, absolute
N20 M6 T1
N30 S12000 M3
N40 G0 X0 Y0 Z5.0
N50 Z1
N60 G1 Z-0.5 F300
N70 X40.5 Y-2.25
N80 Y10 X0.
n90 g2 x20 y20 i10 j0 f450 (arc, lower case)
N100 G3X10Y30R12.5
N110 G4 P0.5
N120 M5
%
"""


def test_every_construct():
    report = parse_program(PROGRAM.splitlines(), source="face.nc")
    blocks = {b.line: b for b in report.blocks}
    assert report.skipped == ()
    assert blocks[3] == Block(3, ("G21", "G90"), ())
    assert blocks[4] == Block(4, ("M6",), (("T", 1.0),))
    assert blocks[5] == Block(5, ("M3",), (("S", 12000.0),)), "words in any order"
    assert blocks[6].commands == ("G0",) and blocks[6].params == (("X", 0.0), ("Y", 0.0), ("Z", 5.0))
    assert blocks[7] == Block(7, ("G0",), (("Z", 1.0),), modal=True), "continuation repeats the motion"
    assert blocks[9].modal and blocks[9].commands == ("G1",) and blocks[9].params[1] == ("Y", -2.25)
    assert blocks[10].params == (("Y", 10.0), ("X", 0.0))
    assert blocks[11] == Block(11, ("G2",), (("X", 20.0), ("Y", 20.0), ("I", 10.0), ("J", 0.0), ("F", 450.0)))
    assert blocks[12] == Block(12, ("G3",), (("X", 10.0), ("Y", 30.0), ("R", 12.5))), "no spaces needed"
    assert blocks[13] == Block(13, ("G4",), (("P", 0.5),))
    assert blocks[14] == Block(14, ("M5",), ())
    assert sorted(blocks) == list(range(3, 15)), "comments, % and blank lines execute nothing"


@pytest.mark.parametrize(("line", "message"), [
    ("G1 X1.2.3", r"prog.nc:2: malformed word at '\.3'"),
    ("G1 X10 (open comment", r"prog.nc:2: unbalanced parenthesis"),
    ("G1 W5", r"prog.nc:2: unsupported word W5"),
    ("G1 X", r"prog.nc:2: malformed word at 'X'"),
    ("G0 G1 X1", r"prog.nc:2: two motion commands \['G0', 'G1'\]"),
    ("S300", r"prog.nc:2: parameters without a command"),
])
def test_malformed_lines_name_file_and_line(line, message):
    with pytest.raises(GCodeSyntaxError, match=message):
        parse_program(["G21", line], source="prog.nc")


def test_axis_words_before_any_motion():
    with pytest.raises(GCodeSyntaxError, match=r"p.nc:1: axis words before any motion command"):
        parse_program(["X1 Y2"], source="p.nc")


def test_skip_mode_counts_and_keeps_going():
    report = parse_program(["G0 X0", "G1 X1..2", "Y3", "G1 W2", "X4"], source="p.nc", on_error="skip")
    assert [b.line for b in report.blocks] == [1, 3, 5]
    assert [line for line, _ in report.skipped] == [2, 4]
    assert "p.nc:4: unsupported word W2" in report.skipped[1][1]
    assert report.blocks[1].commands == ("G0",), "a skipped line does not change the modal state"


ODD_LINES = """G38.2 Z-5 F100
N5
x1.5Y-.25
g1x+3 (a)(b) ; c (d
  G0 X1 (\u00b0)
G1 X1 ((nested))
G1 X1 (open
G1 X1 )(
5 X3
G1 X2 Y%
G1 X0.000000000000000001
G1 X1 ; (not a comment opener)"""


@pytest.mark.parametrize("seed", range(8))
def test_the_bulk_pass_agrees_with_the_line_parser(seed):
    """The whole-file pass and the per-line parser give the same program. A non-ASCII comment
    on every line sends every line through the line parser."""
    text = generate_program(np.random.default_rng(seed), f"p{seed}") + ("\n" + ODD_LINES if seed == 0 else "")
    bulk = parse_program(text, on_error="skip")
    by_line = parse_program([line + " (\u00b0)" for line in text.splitlines()], on_error="skip")
    assert bulk.blocks == by_line.blocks
    assert [line for line, _ in bulk.skipped] == [line for line, _ in by_line.skipped]
    for column in ("lines", "modal", "word_line", "letter", "value"):
        assert np.array_equal(getattr(bulk, column), getattr(by_line, column)), column
    assert np.array_equal(bulk.motion, by_line.motion, equal_nan=True)


def test_numbers_convert_exactly_and_odd_lines_still_parse():
    program = parse_program(ODD_LINES.replace("\n", "\r\n"), source="odd.nc", on_error="skip")
    blocks = {b.line: b for b in program.blocks}
    assert blocks[1] == Block(1, ("G38.2",), (("Z", -5.0), ("F", 100.0))), "a command keeps its decimal"
    assert 2 not in blocks, "a line number alone executes nothing"
    assert blocks[4] == Block(4, ("G1",), (("X", 3.0),)), "two comments, then ';' ends the line"
    assert blocks[5].params == (("X", 1.0),) and blocks[11].params == (("X", 1e-18),)
    assert [line for line, _ in program.skipped] == [3, 6, 7, 8, 9, 10]
    text = "G1 " + " ".join(f"X{v}" for v in ["16.5", "-0.25", ".5", "+7", "0.1", "123456789.123456", "2.675"])
    assert [v for _, v in parse_program(text).blocks[0].params] == [
        16.5, -0.25, 0.5, 7.0, 0.1, 123456789.123456, 2.675], "the same floats as float(text)"
    with pytest.raises(GCodeSyntaxError, match=r"p.nc:1: command G1.0001 has more than 3 decimals"):
        parse_program("G1.0001 X1", source="p.nc")


@pytest.mark.parametrize("line", [
    "X11" * 2000 + "!",  # every added word doubled the time before: this would never end
    "N100 G1 X100 Y200 Z300 F1200 E1500 I100 J200 K300 R400 S500 T600 P700 Q800 X100 Y200 *57",  # a checksum
], ids=["long-run-of-words", "checksummed-line"])
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_a_malformed_long_line_is_rejected_without_backtracking(line, on_error):
    """The word pattern reads each number one way only, so a line that does not match fails
    in time linear in its length, on the line path and on the whole-file path."""
    text = f"G0 X0\n{line}\nG1 X1\n"
    if on_error == "raise":
        with pytest.raises(GCodeSyntaxError, match=r"p\.nc:2: malformed word at"):
            parse_program(text, source="p.nc")
    else:
        program = parse_program(text, source="p.nc", on_error="skip")
        assert [line for line, _ in program.skipped] == [2] and program.lines.tolist() == [1, 3]


@pytest.mark.parametrize("first", ["0", "+", ".", "(c) 5", "5 G1 X1"])
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_a_first_line_that_does_not_start_with_a_word_gets_the_line_parsers_answer(first, on_error):
    """It crashed the whole-file pass inside numpy; the line parser's error is the answer."""
    text = f"{first}\nG1 X1\n"
    try:
        parse_line(first, "p.nc:1")
    except GCodeSyntaxError as exc:
        expected = str(exc)
    if on_error == "raise":
        with pytest.raises(GCodeSyntaxError) as info:
            parse_program(text, source="p.nc")
        assert str(info.value) == expected
    else:
        program = parse_program(text, source="p.nc", on_error="skip")
        assert [line for line, _ in program.skipped] == [1] and program.lines.tolist() == [2]


@pytest.mark.parametrize(("line", "message"), [
    ("G1 X" + "9" * 400, r"p.nc:1: X value out of range"),
    ("G1 X" + "9" * 12, r"p.nc:1: X value out of range \(\|value\| <= 1e\+09\)"),
    ("G280375465083", r"p.nc:1: command G2.80375e\+11 out of range 0-9999"),
    ("G9223372036854775", r"p.nc:1: command G9.22337e\+15 out of range 0-9999"),
    ("G-1 X1", r"p.nc:1: command G-1 out of range 0-9999"),
])
def test_numbers_that_do_not_fit_are_errors_not_wrapped_values(line, message):
    with pytest.raises(GCodeSyntaxError, match=message):
        parse_program(line, source="p.nc")
    assert parse_program([line, "G0 X1"], source="p.nc", on_error="skip").lines.tolist() == [2]


# ----------------------------------------------------------------------------------------------
# programs in the NGC language: the interpreter's blocks, checked like written ones

# The start of a real controller sample that crashed the whole-file pass, then what such
# programs do: parameters, expressions, a subroutine, loops, a call to a file not given.
NGC = """#5599 = 1
#<n> = 0
o10 do
M61Q#<n>G43
#<n> = [#<n> + 1]
o10 while [#<n> LT 2]
#<_feed> = 300  (global: a subroutine sees it)
o<corner> sub
  G1 X[#1] Y[#2] F#<_feed>
o<corner> endsub
G0 X0 Y0 (start)
o20 repeat [2]
  o<corner> call [10 * #<n>] [5]
  X0 Y0
o20 endrepeat
o<probe> call
G1 X[SQRT[16] + #5420] Y1
M5"""


def test_parameters_expressions_and_control_flow_run_as_the_machine_would():
    program = parse_program(NGC, source="s.ngc")
    assert [(b.line, b.commands, b.params) for b in program.blocks] == [
        (4, ("M61", "G43"), (("Q", 0.0),)),
        (4, ("M61", "G43"), (("Q", 1.0),)),  # the do-while body ran twice
        (11, ("G0",), (("X", 0.0), ("Y", 0.0))),
        (9, ("G1",), (("X", 20.0), ("Y", 5.0), ("F", 300.0))),  # the subroutine, called from the loop
        (14, ("G1",), (("X", 0.0), ("Y", 0.0))),  # a modal line in a loop: the motion in force
        (9, ("G1",), (("X", 20.0), ("Y", 5.0), ("F", 300.0))),
        (14, ("G1",), (("X", 0.0), ("Y", 0.0))),
        (17, ("G1",), (("X", 4.0), ("Y", 1.0))),
        (18, ("M5",), ()),
    ]
    assert program.origin.tolist() == [EXPANDED] * 2 + [WRITTEN] + [EXPANDED] * 4 + [EVALUATED, WRITTEN]
    assert dict(program.warnings) == {"external subroutine o<probe> (call skipped)": 1,
                                      "system parameter #5420 (read as 0)": 1}
    assert not program.plain and program.skipped == ()
    tokens = program_tokens(program, TokenSpec("v2", units=dict.fromkeys("XYZIJKRFSTPQ", 1.0)))
    assert tokens.block.tolist() == sorted(tokens.block.tolist()) and set(tokens.block.tolist()) == set(range(9))
    assert tokens.names()[:4] == ["M61", "G43", "Q", "NUM_Q_0"]


@pytest.mark.parametrize(("line", "message"), [
    ("G1 X[1/0]", r"s.ngc:2: .*division by zero"),
    ("G43 H#1", r"s.ngc:2: unsupported word H0"),  # evaluated words meet the written words' rules
    ("G1 X[10 ** 12]", r"s.ngc:2: X value out of range"),
    ("G[0 - 1] X1", r"s.ngc:2: command G-1 out of range"),
    ("o1 endwhile", r"s.ngc:2: "),
    ("G0 G[1] X1", r"s.ngc:2: two motion commands \['G0', 'G1'\]"),
])
def test_errors_in_evaluated_lines_name_the_line(line, message):
    text = f"#1 = 0\n{line}\nG0 X1"
    with pytest.raises(GCodeSyntaxError, match=message):
        parse_program(text, source="s.ngc")
    skipping = parse_program(text, source="s.ngc", on_error="skip")
    assert [number for number, _ in skipping.skipped] == [2] and skipping.lines.tolist() == [3]


def test_an_endless_loop_stops_at_the_cap_naming_it():
    with pytest.raises(GCodeSyntaxError, match=r"^e.ngc:3: more than 1,000 lines run again by loops and calls "
                                               r"\(cnc.max_blocks\); is the loop at line 2 endless\?"):
        parse_program("#1 = 1\no5 while [#1]\nG1 X1\no5 endwhile", source="e.ngc", max_blocks=1000)


def test_a_plain_program_never_meets_the_interpreter(monkeypatch):
    def no(*args, **kwargs):
        raise AssertionError("the interpreter ran")
    monkeypatch.setattr("sweeplab.gcode_language.ngc.run_program", no)
    program = parse_program(PROGRAM, source="face.nc")
    assert program.plain and set(program.origin.tolist()) == {WRITTEN}
