"""An interpreter for the RS-274/NGC language as LinuxCNC runs it: parameters, expressions, o-word control flow.

Most lines of a CNC program are plain words, which :mod:`sweeplab.gcode_language.parser` reads in bulk.
Lines that need more (``#`` parameters, ``[`` expressions, o-word control lines: :func:`needs_interpreter`)
make the caller run the whole program through :func:`run_program`, which executes it and reports, for each
line that control reaches, the words it evaluated to. Plain lines are never parsed here: they pass through
with ``None`` words, so the caller keeps its own fast reading of them.

Design:

- Compile once, run many times. Each NGC line is parsed once into closures: an expression becomes a small
  tree of functions over the interpreter's state (constants folded), and a run of operators of one
  precedence becomes one function over a list, so that a long expression never nests deep. A loop that runs
  a line a million times only calls its closures.
- Pair before running. The o-word structures (sub, if, while, do, repeat) are paired by label in one pass
  over the control lines, into jump targets per line; a pairing error names its line before anything runs.
- Execute with a program counter and a stack of call frames (``#1``..``#30``, named locals and repeat
  counters are per frame); every run of a line after its first counts against ``max_blocks``.

Errors are :class:`GCodeSyntaxError` naming the file, the line and its text. With ``on_error="skip"`` a
failing line is dropped and recorded once, and a failing control line skips its construct.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from sweeplab.gcode_language import GCodeSyntaxError

WRITTEN, EVALUATED, EXPANDED = 0, 1, 2  # Executed.origin
FIRST_PARAMETER, LAST_PARAMETER = 1, 5999
SYSTEM_PARAMETERS = 5000  # from here on LinuxCNC keeps machine state (offsets, probe results)
CALL_ARGUMENTS = 30  # #1..#30 carry a call's arguments
MAX_NESTING = 100  # brackets and parameter indirections inside one another
MAX_CALL_DEPTH = 64
EQUAL_TOLERANCE = 1e-6  # LinuxCNC's EQ and NE compare with this tolerance
INTEGER_TOLERANCE = 1e-4  # a parameter number or label this close to an integer counts as it

_DIGITS = "0123456789"
_UNSIGNED = re.compile(r"[0-9]*(?:\.[0-9]*)?")  # digits, then maybe a point and digits: one way to read each
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_INF = math.inf

Value = float | Callable[[], float]  # a compiled expression: a constant, or a function of the state


class Executed(NamedTuple):
    """One line that control reached and that can carry words."""

    line: int  # 1-based source line
    words: tuple[tuple[str, float], ...] | None  # evaluated words in written order; None for a plain line
    origin: int  # WRITTEN, EVALUATED or EXPANDED


@dataclass
class Execution:
    """What running a program produced."""

    blocks: list[Executed] = field(default_factory=list)  # in execution order
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, message), sorted by line
    warnings: collections.Counter[str] = field(default_factory=collections.Counter)
    control_lines: int = 0  # executed lines that only assign parameters or steer control flow


class _Problem(Exception):
    """What is wrong with a line, without where (the caller adds file, line and text)."""


# how evaluating an expression can fail; all but the first are a safety net (every operation checks its input)
_FAILURES = (_Problem, ArithmeticError, ValueError, RecursionError)


# ------------------------------------------------------------------ comments and detection


def _strip_comments(text: str) -> str:
    """The line without ``( )`` comments and without what follows ``;`` (the parser's order: ``;`` first)."""
    body = text.split(";", 1)[0]
    if "(" not in body and ")" not in body:
        return body
    kept, position = [], 0
    while True:
        opening = body.find("(", position)
        closing = body.find(")", position)
        if opening < 0:
            if closing >= 0:
                raise _Problem("unbalanced parenthesis")
            kept.append(body[position:])
            return "".join(kept)
        if closing < opening or body.find("(", opening + 1, closing) >= 0:  # ')' first, none, or nested
            raise _Problem("unbalanced parenthesis")
        kept.append(body[position:opening])
        position = closing + 1


def needs_interpreter(text: str) -> bool:
    """True when a line (after removing its comments) holds '#', '[' or an O word (o-word control: the
    first word after an optional N number is O/o followed by a number or <name>)."""
    try:
        body = _strip_comments(text)
    except _Problem:
        body = text.split(";", 1)[0]  # broken comments: let the interpreter report them if it has to
    if "#" in body or "[" in body:
        return True
    compact = body.replace(" ", "").replace("\t", "")
    position = 0
    if compact[:1] in ("n", "N"):
        position = 1
        while position < len(compact) and compact[position] in _DIGITS:
            position += 1
    return compact[position:position + 1] in ("o", "O") and compact[position + 1:position + 2] in (
        *_DIGITS, "<")


# ------------------------------------------------------------------ arithmetic (LinuxCNC semantics)


def _finite(value: float, what: str) -> float:
    if -_INF < value < _INF:
        return value
    raise _Problem(f"{what} overflows")


def _add(x: float, y: float) -> float:
    return _finite(x + y, "sum")


def _subtract(x: float, y: float) -> float:
    return _finite(x - y, "difference")


def _multiply(x: float, y: float) -> float:
    return _finite(x * y, "product")


def _divide(x: float, y: float) -> float:
    if y == 0.0:
        raise _Problem("division by zero")
    return _finite(x / y, "quotient")


def _modulo(x: float, y: float) -> float:
    if y == 0.0:
        raise _Problem("MOD by zero")
    remainder = math.fmod(x, y)
    return remainder + abs(y) if remainder < 0.0 else remainder  # LinuxCNC: never negative


def _power(x: float, y: float) -> float:
    if x < 0.0 and y != math.floor(y):
        raise _Problem("negative number to a non-integer power")
    if x == 0.0 and y < 0.0:
        raise _Problem("zero to a negative power")
    try:
        return _finite(math.pow(x, y), "power")
    except OverflowError:
        raise _Problem("power overflows") from None


def _equal(x: float, y: float) -> float:
    return 1.0 if abs(x - y) < EQUAL_TOLERANCE else 0.0


def _not_equal(x: float, y: float) -> float:
    return 0.0 if abs(x - y) < EQUAL_TOLERANCE else 1.0


def _and(x: float, y: float) -> float:
    return 1.0 if x != 0.0 and y != 0.0 else 0.0


def _or(x: float, y: float) -> float:
    return 1.0 if x != 0.0 or y != 0.0 else 0.0


def _xor(x: float, y: float) -> float:
    return 1.0 if (x != 0.0) != (y != 0.0) else 0.0


# name -> (precedence, function); LinuxCNC's order, all left-associative
_BINARY: dict[str, tuple[int, Callable[[float, float], float]]] = {
    "**": (5, _power),
    "*": (4, _multiply), "/": (4, _divide), "mod": (4, _modulo),
    "+": (3, _add), "-": (3, _subtract),
    "eq": (2, _equal), "ne": (2, _not_equal), "gt": (2, lambda x, y: float(x > y)),
    "ge": (2, lambda x, y: float(x >= y)), "lt": (2, lambda x, y: float(x < y)),
    "le": (2, lambda x, y: float(x <= y)),
    "and": (1, _and), "or": (1, _or), "xor": (1, _xor),
}
_WORD_OPERATORS = ("mod", "eq", "ne", "gt", "ge", "lt", "le", "and", "xor", "or")


def _inverse_trig(function: Callable[[float], float], name: str) -> Callable[[float], float]:
    def evaluate(x: float) -> float:
        if not -1.0 <= x <= 1.0:
            raise _Problem(f"{name} of {x:g} (outside -1..1)")
        return math.degrees(function(x))
    return evaluate


def _sqrt(x: float) -> float:
    if x < 0.0:
        raise _Problem(f"SQRT of a negative number ({x:g})")
    return math.sqrt(x)


def _exp(x: float) -> float:
    try:
        return _finite(math.exp(x), "EXP")
    except OverflowError:
        raise _Problem("EXP overflows") from None


def _ln(x: float) -> float:
    if x <= 0.0:
        raise _Problem(f"LN of a number that is not positive ({x:g})")
    return math.log(x)


def _round(x: float) -> float:
    """Half-way cases away from zero, as LinuxCNC's ROUND."""
    return float(math.copysign(math.floor(abs(x) + 0.5), x))


_UNARY: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "acos": _inverse_trig(math.acos, "ACOS"),
    "asin": _inverse_trig(math.asin, "ASIN"),
    "cos": lambda x: math.cos(math.radians(x)),
    "exp": _exp,
    "fix": lambda x: float(math.floor(x)),
    "fup": lambda x: float(math.ceil(x)),
    "ln": _ln,
    "round": _round,
    "sin": lambda x: math.sin(math.radians(x)),
    "sqrt": _sqrt,
    "tan": lambda x: math.tan(math.radians(x)),
}


def _whole_number(value: float, what: str) -> int:
    whole = round(value)
    if abs(value - whole) > INTEGER_TOLERANCE:
        raise _Problem(f"{what} {value:g} is not an integer")
    return whole


def _parameter_number(value: float) -> int:
    number = _whole_number(value, "parameter number")
    if not FIRST_PARAMETER <= number <= LAST_PARAMETER:
        raise _Problem(f"parameter number {number} is outside {FIRST_PARAMETER}..{LAST_PARAMETER}")
    return number


def _as_function(value: Value) -> Callable[[], float]:
    return (lambda: value) if isinstance(value, float) else value


# ------------------------------------------------------------------ runtime state


class _State:
    """The parameters a program reads and writes; ``args``, ``locals`` and ``repeats`` belong to the
    current call frame and are swapped on call and return."""

    __slots__ = ("args", "numbered", "system_set", "locals", "globals", "repeats", "warnings")

    def __init__(self) -> None:
        self.args = [0.0] * (CALL_ARGUMENTS + 1)  # index 0 unused
        self.numbered = [0.0] * (LAST_PARAMETER + 1)  # #31 and up
        self.system_set: set[int] = set()  # numbers >= SYSTEM_PARAMETERS the program assigned
        self.locals: dict[str, float] = {}
        self.globals: dict[str, float] = {}
        self.repeats: dict[int, int] = {}  # repeat line index -> iterations left
        self.warnings: collections.Counter[str] = collections.Counter()

    def read_numbered(self, number: int) -> float:
        if number <= CALL_ARGUMENTS:
            return self.args[number]
        if number >= SYSTEM_PARAMETERS and number not in self.system_set:
            self.warnings[f"system parameter #{number} (read as 0)"] += 1
        return self.numbered[number]

    def write_numbered(self, number: int, value: float) -> None:
        if number <= CALL_ARGUMENTS:
            self.args[number] = value
        else:
            self.numbered[number] = value
            if number >= SYSTEM_PARAMETERS:
                self.system_set.add(number)

    def write_named(self, name: str, value: float) -> None:
        (self.globals if name.startswith("_") else self.locals)[name] = value


# ------------------------------------------------------------------ compiling one line

# o-word keywords, longest first where one is a prefix of another
_KEYWORDS = ("endrepeat", "endwhile", "continue", "endsub", "elseif", "repeat", "return", "endif", "break",
             "while", "call", "else", "sub", "if", "do")
_NEEDS_CONDITION = ("if", "elseif", "while", "repeat")
_TAKES_VALUE = ("return", "endsub")


def _label_text(label: str) -> str:
    return f"o{label}" if label.isdigit() else f"o<{label}>"


class _Words(NamedTuple):
    run: Callable[[], tuple[tuple[str, float], ...]]  # evaluates the words and applies the assignments
    has_words: bool


class _Control(NamedTuple):
    keyword: str  # one of _KEYWORDS, or "number" for a bare program number (O1000)
    label: str | None  # None: computed (o[...] call)
    label_value: Callable[[], float] | None  # the computed label
    values: tuple[Callable[[], float], ...]  # the bracketed expressions: condition, count, arguments, value
    argument_error: str | None  # the bracketed part did not compile (the structure still pairs)


class _LineCompiler:
    """Recursive descent over one line with comments and blanks removed, lower case."""

    def __init__(self, state: _State, text: str) -> None:
        self.state = state
        self.text = text
        self.position = 0

    def compile(self) -> _Words | _Control | None:
        text = self.text
        if text.startswith("n") and text[1:2] in (*_DIGITS, "."):
            self.position = 1
            self.number()
        if text[self.position:self.position + 1] == "o":
            return self.control()
        return self.words()

    # --- helpers

    def at(self) -> str:
        return self.text[self.position:self.position + 1]

    def snippet(self) -> str:
        rest = self.text[self.position:self.position + 12].upper()
        return repr(rest) if rest else "end of line"

    def expect(self, char: str, what: str) -> None:
        if self.at() != char:
            raise _Problem(f"expected {what} at {self.snippet()}")
        self.position += 1

    # --- words and assignments

    def words(self) -> _Words | None:
        text, state = self.text, self.state
        items: list[tuple[str, Value] | tuple[str, int | str | Callable[[], float], Value]] = []
        has_words = False
        while self.position < len(text):
            char = text[self.position]
            if char == "#":
                items.append(self.assignment())
            elif char in _LETTERS:
                start = self.position
                self.position += 1
                if char == "o":
                    raise _Problem(f"an o-word must start the line, at {text[start:start + 12].upper()!r}")
                if self.at() not in (*_DIGITS, ".", "+", "-", "[", "#") and not ("a" <= self.at() <= "z"):
                    raise _Problem(f"malformed word at {text[start:start + 12].upper()!r}")
                if char == "n":  # a line number: dropped, like the parser does
                    self.number()
                    continue
                items.append((char.upper(), self.operand(0)))
                has_words = True
            else:
                raise _Problem(f"malformed word at {self.snippet()}")
        if not items:
            return None
        return _Words(_words_runner(state, items), has_words)

    def assignment(self) -> tuple[str, int | str | Callable[[], float], Value]:
        """``#n = value`` or ``#<name> = value``: ("#", target, value); the target is a parameter number, a
        name, or a function giving the number (``#[...] = value``), evaluated when the line runs."""
        self.position += 1  # '#'
        target: int | str | Callable[[], float]
        if self.at() == "<":
            target = self.name()
        else:
            index = self.operand(1)
            target = _parameter_number(index) if isinstance(index, float) else index
        self.expect("=", "'=' after the parameter")
        return "#", target, self.operand(0)

    # --- expressions

    def operand(self, depth: int) -> Value:
        """A number, parameter, [expression] or function call, after any signs."""
        text = self.text
        negate = False
        while self.at() in ("+", "-"):
            negate ^= text[self.position] == "-"
            self.position += 1
        char = self.at()
        if char and char in _DIGITS + ".":
            value: Value = self.number()
        elif char == "[":
            value = self.bracketed(depth + 1)
        elif char == "#":
            value = self.parameter(depth + 1)
        elif char and char in _LETTERS:
            value = self.function(depth + 1)
        else:
            raise _Problem(f"expected a value at {self.snippet()}")
        if not negate:
            return value
        if isinstance(value, float):
            return -value
        return lambda: -value()

    def number(self) -> float:
        start = self.position
        self.position = _UNSIGNED.match(self.text, start).end()  # one C-level scan: compiling is most of the cost
        digits = self.text[start:self.position]
        if digits in ("", "."):
            self.position = start
            raise _Problem(f"expected a number at {self.snippet()}")
        value = float(digits)
        if value == _INF:
            raise _Problem(f"number {digits[:12]}... is too large")
        return value

    def name(self) -> str:
        """``<name>`` (blanks already removed, lower case)."""
        end = self.text.find(">", self.position + 1)
        if end < 0:
            raise _Problem(f"name without closing '>' at {self.snippet()}")
        name = self.text[self.position + 1:end]
        if not name:
            raise _Problem("empty name '<>'")
        self.position = end + 1
        return name

    def bracketed(self, depth: int) -> Value:
        if depth > MAX_NESTING:
            raise _Problem(f"expression nested deeper than {MAX_NESTING} levels")
        self.expect("[", "'['")
        value = self.expression(depth)
        self.expect("]", "an operator or ']'")
        return value

    def expression(self, depth: int) -> Value:
        """Operands and binary operators up to the closing ']'. Each open chain is (precedence, operands,
        functions); a lower-precedence operator closes the chains above it, so the result nests only as
        deep as there are precedence levels, never as long as the expression is."""
        chains: list[tuple[int, list[Value], list[Callable[[float, float], float]]]] = []
        current = self.operand(depth)
        while True:
            operator = self.operator()
            if operator is None:
                break
            precedence, function = _BINARY[operator]
            while chains and chains[-1][0] > precedence:
                _, operands, functions = chains.pop()
                current = _chain(operands + [current], functions)
            if chains and chains[-1][0] == precedence:
                chains[-1][1].append(current)
                chains[-1][2].append(function)
            else:
                chains.append((precedence, [current], [function]))
            current = self.operand(depth)
        while chains:
            _, operands, functions = chains.pop()
            current = _chain(operands + [current], functions)
        return current

    def operator(self) -> str | None:
        """The binary operator at the position (consumed), or None at ']'."""
        char = self.at()
        if char == "]":
            return None
        if char == "*":
            operator = "**" if self.text.startswith("**", self.position) else "*"
        elif char in ("/", "+", "-"):
            operator = char
        else:
            operator = next((name for name in _WORD_OPERATORS if self.text.startswith(name, self.position)), None)
            if operator is None:
                raise _Problem(f"expected an operator or ']' at {self.snippet()}")
        self.position += len(operator)
        return operator

    def parameter(self, depth: int) -> Value:
        """A parameter read: ``#<name>``, ``#12`` or a computed number (``#[...]``, ``##1``)."""
        if depth > MAX_NESTING:
            raise _Problem(f"expression nested deeper than {MAX_NESTING} levels")
        self.position += 1  # '#'
        state = self.state
        if self.at() == "<":
            return _named_reader(state, self.name())
        index = self.operand(depth)
        if not isinstance(index, float):
            return lambda: state.read_numbered(_parameter_number(index()))
        number = _parameter_number(index)
        if number <= CALL_ARGUMENTS:
            return lambda: state.args[number]
        if number < SYSTEM_PARAMETERS:
            numbered = state.numbered
            return lambda: numbered[number]
        return lambda: state.read_numbered(number)

    def function(self, depth: int) -> Value:
        text, start = self.text, self.position
        while self.position < len(text) and text[self.position] in _LETTERS:
            self.position += 1
        name = text[start:self.position]
        if name not in _UNARY and name not in ("atan", "exists"):
            self.position = start
            raise _Problem(f"expected a value at {self.snippet()}")
        if self.at() != "[":
            raise _Problem(f"{name.upper()} needs its argument in brackets, at {self.snippet()}")
        if name == "exists":
            self.position += 1
            self.expect("#", "'#<name>' in EXISTS")
            if self.at() != "<":
                raise _Problem(f"EXISTS takes a named parameter, at {self.snippet()}")
            parameter = self.name()
            self.expect("]", "']' after EXISTS[#<name>")
            return _exists(self.state, parameter)
        argument = self.bracketed(depth)
        if name == "atan":
            if not text.startswith("/[", self.position):
                raise _Problem(f"ATAN takes two arguments, ATAN[y]/[x], at {self.snippet()}")
            self.position += 1
            return _call(lambda y, x: math.degrees(math.atan2(y, x)), argument, self.bracketed(depth))
        return _call(_UNARY[name], argument)

    # --- o-word lines

    def control(self) -> _Control | None:
        self.position += 1  # 'o'
        label: str | None = None
        label_value: Callable[[], float] | None = None
        char = self.at()
        if char == "<":
            label = self.name()
        elif char and char in _DIGITS:
            start = self.position
            while self.at() and self.at() in _DIGITS:
                self.position += 1
            label = self.text[start:self.position].lstrip("0") or "0"  # o0100 is o100 (an integer)
        elif char in ("[", "#"):
            label_value = _as_function(self.operand(0))
        else:
            raise _Problem(f"an o-word needs a number or <name>, at {self.snippet()}")
        keyword = next((word for word in _KEYWORDS if self.text.startswith(word, self.position)), None)
        after = self.position + len(keyword) if keyword is not None else self.position
        if keyword is not None and self.text[after:after + 1] and self.text[after] in _LETTERS:
            keyword = None  # `o1 iffy` is not `if` followed by junk
        if keyword is None:
            if label is not None and label.isdigit() and self.position == len(self.text):
                return _Control("number", label, None, (), None)  # a Fanuc-style program number
            raise _Problem(f"unknown o-word command at {self.snippet()}")
        if label is None and keyword != "call":
            raise _Problem(f"a computed o-word label is only allowed with call, not {keyword}")
        self.position += len(keyword)
        try:
            values = self.control_arguments(keyword, label)
        except _Problem as problem:
            return _Control(keyword, label, label_value, (), str(problem))
        return _Control(keyword, label, label_value, values, None)

    def control_arguments(self, keyword: str, label: str | None) -> tuple[Callable[[], float], ...]:
        values: list[Value] = []
        while self.at() == "[":
            values.append(self.bracketed(1))
        what = f"{_label_text(label) if label is not None else 'o[...]'} {keyword}"
        if self.position < len(self.text):
            raise _Problem(f"unexpected {self.snippet()} after {what}")
        if keyword in _NEEDS_CONDITION and len(values) != 1:
            raise _Problem(f"{what} takes one [expression], got {len(values)}")
        if keyword in _TAKES_VALUE and len(values) > 1:
            raise _Problem(f"{what} takes at most one [expression], got {len(values)}")
        if keyword == "call" and len(values) > CALL_ARGUMENTS:
            raise _Problem(f"{what} has {len(values)} arguments; at most {CALL_ARGUMENTS}")
        if keyword not in (*_NEEDS_CONDITION, *_TAKES_VALUE, "call") and values:
            raise _Problem(f"{what} takes no [expression]")
        return tuple(_as_function(value) for value in values)


def _chain(operands: list[Value], functions: list[Callable[[float, float], float]]) -> Value:
    """``a op b op c ...`` left to right, as one function (folded when every operand is a constant and the
    result is well-defined; an error such as 1/0 waits until the line runs)."""
    if all(isinstance(operand, float) for operand in operands):
        try:
            value = operands[0]
            for function, operand in zip(functions, operands[1:], strict=True):
                value = function(value, operand)
            return value
        except _FAILURES:
            pass
    if len(functions) == 1:
        return _call(functions[0], operands[0], operands[1])
    first = _as_function(operands[0])
    rest = [(function, _as_function(operand)) for function, operand in zip(functions, operands[1:], strict=True)]

    def evaluate() -> float:
        value = first()
        for function, operand in rest:
            value = function(value, operand())
        return value
    return evaluate


def _call(function: Callable[..., float], *arguments: Value) -> Value:
    """``function(*arguments)``, specialised on which arguments are constants (the common cases are fast)."""
    if all(isinstance(argument, float) for argument in arguments):
        try:
            return float(function(*arguments))
        except _FAILURES:
            pass
    if len(arguments) == 1:
        (only,) = arguments
        only = _as_function(only)
        return lambda: function(only())
    left, right = arguments
    if isinstance(left, float) and callable(right):
        return lambda: function(left, right())
    if isinstance(right, float) and callable(left):
        return lambda: function(left(), right)
    left, right = _as_function(left), _as_function(right)  # two constants whose result is an error: at run time
    return lambda: function(left(), right())


def _named_reader(state: _State, name: str) -> Callable[[], float]:
    if name.startswith("_"):
        warning = f"controller parameter #<{name}> (read as 0)"

        def read_global() -> float:
            value = state.globals.get(name)
            if value is None:
                state.warnings[warning] += 1
                return 0.0
            return value
        return read_global

    def read_local() -> float:
        try:
            return state.locals[name]
        except KeyError:
            raise _Problem(f"parameter #<{name}> is read before it is set") from None
    return read_local


def _exists(state: _State, name: str) -> Callable[[], float]:
    if name.startswith("_"):
        return lambda: 1.0 if name in state.globals else 0.0
    return lambda: 1.0 if name in state.locals else 0.0


def _words_runner(state: _State, items: list) -> Callable[[], tuple[tuple[str, float], ...]]:
    """A function that evaluates a line's words and assignment values in written order, then applies the
    assignments in order (so ``#1=2 #2=#1`` gives #2 the old #1), and returns the words."""
    if all(item[0] != "#" for item in items):  # words only: the common case, kept fast
        if all(isinstance(value, float) for _, value in items):
            constant = tuple(items)
            return lambda: constant
        spec = [(letter, None, (letter, value)) if isinstance(value, float) else (letter, value, None)
                for letter, value in items]
        return lambda: tuple([pair if function is None else (letter, function()) for letter, function, pair in spec])
    if len(items) == 1 and not callable(items[0][1]):  # one assignment to a fixed parameter: `#1=[#1+1]`
        _, target, value = items[0]
        value = _as_function(value)
        write = state.write_numbered if isinstance(target, int) else state.write_named

        def assign() -> tuple[tuple[str, float], ...]:
            write(target, value())
            return ()
        return assign

    def run() -> tuple[tuple[str, float], ...]:
        words: list[tuple[str, float]] = []
        pending: list[tuple[int | str, float]] = []
        for first, second, *third in items:
            if first != "#":
                words.append((first, second if isinstance(second, float) else second()))
                continue
            target = _parameter_number(second()) if callable(second) else second
            value = third[0]
            pending.append((target, value if isinstance(value, float) else value()))
        for target, value in pending:
            if isinstance(target, int):
                state.write_numbered(target, value)
            else:
                state.write_named(target, value)
        return tuple(words)
    return run


# ------------------------------------------------------------------ pairing the o-word structures

_OPENERS = ("sub", "if", "while", "do", "repeat")
_CLOSER_OF = {"sub": "endsub", "if": "endif", "while": "endwhile", "do": "while", "repeat": "endrepeat"}
_OPENER_OF = {"endsub": "sub", "endif": "if", "endwhile": "while", "endrepeat": "repeat"}
_LOOPS = ("while", "do", "repeat")


class _Open:
    """An opened structure on the pairing stack."""

    __slots__ = ("kind", "label", "index", "branches", "else_index", "members", "dependents")

    def __init__(self, kind: str, label: str, index: int) -> None:
        self.kind, self.label, self.index = kind, label, index
        self.branches: list[int] = []  # elseif/else lines of an if
        self.else_index = -1
        self.members: list[int] = []  # break/continue lines of a loop
        self.dependents = 0  # lines whose pairing depends on this one (dropping it means pairing again)

    def __str__(self) -> str:
        return f"{_label_text(self.label)} {self.kind} (line {self.index + 1})"


@dataclass
class _Structure:
    """The pairing of a program's control lines, as jump targets by line index (see :func:`_execute`)."""

    jump: dict[int, int] = field(default_factory=dict)
    end_of_if: dict[int, int] = field(default_factory=dict)  # elseif/else -> its endif
    closer: dict[int, int] = field(default_factory=dict)  # opener -> its closer
    subs: dict[str, int] = field(default_factory=dict)  # label -> sub line
    do_closers: set[int] = field(default_factory=set)  # `while` lines that close a `do`


class _Restart(Exception):
    """Dropping an opener changed how later lines pair: pair again without it."""


def _pair(controls: list[tuple[int, _Control]], report: Callable[[int, str], None]) -> tuple[_Structure, set[int]]:
    """Pair the control lines by label; ``report`` raises or records an error. With errors recorded, the
    unpaired line is dropped and pairing retried without it. Returns the structure and the dropped lines."""
    dropped: set[int] = set()
    while True:
        try:
            return _pair_once(controls, dropped, report), dropped
        except _Restart:
            continue


def _pair_once(controls: list[tuple[int, _Control]], dropped: set[int],  # noqa: PLR0912, PLR0915 - one branch per keyword
               report: Callable[[int, str], None]) -> _Structure:
    structure = _Structure()
    stack: list[_Open] = []
    open_count: collections.Counter[tuple[str, str]] = collections.Counter()  # (kind, label) on the stack

    def error(index: int, what: str) -> None:
        report(index, what)  # raises with on_error="raise"
        dropped.add(index)

    def push(kind: str, label: str, index: int) -> None:
        stack.append(_Open(kind, label, index))
        open_count[kind, label] += 1

    def pop() -> _Open:
        entry = stack.pop()
        open_count[entry.kind, entry.label] -= 1
        return entry

    def drop_unclosed(entries: list[_Open]) -> None:
        for entry in sorted(entries, key=lambda entry: entry.index):
            error(entry.index, f"{_label_text(entry.label)} {entry.kind} without "
                               f"{_label_text(entry.label)} {_CLOSER_OF[entry.kind]}")
            if entry.kind == "sub":
                structure.subs.pop(entry.label, None)
        if any(entry.dependents for entry in entries):
            raise _Restart

    def close(index: int, kind: str, label: str) -> None:
        name = _label_text(label)
        if open_count[kind, label] == 0:
            closing = "while" if kind == "do" else _CLOSER_OF[kind]
            error(index, f"{name} {closing} without {name} {kind}")
            return
        unclosed = []
        while stack[-1].kind != kind or stack[-1].label != label:
            unclosed.append(pop())
        if unclosed:
            drop_unclosed(unclosed)
        _link(structure, pop(), index)

    for index, control in controls:
        if index in dropped:
            continue
        kind, label = control.keyword, control.label
        if kind == "call" or label is None:
            continue
        name = _label_text(label)
        if kind == "sub":
            if stack:
                stack[-1].dependents += 1
                error(index, f"{name} sub inside {stack[-1]}; subroutines are defined at top level")
            elif label in structure.subs:
                error(index, f"{name} sub defined twice (first at line {structure.subs[label] + 1})")
            else:
                structure.subs[label] = index
                push(kind, label, index)
        elif kind == "while" and open_count["do", label]:
            close(index, "do", label)
        elif kind in _OPENERS:
            push(kind, label, index)
        elif kind in _OPENER_OF:
            close(index, _OPENER_OF[kind], label)
        elif kind in ("elseif", "else"):
            top = stack[-1] if stack else None
            if top is None or top.kind != "if" or top.label != label:
                error(index, f"{name} {kind} without {name} if")
            elif top.else_index >= 0:
                error(index, f"{name} {kind} after {name} else (line {top.else_index + 1})")
            else:
                top.branches.append(index)
                top.dependents += 1
                if kind == "else":
                    top.else_index = index
        elif kind in ("break", "continue"):
            loop = next((entry for entry in reversed(stack) if entry.kind in _LOOPS and entry.label == label), None)
            if loop is None:
                error(index, f"{name} {kind} outside an {name} loop")
            else:
                loop.members.append(index)
                loop.dependents += 1
        elif kind == "return":
            if stack and stack[0].kind == "sub" and stack[0].label == label:
                stack[0].dependents += 1
            else:
                error(index, f"{name} return outside {name} sub")
    if stack:
        drop_unclosed(stack)
    return structure


def _link(structure: _Structure, opener: _Open, closer: int) -> None:
    jump = structure.jump
    structure.closer[opener.index] = closer
    if opener.kind == "if":
        chain = [opener.index, *opener.branches, closer]
        for line, following in zip(chain, chain[1:]):
            jump[line] = following  # where a false condition goes
        for line in opener.branches:
            structure.end_of_if[line] = closer  # where the end of a taken branch goes
    elif opener.kind == "do":
        jump[closer] = opener.index
        structure.do_closers.add(closer)
    else:  # sub, while, repeat: the opener skips past its closer, the closer goes back to the opener
        jump[opener.index] = closer
        jump[closer] = opener.index
    for member in opener.members:
        jump[member] = closer  # break: past it; continue: to it


# ------------------------------------------------------------------ executing

(_PLAIN, _WORDS, _ASSIGN, _NOTHING, _NUMBER, _IF, _ELSEIF, _ELSE, _ENDIF, _WHILE, _ENDWHILE, _DO, _DO_WHILE,
 _REPEAT, _ENDREPEAT, _BREAK, _CONTINUE, _SUB, _ENDSUB, _RETURN, _CALL) = range(21)
_CODE_OF = {"if": _IF, "elseif": _ELSEIF, "else": _ELSE, "endif": _ENDIF, "while": _WHILE, "endwhile": _ENDWHILE,
            "do": _DO, "repeat": _REPEAT, "endrepeat": _ENDREPEAT, "break": _BREAK, "continue": _CONTINUE,
            "sub": _SUB, "endsub": _ENDSUB, "return": _RETURN, "call": _CALL, "number": _NUMBER}


class _Frame(NamedTuple):
    return_to: int
    args: list[float]
    locals: dict[str, float]
    repeats: dict[int, int]
    call_index: int


def _failing(message: str) -> Callable[[], float]:
    def fail() -> float:
        raise _Problem(message)
    return fail


def _label_of(value: float) -> str:
    number = _whole_number(value, "o-word label")
    if number < 0:
        raise _Problem(f"o-word label {number} is negative")
    return str(number)


def run_program(lines: Sequence[str], interpret: Sequence[bool], *, source: str,
                on_error: Literal["raise", "skip"] = "raise", max_blocks: int = 1_000_000) -> Execution:
    """Execute a program. ``interpret[i]`` says line ``i + 1`` needs the interpreter (see
    :func:`needs_interpreter`); the other lines are plain: never parsed here, passed through as
    ``Executed(line, None, origin)`` each time control reaches them."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if len(interpret) != len(lines):
        raise ValueError(f"{len(lines)} lines but {len(interpret)} interpret flags")
    problems: dict[int, str] = {}  # 1-based line -> message, the first one

    def report(index: int, what: str) -> None:
        message = f"{source}:{index + 1}: {what} in {lines[index].strip()!r}"
        if on_error == "raise":
            raise GCodeSyntaxError(message)
        problems.setdefault(index + 1, message)

    state = _State()
    codes, runs, controls = _compile(lines, interpret, state, report)
    structure, dropped = _pair([(index, control) for index, control in controls if control.keyword != "number"],
                               report)
    for index in dropped:
        codes[index] = _NOTHING
    for index in structure.do_closers:
        codes[index] = _DO_WHILE
    calls = {index: (control.label, control.label_value) for index, control in controls if control.keyword == "call"}
    numbers = {index: f"program number O{control.label} (ignored)" for index, control in controls
               if control.keyword == "number"}
    origins, loop_of = _layout(codes, structure)
    plan = _Plan(codes, runs, origins, loop_of, structure, calls, numbers)
    execution = Execution()
    execution.control_lines = _execute(plan, state, execution, report, source=source, max_blocks=max_blocks)
    execution.skipped = sorted(problems.items())
    execution.warnings = state.warnings
    return execution


def _compile(lines: Sequence[str], interpret: Sequence[bool], state: _State, report: Callable[[int, str], None]
             ) -> tuple[list[int], list, list[tuple[int, _Control]]]:
    """Each line's opcode and compiled form (the words runner, or a control line's bracketed values), and
    the control lines for pairing."""
    count = len(lines)
    codes = [_PLAIN] * count
    runs: list[Callable[[], tuple[tuple[str, float], ...]] | tuple[Callable[[], float], ...] | None] = [None] * count
    controls: list[tuple[int, _Control]] = []
    for index in range(count):
        if not interpret[index]:
            continue
        try:
            compact = _strip_comments(lines[index]).replace(" ", "").replace("\t", "").lower()
            compiled = _LineCompiler(state, compact).compile()
        except _Problem as problem:
            report(index, str(problem))
            codes[index] = _NOTHING
            continue
        except RecursionError:  # a safety net: nesting is capped well below Python's limit
            report(index, "expression nested too deeply")
            codes[index] = _NOTHING
            continue
        if compiled is None:
            codes[index] = _NOTHING
        elif isinstance(compiled, _Words):
            codes[index] = _WORDS if compiled.has_words else _ASSIGN
            runs[index] = compiled.run
        else:
            values = compiled.values
            if compiled.argument_error is not None:
                report(index, compiled.argument_error)
                values = (_failing(compiled.argument_error),)  # the construct fails each time it runs
            codes[index] = _CODE_OF[compiled.keyword]
            runs[index] = values
            controls.append((index, compiled))
    return codes, runs, controls


def _layout(codes: list[int], structure: _Structure) -> tuple[list[int], list[int]]:
    """Each line's origin (WRITTEN/EVALUATED at top level, EXPANDED inside a structure), and the innermost
    loop around it (its opener's index, or -1), for the message of an endless loop."""
    count = len(codes)
    depth_change = [0] * (count + 1)
    loop_closers: dict[int, int] = {}
    for opener, closer in structure.closer.items():
        depth_change[opener + 1] += 1
        depth_change[closer] -= 1
        if codes[opener] in (_WHILE, _DO, _REPEAT):
            loop_closers[closer] = opener
    origins, loop_of, loops = [0] * count, [-1] * count, []
    depth = 0
    for index in range(count):
        depth += depth_change[index]
        if depth:
            origins[index] = EXPANDED
        else:
            origins[index] = WRITTEN if codes[index] == _PLAIN else EVALUATED
        if index in loop_closers:
            loop_of[index] = loops.pop()
        elif index in structure.closer and codes[index] in (_WHILE, _DO, _REPEAT):
            loop_of[index] = index
            loops.append(index)
        elif loops:
            loop_of[index] = loops[-1]
    return origins, loop_of


@dataclass
class _Plan:
    """A compiled, paired program: per line its opcode, compiled form, origin and innermost loop."""

    codes: list[int]
    runs: list  # the words runner, or a control line's bracketed values
    origins: list[int]
    loop_of: list[int]
    structure: _Structure
    calls: dict[int, tuple[str | None, Callable[[], float] | None]]  # call line -> (label, computed label)
    numbers: dict[int, str]  # program number line -> its warning


def _execute(plan: _Plan, state: _State, execution: Execution,  # noqa: PLR0912, PLR0915 - one loop, no call per line
             report: Callable[[int, str], None], *, source: str, max_blocks: int) -> int:
    """Run from the first line to the end; fills ``execution.blocks`` and returns the number of control lines."""
    codes, runs, origins, loop_of, structure = plan.codes, plan.runs, plan.origins, plan.loop_of, plan.structure
    calls, numbers = plan.calls, plan.numbers
    blocks = execution.blocks
    append = blocks.append
    jump, end_of_if, subs = structure.jump, structure.end_of_if, structure.subs
    warnings, globals_ = state.warnings, state.globals
    frames: list[_Frame] = []
    count = len(codes)
    pc = executed = control = 0
    entering = False  # control came to an elseif/else from a false condition (not from the end of a branch)

    def fail(index: int, exc: BaseException) -> None:
        if isinstance(exc, _Problem):
            report(index, str(exc))
        elif isinstance(exc, RecursionError):
            report(index, "expression nested too deeply")
        else:
            report(index, f"cannot evaluate ({exc})")

    def value_of(index: int) -> float | None:
        """The line's first bracketed value; None when it fails (recorded)."""
        try:
            return runs[index][0]()
        except _FAILURES as exc:
            fail(index, exc)
            return None

    def too_many(index: int) -> GCodeSyntaxError:
        loop, frame = loop_of[index], len(frames)
        while loop < 0 and frame > 0:  # not in a loop here: maybe the call that got us here is
            frame -= 1
            loop = loop_of[frames[frame].call_index]
        endless = f"; is the loop at line {loop + 1} endless?" if loop >= 0 else ""
        return GCodeSyntaxError(f"{source}:{index + 1}: more than {max_blocks:,} lines run again by loops and "
                                f"calls (cnc.max_blocks){endless}")

    seen = bytearray(count)  # a line's first run is bounded by the file; only runs again can be endless
    while pc < count:
        if seen[pc]:
            executed += 1
            if executed > max_blocks:
                raise too_many(pc)
        else:
            seen[pc] = 1
        code = codes[pc]
        if code == _PLAIN:
            append(Executed(pc + 1, None, origins[pc]))
            pc += 1
        elif code == _WORDS:
            try:
                words = runs[pc]()
            except _FAILURES as exc:
                fail(pc, exc)
            else:
                append(Executed(pc + 1, words, origins[pc]))
            pc += 1
        elif code == _ASSIGN:
            try:
                runs[pc]()
                control += 1
            except _FAILURES as exc:
                fail(pc, exc)
            pc += 1
        elif code == _NOTHING:
            pc += 1
        else:
            control += 1
            if code == _ENDREPEAT:
                start = jump[pc]
                left = state.repeats.get(start, 1) - 1
                if left > 0:
                    state.repeats[start] = left
                    pc = start + 1
                else:
                    pc += 1
            elif code == _ENDWHILE:
                pc = jump[pc]
            elif code == _WHILE:
                pc = pc + 1 if value_of(pc) else jump[pc] + 1
            elif code == _DO_WHILE:
                pc = jump[pc] if value_of(pc) else pc + 1
            elif code == _IF:
                if value_of(pc):
                    pc += 1
                else:
                    pc, entering = jump[pc], True
            elif code == _ELSEIF:
                if not entering:
                    pc = end_of_if[pc]
                elif value_of(pc):
                    pc, entering = pc + 1, False
                else:
                    pc = jump[pc]
            elif code == _ELSE:
                pc, entering = (pc + 1 if entering else end_of_if[pc]), False
            elif code == _ENDIF:
                pc, entering = pc + 1, False
            elif code == _REPEAT:
                times = value_of(pc)
                times = int(_round(times)) if times is not None else 0
                if times > 0:
                    state.repeats[pc] = times
                    pc += 1
                else:
                    pc = jump[pc] + 1
            elif code == _DO:
                pc += 1
            elif code == _BREAK:
                pc = jump[pc] + 1
            elif code == _CONTINUE:
                pc = jump[pc]
            elif code == _SUB:
                pc = jump[pc] + 1  # a definition: its body runs only when called
            elif code == _CALL:
                pc = _enter(pc, runs[pc], calls[pc], subs, frames, state, fail)
            elif code in (_ENDSUB, _RETURN):
                value = None
                if runs[pc]:
                    value = value_of(pc)
                    if value is None and code == _RETURN:  # a return whose value failed is dropped
                        pc += 1
                        continue
                if not frames:  # cannot happen: a sub body runs only when called
                    pc += 1
                    continue
                pc, state.args, state.locals, state.repeats, _ = frames.pop()
                if value is None:
                    globals_["_value_returned"] = 0.0
                else:
                    globals_["_value"], globals_["_value_returned"] = value, 1.0
            else:  # _NUMBER: a program number is neither a block nor control
                control -= 1
                warnings[numbers[pc]] += 1
                pc += 1
    return control


def _enter(pc: int, values: tuple[Callable[[], float], ...], call: tuple[str | None, Callable[[], float] | None],
           subs: dict[str, int], frames: list[_Frame], state: _State,
           fail: Callable[[int, BaseException], None]) -> int:
    """A call: the line to go to next (the sub's first line, or the next line when the call is not made)."""
    label, label_value = call
    try:
        if label is None:
            label = _label_of(label_value())
        arguments = [value() for value in values]
    except _FAILURES as exc:
        fail(pc, exc)
        return pc + 1
    start = subs.get(label)
    if start is None:
        state.warnings[f"external subroutine {_label_text(label)} (call skipped)"] += 1
        return pc + 1
    if len(frames) >= MAX_CALL_DEPTH:
        fail(pc, _Problem(f"calls nested deeper than {MAX_CALL_DEPTH} (endless recursion?)"))
        return pc + 1
    frames.append(_Frame(pc + 1, state.args, state.locals, state.repeats, pc))
    state.args = [0.0, *arguments] + [0.0] * (CALL_ARGUMENTS - len(arguments))
    state.locals, state.repeats = {}, {}
    return start + 1
