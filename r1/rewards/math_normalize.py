"""String normalisation of an extracted answer, the first step of the fast path.

`normalize` rewrites one answer into a canonical LaTeX-ish spelling so that cosmetic differences vanish
before any parsing: `\\dfrac`/`\\tfrac`/`\\cfrac` -> `\\frac`, `\\left(`/`\\right)` -> `(`/`)`, spacing
commands and dollar signs removed, "and"/"or" between items -> `,`, `\\%` and "percent" -> `%`, degrees
(`30^\\circ`, `30°`) dropped, thousands separators (`7,425,000`, `12{,}000`, `12,\\!000`, when that is the
whole answer) removed, a trailing `\\text{...}` unit dropped and a remaining `\\text{X}` unwrapped, a
trailing plain unit word after a number dropped ("5 cm"), whitespace removed.

Choices, following Math-Verify's normaliser (latex2sympy2_extended) so that the fast path and the symbolic
fallback read an answer the same way, except where noted:
- a comma between digit groups of exactly three is a thousands separator only without a space after it
  ("32,349" is 32349, "32, 349" is the list {32, 349});
- whitespace *between two digits* is kept ("1 000" inside LaTeX is ambiguous; the fast path leaves it to
  the symbolic fallback), all other whitespace goes;
- the whole answer "0.5" stays a decimal here; `math_value` gives it Math-Verify's exact reading;
- unit words come from a short list of common units (lengths, masses, times, money, degrees). It is not
  Math-Verify's list, so a rarer unit ("5 dollars") may be accepted here where Math-Verify would read the
  word as a product of symbols; that difference is deliberate.

Deliberately not done: anything that needs to know what the answer means (that is `math_value`), and
unit conversion (5 cm and 50 mm are not equal here).
"""

from __future__ import annotations

import re

__all__ = ["normalize", "split_top_level", "relation_parts", "is_plain_symbol"]

_LEFT_RIGHT = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)\s*(\\[{}|]|[()\[\]|.]|\\langle|\\rangle)")
_FRAC_VARIANTS = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_SPACING = re.compile(r"(?<!\\)\\(?:displaystyle|qquad|quad|[,;:>]|\s)")
_REMOVED = re.compile(r"\\!\s*|\\\$|\$|\\(?:mathrm|textrm)\{th\}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree\b|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}")
_PERCENT_WORD = re.compile(r"\s*(?:\\text\{\s*(?:percentage|percent|pct)\s*\}|\b(?:percentage|percent|pct)\b)", re.I)
_DOUBLED_BACKSLASH = re.compile(r"\\\\(?=[A-Za-z])")
_AND_OR = re.compile(r"(?<![A-Za-z])(?:,?\s*\\text\s*\{\s*(?:and|or)\s*\}|,?\s*(?:and|or))(?![A-Za-z])")
_GROUPED_COMMA = re.compile(r"\{,\}")
_TEXT_CMD = r"\\(?:text|textbf|textit|textnormal|textrm|mathrm|mathbf|mbox|operatorname)\s*"
_TRAILING_TEXT = re.compile(_TEXT_CMD + r"\{[^{}]*\}\s*(?:\^\s*\{?\d\}?)?\s*$")
_TEXT_WRAPPER = re.compile(_TEXT_CMD + r"\{([^{}]*)\}")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?")
_UNITS = (
    "cm|mm|km|m|meters?|metres?|inches|inch|in|feet|foot|ft|yards?|yd|miles?|mi|kg|g|grams?|lbs?|pounds?|"
    "liters?|litres?|l|ml|seconds?|secs?|s|minutes?|mins?|hours?|hrs?|h|days?|weeks?|months?|years?|"
    "degrees?|deg|units?|sq\\s*units|square\\s*units|cents?|dollars?|mph|kmh|km/h|m/s|cm\\^2|m\\^2"
)
_TRAILING_UNIT = re.compile(r"(?<=[\d}\s])\s*(?:" + _UNITS + r")\s*(?:\^\s*\{?\d\}?)?\s*$", re.IGNORECASE)
_SPACE_BETWEEN_DIGITS = re.compile(r"(?<=\d)\s+(?=\d)")
_SPACE_AFTER_COMMAND = re.compile(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])")
_SPACE = re.compile(r"\s+")
_PLAIN = re.compile(r"[-+]?[\d.,/ ]*\d[\d.,/ ]*")
_LETTER = re.compile(r"[A-Za-z]")
_TRAILING_PUNCT = re.compile(r"[\s.,;]+$")


def _strip_units(s: str) -> str:
    stripped = _TRAILING_TEXT.sub("", s).strip()
    if stripped and stripped != s:
        s = stripped
    stripped = _TRAILING_UNIT.sub("", s).strip()
    if stripped and any(ch.isdigit() for ch in stripped):
        s = stripped
    return s


def _collapse_spaces(s: str) -> str:
    """Drop whitespace, except one space between two digits and after a command followed by a letter."""
    placeholder = "\x00"
    s = _SPACE_BETWEEN_DIGITS.sub(placeholder, s)
    s = _SPACE_AFTER_COMMAND.sub(lambda m: m.group(1) + placeholder, s)
    s = _SPACE.sub("", s)
    return s.replace(placeholder, " ")


def _unwrap_outer_braces(s: str) -> str:
    """{{x}} -> x: peel brace pairs that enclose the whole string (one pass over the braces)."""
    if not s.startswith("{"):
        return s
    closing: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(s):
        if ch == "{" and (i == 0 or s[i - 1] != "\\"):
            stack.append(i)
        elif ch == "}" and (i == 0 or s[i - 1] != "\\") and stack:
            closing[stack.pop()] = i
    k = 0
    while k < len(s) - 1 - k and s[k] == "{" and closing.get(k) == len(s) - 1 - k:
        k += 1
    return s[k : len(s) - k]


def normalize(answer: str) -> str:
    """Canonical spelling of one extracted answer (see the module docstring)."""
    s = answer.strip()
    if _PLAIN.fullmatch(s):  # digits and operators only: nothing below applies but the last steps
        return _finish(s)
    if "\\" in s:
        s = _latex_commands(s)
    s = _REMOVED.sub("", s)
    s = _GROUPED_COMMA.sub(",", s)
    s = _DEGREES.sub("", s)
    s = s.replace("\\%", "%").replace("~", " ")
    if _LETTER.search(s):
        s = _PERCENT_WORD.sub("%", s)
        s = _AND_OR.sub(",", s)
        s = _strip_units(s.strip())
        s = _TEXT_WRAPPER.sub(r"\1", s)
        s = _strip_units(s.strip())
    return _finish(s)


def _latex_commands(s: str) -> str:
    if "matrix" not in s and "array" not in s:
        s = _DOUBLED_BACKSLASH.sub(r"\\", s)  # \\left -> \left (escaped twice upstream)
    s = _LEFT_RIGHT.sub(lambda m: "" if m.group(1) == "." else m.group(1), s)
    s = _FRAC_VARIANTS.sub(r"\\frac", s)
    return _SPACING.sub(" ", s)


def _finish(s: str) -> str:
    if _THOUSANDS.fullmatch(s):  # only a whole answer: inside (12,102) the comma separates items
        s = s.replace(",", "")
    s = _collapse_spaces(s)
    s = _TRAILING_PUNCT.sub("", s)
    return _unwrap_outer_braces(s)


_OPEN = "([{"
_CLOSE = ")]}"


def split_top_level(s: str, sep: str) -> list[str]:
    """Split `s` on `sep` characters outside (), [], {} and \\{ \\}. One pass; unbalanced input splits at
    depth 0 only."""
    parts: list[str] = []
    depth = 0
    last = 0
    for i, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(s[last:i])
            last = i + 1
    parts.append(s[last:])
    return parts


_OTHER_RELATIONS = re.compile(r"[<>]|!=|\\(?:le|ge|leq|geq|lt|gt|ne|neq|approx|sim|equiv|in|subset)(?![A-Za-z])")
_MEMBERSHIP = re.compile(r"^([A-Za-z])\\in(?![A-Za-z])")
_PLAIN_SYMBOL = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?$")


def relation_parts(s: str) -> list[str] | None:
    """The sides of a chain of equalities `a=b=c` (top level only), `[s]` when there is no '=', or None
    when `s` holds any other relation (<, \\le, \\approx, ...), which the fast path does not handle.
    `x \\in S` counts as the assignment `x = S`, as latex2sympy reads it."""
    member = _MEMBERSHIP.match(s)
    if member is not None:
        s = f"{member.group(1)}={s[member.end():]}"
    if _OTHER_RELATIONS.search(s):
        return None
    return split_top_level(s, "=")


def is_plain_symbol(s: str) -> bool:
    """x, k, x_1, a_{37}, \\alpha, or a tuple of those, (p,q): the left side of an assignment."""
    if s.startswith("(") and s.endswith(")"):
        return all(_PLAIN_SYMBOL.match(part) for part in s[1:-1].split(","))
    return bool(_PLAIN_SYMBOL.match(s))
