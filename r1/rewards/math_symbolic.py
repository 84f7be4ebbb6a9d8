"""The symbolic fallback: Math-Verify's comparison on latex2sympy2_extended parses of two extracted answers.

Runs inside a `SymbolicPool` worker process, never in the caller: sympy can take unbounded time and
memory (`10^{10^{10^{10}}}`), and only a process can be stopped for sure. Every heavy import is therefore
inside the functions, so importing this module (which the caller must, to name the task) stays cheap.

Choices:
- The answers arrive already extracted (by `math_extract`), so extraction happens once, in one place, and
  the fast path and this fallback judge the same two strings. Each string is read the way Math-Verify reads
  the content of a LaTeX match: `normalize_latex` with Math-Verify's default normalisation, then
  `latex2sympy` (complex-aware when the text mentions i, matrices' det/tr, ...), retrying on the last part
  of an equation chain when the whole fails; a trailing percent sign that latex2sympy cannot take is
  applied afterwards as Math-Verify's `convert_to_pct` does.
- As `math_verify.parse` does, the normalised string travels with the parse, so two answers that do not
  parse still match when they read the same; and when the LaTeX reading fails, Math-Verify's plain
  expression reader gets the same text (its "any match" extraction moves on to the next candidate).
- `math_verify.verify` is called with `timeout_seconds=None`: its own timeout uses SIGALRM, which only works
  in a main thread; the worker's deadline is enforced from outside by killing the process.

Deliberately not done: any extraction from free text, and any timeout handling of its own.
"""

from __future__ import annotations

from typing import Any

__all__ = ["symbolic_equal", "parse_answer", "warm_up", "WARM_UP_PAIRS"]


def _normalization_config() -> Any:
    from latex2sympy2_extended.latex2sympy2 import NormalizationConfig

    return NormalizationConfig(
        basic_latex=True, units=True, malformed_operators=True, nits=True, boxed="all", equations=False
    )


def _latex_to_sympy(latex: str) -> Any:
    from latex2sympy2_extended import latex2sympy
    from math_verify.grader import should_treat_as_complex

    return latex2sympy(
        latex, is_real=not should_treat_as_complex(latex), convert_degrees=False, normalization_config=None
    )


def _last_equation_part(latex: str) -> str:
    """`a = b = c` -> `c` (only for chains of three or more parts and no list separators)."""
    if "," in latex or ";" in latex:
        return latex
    import re

    parts = re.split(r"(?<!\\|<|!|>)=", latex)
    return parts[-1] if len(parts) > 2 else latex


def _parse_normalized(latex: str) -> Any:
    try:
        return _latex_to_sympy(latex)
    except Exception:
        last = _last_equation_part(latex)
        if last == latex:
            raise
        return _latex_to_sympy(last)


def parse_answer(answer: str) -> tuple[list[Any], bool]:
    """([sympy value?, normalised string], parsed?) for one extracted answer."""
    from latex2sympy2_extended.latex2sympy2 import convert_to_pct, normalize_latex

    text = answer.replace("×", "\\times ").replace("÷", "\\div ")
    normalized = normalize_latex(text, _normalization_config())
    out: list[Any] = []
    try:
        out.append(_parse_normalized(normalized))
    except Exception:
        stripped = normalized.rstrip()
        for suffix in ("\\%", "%"):
            if stripped.endswith(suffix):
                try:
                    out.append(convert_to_pct(_parse_normalized(stripped[: -len(suffix)].strip())))
                except Exception:
                    pass
                break
    if not out:
        out.extend(_plain_expression(answer))
    parsed = bool(out)
    if normalized:
        out.append(normalized)
    return out, parsed


def _plain_expression(answer: str) -> list[Any]:
    """When the LaTeX reading fails, Math-Verify moves on to its plain-expression reader over the same
    text (its "any match" extraction); so do we, with its own reader."""
    from math_verify import ExprExtractionConfig, parse

    return parse(answer, [ExprExtractionConfig()], fallback_mode="no_fallback", parsing_timeout=None)[:1]


def symbolic_equal(
    gold: str, pred: str, float_rounding: int = 6, strict: bool = True, allow_set_relation_comp: bool = False
) -> tuple[bool, bool]:
    """(equivalent?, gold parsed?) by Math-Verify's rules; the gold's form decides the comparison."""
    from math_verify import verify

    gold_parsed, gold_ok = parse_answer(gold)
    pred_parsed, _ = parse_answer(pred)
    if not gold_parsed or not pred_parsed:
        return False, gold_ok
    equal = verify(
        gold_parsed,
        pred_parsed,
        float_rounding=float_rounding,
        strict=strict,
        allow_set_relation_comp=allow_set_relation_comp,
        timeout_seconds=None,
    )
    return bool(equal), gold_ok


WARM_UP_PAIRS = (
    ("\\frac{1}{2}", "0.5"),
    ("x^2+2x+1", "(x+1)^2"),
    ("x > 5", "5 < x"),
    ("-2 \\le x \\le 7", "x \\in [-2,7]"),
    ("(1,2) \\cup (3,\\infty)", "(3,\\infty) \\cup (1,2)"),
    ("\\{1,2\\}", "2,1"),
    ("2x+4y-3=0", "y=-\\frac{1}{2}x+\\frac{3}{4}"),
    ("\\begin{pmatrix}1 & 2\\\\3 & 4\\end{pmatrix}", "\\begin{bmatrix}1 & 2\\\\3 & 4\\end{bmatrix}"),
    ("\\tan^2(y)+1", "\\sec^2(y)"),
    ("F_n = \\sum_{k=0}^{n-1} F_k", "F_n = \\sum_{k=0}^{n-1} F_k"),
)


def warm_up() -> None:
    """Import and exercise the parser and the comparison paths (numbers, polynomials, relations, sets,
    intervals, equations, matrices, sums) once, so that a fresh worker pays sympy's first-call costs at
    start-up rather than inside some task's deadline."""
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for gold, pred in WARM_UP_PAIRS:
        symbolic_equal(gold, pred)
