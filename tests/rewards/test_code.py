"""The code judge: extraction, comparison, request validation, verdicts and scores for Python and C++."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from r1.errors import InvalidArgument
from r1.rewards.code import (
    ALL_OR_NOTHING,
    CPP,
    PYTHON,
    CodeRequest,
    IOTest,
    compare_output,
    extract_code,
    judge,
    judge_response,
    validate_request,
)
from r1.rewards.sandbox import Limits
from r1.rewards.verdict import Verdict
from tests.paths import SHARED_DATA

CODE_CONTESTS = SHARED_DATA / "code_contests" / "code_contests_test.json"
ADD = (IOTest("1 2\n", "3\n"), IOTest("-10 4\n", "-6\n"), IOTest("0 0\n", "0\n"))
PY_ADD = "a, b = map(int, input().split())\nprint(a + b)\n"
CPP_ADD = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b; }\n"


@pytest.fixture(scope="module")
def contests() -> list[dict]:
    if not os.path.exists(CODE_CONTESTS):
        pytest.skip(f"{CODE_CONTESTS} is not on this machine")
    with open(CODE_CONTESTS) as f:
        return json.load(f)


def io_tests(problem: dict) -> tuple[IOTest, ...]:
    return tuple(IOTest(i, o) for i, o in zip(problem["tests"]["inputs"], problem["tests"]["outputs"]))


# --- extraction and comparison (no sandbox) ---------------------------------------------------------------


@pytest.mark.parametrize("response, language, code", [
    ("```python\nprint(1)\n```\ntext\n```python\nprint(2)\n```", PYTHON, "print(2)\n"),
    ("```py\nx = 1\n```", PYTHON, "x = 1\n"),
    ("```cpp\nint main(){}\n```\n```python\nprint(3)\n```", CPP, "int main(){}\n"),
    ("```c++\nint main(){return 1;}\n```", CPP, "int main(){return 1;}\n"),
    ("```\nprint(4)\n```", PYTHON, "print(4)\n"),  # untagged fence
    ("print(5)", PYTHON, "print(5)"),  # no fence at all: the whole text
    ("```bash\nls\n```", PYTHON, ""),  # fences, but none for this language
    ("<think>```python\nprint(0)\n```</think>\n```python\nprint(6)\n```", PYTHON, "print(6)\n"),
    ("Here:\n  ```python\n  print(7)\n  ```\n", PYTHON, "  print(7)\n"),  # indented fence
])
def test_extracts_the_last_block_of_the_language(response, language, code):
    assert extract_code(response, language) == code


@pytest.mark.parametrize("expected, got, abs_tol, rel_tol, same", [
    ("1 2\n3\n", "1\n2 3", 0, 0, True),  # whitespace-insensitive
    ("1 2 3", "1 2 3 4", 0, 0, False),
    ("YES", "yes", 0, 0, False),
    ("0.333333", "0.3333334", 1e-6, 0, True),
    ("0.333333", "0.3334", 1e-6, 0, False),
    ("1000000", "1000001", 0, 1e-6, True),
    ("1.5", "1.5000001", 0, 0, False),  # no tolerance: exact tokens
    ("nan", "nan", 1e-6, 0, True),
    ("1", "abc", 1e-6, 0, False),
])
def test_compares_token_wise_with_optional_tolerance(expected, got, abs_tol, rel_tol, same):
    assert (compare_output(expected, got, abs_tol, rel_tol) == "") is same


def test_comparison_says_where_and_what():
    why = compare_output("4 1 6", "3 1 5")
    assert "token 1" in why and "'4'" in why and "'3'" in why


@pytest.mark.parametrize("request_, field", [
    (CodeRequest("rust", "fn main(){}", io_tests=ADD), "language"),
    (CodeRequest(PYTHON, PY_ADD), "io_tests"),
    (CodeRequest(CPP, CPP_ADD, assert_tests=("assert True",)), "assert_tests"),
    (CodeRequest(PYTHON, PY_ADD, assert_tests=("assert (",)), "assert_tests[0]"),
    (CodeRequest(PYTHON, PY_ADD, assert_tests=("assert True",), entry_point="no such thing"), "entry_point"),
    (CodeRequest(PYTHON, PY_ADD, io_tests=(("1 2", "3"),)), "io_tests[0]"),
    (CodeRequest(PYTHON, PY_ADD, io_tests=ADD, abs_tol=-1.0), "abs_tol"),
    (CodeRequest(PYTHON, PY_ADD, io_tests=ADD, score_mode="best"), "score_mode"),
    (CodeRequest(PYTHON, PY_ADD, io_tests=ADD, limits=Limits(cpu_s=0)), "limits.cpu_s"),
])
def test_bad_requests_name_the_field(request_, field):
    with pytest.raises(InvalidArgument) as e:
        validate_request(request_)
    assert e.value.field == field


# --- Python ------------------------------------------------------------------------------------------------


def test_python_io_correct_and_wrong(sandbox):
    ok = judge(CodeRequest(PYTHON, PY_ADD, io_tests=ADD), sandbox)
    assert (ok.verdict, ok.reward, ok.tests_passed, ok.tests_total) == (Verdict.CORRECT, 1.0, 3, 3)
    wrong = judge(CodeRequest(PYTHON, PY_ADD.replace("a + b", "abs(a + b)"), io_tests=ADD), sandbox)
    assert (wrong.verdict, wrong.tests_passed) == (Verdict.WRONG, 2)
    assert wrong.reward == pytest.approx(2 / 3)
    assert wrong.detail.startswith("test 2/3: wrong answer: token 1: expected '-6', got '6'")


def test_all_or_nothing_and_stop_at_first_failure(sandbox):
    program = "a, b = map(int, input().split())\nprint(a + b if a else 1)\n"  # fails only the last test
    req = CodeRequest(PYTHON, program, io_tests=ADD)
    assert judge(req, sandbox).reward == pytest.approx(2 / 3)
    assert judge(replace(req, score_mode=ALL_OR_NOTHING), sandbox).reward == 0.0
    first_fails = CodeRequest(PYTHON, "print(0)", io_tests=ADD, stop_at_first_failure=True)
    res = judge(first_fails, sandbox)
    assert (res.verdict, res.tests_passed, res.tests_total) == (Verdict.WRONG, 0, 3)
    assert res.detail.startswith("test 1/3")


def test_python_failures_have_their_verdicts(sandbox):
    fast = Limits(cpu_s=1, wall_s=3)
    cases = {
        "print(1 / 0)": Verdict.RUNTIME_ERROR,
        "while True: pass": Verdict.TIMEOUT,
        "x = bytearray(1 << 34)": Verdict.MEMORY_LIMIT,
        "print('y' * (1 << 22))": Verdict.OUTPUT_LIMIT,
        "def f(:\n    pass": Verdict.COMPILE_ERROR,
    }
    for program, verdict in cases.items():
        res = judge(CodeRequest(PYTHON, program, io_tests=ADD, limits=fast), sandbox)
        assert res.verdict is verdict, (program, res)
        assert res.reward == 0.0 and res.tests_total == 3
    res = judge(CodeRequest(PYTHON, "print(1 / 0)", io_tests=ADD), sandbox)
    assert "ZeroDivisionError" in res.detail


def test_float_tolerance(sandbox):
    req = CodeRequest(PYTHON, "print(1 / 3)", io_tests=(IOTest("", "0.333333"),))
    assert judge(req, sandbox).verdict is Verdict.WRONG
    assert judge(replace(req, abs_tol=1e-6), sandbox).verdict is Verdict.CORRECT
    assert judge(replace(req, rel_tol=1e-5), sandbox).verdict is Verdict.CORRECT


HUMANEVAL_STYLE_TEST = """
def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0
"""


def test_function_call_tests_in_humaneval_style(sandbox):
    req = CodeRequest(PYTHON, "def add(a, b):\n    return a + b\n", assert_tests=(HUMANEVAL_STYLE_TEST,),
                      entry_point="add")
    assert judge(req, sandbox).verdict is Verdict.CORRECT
    wrong = judge(replace(req, source="def add(a, b):\n    return a * b\n"), sandbox)
    assert wrong.verdict is Verdict.WRONG
    assert wrong.detail == "test 1/1: assertion failed: assert candidate(2, 3) == 5 -> AssertionError"


def test_plain_assert_blocks_score_a_fraction(sandbox):
    blocks = tuple(f"assert add({a}, {b}) == {a + b}" for a, b in [(1, 1), (2, 2), (0, 5), (3, 3)])
    source = "def add(a, b):\n    return a + b if a else 0\n"
    res = judge(CodeRequest(PYTHON, source, assert_tests=blocks), sandbox)
    assert (res.verdict, res.tests_passed, res.tests_total, res.reward) == (Verdict.WRONG, 3, 4, 0.75)
    assert res.detail.startswith("test 3/4")


@pytest.mark.parametrize("cheat", [
    "import sys\nsys.exit(0)",
    "import os\nos._exit(0)",
    "import builtins\nbuiltins.AssertionError = Exception",
    "print('OK')\nprint('PASSED')\nraise SystemExit",
    # read the harness's nonce back from stdin, print it and leave before the tests
    "import os, sys\ntry:\n    os.lseek(0, 0, 0)\n    sys.stdout.write(os.read(0, 99).decode())\n"
    "except OSError:\n    pass\nsys.stdout.flush()\nos._exit(0)",
])
def test_exiting_early_does_not_pass(sandbox, cheat):
    source = "def add(a, b):\n    return 0\n" + cheat + "\n"
    res = judge(CodeRequest(PYTHON, source, assert_tests=(HUMANEVAL_STYLE_TEST,), entry_point="add"), sandbox)
    assert res.verdict is not Verdict.CORRECT and res.reward == 0.0


def test_main_guard_demos_do_not_run_in_function_call_tests(sandbox):
    source = "def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    print(add(int(input()), 1))"
    res = judge(CodeRequest(PYTHON, source, assert_tests=(HUMANEVAL_STYLE_TEST,), entry_point="add"), sandbox)
    assert res.verdict is Verdict.CORRECT
    io = judge(CodeRequest(PYTHON, source, io_tests=(IOTest("4\n", "5\n"),)), sandbox)  # runs as __main__
    assert io.verdict is Verdict.CORRECT


def test_empty_answer_is_no_answer(sandbox):
    response = "I cannot solve this.\n```text\nno\n```"
    res = judge_response(response, CodeRequest(PYTHON, "", io_tests=ADD), sandbox)
    assert (res.verdict, res.reward, res.tests_total) == (Verdict.NO_ANSWER, 0.0, 3)


def test_judge_response_extracts_and_reports_the_program(sandbox):
    response = "<think>try ```python\nprint(0)\n```</think>\nFinal:\n```python\n" + PY_ADD + "```\n"
    res = judge_response(response, CodeRequest(PYTHON, "", io_tests=ADD), sandbox)
    assert res.verdict is Verdict.CORRECT and res.extracted == PY_ADD


# --- C++ ---------------------------------------------------------------------------------------------------


def test_cpp_correct_wrong_compile_error_runtime_error(sandbox):
    ok = judge(CodeRequest(CPP, CPP_ADD, io_tests=ADD), sandbox)
    assert (ok.verdict, ok.tests_passed) == (Verdict.CORRECT, 3)
    wrong = judge(CodeRequest(CPP, CPP_ADD.replace("a + b", "a - b"), io_tests=ADD), sandbox)
    assert (wrong.verdict, wrong.tests_passed) == (Verdict.WRONG, 1)
    no_semicolon = CPP_ADD.replace("std::cin >> a >> b;", "std::cin >> a >> b")
    broken = judge(CodeRequest(CPP, no_semicolon, io_tests=ADD), sandbox)
    assert broken.verdict is Verdict.COMPILE_ERROR and "error" in broken.detail and broken.tests_passed == 0
    crash = "#include <vector>\nint main() { std::vector<int> v; return v.at(3); }\n"
    res = judge(CodeRequest(CPP, crash, io_tests=ADD), sandbox)
    assert res.verdict is Verdict.RUNTIME_ERROR and "SIGABRT" in res.detail


# --- CodeContests problems, with solutions written for these tests ---------------------------------------

SQUARES_AND_CUBES_CPP = r"""
#include <bits/stdc++.h>
using namespace std;
int main() {
    int t; cin >> t;
    while (t--) {
        long long n; cin >> n;
        set<long long> liked;
        for (long long i = 1; i * i <= n; i++) liked.insert(i * i);
        for (long long i = 1; i * i * i <= n; i++) liked.insert(i * i * i);
        cout << liked.size() << "\n";
    }
}
"""

COMPARE_PADDED_PY = """
import sys
def main():
    data = sys.stdin.read().split()
    out = []
    for i in range(int(data[0])):
        x1, p1, x2, p2 = data[1 + 4 * i : 5 + 4 * i]
        a, b = len(x1) + int(p1), len(x2) + int(p2)
        if a != b:
            out.append("<" if a < b else ">")
            continue
        n = max(len(x1), len(x2))
        s1, s2 = x1.ljust(n, "0"), x2.ljust(n, "0")
        out.append("<" if s1 < s2 else ">" if s1 > s2 else "=")
    print("\\n".join(out))
main()
"""

CONCERTS_PY = """
for _ in range(int(input())):
    a, b, c = map(int, input().split())
    print((a + 2 * b + 3 * c) % 2)
"""


def test_code_contests_squares_and_cubes_in_cpp(sandbox, contests):
    problem = contests[140]
    assert problem["problem"].lstrip().startswith("Polycarp likes squares and cubes")
    tests = io_tests(problem)
    ok = judge(CodeRequest(CPP, SQUARES_AND_CUBES_CPP, io_tests=tests), sandbox)
    assert (ok.verdict, ok.tests_passed, ok.tests_total) == (Verdict.CORRECT, len(tests), len(tests))
    squares_only = SQUARES_AND_CUBES_CPP.replace("liked.insert(i * i * i)", "(void)0").replace(
        "#include <bits/stdc++.h>", "#include <iostream>\n#include <set>")  # a lighter header compiles faster
    wrong = judge(CodeRequest(CPP, squares_only, io_tests=tests, stop_at_first_failure=True), sandbox)
    assert wrong.verdict is Verdict.WRONG and wrong.detail.startswith(f"test 1/{len(tests)}")


def test_code_contests_number_comparison_in_python(sandbox, contests):
    problem = contests[113]
    assert problem["problem"].lstrip().startswith("Monocarp wrote down two numbers")
    tests = io_tests(problem)
    assert judge(CodeRequest(PYTHON, COMPARE_PADDED_PY, io_tests=tests), sandbox).verdict is Verdict.CORRECT
    no_padding = COMPARE_PADDED_PY.replace('x1.ljust(n, "0"), x2.ljust(n, "0")', "x1, x2")
    wrong = judge(CodeRequest(PYTHON, no_padding, io_tests=tests), sandbox)
    assert wrong.verdict is Verdict.WRONG and 0 < wrong.tests_passed < len(tests)
    naive = "input()\nwhile True:\n    pass\n"
    fast = Limits(cpu_s=1, wall_s=3)
    slow = judge(CodeRequest(PYTHON, naive, io_tests=tests, limits=fast, stop_at_first_failure=True), sandbox)
    assert (slow.verdict, slow.tests_passed) == (Verdict.TIMEOUT, 0)


def test_code_contests_concerts_from_a_model_response(sandbox, contests):
    problem = contests[28]
    assert problem["problem"].lstrip().startswith("Luntik has decided to try singing")
    response = f"<think>The parity of the total decides it.</think>\n```python\n{CONCERTS_PY}```"
    req = CodeRequest(PYTHON, "", io_tests=io_tests(problem))
    assert judge_response(response, req, sandbox).verdict is Verdict.CORRECT
    off_by_one = response.replace("% 2)", "% 2 + 1)")
    assert judge_response(off_by_one, req, sandbox).verdict is Verdict.WRONG
