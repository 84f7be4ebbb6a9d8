"""The line format of `r1 verify`: one JSON object per line in; the same object with its result out.

Every line has ``"kind"`` and ``"response"`` (the model's full text), and may have ``"id"`` (echoed) and
``"deadline_seconds"``. Per kind:

- ``math``: ``"reference"`` (the gold answer), ``"profile"``: ``"strict"`` (default, RL) or ``"lenient"``.
- ``choice``: ``"reference"`` (the letter), ``"choices"``: the option texts in letter order (optional).
- ``code``: ``"tests"``: ``[{"input": ..., "output": ...}]`` stdin/stdout pairs, and/or ``"assert_tests"``
  (one HumanEval/MBPP block) with ``"entry_point"``; ``"language"``: ``"python"`` or ``"cpp"`` (default:
  the tag of the response's last fenced block); ``"source"`` (default: extracted from the response);
  ``"limits"``: ``{"time_limit_seconds", "memory_limit_mb", "output_limit_bytes", "max_processes"}``;
  ``"float_tolerance"``; ``"score_mode"``: ``"fraction"`` or ``"all_or_nothing"``;
  ``"stop_at_first_failure"``.
- ``format``: ``"think_prefilled"``: true when the prompt already opened ``<think>``.
- ``language``: ``"reference"``: the target language (BCP-47, e.g. ``"en"``); ``"pass_threshold"``.

The output line is the input object plus ``"reward"``, ``"verdict"`` (``"CORRECT"``, ``"WRONG"``, ...),
``"detail"``, ``"extracted"`` and, for code, ``"tests_passed"`` and ``"tests_total"``. Timings are left out
so that the same input gives the same output, in-process or through the service.

Choices: a line that cannot be read (not JSON, a missing or mistyped field) is not fatal: it becomes an
`Invalid` item, answered INVALID_INPUT with the line number and the field, so the output keeps one line per
input line. Keys this format does not know pass through untouched (datasets carry their own), except near
misses of known keys ("refrence"), which are reported as likely typos. Strings are made valid Unicode
(lone surrogates become "?") before anything else sees them.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from r1.errors import InvalidArgument
from r1.rewards.code import (FRACTION, LANGUAGES, SCORE_MODES, CodeRequest, IOTest, infer_language,
                             request_limits)
from r1.rewards.items import ChoiceCheck, FormatCheck, Invalid, Item, LanguageCheck, MathCheck
from r1.rewards.math import Profile
from r1.rewards.verifier import Verified

COMMON_KEYS = ("id", "kind", "response", "deadline_seconds")
KEYS_BY_KIND: dict[str, tuple[str, ...]] = {
    "math": ("reference", "profile"),
    "choice": ("reference", "choices"),
    "code": ("language", "source", "tests", "assert_tests", "entry_point", "limits", "float_tolerance",
             "score_mode", "stop_at_first_failure"),
    "format": ("think_prefilled",),
    "language": ("reference", "pass_threshold"),
}
LIMIT_KEYS = ("time_limit_seconds", "memory_limit_mb", "output_limit_bytes", "max_processes")
PROFILES = {profile.value: profile for profile in Profile}
_ALL_KEYS = sorted({*COMMON_KEYS, *(k for keys in KEYS_BY_KIND.values() for k in keys)})


def parse_line(text: str, line_no: int) -> tuple[dict[str, Any] | None, Item]:
    """The line's object (None if it is not one) and its `Item`; never raises."""
    try:
        record = clean_strings(json.loads(text))
    except ValueError as e:
        return None, Item("", Invalid("", f"line {line_no}: not valid JSON ({e})"))
    if not isinstance(record, dict):
        return None, Item("", Invalid("", f"line {line_no}: expected a JSON object, got {type(record).__name__}"))
    try:
        return record, item_from_record(record)
    except InvalidArgument as e:
        kind = record.get("kind") if record.get("kind") in KEYS_BY_KIND else ""
        response = record.get("response") if isinstance(record.get("response"), str) else ""
        return record, Item(response, Invalid(kind, f"line {line_no}: {e}"), id=_id(record))


def item_from_record(record: dict[str, Any]) -> Item:
    """The `Item` a line describes; InvalidArgument naming the first bad key."""
    kind = record.get("kind")
    if kind not in KEYS_BY_KIND:
        raise InvalidArgument("kind", f"must be one of {list(KEYS_BY_KIND)}, got {kind!r}")
    _reject_typos(record)
    response = _get(record, "response", str)
    deadline = _get(record, "deadline_seconds", float, None)
    return Item(response, CHECK_BUILDERS[kind](record, response), id=_id(record), deadline=deadline)


def result_fields(verified: Verified) -> dict[str, Any]:
    """What an output line adds to its input object."""
    result = verified.result
    fields: dict[str, Any] = {"reward": result.reward, "verdict": result.verdict.value, "detail": result.detail,
                              "extracted": result.extracted}
    if verified.kind == "code":
        fields.update(tests_passed=result.tests_passed, tests_total=result.tests_total)
    return fields


def output_line(record: dict[str, Any] | None, verified: Verified, line_no: int) -> str:
    """One output line: the input object (or, for an unreadable line, its number) plus the result."""
    base = dict(record) if record is not None else {"line": line_no}
    return json.dumps({**base, **result_fields(verified)}, ensure_ascii=False)


def clean_strings(value: Any) -> Any:
    """`value` with every string made encodable as UTF-8 (lone surrogates, from "\\ud800" escapes, become
    "?"), so that what is checked in-process is what a gRPC message can carry."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [clean_strings(v) for v in value]
    if isinstance(value, dict):
        return {clean_strings(k): clean_strings(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------------------------------------


def _math(record: dict[str, Any], _: str) -> MathCheck:
    profile = _get(record, "profile", str, "strict")
    if profile not in PROFILES:
        raise InvalidArgument("profile", f"must be one of {list(PROFILES)}, got {profile!r}")
    reference = record.get("reference")
    if isinstance(reference, int) and not isinstance(reference, bool):  # AIME-style integer answers
        reference = str(reference)
    else:
        reference = _get(record, "reference", str)
    return MathCheck(reference, PROFILES[profile])


def _choice(record: dict[str, Any], _: str) -> ChoiceCheck:
    choices = _get(record, "choices", list, [])
    if not all(isinstance(c, str) for c in choices):
        raise InvalidArgument("choices", "must be a list of strings")
    return ChoiceCheck(_get(record, "reference", str), tuple(choices))


def _code(record: dict[str, Any], response: str) -> CodeRequest:
    language = _get(record, "language", str, None)
    if language is not None and language not in LANGUAGES:
        raise InvalidArgument("language", f"must be one of {list(LANGUAGES)}, got {language!r}")
    tests = _get(record, "tests", list, [])
    io_tests = []
    for i, test in enumerate(tests):
        if not (isinstance(test, dict) and isinstance(test.get("input"), str)
                and isinstance(test.get("output"), str)):
            raise InvalidArgument(f"tests[{i}]", 'must be {"input": "...", "output": "..."} with string values')
        io_tests.append(IOTest(test["input"], test["output"]))
    limits = _get(record, "limits", dict, {})
    unknown = sorted(set(limits) - set(LIMIT_KEYS))
    if unknown:
        raise InvalidArgument(f"limits.{unknown[0]}", f"unknown limit; valid: {list(LIMIT_KEYS)}")
    limit_types = {"time_limit_seconds": float}
    stated = {k: _get(limits, k, limit_types.get(k, int), None, where=f"limits.{k}") for k in limits}
    tolerance = _get(record, "float_tolerance", float, 0.0)
    assert_tests = _get(record, "assert_tests", str, "")
    score_mode = _get(record, "score_mode", str, FRACTION)
    if score_mode not in SCORE_MODES:
        raise InvalidArgument("score_mode", f"must be one of {list(SCORE_MODES)}, got {score_mode!r}")
    return CodeRequest(
        language=language or infer_language(response), source=_get(record, "source", str, ""),
        io_tests=tuple(io_tests), assert_tests=(assert_tests,) if assert_tests else (),
        entry_point=_get(record, "entry_point", str, ""), limits=request_limits(**stated),
        abs_tol=tolerance, rel_tol=tolerance, score_mode=score_mode,
        stop_at_first_failure=_get(record, "stop_at_first_failure", bool, False))


def _format(record: dict[str, Any], _: str) -> FormatCheck:
    return FormatCheck(_get(record, "think_prefilled", bool, False))


def _language(record: dict[str, Any], _: str) -> LanguageCheck:
    return LanguageCheck(_get(record, "reference", str), _get(record, "pass_threshold", float, 0.5))


CHECK_BUILDERS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "math": _math, "choice": _choice, "code": _code, "format": _format, "language": _language,
}

_MISSING = object()


def _get(record: dict[str, Any], key: str, tp: type, default: Any = _MISSING, *, where: str = "") -> Any:
    """record[key] checked against `tp` (an int is accepted for float, never a bool for a number)."""
    where = where or key
    value = record.get(key, _MISSING)
    if value is _MISSING or (value is None and default is not _MISSING):
        if default is _MISSING:
            raise InvalidArgument(where, "is required")
        return default
    numeric = tp in (int, float)
    if numeric and isinstance(value, bool) or not isinstance(value, (int, float) if tp is float else tp):
        raise InvalidArgument(where, f"must be {_TYPE_NAMES[tp]}, got {json.dumps(value)[:40]}")
    return float(value) if tp is float else value


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "an object"}


def _id(record: dict[str, Any]) -> str:
    value = record.get("id", "")
    return value if isinstance(value, str) else json.dumps(value)


def _reject_typos(record: dict[str, Any]) -> None:
    for key in record:
        if key in _ALL_KEYS:
            continue
        near = difflib.get_close_matches(key, _ALL_KEYS, n=1, cutoff=0.8)
        if near:
            raise InvalidArgument(key, f"unknown key; did you mean {near[0]!r}?")


def verify_lines(lines: Iterable[str], verify_batch: Callable[[list[Item]], Iterable[Verified]],
                 write: Callable[[str], Any], *, batch_size: int = 512,
                 default_deadline: float | None = None) -> Counter[str]:
    """Reads lines, verifies them `batch_size` at a time with `verify_batch` (in-process or a client), and
    writes one output line per input line, in input order. Blank lines are skipped. Returns the count of
    each verdict."""
    verdicts: Counter[str] = Counter()
    numbered = ((n, text) for n, text in enumerate(lines, 1) if text.strip())
    while chunk := list(itertools.islice(numbered, batch_size)):
        parsed = [parse_line(text, n) for n, text in chunk]
        items = [item if item.deadline is not None or default_deadline is None
                 else dataclasses.replace(item, deadline=default_deadline) for _, item in parsed]
        results = {v.index: v for v in verify_batch(items)}
        for i, ((n, _), (record, _)) in enumerate(zip(chunk, parsed)):
            verdicts[results[i].result.verdict.value] += 1
            write(output_line(record, results[i], n) + "\n")
    return verdicts
