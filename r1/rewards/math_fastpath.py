"""The fast path: decide whether two extracted answers are equivalent without sympy, or decline.

`fast_compare(gold, pred, float_rounding)` returns True, False, or None ("cannot tell here; ask the
symbolic fallback"). It costs microseconds and never raises on any input.

It answers only where its answer is the one Math-Verify (`verify` on the latex2sympy2_extended parses) would
give, so that the two paths never disagree on a case the fast path settles:
- identical normalised strings are equivalent (Math-Verify also compares the normalised strings);
- gold-first equations: a prediction `x = 5` (or `x = 2+3 = 5`) is read as its last right-hand side when
  the gold is not an equation; a gold assignment `k = 1` (or `x \\in S`) is read as its right-hand side
  when the prediction is not an equation; two assignments to the same symbol compare their last
  right-hand sides; two single equations whose sides differ by a constant factor are equal;
- linear inequalities in one variable compare as their solution intervals (`math_relations`), against
  each other or against a set, following Math-Verify's relation/set rules;
- numbers follow Math-Verify's numeric rules: if either side is a decimal literal both are rounded to
  `float_rounding` places and compared (1/3 = 0.333333); two integer literals compare as written, so a
  percentage equals its integer (50% = 50) and, through the exact rule, its fraction (50% = 1/2 = 0.5);
  otherwise exact rational equality, or for irrational values a relative difference under 1e-12 (equal) or
  over 1e-9 (not equal), declining in between and near rounding ties;
- tuples and matrices compare in order (a matrix of another shape is not equal), sets as sorted sets
  (duplicates removed), intervals by endpoints and openness, unions interval by interval (both are in
  canonical form); an open interval and a pair compare item by item, a scalar against a set is a
  one-element set; other mixes are declined;
- expressions in single-letter variables (strict mode only) are evaluated exactly at three fixed rational
  points: any difference is WRONG, agreement everywhere CORRECT (polynomial identity testing).

Deliberately not done here: relations other than '=', functions (sin, log), complex numbers, text
answers that differ after normalisation, non-strict variable matching. They go to `math_symbolic`.
"""

from __future__ import annotations

import logging
import math
import re
import string
from fractions import Fraction

from r1.rewards.math_normalize import is_plain_symbol, normalize, relation_parts, split_top_level
from r1.rewards.math_relations import compare_relations
from r1.rewards.math_structure import Structure, Value, read_value
from r1.rewards.math_value import Scalar, Unsupported, has_variables, read_scalar

__all__ = ["fast_compare", "compare_values", "compare_scalars", "gold_first"]

logger = logging.getLogger(__name__)

EQUAL_REL = 1e-12
UNEQUAL_REL = 1e-9
TIE_MARGIN = Fraction(1, 10**9)
_WORD = re.compile(r"[A-Za-z]+")
_LETTER_RUN = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


def _is_text(s: str) -> bool:
    """A word, or a run of three letters outside a command: text, not a product of variables (sympy's
    symbol rules for those differ from arithmetic)."""
    return bool(_WORD.fullmatch(s) or _LETTER_RUN.search(s))


def _sample_points() -> tuple[dict[str, Fraction], ...]:
    """Three fixed, unremarkable rational points, one value per letter."""
    letters = string.ascii_letters
    return tuple(
        {c: Fraction(1009 + 97 * j + 389 * k, 211 + 13 * k + 7 * j) for j, c in enumerate(letters)} for k in range(3)
    )


_POINTS = _sample_points()


def fast_compare(
    gold: str, pred: str, float_rounding: int = 6, strict: bool = True, allow_set_relation_comp: bool = False
) -> bool | None:
    """True / False when the fast path can decide, None when the symbolic fallback must. The options are
    Math-Verify's (see `math.CompareOptions`). Never raises: an unexpected error means "undecided"."""
    try:
        return _fast_compare(gold, pred, float_rounding, strict, allow_set_relation_comp)
    except (Unsupported, ArithmeticError, ValueError, TypeError, RecursionError):
        logger.debug("fast path gave up on %.80r vs %.80r", gold, pred, exc_info=True)
        return None


def _fast_compare(
    gold: str, pred: str, float_rounding: int, strict: bool, allow_set_relation_comp: bool
) -> bool | None:
    g, p = normalize(gold), normalize(pred)
    if not g or not p:
        return None
    if g == p:
        return True
    sides = gold_first(g, p)
    if sides is None:
        compare = lambda a, b: compare_values(a, b, float_rounding)  # noqa: E731
        verdict = compare_relations(g, p, allow_set_relation_comp, compare) if strict else None
        if verdict is None and strict:
            verdict = proportional_equations(g, p)
        return verdict
    g, p = sides
    if g == p:
        return True
    try:
        return compare_values(read_value(g), read_value(p), float_rounding)
    except Unsupported:
        pass
    if strict and (has_variables(g) or has_variables(p)) and not (_is_text(g) or _is_text(p)):
        return _probe(g, p, float_rounding)
    return None


def _probe(gold: str, pred: str, float_rounding: int) -> bool | None:
    """Compare two expressions in single-letter variables at three rational points: a difference at any
    point is WRONG, equality at all of them CORRECT. Only with strict variable names (Math-Verify's
    default), and only for polynomial and rational operations on the variables (see `math_value`)."""
    verdicts = []
    for point in _POINTS:
        try:
            verdict = compare_values(read_value(gold, point), read_value(pred, point), float_rounding)
        except Unsupported:
            return None
        if verdict is False:
            return False
        verdicts.append(verdict)
    return True if all(verdicts) else None


def gold_first(gold: str, pred: str) -> tuple[str, str] | None:
    """The two strings to compare once equations are unwrapped the way the gold's form asks, or None when
    a relation other than '=' (or an equation list) is involved."""
    g_parts, p_parts = relation_parts(gold), relation_parts(pred)
    if g_parts is None or p_parts is None:
        return None
    g_eq, p_eq = len(g_parts) > 1, len(p_parts) > 1
    if (g_eq and _has_list(g_parts)) or (p_eq and _has_list(p_parts)):
        return None  # x=1, y=2 and the like
    if p_eq and not g_eq:
        return gold, p_parts[-1]
    if g_eq and not p_eq:
        return (g_parts[-1], pred) if is_plain_symbol(g_parts[0]) else None
    if g_eq and p_eq:  # two assignments to the same symbol: x = 5 + 5 + 1 = 11 reads x = 11
        same_target = g_parts[0] == p_parts[0] and is_plain_symbol(g_parts[0])
        return (g_parts[-1], p_parts[-1]) if same_target else None
    return gold, pred


def proportional_equations(gold: str, pred: str) -> bool | None:
    """Two single equations in variables whose sides differ by a constant factor (2x+4y-3=0 and
    y=-x/2+3/4) have the same solutions, which is how Math-Verify compares equations; anything else is
    left undecided."""
    g_parts, p_parts = relation_parts(gold), relation_parts(pred)
    if g_parts is None or p_parts is None or len(g_parts) != 2 or len(p_parts) != 2:
        return None
    if not (has_variables(gold) and has_variables(pred)) or _is_text(gold) or _is_text(pred):
        return None
    ratios = set()
    for point in _POINTS:
        try:
            g = _difference(g_parts, point)
            p = _difference(p_parts, point)
        except Unsupported:
            return None
        if g is None or p is None or p == 0 or g == 0:
            return None
        ratios.add(g / p)
    return True if len(ratios) == 1 else None


def _difference(parts: list[str], point: dict[str, Fraction]) -> Fraction | None:
    lhs, rhs = read_scalar(parts[0], point), read_scalar(parts[1], point)
    return lhs.exact - rhs.exact if lhs.exact is not None and rhs.exact is not None else None


def _has_list(parts: list[str]) -> bool:
    return any(len(split_top_level(part, ",")) > 1 for part in parts)


def compare_values(gold: Value, pred: Value, float_rounding: int) -> bool | None:
    if isinstance(gold, Scalar) and isinstance(pred, Scalar):
        return compare_scalars(gold, pred, float_rounding)
    if isinstance(gold, Structure) and isinstance(pred, Structure):
        return _compare_structures(gold, pred, float_rounding)
    if isinstance(gold, Scalar) and isinstance(pred, Structure) and pred.kind == "set":
        return _compare_sets((gold,), pred.items, float_rounding)
    if isinstance(pred, Scalar) and isinstance(gold, Structure) and gold.kind == "set":
        return _compare_sets(gold.items, (pred,), float_rounding)
    return None


def _is_pair(value: Structure) -> bool:
    """A tuple of two, or an open interval: latex2sympy's two readings of `(a, b)`."""
    return len(value.items) == 2 and (
        value.kind == "tuple" or (value.kind == "interval" and value.left_open and value.right_open)
    )


def _mixed_kinds(gold: Structure, pred: Structure, float_rounding: int) -> bool | None:
    """Math-Verify's rules across kinds: an open interval and a tuple of two compare item by item; a pair
    against a set of two takes the set in written order, a set against a pair sorts both; a union of
    canonical parts never equals a single interval."""
    if _is_pair(gold) and _is_pair(pred):
        return _all_equal(zip(gold.items, pred.items), float_rounding)
    if _is_pair(gold) and pred.kind == "set" and len(pred.items) == 2:
        return _all_equal(zip(gold.items, pred.items), float_rounding)
    if gold.kind == "set" and len(gold.items) == 2 and _is_pair(pred):
        return _compare_sets(gold.items, pred.items, float_rounding)
    if {gold.kind, pred.kind} == {"union", "interval"}:
        return False
    return None


def _compare_structures(gold: Structure, pred: Structure, float_rounding: int) -> bool | None:
    if gold.kind != pred.kind:
        return _mixed_kinds(gold, pred, float_rounding)
    if gold.kind == "set" and isinstance(gold.items[0], Structure) and isinstance(pred.items[0], Structure):
        return _compare_sets_of_structures(gold.items, pred.items)
    if gold.kind == "set":
        return _compare_sets(gold.items, pred.items, float_rounding)
    if gold.kind == "interval" and (gold.left_open, gold.right_open) != (pred.left_open, pred.right_open):
        return False
    if gold.kind == "matrix" and gold.shape != pred.shape:
        return False
    if len(gold.items) != len(pred.items):
        return False
    if gold.kind == "union":
        verdicts = [_compare_structures(g, p, float_rounding) for g, p in zip(gold.items, pred.items)]
        return False if False in verdicts else (None if None in verdicts else True)
    return _all_equal(zip(gold.items, pred.items), float_rounding)


def _all_equal(pairs, float_rounding: int) -> bool | None:
    undecided = False
    for g, p in pairs:
        verdict = compare_scalars(g, p, float_rounding)
        if verdict is False:
            return False
        undecided |= verdict is None
    return None if undecided else True


def _exact_key(value: Scalar | Structure) -> tuple:
    if isinstance(value, Scalar):
        if value.exact is None or value.kind == "float":
            raise Unsupported("inexact element")
        return (value.exact,)
    return (value.kind, value.left_open, value.right_open, *(_exact_key(item) for item in value.items))


def _compare_sets_of_structures(gold: tuple, pred: tuple) -> bool | None:
    """Sets of tuples (or intervals) of exact numbers: equal exactly when their members are."""
    try:
        return {_exact_key(v) for v in gold} == {_exact_key(v) for v in pred}
    except Unsupported:
        return None


def _dedupe_sorted(items: tuple[Scalar, ...]) -> list[Scalar] | None:
    """Items sorted by value with exact duplicates removed; None when two values are too close to order."""
    unique: dict[object, Scalar] = {}
    for item in items:
        unique.setdefault(item.exact if item.exact is not None else ("approx", item.approx), item)
    ordered = sorted(unique.values(), key=lambda s: s.approx)
    for a, b in zip(ordered, ordered[1:]):
        if not (math.isinf(a.approx) or math.isinf(b.approx)) and abs(a.approx - b.approx) <= UNEQUAL_REL * max(
            1.0, abs(a.approx), abs(b.approx)
        ):
            return None
    return ordered


def _compare_sets(gold: tuple, pred: tuple, float_rounding: int) -> bool | None:
    if not all(isinstance(v, Scalar) for v in (*gold, *pred)):
        return None
    g, p = _dedupe_sorted(gold), _dedupe_sorted(pred)
    if g is None or p is None:
        return None
    if len(g) != len(p):
        all_exact = all(s.exact is not None and s.kind != "float" for s in (*g, *p))
        return False if all_exact else None
    return _all_equal(zip(g, p), float_rounding)


def compare_scalars(gold: Scalar, pred: Scalar, float_rounding: int) -> bool | None:
    """Math-Verify's numeric equality for two real constants (see the module docstring)."""
    if gold.is_infinite or pred.is_infinite:
        return gold.approx == pred.approx
    if gold.kind == "float" or pred.kind == "float":
        return _rounded_equal(gold, pred, float_rounding)
    if gold.kind == "int" and pred.kind == "int":
        return gold.base == pred.base
    if gold.exact is not None and pred.exact is not None:
        if gold.exact != pred.exact:
            return False
        mixed_float = (gold.has_float or pred.has_float) and "rational" in (gold.kind, pred.kind)
        return None if mixed_float else True
    return _close(gold.approx, pred.approx)


def _close(a: float, b: float) -> bool | None:
    scale = max(abs(a), abs(b))
    if scale < 1e-9:
        return None
    diff = abs(a - b)
    if diff <= EQUAL_REL * scale:
        return True
    if diff > UNEQUAL_REL * scale:
        return False
    return None


def _rounded(value: Scalar, places: int) -> int | None:
    """round(value, places) scaled by 10**places, or None too near a rounding tie to be sure."""
    if value.exact is not None:
        scaled = value.exact * 10**places
        floor = math.floor(scaled)
        frac = scaled - floor
        if abs(frac - Fraction(1, 2)) <= TIE_MARGIN:
            return None
        return floor + (frac > Fraction(1, 2))
    scaled_f = value.approx * 10**places
    if abs(scaled_f) > 1e15:
        return None
    floor_f = math.floor(scaled_f)
    frac_f = scaled_f - floor_f
    if abs(frac_f - 0.5) <= 1e-6:
        return None
    return floor_f + (frac_f > 0.5)


def _rounded_equal(gold: Scalar, pred: Scalar, float_rounding: int) -> bool | None:
    g, p = _rounded(gold, float_rounding), _rounded(pred, float_rounding)
    if g is None or p is None:
        return None
    return g == p
