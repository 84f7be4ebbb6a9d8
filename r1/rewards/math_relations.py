"""Inequalities in one variable, read as the set of their solutions, for the fast path.

`inequality_set("x > 5")` is the interval (5, oo), `"-2 \\le x \\le 7"` is [-2, 7], `"-x > -1"` is
(-oo, 1); anything else is None (left to the symbolic fallback). `compare_relations` applies Math-Verify's
rules for relations against sets: a relation gold is compared with a set prediction as its solution set;
a set gold with a relation prediction only when `allow_set_relation_comp` is on, and is not equal
otherwise; two relations are equal when they have the same variable and the same solution set (what
Math-Verify's `solve`-based comparison finds for linear inequalities).

Choices: a single inequality must be linear in its only variable (checked exactly at three points); a
chain must be `a op x op b` with constant ends, both operators pointing the same way and a < b. `\\neq`,
several variables, non-linear sides and functions of the variable are declined.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from r1.rewards.math_normalize import is_plain_symbol, relation_parts
from r1.rewards.math_structure import Structure, Value, read_value
from r1.rewards.math_value import Scalar, Unsupported, read_scalar

__all__ = ["inequality_set", "compare_relations"]

_OPERATOR = re.compile(r"(<=|>=|\\(?:leqslant|geqslant|leq|geq|le|ge|lt|gt)(?![A-Za-z])|<|>)")
_CANONICAL = {"<=": "<=", ">=": ">=", "<": "<", ">": ">", "\\lt": "<", "\\gt": ">"}
_LETTER = re.compile(r"(?<![\\A-Za-z])[A-Za-z](?![A-Za-z])")
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _canonical(op: str) -> str:
    if op in _CANONICAL:
        return _CANONICAL[op]
    return "<=" if op.startswith("\\le") else ">="


def _constant(value: Fraction | float) -> Scalar:
    if isinstance(value, float):  # +-inf
        return Scalar(None, value, None, "compound")
    return Scalar(value, float(value), value, "compound")


def _ray(op: str, bound: Fraction) -> Structure:
    """The solutions of `x op bound`."""
    if op in ("<", "<="):
        return Structure("interval", (_constant(-math.inf), _constant(bound)), True, op == "<")
    return Structure("interval", (_constant(bound), _constant(math.inf)), op == ">", True)


def _variable(s: str) -> str | None:
    letters = set(_LETTER.findall(s))
    return letters.pop() if len(letters) == 1 else None


def _linear_solution(lhs: str, op: str, rhs: str, var: str) -> Structure | None:
    """Solve lhs op rhs when lhs - rhs = a*x + b exactly (a != 0)."""
    values = []
    for x in (0, 1, 2):
        point = {var: Fraction(x)}
        left, right = read_scalar(lhs, point), read_scalar(rhs, point)
        if left.exact is None or right.exact is None:
            return None
        values.append(left.exact - right.exact)
    slope = values[1] - values[0]
    if slope == 0 or values[2] - values[1] != slope:
        return None
    return _ray(op if slope > 0 else _FLIP[op], -values[0] / slope)


def _chain(left: str, op1: str, middle: str, op2: str, right: str) -> Structure | None:
    if not is_plain_symbol(middle) or {op1, op2} - {"<", "<="} and {op1, op2} - {">", ">="}:
        return None
    low, high = read_scalar(left), read_scalar(right)
    if op1 in (">", ">="):
        low, high, op1, op2 = high, low, _FLIP[op2], _FLIP[op1]
    if not low.approx < high.approx:
        return None
    return Structure("interval", (low, high), op1 == "<", op2 == "<")


def inequality_set(s: str) -> tuple[str, Structure] | None:
    """(variable, solution interval) of a linear inequality or a chain of two, else None."""
    pieces = [piece.strip() for piece in _OPERATOR.split(s)]
    var = _variable(s)
    if var is None or len(pieces) not in (3, 5) or any("=" in p or not p for p in pieces[0::2]):
        return None
    ops = [_canonical(op) for op in pieces[1::2]]
    try:
        if len(pieces) == 3:
            solution = _linear_solution(pieces[0], ops[0], pieces[2], var)
        else:
            solution = _chain(pieces[0], ops[0], pieces[2], ops[1], pieces[4])
    except Unsupported:
        return None
    return (var, solution) if solution is not None else None


def _as_set(s: str) -> Value | None:
    """A set-like value, also from `x \\in S` / `x = S`."""
    parts = relation_parts(s)
    if parts is not None and len(parts) == 2 and is_plain_symbol(parts[0]):
        s = parts[1]
    try:
        value = read_value(s)
    except Unsupported:
        return None
    return value if isinstance(value, Structure) and value.kind in ("interval", "union", "set") else None


def compare_relations(gold: str, pred: str, allow_set_relation_comp: bool, compare) -> bool | None:
    """Math-Verify's relation/set rules (module docstring); `compare(gold_value, pred_value)` compares
    two values. None when neither side is an inequality this module reads."""
    g_rel, p_rel = inequality_set(gold), inequality_set(pred)
    if g_rel is None and p_rel is None:
        return None
    if g_rel is not None and p_rel is not None:
        return compare(g_rel[1], p_rel[1]) if g_rel[0] == p_rel[0] else None
    if g_rel is not None:
        p_set = _as_set(pred)
        return compare(g_rel[1], p_set) if p_set is not None else None
    g_set = _as_set(gold)
    if g_set is None:
        return None
    return compare(g_set, p_rel[1]) if allow_set_relation_comp else False
