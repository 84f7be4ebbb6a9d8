"""`r1 verify`'s line format: every kind read with its defaults, every mistake named with its line."""

from __future__ import annotations

import json

import pytest

from r1.rewards.code import CPP, PYTHON, IOTest, request_limits
from r1.rewards.items import ChoiceCheck, FormatCheck, Invalid, LanguageCheck, MathCheck
from r1.rewards.jsonl import output_line, parse_line, verify_lines
from r1.rewards.math import Profile
from r1.rewards.verdict import RewardResult, Verdict
from r1.rewards.verifier import Verified


def item(**record):
    return parse_line(json.dumps(record), 1)[1]


def test_each_kind_with_its_defaults():
    assert item(kind="math", response="r", reference="1/2").check == MathCheck("1/2", Profile.STRICT)
    assert item(kind="math", response="r", reference=204, profile="lenient").check == MathCheck("204", Profile.LENIENT)
    assert item(kind="choice", response="r", reference="B", choices=["x", "y"]).check == ChoiceCheck("B", ("x", "y"))
    assert item(kind="format", response="r").check == FormatCheck(False)
    assert item(kind="format", response="r", think_prefilled=True).check == FormatCheck(True)
    assert item(kind="language", response="r", reference="zh").check == LanguageCheck("zh", 0.5)
    parsed = item(id="a", kind="math", response="r", reference="1", deadline_seconds=3)
    assert (parsed.id, parsed.deadline, parsed.response) == ("a", 3.0, "r")


def test_code_lines_map_tests_limits_and_language():
    check = item(kind="code", response="```cpp\nint main(){}\n```", tests=[{"input": "1", "output": "2"}],
                 limits={"time_limit_seconds": 2, "max_processes": 4}, float_tolerance=1e-6,
                 score_mode="all_or_nothing", stop_at_first_failure=True).check
    assert check.language == CPP and check.io_tests == (IOTest("1", "2"),)
    assert check.limits == request_limits(time_limit_seconds=2, max_processes=4)
    assert (check.abs_tol, check.rel_tol, check.score_mode, check.stop_at_first_failure) == (
        1e-6, 1e-6, "all_or_nothing", True)
    humaneval = item(kind="code", response="def f(): pass", assert_tests="def check(c): pass",
                     entry_point="f").check
    assert humaneval.language == PYTHON and humaneval.assert_tests == ("def check(c): pass",)
    assert humaneval.limits == request_limits()


@pytest.mark.parametrize("text, expected", [
    ("not json", "line 1: not valid JSON"),
    ("[1, 2]", "line 1: expected a JSON object, got list"),
    ('{"kind": "maths", "response": ""}', "line 1: kind: must be one of"),
    ('{"kind": "math", "reference": "1"}', "line 1: response: is required"),
    ('{"kind": "math", "response": "r"}', "line 1: reference: is required"),
    ('{"kind": "math", "response": "r", "reference": "1", "profile": "loose"}', "profile: must be one of"),
    ('{"kind": "math", "response": "r", "refrence": "1"}', "refrence: unknown key; did you mean 'reference'?"),
    ('{"kind": "choice", "response": "r", "reference": "A", "choices": [1]}', "choices: must be a list of strings"),
    ('{"kind": "code", "response": "r", "tests": [{"input": "1"}]}', "tests[0]: must be"),
    ('{"kind": "code", "response": "r", "tests": [], "limits": {"cpu": 1}}', "limits.cpu: unknown limit"),
    ('{"kind": "code", "response": "r", "tests": [], "limits": {"max_processes": 0}}',
     "limits.max_processes: must be a positive integer"),
    ('{"kind": "code", "response": "r", "language": "java"}', "language: must be one of"),
    ('{"kind": "format", "response": "r", "think_prefilled": "yes"}', "think_prefilled: must be true or false"),
    ('{"kind": "language", "response": "r", "reference": "en", "pass_threshold": true}',
     "pass_threshold: must be a number"),
])
def test_a_bad_line_becomes_an_invalid_item_naming_line_and_field(text, expected):
    record, parsed = parse_line(text, 1)
    assert isinstance(parsed.check, Invalid)
    assert expected in parsed.check.reason


def test_unknown_keys_pass_through_and_strings_become_valid_unicode():
    record, parsed = parse_line('{"kind": "math", "response": "\\ud800 \\\\boxed{1}", "reference": "1", '
                                '"problem": "What is 1?", "source": "x"}', 1)
    assert parsed.response == "? \\boxed{1}" and record["problem"] == "What is 1?"
    verified = Verified(0, "", "math", RewardResult(1.0, Verdict.CORRECT, "fast path", "1"), 0.0)
    out = json.loads(output_line(record, verified, 1))
    assert out["problem"] == "What is 1?" and out["verdict"] == "CORRECT" and "tests_total" not in out


def test_verify_lines_keeps_input_order_and_skips_blank_lines():
    lines = ['{"kind": "choice", "response": "Answer: A", "reference": "A"}', "", "oops",
             '{"kind": "choice", "response": "Answer: B", "reference": "A"}']

    def backwards(items):  # answers in reverse order, as a concurrent verifier may
        return [Verified(i, it.id, it.kind, RewardResult(0.0, Verdict.WRONG if it.kind == "choice"
                                                         else Verdict.INVALID_INPUT), 0.0)
                for i, it in reversed(list(enumerate(items)))]

    written = []
    counts = verify_lines(lines, backwards, written.append, batch_size=2)
    out = [json.loads(line) for line in written]
    assert [o.get("response", o.get("line")) for o in out] == ["Answer: A", 3, "Answer: B"]
    assert counts == {"WRONG": 2, "INVALID_INPUT": 1}
