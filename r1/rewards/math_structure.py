"""Reading a normalised answer as a structure of scalars: tuple, set, interval, union, matrix.

`read_value` returns a `Scalar` (see `math_value`) or a `Structure`, or raises `Unsupported`. It follows
latex2sympy2_extended's reading, because Math-Verify compares what that parser builds:
- `(a, b)` is an open interval when a < b and a tuple otherwise; `(a, b, c, ...)` a tuple;
- `[a, b]`, `[a, b)`, `(a, b]` intervals (a < b required, else the set would be empty);
- `\\{a, b\\}` and a bare list `a, b` are sets; `a \\pm b` is the set {a - b, a + b}; a bare list of
  bracketed pairs `(1, 2), (3, 4)` is a set of tuples;
- `I \\cup J \\cup ...` of intervals is a union, accepted only in canonical form (sorted, disjoint, not
  touching at a closed end), so two unions are equal exactly when their parts are;
- `\\begin{pmatrix}...\\end{pmatrix}` (also bmatrix, vmatrix, array, matrix) a matrix, by rows.

Semicolons separate items like commas (`1;2;3`, `(0;0;0)`), but not mixed with commas.

Deliberately not done: nested structures (tuples of sets ...), intersections, set
differences, symbols inside structures unless `variables` are given (probing, see `math_fastpath`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from r1.rewards.math_normalize import split_top_level
from r1.rewards.math_value import Scalar, Unsupported, read_scalar

__all__ = ["Structure", "Value", "read_value"]

MAX_ITEMS = 200


@dataclass(frozen=True)
class Structure:
    """kind: "tuple" | "set" | "interval" | "union" | "matrix". `items` are scalars, except for a union,
    whose items are intervals, and a set of tuples. `shape` is (rows, columns) for a matrix."""

    kind: str
    items: tuple
    left_open: bool = False
    right_open: bool = False
    shape: tuple[int, int] = (0, 0)


Value = Scalar | Structure

_MATRIX = re.compile(
    r"\\begin\{(?P<env>[pbvBV]?matrix|array)\}(?:\{[lcr|]*\})?(?P<body>.*)\\end\{(?P=env)\}", re.DOTALL
)


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth < 0:
            return False
    return depth == 0


def _outer_bracketed(s: str) -> tuple[str, str, str] | None:
    """(open, inner, close) when one bracket pair encloses the whole of `s`."""
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2]
        return ("{", inner, "}") if _balanced(inner) else None
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]":
        return None
    inner = s[1:-1]
    return (s[0], inner, s[-1]) if _balanced(inner) else None


def _items(inner: str, variables: dict[str, Fraction] | None) -> tuple[Scalar, ...]:
    parts = split_top_level(inner, ",")
    if any(not p for p in parts) or len(parts) > MAX_ITEMS:
        raise Unsupported("empty element or too many elements")
    return tuple(read_scalar(p, variables) for p in parts)


def _less(a: Scalar, b: Scalar) -> bool:
    """a < b, or Unsupported when the two are equal or too close to order."""
    if a.is_infinite or b.is_infinite:
        if a.approx == b.approx:
            raise Unsupported("degenerate interval")
        return a.approx < b.approx
    if a.exact is not None and b.exact is not None:
        if a.exact == b.exact:
            raise Unsupported("degenerate interval")
        return a.exact < b.exact
    if abs(a.approx - b.approx) <= 1e-9 * max(1.0, abs(a.approx)):
        raise Unsupported("endpoints too close to order")
    return a.approx < b.approx


def _equal_ends(a: Scalar, b: Scalar) -> bool:
    """(0, 0) is a tuple for latex2sympy, not an empty interval."""
    return a.exact is not None and a.exact == b.exact and not a.is_infinite


def _bracketed(open_: str, inner: str, close: str, variables: dict[str, Fraction] | None) -> Value:
    if open_ == "{":
        return Structure("set", _items(inner, variables))
    if len(split_top_level(inner, ",")) == 1:
        if (open_, close) == ("(", ")"):
            return read_scalar(f"({inner})", variables)
        raise Unsupported("bracketed single element")
    items = _items(inner, variables)
    if len(items) == 2 and (open_, close) != ("(", ")"):
        if not _less(items[0], items[1]):
            raise Unsupported("empty interval")
        return Structure("interval", items, open_ == "(", close == ")")
    if len(items) == 2 and not _equal_ends(items[0], items[1]) and _less(items[0], items[1]):
        return Structure("interval", items, True, True)
    if (open_, close) == ("(", ")"):
        return Structure("tuple", items)
    raise Unsupported("bracketed list")


def _union(parts: list[str], variables: dict[str, Fraction] | None) -> Structure:
    intervals = []
    for part in parts:
        value = read_value(part, variables)
        if not isinstance(value, Structure) or value.kind != "interval":
            raise Unsupported("union of something other than intervals")
        intervals.append(value)
    intervals.sort(key=lambda i: i.items[0].approx)
    for left, right in zip(intervals, intervals[1:]):
        end, start = left.items[1], right.items[0]
        touching = end.approx == start.approx or (end.exact is not None and end.exact == start.exact)
        if end.approx > start.approx or (touching and not (left.right_open and right.left_open)):
            raise Unsupported("overlapping or touching intervals")
    return Structure("union", tuple(intervals))


def _matrix(body: str, variables: dict[str, Fraction] | None) -> Structure:
    rows = [r for r in body.split("\\\\") if r.strip()]
    cells = [split_top_level(r, "&") for r in rows]
    if not cells or len({len(r) for r in cells}) != 1 or len(rows) * len(cells[0]) > MAX_ITEMS:
        raise Unsupported("ragged or empty matrix")
    items = tuple(read_scalar(c.strip(), variables) for row in cells for c in row)
    return Structure("matrix", items, shape=(len(rows), len(cells[0])))


def _plus_minus(s: str, variables: dict[str, Fraction] | None) -> Structure:
    if s.count("\\pm") != 1 or "," in s:
        raise Unsupported("only one \\pm in a single expression")
    low = read_scalar(s.replace("\\pm", "-"), variables)
    high = read_scalar(s.replace("\\pm", "+"), variables)
    return Structure("set", (low, high))


def read_value(s: str, variables: dict[str, Fraction] | None = None) -> Value:
    """A scalar or a structure of scalars (see the module docstring); raises Unsupported otherwise."""
    if ";" in s:
        if "," in s:
            raise Unsupported("mixed comma and semicolon lists")
        s = s.replace(";", ",")  # latex2sympy reads 1;2;3 as a set and (0;0;0) as a tuple
    if "\\cap" in s or "\\setminus" in s:
        raise Unsupported("set operations other than union")
    matrix = _MATRIX.fullmatch(s[1:-1] if s[:1] in "([" and s[-1:] in ")]" else s) or _MATRIX.fullmatch(s)
    if matrix is not None:
        return _matrix(matrix.group("body"), variables)
    if "\\cup" in s:
        return _union(s.split("\\cup"), variables)
    if "\\pm" in s:
        return _plus_minus(s, variables)
    bracketed = _outer_bracketed(s)
    if bracketed is not None:
        return _bracketed(*bracketed, variables)
    parts = split_top_level(s, ",")
    if len(parts) > 1:
        if all(_outer_bracketed(part) is not None for part in parts):  # (1,2),(3,4): a set of tuples
            members = tuple(read_value(part, variables) for part in parts[:MAX_ITEMS])
            if all(isinstance(m, Structure) and m.kind in ("tuple", "interval") for m in members):
                return Structure("set", members)
            raise Unsupported("set of mixed members")
        return Structure("set", _items(s, variables))
    return read_scalar(s, variables)
