"""Pulling the final answer out of a model response (or out of a reference answer).

One `ExtractionPolicy` says which places may hold the answer; `extract_answer` tries them in a fixed
order and returns the first that yields something, as an `Extraction` (the answer text and where it came
from). The order, strongest evidence first:

1. `<answer>...</answer>` (the R1-Zero template): the last closed pair; inside it, a boxed answer or a math
   environment wins over the bare text.
2. `\\boxed{...}` / `\\fbox{...}`: the last top-level box. Boxes that follow each other closely ("\\boxed{1}
   and \\boxed{2}") form one answer, joined with commas, as Math-Verify does: a gap under 10 characters, or
   under 70 characters that holds a separator (`and`, `or`, `,`, `;`) between different contents.
3. An answer anchor: the last "final answer" / "answer" phrase, then what follows it ("is", ":" skipped): a
   math environment, a short mathematical line, or the first number on the line.
4. (lenient) The last math environment (`$...$`, `$$...$$`, `\\(...\\)`, `\\[...\\]`), together with the
   environments joined to it by "and", "or" or commas, or the last number / arithmetic expression, whichever
   ends later in the text (Math-Verify's rule for unanchored matches).
5. (references only) The whole text.

Choices:
- Everything is a linear scan: braces are matched with one pass over the brace tokens (an explicit stack,
  no recursion), environments with one tokenizer pass, numbers with non-backtracking patterns over maximal
  runs. A 1 MB response or 10,000 nested braces costs one pass.
- Numbers found outside LaTeX are written canonically here ("7,425,000" -> "7425000", "1000,99" ->
  "1000.99", "28 percent" -> "28\\%"), so later stages see one spelling.
- STRICT (RL rewards) uses 1-3; LENIENT (evaluation) adds 4; REFERENCE (gold answers) is 1, 2, 4 then 5.

Deliberately not done: multiple-choice letters (a separate reward), answers split across several anchors,
and any parsing into mathematics (see `math_normalize`, `math_value`, `math_symbolic`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "ExtractionPolicy",
    "Extraction",
    "Source",
    "STRICT_POLICY",
    "LENIENT_POLICY",
    "REFERENCE_POLICY",
    "extract_answer",
    "find_boxed_group",
    "find_answer_tag",
    "find_anchored_answer",
    "find_env_group",
    "find_last_number",
]


class Source(enum.Enum):
    """Where an extracted answer came from."""

    ANSWER_TAG = "answer_tag"
    BOXED = "boxed"
    ANCHOR = "anchor"
    MATH_ENV = "math_env"
    NUMBER = "number"
    WHOLE = "whole"


@dataclass(frozen=True)
class ExtractionPolicy:
    """Which places may hold the answer (tried in the order of the fields)."""

    answer_tags: bool = True
    boxed: bool = True
    anchors: bool = True
    math_envs: bool = False
    numbers: bool = False
    whole_text: bool = False


STRICT_POLICY = ExtractionPolicy()
LENIENT_POLICY = ExtractionPolicy(math_envs=True, numbers=True)
REFERENCE_POLICY = ExtractionPolicy(answer_tags=False, anchors=False, math_envs=True, whole_text=True)


@dataclass(frozen=True)
class Extraction:
    text: str
    source: Source


@dataclass(frozen=True)
class _Span:
    start: int  # first character of the construct (e.g. the backslash of \boxed)
    end: int  # one past its last character
    text: str  # the content, stripped


def extract_answer(text: str, policy: ExtractionPolicy) -> Extraction | None:
    """The answer `text` holds under `policy`, or None when it holds none."""
    if policy.answer_tags:
        tagged = find_answer_tag(text)
        if tagged is not None:
            inner = extract_answer(tagged, _INSIDE_TAG)
            return Extraction(inner.text if inner else tagged, Source.ANSWER_TAG)
    boxed = find_boxed_group(text) if policy.boxed else None
    anchored = find_anchored_answer(text) if policy.anchors else None
    if boxed is not None and boxed.text:
        # a "final answer is ..." statement after the last box overrides it; plain "answer" does not
        if anchored is not None and anchored.final and anchored.start > boxed.end:
            return Extraction(anchored.text, Source.ANCHOR)
        return Extraction(boxed.text, Source.BOXED)
    if anchored is not None:
        return Extraction(anchored.text, Source.ANCHOR)
    if policy.math_envs or policy.numbers:
        env = find_env_group(text) if policy.math_envs else None
        num = find_last_number(text) if policy.numbers else None
        if policy.numbers:
            fraction = find_last_latex_fraction(text)
            if fraction is not None and (env is None or fraction.start >= env.end):
                env = fraction
        if env is not None and (num is None or env.end >= num.end) and env.text:
            return Extraction(env.text, Source.MATH_ENV)
        if num is not None:
            return Extraction(num.text, Source.NUMBER)
    if policy.whole_text and text.strip():
        return Extraction(text.strip(), Source.WHOLE)
    return None


_INSIDE_TAG = ExtractionPolicy(answer_tags=False, anchors=False, math_envs=True)

# ---------------------------------------------------------------------------------------------- <answer>

def find_answer_tag(text: str) -> str | None:
    """Content of the last closed `<answer>...</answer>` pair (stripped), or None."""
    lowered = text.lower() if "<" in text else ""
    close = lowered.rfind("</answer>")
    if close < 0:
        return None
    open_ = lowered.rfind("<answer>", 0, close)
    if open_ < 0:
        return None
    return text[open_ + len("<answer>") : close].strip()


# ----------------------------------------------------------------------------------------------- \boxed

_BRACE_TOKENS = re.compile(r"\\(?:boxed|fbox)\s*\{|[{}]")
_BRACES = re.compile(r"[{}]")
_BOX_OPENER = re.compile(r"\\(?:boxed|fbox)\s*\{")
_SEPARATOR = re.compile(r"\b(?:and|or)\b|,|;")


def _top_level_boxes(text: str) -> list[_Span]:
    """Every \\boxed{...}/\\fbox{...} not nested in another one, in order. An unclosed last box runs to
    the end of the text. One pass over the brace tokens with an explicit stack (is this brace a box?)."""
    first = min((i for i in (text.find("\\boxed"), text.find("\\fbox")) if i >= 0), default=-1)
    if first < 0:
        return []
    boxes: list[_Span] = []
    stack: list[bool] = []
    open_boxes = 0  # how many entries of `stack` are box openers
    open_box_start = open_box_content = -1  # the currently open top-level box
    for m in _BRACE_TOKENS.finditer(text, first):
        token = m.group()
        if token == "}":
            if not stack:
                continue
            if stack.pop():
                open_boxes -= 1
                if open_boxes == 0:
                    boxes.append(_Span(open_box_start, m.end(), text[open_box_content : m.start()].strip()))
                    open_box_start = -1
        elif token == "{":
            stack.append(False)
        else:  # a box opener
            if open_boxes == 0:
                open_box_start, open_box_content = m.start(), m.end()
            open_boxes += 1
            stack.append(True)
    if open_box_start >= 0:
        boxes.append(_Span(open_box_start, len(text), text[open_box_content:].strip()))
    return boxes


def _unwrap_box(content: str) -> str:
    """\\boxed{\\boxed{x}} -> x (a box whose whole content is one more box). One pass: the brace matches
    are computed once, then the layers are peeled by index arithmetic."""
    if "\\boxed" not in content and "\\fbox" not in content:
        return content
    closing: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACES.finditer(content):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            closing[stack.pop()] = m.start()
    start, end = 0, len(content)
    while True:
        opener = _BOX_OPENER.match(content, start)
        if opener is None or closing.get(opener.end() - 1, -1) != end - 1:
            return content[start:end].strip()
        start, end = opener.end(), end - 1
        while start < end and content[start].isspace():
            start += 1
        while end > start and content[end - 1].isspace():
            end -= 1


def _joined_with_previous(text: str, prev: _Span, cur: _Span) -> bool:
    gap = text[prev.end : cur.start]
    if len(gap) < 10:
        return True
    return len(gap) < 70 and prev.text != cur.text and bool(_SEPARATOR.search(gap))


def find_boxed_group(text: str) -> _Span | None:
    """The last top-level box, joined with the boxes right before it (see the module docstring)."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return None
    boxes = _top_level_boxes(text)
    if not boxes:
        return None
    group = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        if not _joined_with_previous(text, prev, group[-1]):
            break
        group.append(prev)
    contents: list[str] = []
    for span in reversed(group):
        content = _unwrap_box(span.text)
        if content and (not contents or contents[-1] != content):
            contents.append(content)
    return _Span(group[-1].start, group[0].end, ",".join(contents))


# -------------------------------------------------------------------------------------- math environments

_ENV_TOKENS = re.compile(r"\\\$|\$\$|\$|\\\[|\\\]|\\\(|\\\)")
_CLOSER = {"$$": "$$", "$": "$", "\\[": "\\]", "\\(": "\\)"}
_SINGLE_LINE = {"$", "\\("}
_PERCENT_AFTER = re.compile(r"\s*(?:\\?%|percentage\b|percent\b|pct\b)", re.IGNORECASE)
_ENV_JOINER = re.compile(r"\s*(?:,?\s*\b(?:and|or)\b|,)\s*$", re.IGNORECASE)


def _math_envs(text: str) -> list[_Span]:
    """Math environments in order of appearance. Inline ones (`$..$`, `\\(..\\)`) may not span lines; an
    inline `$` right after a digit does not open one (prices such as 5$)."""
    if "$" not in text and "\\[" not in text and "\\(" not in text:
        return []
    envs: list[_Span] = []
    opener = ""
    open_at = content_at = 0
    for m in _ENV_TOKENS.finditer(text):
        token = m.group()
        if token == "\\$":
            continue
        if opener:
            if token == _CLOSER[opener]:
                if opener in _SINGLE_LINE and "\n" in text[content_at : m.start()]:
                    opener = ""  # an inline environment may not span lines: this token may open a new one
                else:
                    envs.append(_Span(open_at, m.end(), text[content_at : m.start()].strip()))
                    opener = ""
                    continue
            elif opener in _SINGLE_LINE and "\n" in text[content_at : m.start()]:
                opener = ""
            else:
                continue
        if token in _CLOSER and not (token == "$" and m.start() > 0 and text[m.start() - 1].isdigit()):
            opener, open_at, content_at = token, m.start(), m.end()
    return envs


def _with_percent(text: str, env: _Span) -> _Span:
    m = _PERCENT_AFTER.match(text, env.end)
    if m is None or env.text.endswith("%"):
        return env
    return _Span(env.start, m.end(), env.text + "\\%")


def _joined(text: str, envs: list[_Span]) -> _Span:
    """Environments (in text order) as one answer: contents joined with commas, percent signs kept."""
    parts = [_with_percent(text, e) for e in envs]
    return _Span(parts[0].start, parts[-1].end, ",".join(p.text for p in parts if p.text))


def _joins(text: str, left: _Span, right: _Span) -> bool:
    return bool(_ENV_JOINER.match(text[left.end : right.start]))


def find_env_group(text: str) -> _Span | None:
    """The last math environment joined with up to 5 environments before it by "and", "or" or commas."""
    envs = _math_envs(text)
    if not envs:
        return None
    first = len(envs) - 1
    while first > 0 and len(envs) - first < 6 and _joins(text, envs[first - 1], envs[first]):
        first -= 1
    return _joined(text, envs[first:])


def _first_env_group(text: str, envs: list[_Span]) -> _Span:
    """The first environment joined with up to 5 environments after it."""
    last = 0
    while last + 1 < min(len(envs), 6) and _joins(text, envs[last], envs[last + 1]):
        last += 1
    return _joined(text, envs[: last + 1])


# ------------------------------------------------------------------------------------------------ numbers

_LATEX_FRACTION = re.compile(r"-?\\[dtc]?frac\{-?\d+(?:[.,]\d+)?\}\{-?\d+(?:[.,]\d+)?\}")


def find_last_latex_fraction(text: str) -> _Span | None:
    """The last bare `\\frac{a}{b}` of plain numbers outside any environment (Math-Verify reads those too)."""
    if "frac" not in text:
        return None
    last = None
    for last in _LATEX_FRACTION.finditer(text):
        pass
    return _Span(last.start(), last.end(), last.group()) if last else None


_NUMBER = re.compile(
    r"(?<![\w.,])(?P<sign>-)?(?:"
    r"(?P<grouped>[1-9]\d{0,2}(?:[ ,]\d{3})+)(?P<gdec>\.\d+)?"
    r"|(?P<int>\d+)(?P<dec>[.,]\d+)?"
    r"|(?P<frac>\.\d+))(?![\d])"
    r"(?P<pct>\s*(?:\\?%|percentage\b|percent\b|pct\b))?",
    re.IGNORECASE,
)
_EXPR_RUN = re.compile(r"[\d.+\-*/^()×÷ ]+")
_OPERATOR = re.compile(r"\d\s*[)]?\s*[+\-*/^×÷]\s*[(]?\s*-?[\d.]")
_NUMBER_PREFIX = "$€£¥₹ =\t\n\r:(*"


def _canonical_number(m: re.Match[str]) -> str:
    if m.group("grouped"):
        body = m.group("grouped").replace(",", "").replace(" ", "") + (m.group("gdec") or "")
    elif m.group("int") is not None:
        body = m.group("int").lstrip("0") or "0"
        if m.group("dec"):
            body += "." + m.group("dec")[1:]
    else:
        body = "0" + m.group("frac")
    return ("-" if m.group("sign") else "") + body + ("\\%" if m.group("pct") else "")


def _balanced(expr: str) -> str:
    """Trim an arithmetic run to something that can be an expression: outer spaces, dots, dangling
    operators and unbalanced parentheses go."""
    expr = expr.strip(" .")
    while expr and expr[-1] in "+-*/^×÷(":
        expr = expr[:-1].rstrip(" .")
    while expr and expr[0] in "+*/^×÷)":
        expr = expr[1:].lstrip()
    depth = 0
    for i, ch in enumerate(expr):
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return _balanced(expr[:i])
    while depth > 0 and "(" in expr:
        expr = expr[expr.index("(") + 1 :].strip()
        depth -= 1
    return expr


def _expression_at(text: str, num: _Span, run: re.Match[str]) -> _Span | None:
    """The arithmetic expression (e.g. 2/3, (1/2)*(4/3)) in `run`, if it contains the number and is
    anchored like one (start of text, space, '=' or a currency sign before it)."""
    if run.start() > num.start or run.end() < num.end:
        return None
    if run.start() > 0 and text[run.start() - 1] not in _NUMBER_PREFIX and not run.group()[0].isspace():
        return None
    expr = _balanced(run.group())
    if not _OPERATOR.search(expr) or len(expr) > 200:
        return None
    return _Span(run.start(), run.end(), expr)


def _last_standalone_number(text: str) -> re.Match[str] | None:
    """Scan windows growing from the end, so a long response costs only its tail. Lookbehinds see the
    text before a window's start, so a number cut by the window boundary is never taken for a new one."""
    window = 4096
    while True:
        lo = max(0, len(text) - window)
        last = None
        for m in _NUMBER.finditer(text, lo):
            if m.start() == 0 or text[m.start() - 1] in _NUMBER_PREFIX:
                last = m
        if last is not None or lo == 0:
            return last
        window *= 16


def find_last_number(text: str) -> _Span | None:
    """The last number (or plain arithmetic expression such as 2/3) that stands on its own: preceded by the
    start of the text, a space, '=', ':' or a currency sign. "AZYUK2A" holds none."""
    last = _last_standalone_number(text)
    if last is None:
        return None
    num = _Span(last.start(), last.end(), _canonical_number(last))
    if last.group("pct"):
        return num
    run = _EXPR_RUN.match(text, _run_start(text, last.start()))
    expr = _expression_at(text, num, run) if run else None
    return expr if expr is not None else num


def _run_start(text: str, pos: int) -> int:
    """Start of the maximal arithmetic run that contains `pos` (scanning back at most 200 characters)."""
    lo = max(0, pos - 200)
    start = pos
    while start > lo and _EXPR_RUN.fullmatch(text[start - 1]):
        start -= 1
    return start


# ------------------------------------------------------------------------------------------------ anchors

_FINAL = re.compile(r"final\s+$")
_IS = re.compile(r"\s(?:is|are)\b\s*:?\s*", re.IGNORECASE)
_ANSWER_START = re.compile(r"\$|\\[(\[]|\\[A-Za-z]|[-+(\[{]?\.?\d")
_LEAD = re.compile(r"(?:\*\*|[\s:*>])*(?:\b(?:is|are)\b\s*:?\s*)?")
_WORD = re.compile(r"[A-Za-z]{3,}")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_TEXT_COMMAND = re.compile(r"\\(?:text|textbf|mathrm|mbox|operatorname)\s*\{[^{}]*\}")
_HOPE = re.compile(r"\.?\s*I hope it is correct.*$", re.IGNORECASE | re.DOTALL)


def _last_anchor(text: str) -> tuple[int, int, bool] | None:
    """Start and end of the last whole-word "answer" phrase (not a closing </answer> tag) and whether it
    is a "final answer"."""
    lowered = text.lower()
    pos = lowered.rfind("answer")
    while pos >= 0:
        end = pos + len("answer")
        word_start = pos == 0 or not lowered[pos - 1].isalnum()
        word_end = end >= len(lowered) or not lowered[end].isalnum()
        if word_start and word_end and not lowered.endswith("</", 0, pos):
            final = _FINAL.search(lowered, max(0, pos - 20), pos)
            return (final.start() if final else pos), end, final is not None
        pos = lowered.rfind("answer", 0, pos)
    return None


def _looks_mathematical(line: str) -> bool:
    """A short line with no prose: no run of 3+ letters outside LaTeX commands."""
    if not line or len(line) > 120:
        return False
    bare = _LATEX_COMMAND.sub(" ", _TEXT_COMMAND.sub(" ", line))
    return _WORD.search(bare) is None and any(ch.isalnum() for ch in bare)


@dataclass(frozen=True)
class _Anchored:
    text: str
    start: int  # where the anchor phrase starts
    final: bool  # "final answer" rather than a bare "answer"


def _skip_to_is(tail: str) -> str:
    """After "final answer": the text after the first "is" (within 100 characters, same line) that is
    directly followed by an answer (a math environment, a number or a LaTeX command)."""
    for m in _IS.finditer(tail, 0, 120):
        if "\n" in tail[: m.start()]:
            break
        if _ANSWER_START.match(tail, m.end()):
            return tail[m.end() :]
    return tail


def find_anchored_answer(text: str) -> _Anchored | None:
    """What follows the last "final answer" / "answer" phrase: a math environment right after it (or after
    "is"), else the rest of the line when it is mathematical, else the first number on that line (after its
    last '='), else a short line as it is."""
    anchor = _last_anchor(text)
    if anchor is None:
        return None
    start, end, final = anchor
    tail = _HOPE.sub("", text[end : end + 400])
    if final:
        tail = _skip_to_is(tail)
    tail = tail[_LEAD.match(tail).end() :]
    answer = _answer_in_tail(tail)
    return _Anchored(answer, start, final) if answer else None


def _answer_in_tail(tail: str) -> str | None:
    envs = _math_envs(tail)
    if envs and envs[0].start <= 50:
        group = _first_env_group(tail, envs)
        if group.text:
            return group.text
    line = tail.split("\n", 1)[0].strip().rstrip(".").strip()
    if _looks_mathematical(line):
        return line
    after_eq = line.rsplit("=", 1)[-1] if "=" in line[:100] else line[:60]
    num = _first_number(after_eq)
    if num is not None:
        return num
    return line if 0 < len(line) <= 40 and "$" not in line else None


def _first_number(segment: str) -> str | None:
    for m in _NUMBER.finditer(segment):
        if m.start() == 0 or segment[m.start() - 1] in _NUMBER_PREFIX:
            return _canonical_number(m)
    return None
