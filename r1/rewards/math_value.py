"""Reading one normalised answer as a real constant (or, for probing, a polynomial-like expression).

`read_scalar` turns a string from `math_normalize.normalize` into a `Scalar`: integers, decimals,
fractions (`\\frac`, `a/b`, `\\frac12`), mixed numbers, percentages, radicals (`\\sqrt`, `\\sqrt[n]`), pi,
powers, + - * /, `\\cdot`, `\\times`, `\\div`, infinity. Anything else raises `Unsupported`, which sends
the answer to the symbolic fallback. With `variables` (letter -> rational value) single-letter variables
are accepted too, so that `math_fastpath` can compare two expressions at sample points.

Choices:
- Arithmetic is exact with `fractions.Fraction` while it stays rational; radicals and pi switch a value to
  a float (`exact` None). A value keeps both when it can.
- Growth is guarded, never computed blindly: an exact power needs an integer exponent of at most 4096 and
  a result under 100,000 bits, a float must stay finite, nesting is limited to 40 levels and an answer to
  400 tokens. `10^{10^{10^{10}}}` is therefore `Unsupported` here and only ever evaluated by sympy inside a
  killable worker.
- Each scalar records how sympy (through latex2sympy2_extended) would *type* it, because Math-Verify's
  comparison depends on it: `kind` is "int" (a literal integer, or an integer-valued `\\frac{a}{b}`, `a/b`
  or mixed number), "rational" (the same forms with a non-integer value, and the whole answer "0.5", which
  the normaliser rewrites to 1/2), "float" (a decimal literal) or "compound" (anything built with
  operators). A percent sign is only accepted on int and float literals, where latex2sympy accepts it.
- With variables, only polynomial and rational operations touch them (no radical or fractional power of
  a variable: sympy would not equate sqrt(x^2) and x), and e (Euler's number for sympy), letters glued to
  a parenthesis (f(x) is a function for sympy) and subscripts are refused. `i` is an ordinary variable,
  as it is after latex2sympy's parse (so 6 - 5i and 6 - 6i differ, and i^2 is not -1 for either path).
- A number with a subscript (a base, `52_8`) reads as the number, as latex2sympy reads it.

Deliberately not done: functions (sin, log, ...), complex numbers, `e` notation (sympy reads `1e5` as
1*e*5), and digits separated by spaces inside LaTeX ("1 000").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Scalar", "Unsupported", "read_scalar", "has_variables"]

MAX_TOKENS = 400
MAX_DEPTH = 40
MAX_EXACT_EXPONENT = 4096
MAX_EXACT_BITS = 100_000
MAX_ROOT_INDEX = 12


class Unsupported(Exception):
    """The fast path cannot read this answer; the symbolic fallback must decide."""


@dataclass(frozen=True)
class Scalar:
    """A real constant. `exact` and `approx` include the percent scaling; `base` is the value as written
    (before /100). `approx` is +-inf for infinities."""

    exact: Fraction | None
    approx: float
    base: Fraction | None
    kind: str  # "int" | "rational" | "float" | "compound"
    percent: bool = False
    has_float: bool = False

    @property
    def is_infinite(self) -> bool:
        return math.isinf(self.approx)


# ---------------------------------------------------------------------------------------------- tokenizer

_TOKEN = re.compile(
    r"(\d+\.\d+|\d+\.(?!\d)|\.\d+|\d+)|(\\[A-Za-z]+|\\[{}])|([-+*/^(){}\[\],%])|([A-Za-z])|(.)", re.DOTALL
)
_NUM, _CMD, _SYM, _LETTER, _OTHER = 1, 2, 3, 4, 5
_CONSTANT_LETTERS = frozenset("eEI")  # latex2sympy reads e as Euler's number; i stays a plain symbol
_ALLOWED_COMMANDS = {"\\frac", "\\sqrt", "\\pi", "\\infty", "\\cdot", "\\times", "\\div"}


def _tokenize(s: str) -> list[str]:
    tokens: list[str] = []
    for m in _TOKEN.finditer(s):
        if m.lastindex == _OTHER or (m.lastindex == _CMD and m.group() not in _ALLOWED_COMMANDS):
            raise Unsupported(f"cannot read {m.group()!r}")
        tokens.append(m.group())
        if len(tokens) > MAX_TOKENS:
            raise Unsupported("answer too long for the fast path")
    return tokens


def _is_number(token: str) -> bool:
    return token[:1].isdigit() or token[:1] == "."


def _is_letter(token: str) -> bool:
    return len(token) == 1 and token.isalpha()


def has_variables(s: str) -> bool:
    """Whether `s` holds a letter outside LaTeX commands (a candidate for probing)."""
    return any(m.lastindex == _LETTER for m in _TOKEN.finditer(s))


# ------------------------------------------------------------------------------------------- arithmetic


@dataclass(frozen=True)
class _Num:
    exact: Fraction | None
    approx: float
    has_float: bool = False
    has_var: bool = False


_FLOAT_MAX = Fraction(10) ** 300


def _finite(x: float) -> float:
    if math.isnan(x) or math.isinf(x) or abs(x) > 1e300:
        raise Unsupported("value out of the float range")
    return x


def _make(exact: Fraction | None, approx: float, *parts: _Num) -> _Num:
    has_float = any(p.has_float for p in parts)
    has_var = any(p.has_var for p in parts)
    if exact is not None:
        approx = _finite(float(exact)) if abs(exact) < _FLOAT_MAX else _finite(math.inf)
        return _Num(exact, approx, has_float, has_var)
    return _Num(None, _finite(approx), has_float, has_var)


def _no_infinity(*parts: _Num) -> None:
    if any(math.isinf(p.approx) for p in parts):
        raise Unsupported("arithmetic with infinity")


def _add(a: _Num, b: _Num, sign: int = 1) -> _Num:
    _no_infinity(a, b)
    exact = a.exact + sign * b.exact if a.exact is not None and b.exact is not None else None
    return _make(exact, a.approx + sign * b.approx, a, b)


def _mul(a: _Num, b: _Num) -> _Num:
    _no_infinity(a, b)
    exact = a.exact * b.exact if a.exact is not None and b.exact is not None else None
    return _make(exact, a.approx * b.approx, a, b)


def _div(a: _Num, b: _Num) -> _Num:
    _no_infinity(a, b)
    if b.exact == 0 or b.approx == 0:
        raise Unsupported("division by zero")
    exact = a.exact / b.exact if a.exact is not None and b.exact is not None else None
    return _make(exact, a.approx / b.approx, a, b)


def _exact_root(x: Fraction, n: int) -> Fraction | None:
    """The rational n-th root of x >= 0 when there is one."""
    num, den = x.numerator, x.denominator
    if num.bit_length() > 1000 or den.bit_length() > 1000:
        return None
    rn, rd = round(num ** (1 / n)), round(den ** (1 / n))
    for cn in (rn - 1, rn, rn + 1):
        for cd in (rd - 1, rd, rd + 1):
            if cn >= 0 and cd > 0 and cn**n == num and cd**n == den:
                return Fraction(cn, cd)
    return None


def _pow(a: _Num, b: _Num) -> _Num:
    _no_infinity(a, b)
    if b.has_var or (a.has_var and (b.exact is None or b.exact.denominator != 1)):
        raise Unsupported("only integer powers of variables")
    if a.exact is not None and b.exact is not None and b.exact.denominator == 1:
        e = b.exact.numerator
        bits = a.exact.numerator.bit_length() + a.exact.denominator.bit_length()
        if abs(e) > MAX_EXACT_EXPONENT or bits * abs(e) > MAX_EXACT_BITS:
            raise Unsupported("exponent too large to evaluate")
        if a.exact == 0 and e < 0:
            raise Unsupported("division by zero")
        return _make(a.exact**e, 0.0, a, b)
    if a.exact is not None and b.exact is not None and a.exact >= 0 and b.exact.denominator <= MAX_ROOT_INDEX:
        root = _exact_root(a.exact, b.exact.denominator)
        if root is not None and abs(b.exact.numerator) <= MAX_EXACT_EXPONENT:
            return _pow(_Num(root, float(root)), _Num(Fraction(b.exact.numerator), float(b.exact.numerator)))
    if a.approx < 0 or (a.approx == 0 and b.approx <= 0):
        raise Unsupported("power outside the reals")
    try:
        return _make(None, math.pow(a.approx, b.approx), a, b)
    except OverflowError as exc:
        raise Unsupported("power overflows") from exc


def _root(x: _Num, n: _Num) -> _Num:
    if n.exact is None or n.exact.denominator != 1 or not 2 <= n.exact <= MAX_ROOT_INDEX:
        raise Unsupported("unsupported root index")
    if x.approx < 0 or x.has_var:
        raise Unsupported("root of a negative number or of a variable")
    return _pow(x, _Num(Fraction(1, n.exact.numerator), 1 / n.exact.numerator))


# ----------------------------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the tokens; depth-limited so deep nesting raises Unsupported, never
    RecursionError."""

    def __init__(self, tokens: list[str], variables: dict[str, Fraction] | None):
        self.tokens = tokens
        self.variables = variables
        self.pos = 0
        self.depth = 0

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if not token or (expected is not None and token != expected):
            raise Unsupported(f"expected {expected or 'more'}, found {token!r}")
        self.pos += 1
        return token

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Unsupported("nesting too deep for the fast path")

    def parse(self) -> _Num:
        value = self.expr()
        if self.pos != len(self.tokens):
            raise Unsupported(f"unexpected {self.peek()!r}")
        return value

    def expr(self) -> _Num:
        self.enter()
        value = self.signed()
        while self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            value = _add(value, self.signed(), sign)
        self.depth -= 1
        return value

    def signed(self) -> _Num:
        if self.peek() in ("+", "-"):
            self.enter()
            negative = self.take() == "-"
            value = self.signed()
            self.depth -= 1
            if not negative:
                return value
            exact = -value.exact if value.exact is not None else None
            return _Num(exact, -value.approx, value.has_float, value.has_var)
        return self.term()

    def term(self) -> _Num:
        value = self.power()
        while True:
            token = self.peek()
            if token in ("*", "\\cdot", "\\times"):
                self.take()
                value = _mul(value, self.power())
            elif token in ("/", "\\div"):
                self.take()
                value = _div(value, self.power())
            elif token in ("\\sqrt", "\\pi", "\\frac", "{") or _is_letter(token):
                value = _mul(value, self.power())
            elif token == "(" and self.variables is not None:  # (x+2)(x+5); latex2sympy reads (2)(3) as 5
                value = _mul(value, self.power())
            else:
                return value

    def power(self) -> _Num:
        value = self.atom()
        while self.peek() == "^":
            self.take()
            value = _pow(value, self.argument())
        return value

    def argument(self) -> _Num:
        """A command argument or exponent: {expr}, or a single digit (\\frac12, \\sqrt3, x^2)."""
        token = self.peek()
        if token == "{":
            return self.group("{", "}")
        if token.isdigit():
            self.tokens[self.pos] = token[1:]
            if not self.tokens[self.pos]:
                self.pos += 1
            return _Num(Fraction(int(token[0])), float(token[0]))
        if token == "\\pi":
            return self.atom()
        raise Unsupported(f"unsupported argument {token!r}")

    def variable(self) -> _Num:
        token = self.take()
        if self.variables is None or token in _CONSTANT_LETTERS:
            raise Unsupported(f"symbol {token!r}")
        if self.peek() in ("(", "_"):
            raise Unsupported("function application or subscript")
        value = self.variables.get(token)
        if value is None:
            raise Unsupported(f"no value for {token!r}")
        return _Num(value, float(value), False, True)

    def group(self, open_: str, close: str) -> _Num:
        self.take(open_)
        value = self.expr()
        self.take(close)
        return value

    def atom(self) -> _Num:
        self.enter()
        token = self.peek()
        if _is_number(token):
            self.take()
            if self.peek() and (_is_number(self.peek()) or self.peek() == "("):
                raise Unsupported("ambiguous juxtaposition of numbers")
            value = _Num(Fraction(token), float(token), "." in token)
        elif token == "(":
            value = self.group("(", ")")
        elif token == "{":
            value = self.group("{", "}")
        elif token == "\\frac":
            self.take()
            value = _div(self.argument(), self.argument())
        elif token == "\\sqrt":
            self.take()
            index = self.group("[", "]") if self.peek() == "[" else _Num(Fraction(2), 2.0)
            value = _root(self.argument(), index)
        elif token == "\\pi":
            self.take()
            value = _Num(None, math.pi)
        elif token == "\\infty":
            self.take()
            value = _Num(None, math.inf)
        elif _is_letter(token):
            value = self.variable()
        else:
            raise Unsupported(f"unexpected {token!r}")
        self.depth -= 1
        return value


# ----------------------------------------------------------------------------------------------- scalars

_INT = r"[+-]?\d+"
_ATOM_FORMS = re.compile(rf"{_INT}|[+-]?\\frac\{{\d+\}}\{{\d+\}}|{_INT}/\d+|{_INT}\\frac\{{\d+\}}\{{\d+\}}")
_PLAIN_LITERAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_FLOAT_LITERAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_MIXED = re.compile(r"([+-]?)(\d+)\\frac\{(\d+)\}\{(\d+)\}")


def _mixed_number(s: str) -> _Num | None:
    """2\\frac{1}{2} = 5/2 (latex2sympy's reading); an integer glued to any other \\frac is ambiguous."""
    m = _MIXED.fullmatch(s)
    if m is None:
        if re.search(r"\d\\frac", s):
            raise Unsupported("integer followed by a fraction")
        return None
    whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
    if den == 0:
        raise Unsupported("division by zero")
    value = Fraction(whole) + Fraction(num, den)
    value = -value if m.group(1) == "-" else value
    return _Num(value, float(value))


def _kind(s: str, value: _Num) -> str:
    if _FLOAT_LITERAL.fullmatch(s):
        return "rational" if s == "0.5" else "float"
    if _ATOM_FORMS.fullmatch(s):
        return "int" if value.exact is not None and value.exact.denominator == 1 else "rational"
    return "compound"


_BASE_SUBSCRIPT = re.compile(r"(\d+)_\{?\w+\}?")


def read_scalar(s: str, variables: dict[str, Fraction] | None = None) -> Scalar:
    """One real constant (see the module docstring), or with `variables` the value of an expression at
    that point; raises Unsupported otherwise."""
    based = _BASE_SUBSCRIPT.fullmatch(s)
    if based is not None:
        s = based.group(1)
    percent = s.endswith("%")
    body = s[:-1] if percent else s
    if not body:
        raise Unsupported("empty answer")
    value = _mixed_number(body) or _Parser(_tokenize(body), variables).parse()
    kind = _kind(body, value)
    if percent and not _PLAIN_LITERAL.fullmatch(body):
        raise Unsupported("percent sign on an expression")
    if kind == "float" and len(body.replace("-", "").replace(".", "").lstrip("0+")) > 15:
        raise Unsupported("decimal literal beyond float precision")
    scale = Fraction(1, 100) if percent else Fraction(1)
    exact = value.exact * scale if value.exact is not None else None
    approx = value.approx / 100 if percent else value.approx
    has_float = value.has_float and body != "0.5"  # the normaliser reads the answer "0.5" as 1/2
    return Scalar(exact, approx, value.exact, kind, percent, has_float)
