"""The RS-274/NGC interpreter: small hand-written programs with their exact evaluated words, every error with
its line, skip mode, and a property: no input text raises anything but GCodeSyntaxError."""

from __future__ import annotations

import math
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweeplab.gcode_language.ngc import (
    EVALUATED,
    EXPANDED,
    WRITTEN,
    Executed,
    needs_interpreter,
    run_program,
)
from sweeplab.gcode_language.parser import GCodeSyntaxError
from tests.gcode_language.test_properties import FUZZ


def lines_of(program: str) -> list[str]:
    return textwrap.dedent(program).strip("\n").splitlines()


def run(program: str, **options):
    """Run with every line interpreted (so plain lines have their words too)."""
    lines = lines_of(program)
    return run_program(lines, [True] * len(lines), source="t.ngc", **options)


def words(program: str, **options) -> list[tuple[int, tuple | None]]:
    """(line, words) of each executed block."""
    return [(block.line, block.words) for block in run(program, **options).blocks]


def value(expression: str, setup: str = "") -> float:
    """The value of ``X<expression>``."""
    (block,) = run(f"{setup}\nG1 X{expression}").blocks
    assert block.words[0] == ("G", 1.0)
    return block.words[1][1]


def assert_fails(program: str, message: str, **options) -> None:
    with pytest.raises(GCodeSyntaxError, match=message):
        run(program, **options)


# ------------------------------------------------------------------ detection


@pytest.mark.parametrize(("line", "expected"), [
    ("G1 X10 Y2", False),
    ("G1 X10 (tool #3 [roughing])", False),
    ("G1 X10 ; #1 in a comment", False),
    ("#1 = 2", True),
    ("G1 X[1 + 2]", True),
    ("G1 X#1", True),
    ("o100 call", True),
    ("O<probe> sub", True),
    ("N20 o1 endif", True),
    ("n 20 O 12 if [1]", True),
    ("N20 G0 X1", False),
    ("G1 Z-1 (o1 call)", False),
    ("", False),
    ("O", False),
    ("ON", False),
    ("G1 X1 (unbalanced #", True),
])
def test_needs_interpreter(line, expected):
    assert needs_interpreter(line) is expected


# ------------------------------------------------------------------ parameters


def test_numbered_parameters_and_indirection():
    assert words("""
        #1 = 3
        #3 = 7
        #31 = 2.5
        G1 X#1 Y##1 Z#[#1 + 28]
        #[#1 * 10] = 4
        G1 X#30 Y#3000 Z#77
        N10 G1 X# 3 1 Y-#1 Z+#1
    """) == [
        (4, (("G", 1.0), ("X", 3.0), ("Y", 7.0), ("Z", 2.5))),
        (6, (("G", 1.0), ("X", 4.0), ("Y", 0.0), ("Z", 0.0))),  # unset: 0
        (7, (("G", 1.0), ("X", 2.5), ("Y", -3.0), ("Z", 3.0))),  # blanks ignored, even inside a number
    ]


def test_named_parameters_are_case_and_blank_insensitive():
    assert words("""
        #<Feed Rate> = 300
        #<_Global> = 2
        G1 X1 F#<feedrate> Y#<_GLOBAL> Z[exists[#<FEED rate>] + exists[#<other>] * 10]
    """) == [(3, (("G", 1.0), ("X", 1.0), ("F", 300.0), ("Y", 2.0), ("Z", 1.0)))]


def test_assignments_on_one_line_take_effect_after_it_in_order():
    assert words("""
        #1 = 1
        #1 = 2 #2 = #1
        G1 X#1 Y#2
        G1 X#1 #1 = [#1 + 10] Y#1
        G1 X#1
        #3 = 1
        #3 = 2 #3 = 3 #[#3 + 5] = 9
        G1 X#3 Y#6 Z#8
    """) == [
        (3, (("G", 1.0), ("X", 2.0), ("Y", 1.0))),  # #2 got the old #1
        (4, (("G", 1.0), ("X", 2.0), ("Y", 2.0))),  # the words read #1 before the assignment
        (5, (("G", 1.0), ("X", 12.0))),
        (8, (("G", 1.0), ("X", 3.0), ("Y", 9.0), ("Z", 0.0))),  # the last one wins; #[#3+5] used the old #3
    ]


def test_scopes_globals_locals_and_call_arguments():
    assert words("""
        #<_g> = 1
        #<here> = 2
        #1 = 7
        #31 = 8
        o<s> sub
          G1 X#1 Y#2 Z#31 A#<_g> B[exists[#<here>]]
          #<_g> = 10
          #<here> = 20
          #1 = 99
          #31 = 9
          G1 X#<here> Y#1
        o<s> endsub
        o<s> call [5]
        G1 X#1 Y#<here> Z#31 A#<_g>
        o<s> call [6]
    """) == [
        (6, (("G", 1.0), ("X", 5.0), ("Y", 0.0), ("Z", 8.0), ("A", 1.0), ("B", 0.0))),  # main's locals not seen
        (11, (("G", 1.0), ("X", 20.0), ("Y", 99.0))),
        (14, (("G", 1.0), ("X", 7.0), ("Y", 2.0), ("Z", 9.0), ("A", 10.0))),  # #1 and #<here> restored; #31 global
        (6, (("G", 1.0), ("X", 6.0), ("Y", 0.0), ("Z", 9.0), ("A", 10.0), ("B", 0.0))),  # fresh locals each call
        (11, (("G", 1.0), ("X", 20.0), ("Y", 99.0))),
    ]


def test_reading_an_unset_local_is_an_error_even_when_main_has_it():
    assert_fails("""
        #<here> = 2
        o<s> sub
          G1 X#<here>
        o<s> endsub
        o<s> call
    """, r"t.ngc:3: parameter #<here> is read before it is set in 'G1 X#<here>'")


def test_parameter_warnings_are_counted():
    execution = run("""
        G1 X#5420 Y#5420 Z#<_probe_z>
        #5420 = 3
        G1 X#5420 Y#4999
    """)
    assert [block.words for block in execution.blocks] == [
        (("G", 1.0), ("X", 0.0), ("Y", 0.0), ("Z", 0.0)), (("G", 1.0), ("X", 3.0), ("Y", 0.0))]
    assert execution.warnings == {"system parameter #5420 (read as 0)": 2,
                                  "controller parameter #<_probe_z> (read as 0)": 1}


# ------------------------------------------------------------------ expressions


@pytest.mark.parametrize(("expression", "expected"), [
    ("[1 + 2 * 3]", 7.0),
    ("[[1 + 2] * 3]", 9.0),
    ("[2 * 3 ** 2]", 18.0),
    ("[2 ** 3 ** 2]", 64.0),  # left-associative, as LinuxCNC
    ("[-2 ** 2]", 4.0),  # a sign belongs to its operand
    ("[2 ** -1]", 0.5),
    ("[10 - 4 - 3]", 3.0),
    ("[12 / 3 / 2]", 2.0),
    ("[7 mod 3]", 1.0),
    ("[-7 mod 3]", 2.0),  # LinuxCNC: MOD is never negative
    ("[7 mod -3]", 1.0),
    ("[-7 mod -3]", 2.0),
    ("[7.5 MOD 2]", 1.5),
    ("[6 / 4 mod 1 * 2]", 1.0),  # * / MOD share a level, left to right
    ("[1 + 2 eq 3]", 1.0),  # comparison below + -
    ("[0.1 + 0.2 EQ 0.3]", 1.0),  # EQ with LinuxCNC's tolerance
    ("[1 eq 1.00001]", 0.0),
    ("[2 ne 2]", 0.0),
    ("[2 ne 3]", 1.0),
    ("[1 lt 2]", 1.0),
    ("[2 le 2]", 1.0),
    ("[2 ge 3]", 0.0),
    ("[3 gt 2]", 1.0),
    ("[1 + 2 gt 2 and 0 lt 1]", 1.0),  # AND below comparison
    ("[1 or 0 and 0]", 0.0),  # AND OR XOR share the lowest level, left to right
    ("[3 and 0]", 0.0),
    ("[0 or -2]", 1.0),
    ("[1 xor 1]", 0.0),
    ("[1 xor 0]", 1.0),
    ("[5 - 3 - 1 eq 1]", 1.0),
    ("[--3]", 3.0),
    ("[-[2 + 1]]", -3.0),
    ("[+4 - -1]", 5.0),
    ("[.5 + 1.]", 1.5),
    ("[ 1 2 . 5 ]", 12.5),  # blanks are ignored, even inside a number
    ("-1.25", -1.25),
    ("-[1]", -1.0),
    ("+#1", 0.0),
])
def test_operators_and_precedence(expression, expected):
    assert value(expression) == expected


@pytest.mark.parametrize(("expression", "expected"), [
    ("sin[30]", 0.5),
    ("cos[60]", 0.5),
    ("tan[45]", 1.0),
    ("asin[1]", 90.0),
    ("acos[0]", 90.0),
    ("atan[1]/[1]", 45.0),
    ("atan[1]/[-1]", 135.0),
    ("ATAN[-1]/[0]", -90.0),
    ("abs[-3]", 3.0),
    ("-abs[-3]", -3.0),
    ("sqrt[16]", 4.0),
    ("exp[1]", math.e),
    ("ln[exp[2]]", 2.0),
    ("round[2.5]", 3.0),  # half-way away from zero
    ("round[-2.5]", -3.0),
    ("round[2.49]", 2.0),
    ("fix[-2.5]", -3.0),  # down
    ("fix[2.7]", 2.0),
    ("fup[-2.5]", -2.0),  # up
    ("fup[2.1]", 3.0),
    ("[sqrt[9] + abs[-1] * 2]", 5.0),
    ("[exists[#<nothing>]]", 0.0),
])
def test_functions(expression, expected):
    assert value(expression) == pytest.approx(expected, abs=1e-12)


def test_words_take_values_parameters_expressions_and_functions():
    assert words("""
        #<feed> = 300
        #1 = 2
        G1 X-#1 Y+#1 Z[#1 + 2] Fabs[-#<feed>] S#<feed> I-[1] Jsqrt[4] K--1
    """) == [(3, (("G", 1.0), ("X", -2.0), ("Y", 2.0), ("Z", 4.0), ("F", 300.0), ("S", 300.0), ("I", -1.0),
                  ("J", 2.0), ("K", 1.0)))]


def test_nesting_is_capped_without_recursion_errors():
    assert value("[" * 100 + "1" + "]" * 100) == 1.0
    mixed = "#1"  # five precedence levels at each of 99 bracket levels
    for _ in range(99):
        mixed = f"[1 or 1 eq 1 + 1 * 1 ** {mixed}]"
    assert value(mixed, "#1 = 1") == 1.0
    assert value("#" * 99 + "1", "#1 = 1") == 1.0
    assert value("[" + " + ".join(["#1"] * 20_000) + "]", "#1 = 1") == 20_000.0  # long, not deep
    assert_fails("G1 X" + "[" * 101 + "1" + "]" * 101, r"t.ngc:1: expression nested deeper than 100 levels")
    assert_fails("#1 = 1\nG1 X" + "#" * 150 + "1", r"t.ngc:2: expression nested deeper than 100 levels")


# ------------------------------------------------------------------ control flow


IF_CHAIN = """
    o1 if [#1 eq 1]
      X1
    o1 elseif [#1 eq 2]
      X2
    o1 elseif [#1 eq 3]
      X3
    o1 else
      X4
    o1 endif
    X5
"""


@pytest.mark.parametrize(("first", "taken"), [(1, 2), (2, 4), (3, 6), (9, 8)])
def test_if_elseif_else(first, taken):
    lines = [f"#1 = {first}", *lines_of(IF_CHAIN)]
    execution = run_program(lines, [needs_interpreter(line) for line in lines], source="t.ngc")
    assert [block.line for block in execution.blocks] == [taken + 1, 11]


def test_if_without_else_and_nested_ifs():
    assert words("""
        #1 = 2
        o1 if [#1 gt 5]
          G1 X1
        o1 endif
        o2 if [#1 gt 1]
          o3 if [#1 lt 2]
            G1 X2
          o3 else
            G1 X#1
          o3 endif
        o2 endif
    """) == [(9, (("G", 1.0), ("X", 2.0)))]


def test_while_loop():
    assert words("""
        #1 = 0
        o1 while [#1 lt 3]
          G1 X#1
          #1 = [#1 + 1]
        o1 endwhile
        o2 while [0]
          G1 X9
        o2 endwhile
    """) == [(3, (("G", 1.0), ("X", float(i)))) for i in range(3)]


def test_do_while_runs_its_body_at_least_once():
    assert words("""
        o1 do
          G1 X9
        o1 while [0]
        #1 = 0
        o2 do
          G1 X#1
          #1 = [#1 + 1]
        o2 while [#1 lt 3]
    """) == [(2, (("G", 1.0), ("X", 9.0)))] + [(6, (("G", 1.0), ("X", float(i)))) for i in range(3)]


@pytest.mark.parametrize(("count", "times"), [("3", 3), ("2.5", 3), ("2.4", 2), ("0", 0), ("-2", 0), ("[1 + 1]", 2)])
def test_repeat(count, times):
    lines = [f"o1 repeat [{count}]", "G1 X#1", "#1 = [#1 + 1]", "o1 endrepeat"]
    execution = run_program(lines, [True] * 4, source="t.ngc")
    assert [block.words for block in execution.blocks] == [(("G", 1.0), ("X", float(i))) for i in range(times)]


def test_break_and_continue_in_each_kind_of_loop():
    assert words("""
        #1 = 0
        o1 while [1]
          #1 = [#1 + 1]
          o2 if [#1 eq 2]
            o1 continue
          o2 endif
          o3 if [#1 gt 3]
            o1 break
          o3 endif
          G1 X#1
        o1 endwhile
        #1 = 0
        o4 repeat [5]
          #1 = [#1 + 1]
          o5 if [#1 mod 2 eq 0]
            o4 continue
          o5 endif
          G1 Y#1
        o4 endrepeat
        #1 = 0
        o6 do
          #1 = [#1 + 1]
          o7 if [#1 eq 2]
            o6 continue
          o7 endif
          o8 if [#1 eq 4]
            o6 break
          o8 endif
          G1 Z#1
        o6 while [#1 lt 10]
    """) == [
        (10, (("G", 1.0), ("X", 1.0))), (10, (("G", 1.0), ("X", 3.0))),
        (18, (("G", 1.0), ("Y", 1.0))), (18, (("G", 1.0), ("Y", 3.0))), (18, (("G", 1.0), ("Y", 5.0))),
        (29, (("G", 1.0), ("Z", 1.0))), (29, (("G", 1.0), ("Z", 3.0))),  # continue goes to the condition
    ]


def test_break_leaves_the_loop_it_names():
    assert words("""
        o1 repeat [3]
          o2 repeat [3]
            G1 X1
            o1 break
          o2 endrepeat
        o1 endrepeat
        G1 X2
    """) == [(3, (("G", 1.0), ("X", 1.0))), (7, (("G", 1.0), ("X", 2.0)))]


# ------------------------------------------------------------------ subroutines


def test_subroutines_arguments_and_return_values():
    assert words("""
        o<add> sub
          o<add> return [#1 + #2]
          G1 X999
        o<add> endsub
        o<nothing> sub
        o<nothing> endsub
        o<twice> sub
        o<twice> endsub [#1 * 2]
        o<add> call [2] [3]
        G1 X#<_value> Y#<_value_returned>
        o<nothing> call
        G1 X#<_value> Y#<_value_returned>
        o<twice> call [4]
        G1 X#<_value> Y#<_value_returned>
    """) == [
        (10, (("G", 1.0), ("X", 5.0), ("Y", 1.0))),
        (12, (("G", 1.0), ("X", 5.0), ("Y", 0.0))),  # no value: _value kept, _value_returned 0
        (14, (("G", 1.0), ("X", 8.0), ("Y", 1.0))),
    ]


def test_nested_calls_and_a_call_before_the_definition():
    assert words("""
        o<outer> call [10]
        G1 X#<_value>
        o<outer> sub
          o<inner> call [#1] [1]
          G1 Y#<_value> Z#1
          o<outer> return [#<_value> * 2]
        o<outer> endsub
        o<inner> sub
          G1 A#1 B#2
        o<inner> endsub [#1 + #2]
    """) == [
        (9, (("G", 1.0), ("A", 10.0), ("B", 1.0))),
        (5, (("G", 1.0), ("Y", 11.0), ("Z", 10.0))),
        (2, (("G", 1.0), ("X", 22.0))),
    ]


def test_numbered_and_computed_labels():
    assert words("""
        o0100 sub
          G1 X#1
        o100 endsub
        #1 = 100
        o100 call [1]
        o[#1] call [2]
        o#1 call [3]
    """) == [(2, (("G", 1.0), ("X", float(i)))) for i in (1, 2, 3)]


def test_recursion_and_the_call_depth_cap():
    factorial = """
        o<fact> sub
          o1 if [#1 le 1]
            o<fact> return [1]
          o1 endif
          o<fact> call [#1 - 1]
          o<fact> return [#1 * #<_value>]
        o<fact> endsub
        o<fact> call [5]
        G1 X#<_value>
    """
    assert words(factorial) == [(9, (("G", 1.0), ("X", 120.0)))]
    endless = """
        o1 sub
          o1 call
        o1 endsub
        o1 call
        G1 X1
    """
    assert_fails(endless, r"t.ngc:2: calls nested deeper than 64 \(endless recursion\?\) in 'o1 call'")
    skipped = run(endless, on_error="skip")
    assert [block.line for block in skipped.blocks] == [5]
    assert [line for line, _ in skipped.skipped] == [2]


def test_external_subroutines_are_counted_and_skipped():
    execution = run("""
        o<probe> call [1]
        o<probe> call
        o7 call
        G1 X1
    """)
    assert [block.line for block in execution.blocks] == [4]
    assert execution.warnings == {"external subroutine o<probe> (call skipped)": 2,
                                  "external subroutine o7 (call skipped)": 1}


def test_a_program_number_is_counted_and_ignored():
    execution = run("O1000 (facing)\nG1 X#1")
    assert [block.line for block in execution.blocks] == [2]
    assert execution.warnings == {"program number O1000 (ignored)": 1}


# ------------------------------------------------------------------ the caps


def test_max_blocks_counts_the_lines_loops_and_calls_run_again():
    endless = """
        #1 = 0
        o1 while [1]
          G1 X1
        o1 endwhile
    """
    assert_fails(endless, r"^t.ngc:\d+: more than 100 lines run again by loops and calls \(cnc.max_blocks\); "
                   r"is the loop at line 2 endless\?$", max_blocks=100)
    assert_fails(endless, r"cnc.max_blocks", max_blocks=100, on_error="skip")  # never skipped
    assert_fails("o1 while [1]\no1 endwhile", r"more than 100 lines run again", max_blocks=100)  # an empty body too
    plain = ["G1 X1"] * 1000  # each line once: bounded by the file, never capped
    assert len(run_program(plain, [False] * 1000, source="t.ngc", max_blocks=100).blocks) == 1000
    looped = ["#1 = 0", "o1 repeat [50]", "G1 X1", "o1 endrepeat"]  # lines 3-4 run again 49 times
    assert len(run_program(looped, [True, True, False, True], source="t.ngc", max_blocks=98).blocks) == 50
    with pytest.raises(GCodeSyntaxError, match=r"^t.ngc:4: more than 97 lines run again"):
        run_program(looped, [True, True, False, True], source="t.ngc", max_blocks=97)
    in_a_sub = """
        o1 sub
          G1 X1
        o1 endsub
        o2 repeat [1000]
          o1 call
        o2 endrepeat
    """
    assert_fails(in_a_sub, r"is the loop at line 4 endless\?", max_blocks=50)  # the loop around the call


# ------------------------------------------------------------------ origins and plain lines


def test_origins_and_plain_lines():
    lines = lines_of("""
        G0 X0
        #1 = 1
        G1 X#1
        o1 if [1]
          G1 X2
          G1 X#1
        o1 endif
        o2 sub
          G1 Y1
          G1 Y[2]
        o2 endsub
        o2 call
        ( a comment )
        G1 X[ (plain: never parsed here)
    """)
    interpret = [needs_interpreter(line) for line in lines]
    interpret[-1] = False
    execution = run_program(lines, interpret, source="t.ngc")
    assert execution.blocks == [
        Executed(1, None, WRITTEN),
        Executed(3, (("G", 1.0), ("X", 1.0)), EVALUATED),
        Executed(5, None, EXPANDED),
        Executed(6, (("G", 1.0), ("X", 1.0)), EXPANDED),
        Executed(9, None, EXPANDED),
        Executed(10, (("G", 1.0), ("Y", 2.0)), EXPANDED),
        Executed(13, None, WRITTEN),
        Executed(14, None, WRITTEN),
    ]
    assert execution.control_lines == 6  # #1=, if, endif, sub (where it is written), call, endsub
    assert execution.skipped == [] and not execution.warnings


def test_control_lines_count_every_time_they_run():
    execution = run("""
        o1 repeat [3]
          #1 = [#1 + 1]
        o1 endrepeat
    """)
    assert execution.blocks == [] and execution.control_lines == 1 + 3 + 3


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(("program", "message"), [
    ("G1 X[1/0]", r"t.ngc:1: division by zero in 'G1 X\[1/0\]'"),
    ("G1 X0\nG1 X[sqrt[-1]]", r"t.ngc:2: SQRT of a negative number \(-1\) in 'G1 X\[sqrt\[-1\]\]'"),
    ("G1 X[ln[0]]", r"t.ngc:1: LN of a number that is not positive"),
    ("G1 X[asin[2]]", r"t.ngc:1: ASIN of 2 \(outside -1..1\)"),
    ("G1 X[acos[-1.5]]", r"t.ngc:1: ACOS of -1.5"),
    ("G1 X[10 ** 400]", r"t.ngc:1: power overflows"),
    ("G1 X[exp[1000]]", r"t.ngc:1: EXP overflows"),
    ("G1 X[[10 ** 200] * [10 ** 200]]", r"t.ngc:1: product overflows"),
    ("G1 X[-8 ** 0.5]", r"t.ngc:1: negative number to a non-integer power"),
    ("G1 X[0 ** -1]", r"t.ngc:1: zero to a negative power"),
    ("G1 X[5 mod 0]", r"t.ngc:1: MOD by zero"),
    ("G1 X[1e3]", r"t.ngc:1: expected an operator or '\]' at 'E3\]'"),  # no exponent notation
    ("G1 X[1 + ]", r"t.ngc:1: expected a value at '\]'"),
    ("G1 X[1 + 2", r"t.ngc:1: expected an operator or '\]' at end of line"),
    ("G1 X1 ]", r"t.ngc:1: malformed word at '\]'"),
    ("G1 X", r"t.ngc:1: malformed word at 'X' in 'G1 X'"),  # as the parser says it
    ("G1 X1.2.3 #1=1", r"t.ngc:1: malformed word at '\.3#1=1'"),
    ("G1 $ #1=1", r"t.ngc:1: malformed word at '\$#1=1'"),
    ("#1 2", r"t.ngc:1: expected '=' after the parameter at end of line"),  # #12: blanks are ignored
    ("#1 G1", r"t.ngc:1: expected '=' after the parameter at 'G1'"),
    ("#0 = 1", r"t.ngc:1: parameter number 0 is outside 1..5999"),
    ("#6000 = 1", r"t.ngc:1: parameter number 6000 is outside 1..5999"),
    ("#[1.5] = 1", r"t.ngc:1: parameter number 1.5 is not an integer"),
    ("#2 = 0.5\n#[#2 + 1] = 1", r"t.ngc:2: parameter number 1.5 is not an integer"),
    ("G1 X##1", r"t.ngc:1: parameter number 0 is outside 1..5999"),
    ("G1 X#<nope>", r"t.ngc:1: parameter #<nope> is read before it is set"),
    ("G1 X#<nope", r"t.ngc:1: name without closing '>'"),
    ("G1 X#<>", r"t.ngc:1: empty name '<>'"),
    ("G1 X#1 (comment", r"t.ngc:1: unbalanced parenthesis in 'G1 X#1 \(comment'"),
    ("G1 X#1 (a (b) c)", r"t.ngc:1: unbalanced parenthesis"),
    ("G1 X#1 )", r"t.ngc:1: unbalanced parenthesis"),
    ("G1 X[abs 1]", r"t.ngc:1: ABS needs its argument in brackets"),
    ("G1 X[foo[1]]", r"t.ngc:1: expected a value at 'FOO\[1\]\]'"),
    ("G1 X[atan[1]]", r"t.ngc:1: ATAN takes two arguments"),
    ("G1 X[exists[#1]]", r"t.ngc:1: EXISTS takes a named parameter"),
    ("G1 X[1] o1 call", r"t.ngc:1: an o-word must start the line"),
    ("o1 frobnicate", r"t.ngc:1: unknown o-word command at 'FROBNICATE'"),
    ("o1 iffy [1]", r"t.ngc:1: unknown o-word command at 'IFFY\[1\]'"),
    ("o<> call", r"t.ngc:1: empty name"),
    ("o call", r"t.ngc:1: an o-word needs a number or <name>"),
    ("o1 if\no1 endif", r"t.ngc:1: o1 if takes one \[expression\], got 0"),
    ("o1 while [1] [2]\no1 endwhile", r"t.ngc:1: o1 while takes one \[expression\], got 2"),
    ("o1 sub\no1 endsub [1] [2]", r"t.ngc:2: o1 endsub takes at most one \[expression\], got 2"),
    ("o1 if [1]\no1 else [2]\no1 endif", r"t.ngc:2: o1 else takes no \[expression\]"),
    ("o1 if [1] G1\no1 endif", r"t.ngc:1: unexpected 'G1' after o1 if"),
    ("o1 call" + " [1]" * 31, r"t.ngc:1: o1 call has 31 arguments; at most 30"),
    ("o#1 if [1]", r"t.ngc:1: a computed o-word label is only allowed with call, not if"),
    ("o[1.5] call", r"t.ngc:1: o-word label 1.5 is not an integer"),
    ("o[-1] call", r"t.ngc:1: o-word label -1 is negative"),
    ("G1 X[#<_x> + 1e]", r"t.ngc:1: expected an operator or '\]' at 'E\]'"),
])
def test_errors_name_the_line(program, message):
    assert_fails(program, message)


def test_blanks_inside_a_word_are_ignored():
    assert [b.words for b in run("G1 X #1").blocks] == [(("G", 1.0), ("X", 0.0))]


@pytest.mark.parametrize(("program", "message"), [
    ("o1 endif", r"t.ngc:1: o1 endif without o1 if in 'o1 endif'"),
    ("G1 X1\no1 if [1]\nG1 X2", r"t.ngc:2: o1 if without o1 endif in 'o1 if \[1\]'"),
    ("o1 if [1]\no2 endif\no1 endif", r"t.ngc:2: o2 endif without o2 if"),
    ("o1 while [1]\no1 endif", r"t.ngc:2: o1 endif without o1 if"),
    ("o1 repeat [2]\no1 endwhile\no1 endrepeat", r"t.ngc:2: o1 endwhile without o1 while"),
    ("o1 if [1]\no2 while [1]\no1 endif", r"t.ngc:2: o2 while without o2 endwhile"),
    ("o1 do\nG1 X1", r"t.ngc:1: o1 do without o1 while"),
    ("o1 endsub", r"t.ngc:1: o1 endsub without o1 sub"),
    ("o1 endrepeat", r"t.ngc:1: o1 endrepeat without o1 repeat"),
    ("o1 sub\nG1 X1", r"t.ngc:1: o1 sub without o1 endsub"),
    ("o1 if [1]\no1 else\no1 else\no1 endif", r"t.ngc:3: o1 else after o1 else \(line 2\)"),
    ("o1 if [1]\no1 else\no1 elseif [1]\no1 endif", r"t.ngc:3: o1 elseif after o1 else \(line 2\)"),
    ("o1 else", r"t.ngc:1: o1 else without o1 if"),
    ("o1 while [1]\no2 elseif [1]\no1 endwhile", r"t.ngc:2: o2 elseif without o2 if"),
    ("o1 break", r"t.ngc:1: o1 break outside an o1 loop"),
    ("o1 while [0]\no2 continue\no1 endwhile", r"t.ngc:2: o2 continue outside an o2 loop"),
    ("o1 return", r"t.ngc:1: o1 return outside o1 sub"),
    ("o1 sub\no2 return\no1 endsub", r"t.ngc:2: o2 return outside o2 sub"),
    ("o1 if [1]\no2 sub\no2 endsub\no1 endif",
     r"t.ngc:2: o2 sub inside o1 if \(line 1\); subroutines are defined at top level"),
    ("o1 sub\no1 endsub\no1 sub\no1 endsub", r"t.ngc:3: o1 sub defined twice \(first at line 1\)"),
])
def test_pairing_errors_are_found_before_anything_runs(program, message):
    assert_fails(program, message)


# ------------------------------------------------------------------ skip mode


def test_skip_drops_failing_lines_once_and_goes_on():
    execution = run("""
        #1 = 0
        o1 repeat [3]
          G1 X[1 / [#1 * 0]]
          G1 Y#1 $
          #1 = [#1 + 1]
          G1 Z#1
        o1 endrepeat
    """, on_error="skip")
    assert [block.words for block in execution.blocks] == [(("G", 1.0), ("Z", float(i))) for i in (1, 2, 3)]
    assert execution.skipped == [(3, "t.ngc:3: division by zero in 'G1 X[1 / [#1 * 0]]'"),
                                 (4, "t.ngc:4: malformed word at '$' in 'G1 Y#1 $'")]


def test_skip_a_failing_control_line_skips_its_construct():
    execution = run("""
        o1 if [1/0]
          G1 X1
        o1 else
          G1 X2
        o1 endif
        o2 while [#<unset>]
          G1 X3
        o2 endwhile
        o3 repeat [sqrt[-1]]
          G1 X4
        o3 endrepeat
        o4 sub
          G1 X5
        o4 endsub
        o4 call [1/0]
        o5 if [1 +]
          G1 X6
        o5 endif
        G1 X7
    """, on_error="skip")
    assert [block.words[1] for block in execution.blocks] == [("X", 2.0), ("X", 7.0)]
    assert [line for line, _ in execution.skipped] == [1, 6, 9, 15, 16]


def test_skip_drops_an_unpaired_line_and_pairs_again():
    execution = run("""
        G1 X#1
        o9 endif
        o1 if [0]
          G1 X1
        o1 else
          G1 X2
        o1 endif
        o2 while [0]
        o3 if [0]
          G1 X3
        o2 endwhile
        o4 break
        G1 X4
    """, on_error="skip")
    assert [block.words[1] for block in execution.blocks] == [("X", 0.0), ("X", 2.0), ("X", 4.0)]
    assert execution.skipped == [(2, "t.ngc:2: o9 endif without o9 if in 'o9 endif'"),
                                 (9, "t.ngc:9: o3 if without o3 endif in 'o3 if [0]'"),
                                 (12, "t.ngc:12: o4 break outside an o4 loop in 'o4 break'")]


def test_skip_dropping_an_opener_orphans_its_branches():
    execution = run("""
        o1 if [1]
          G1 X1
        o1 else
          G1 X2
        G1 X3
    """, on_error="skip")
    # without its opener, 'o1 else' has no if: both are dropped and everything runs
    assert [block.words[1] for block in execution.blocks] == [("X", 1.0), ("X", 2.0), ("X", 3.0)]
    assert [line for line, _ in execution.skipped] == [1, 3]


def test_plain_lines_are_never_parsed_even_in_loops():
    lines = ["o1 repeat [2]", "G1 X1 ((( not parsed", "o1 endrepeat"]
    execution = run_program(lines, [True, False, True], source="t.ngc")
    assert execution.blocks == [Executed(2, None, EXPANDED)] * 2


# ------------------------------------------------------------------ property: only GCodeSyntaxError, ever


VALID_PROGRAMS = [IF_CHAIN, """
    #1 = 0
    o1 while [#1 lt 3]
      G1 X[#1 * 2 + sin[30]] Y#<_y>
      #1 = [#1 + 1]
    o1 endwhile
""", """
    o<f> sub
      o<f> return [#1 ** 2 mod 7]
    o<f> endsub
    o<f> call [3]
    o2 repeat [2]
      o3 do
        G1 X#<_value> F[atan[1]/[2]]
      o3 while [0]
    o2 endrepeat
"""]

TOKENS = ["o1", "o2", "o<a>", " sub", " endsub", " call", " return", " if", " elseif", " else", " endif", " while",
          " endwhile", " do", " repeat", " endrepeat", " break", " continue", "[", "]", "#1", "#2", "#<a>", "#<_b>",
          "#5400", "=", "+", "-", "*", "/", "**", " mod ", " eq ", " lt ", " and ", " or ", "sin", "atan", "exists",
          "abs", "ln", "sqrt", "G1", "X", "Y", "1", "0", ".5", "2", "9", "(", ")", ";", "#", "<", ">", " ", "N10", "o",
          "$", "1e9", "\t"]
random_line = st.lists(st.sampled_from(TOKENS), max_size=14).map("".join) | st.text(max_size=24)


def assert_only_syntax_errors(lines: list[str], interpret: list[bool]) -> None:
    for on_error in ("raise", "skip"):
        try:
            run_program(lines, interpret, source="f.ngc", on_error=on_error, max_blocks=400)
        except GCodeSyntaxError as error:
            message = str(error)
            assert message.startswith("f.ngc:") and "\n" not in message
            if on_error == "skip":
                assert "cnc.max_blocks" in message


@FUZZ
@given(st.lists(random_line, max_size=12), st.booleans())
def test_random_text_raises_only_syntax_errors(lines, interpret_all):
    assert_only_syntax_errors(lines, [True] * len(lines) if interpret_all else [needs_interpreter(line) for line in lines])


@FUZZ
@given(st.sampled_from(VALID_PROGRAMS), st.data())
def test_mutated_programs_raise_only_syntax_errors(program, data):
    text = textwrap.dedent(program).strip("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:at] + text[at + 1:]  # delete a character
        else:
            text = text[:at] + data.draw(st.sampled_from(list("[]()#<>o;=\n") + [" endif", " call"])) + text[at:]
    lines = text.split("\n")
    assert_only_syntax_errors(lines, [needs_interpreter(line) for line in lines])
