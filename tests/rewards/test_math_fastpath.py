"""Equivalence families on the fast path (no sympy), and its agreement with the symbolic fallback."""

from __future__ import annotations

import random

import pytest

from r1.rewards.math_fastpath import fast_compare
from r1.rewards.math_symbolic import symbolic_equal

T, F = True, False

FAMILIES: dict[str, list[tuple[str, str, bool]]] = {
    "integers": [("42", "42", T), ("42", "43", F), ("-5", "-5", T), ("-5", "5", F), ("007", "7", T)],
    "decimals": [
        ("3", "3.0", T), ("1.25", "1.2500", T), (".35625", "0.35625", T), ("\\frac{1}{3}", "0.333333", T),
        ("\\frac{1}{3}", "0.3333", F), ("2.5", "2.6", F),
    ],
    "fractions": [
        ("\\frac{1}{2}", "\\dfrac{1}{2}", T), ("\\frac12", "1/2", T), ("\\tfrac{3}{4}", "0.75", T),
        ("\\frac{2}{4}", "\\frac{1}{2}", T), ("-\\frac{10}{9}", "-10/9", T), ("\\frac 59", "\\dfrac5{9}", T),
        ("\\frac{1}{2}", "\\frac{1}{3}", F), ("\\frac{3}{4}", "\\frac{4}{3}", F),
    ],
    "mixed numbers": [
        ("2\\frac{1}{2}", "\\frac{5}{2}", T), ("2\\frac{1}{2}", "2.5", T), ("-2\\frac{1}{2}", "-2.5", T),
        ("2\\frac{1}{2}", "\\frac{3}{2}", F),
    ],
    "percentages": [  # Math-Verify: 50% equals 50 (integers compare as written) and 1/2
        ("50\\%", "50", T), ("50\\%", "0.5", T), ("50\\%", "\\frac{1}{2}", T), ("50\\%", "5", F),
        ("28\\%", "28 percent", T), ("12.5\\%", "0.125", T), ("12.5\\%", "12.5", F),
    ],
    "scientific notation": [
        ("1500", "1.5\\times10^{3}", T), ("1500", "1.5 \\cdot 10^3", T), ("0.03", "3\\times 10^{-2}", T),
        ("1.5\\times10^{3}", "1.5\\times10^{4}", F),
    ],
    "thousands separators": [
        ("7425000", "7,425,000", T), ("32349", "32,\\!349", T), ("1000", "1{,}000", T), ("32349", "32, 349", F),
        ("58500", "58,501", F),
    ],
    "radicals": [
        ("\\sqrt{2}", "\\sqrt2", T), ("2\\sqrt{2}", "\\sqrt{8}", T), ("\\sqrt[3]{8}", "2", T),
        ("\\sqrt{2}", "1.414214", T), ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", T),
        ("\\sqrt{3}", "\\sqrt{2}", F),
        ("\\sqrt[3]{2}", "2^{1/3}", T),
    ],
    "pi": [
        ("288\\pi", "288 \\pi", T), ("\\frac{\\pi}{2}", "\\pi/2", T), ("2\\pi", "6.283185", T), ("2\\pi", "3\\pi", F),
    ],
    "powers": [("2^{10}", "1024", T), ("10^{-3}", "0.001", T), ("2^{10}", "2^{11}", F), ("x^2+2x+1", "(x+1)^2", T)],
    "latex expressions": [
        ("\\frac{1}{3}", "\\left( \\frac{1}{3} \\right)", T), ("6", "2\\cdot 3", T), ("6", "2\\times3", T),
        ("x^2+7x+10", "(x+2)(x+5)", T), ("-13x+3", "-13x+4", F), ("p - q", "q - p", F), ("6 - 5i", "6 - 5i", T),
        ("6 - 5i", "6 - 6i", F), ("\\frac{11+9a}{20}", "\\frac{9a+11}{20}", T),
    ],
    "intervals": [
        ("[1,2)", "[1, 2)", T), ("[1,2)", "[1,2]", F), ("(1,2)", "[1,2]", F), ("(-\\infty, 3]", "(-\\infty,3]", T),
        ("(-\\infty, 3]", "(-\\infty,3)", F), ("(2,12) \\cup (12,102)", "(12,102)\\cup(2,12)", T),
        ("[-3,2]", "(-\\infty,-3]\\cup[2,\\infty)", F), ("(1,\\frac{9}{2})", "(1,4.5)", T),
    ],
    "sets and tuples": [
        ("\\{1,2\\}", "\\{2,1\\}", T), ("1,2", "2,1", T), ("(1,2,3)", "(1,2,3)", T), ("(1,2,3)", "(3,2,1)", F),
        ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", T), ("(15,-29)", "(-29, 15)", F),
        ("\\{1,2\\}", "\\{1,2,3\\}", F), ("(2,1),(1,2)", "(1, 2),(2, 1)", T), ("(1,3)", "{1,3}", T),
        ("(3,1)", "{1,3}", F), ("3 \\pm 2\\sqrt{2}", "3-2\\sqrt{2}, 3+2\\sqrt{2}", T),
    ],
    "matrices": [
        ("\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}", "\\begin{bmatrix}1 & 0 \\\\ 0 & 1\\end{bmatrix}", T),
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}", F),
        ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1&2\\end{pmatrix}", F),
        ("\\begin{pmatrix}\\frac{1}{2}\\\\ 3\\end{pmatrix}", "\\begin{pmatrix}0.5\\\\3\\end{pmatrix}", T),
    ],
    "equations and assignments": [
        ("5", "x=5", T), ("x=5", "5", T), ("k=1", "k=2", F), ("x = 11", "x = 5+5+1 = 7 = 11", T),
        ("2x+4y-3=0", "y=-\\frac{1}{2}x+\\frac{3}{4}", T), ("(p,q)=(3,2)", "(3,2)", T), ("5", "x=6", F),
    ],
    "inequalities": [
        ("x > 5", "5 < x", T), ("x > 5", "x < 5", F), ("x < 1", "-x > -1", T), ("x \\geq 5", "x >= 5", T),
        ("-2 \\le x \\le 7", "x \\in [-2,7]", T), ("-793 < a < 10", "(-793, 10)", T),
        ("[-4,0]", "x \\le 0", F),  # a set gold against a relation: only with allow_set_relation_comp
    ],
    "units and text": [
        ("5", "5\\text{ cm}", T), ("5\\text{ cm}", "5", T), ("\\frac{1}{3}", "\\frac{1}{3} \\text{meters}", T),
        ("\\text{Evelyn}", "Evelyn", T), ("125", "125 miles", T), ("5", "6\\text{ cm}", F),
        ("15", "15\\mbox{ cm}^2", T),
    ],
    "degrees": [("30", "30^\\circ", T), ("90^\\circ", "90", T), ("30^{\\circ}", "45", F)],
}

PAIRS = [(family, g, p, e) for family, cases in FAMILIES.items() for g, p, e in cases]


@pytest.mark.parametrize("family, gold, pred, expected", PAIRS, ids=[f"{f}:{g}|{p}" for f, g, p, _ in PAIRS])
def test_family(family: str, gold: str, pred: str, expected: bool) -> None:
    assert fast_compare(gold, pred) is expected


def test_set_relation_option() -> None:
    assert fast_compare("[-4,0]", "-4 \\le x \\le 0", allow_set_relation_comp=True) is True
    assert fast_compare("[-4,0]", "-4 \\le x \\le 0") is False
    assert fast_compare("(-\\infty, 0]", "x \\le 0", allow_set_relation_comp=True) is True


@pytest.mark.parametrize(
    "gold, pred",
    [
        ("10^{10^{10^{10}}}", "1"),  # never evaluated here
        ("1", "10^{10^{10^{10}}}"),
        ("2^{100000}", "1"),
        ("\\frac{1}{0}", "1"),
        ("\\tan^2(y)+1", "\\sec^2(y)"),
        ("1 000", "1000"),  # LaTeX reads digits separated by a space differently
        ("x", "y"),  # bare symbols follow sympy's symbol rules
        ("\\sqrt{x^2}", "x"),  # radicals of variables are not probed
        ("1e5", "100000"),  # sympy reads 1e5 as 1*e*5
        ("(" * 200 + "1" + ")" * 200, "1"),  # deeper than the parser's limit
    ],
)
def test_undecidable_pairs_are_left_to_the_fallback(gold: str, pred: str) -> None:
    assert fast_compare(gold, pred) is None


def test_variables_are_only_probed_in_strict_mode() -> None:
    assert fast_compare("x+1", "y+1") is False
    assert fast_compare("x+1", "y+1", strict=False) is None


def test_fast_path_agrees_with_the_symbolic_fallback() -> None:
    """Every family pair the fast path settles gets the same answer from Math-Verify's comparison."""
    disagreements = [
        (gold, pred, expected)
        for _, gold, pred, expected in PAIRS
        if symbolic_equal(gold, pred)[0] is not expected
    ]
    assert disagreements == []


def test_fast_path_never_raises_on_garbage() -> None:
    pieces = ["1", "0", "-", "+", "/", "^", "{", "}", "(", ")", "[", "]", ",", ";", "=", "<", "\\le", "x", "e",
              "i", ".", "%", "\\frac", "\\sqrt", "\\pi", "\\infty", "\\cup", "\\pm", "\\text{", "\\in",
              "&", "\\\\", "\\begin{pmatrix}", "\\end{pmatrix}", " ", "9" * 30, "_", "!", "\ud800"]
    rng = random.Random(0)
    for _ in range(3000):
        gold = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        pred = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        assert fast_compare(gold, pred) in (True, False, None)
