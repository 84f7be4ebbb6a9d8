"""The code reward: a program judged by running it against its tests in the sandbox.

This is DeepSeek-R1's rule-based accuracy reward for code ("compiled and run against tests"; no neural judge).

Languages: Python 3 (the host's /usr/bin/python3, run inside the sandbox) and C++17 (``g++ -std=c++17 -O2``,
compiled once per request inside the sandbox under its own, larger limits; a failed compile is
COMPILE_ERROR and no test runs).

Test styles, each test one sandboxed run under `CodeRequest.limits`:
- ``io_tests``: stdin in, stdout compared with the expected output token by token (whitespace-insensitive);
  with ``abs_tol``/``rel_tol`` > 0 two numeric tokens also match when |got - expected| <= max(abs_tol,
  rel_tol * |expected|).
- ``assert_tests`` (Python only): the program, then one test block (HumanEval/MBPP ``def check(candidate)``
  or plain asserts), then ``check(<entry_point>)`` when ``entry_point`` is set.

Python runs go through a small harness written next to the program. It compiles the program before any
model code runs (a SyntaxError is COMPILE_ERROR). For assert tests it reads a random nonce from stdin (a
pipe, empty once read) before running model code and prints it after the last test: a pass needs exit code
0 *and* the nonce, so ``sys.exit(0)`` or ``os._exit(0)`` before the tests cannot pass. Model code shares the
interpreter with the tests, so deliberate introspection (reading the harness's frame, objects whose
``__eq__`` is always true) can still defeat function-call tests; stdin/stdout tests do not have that
weakness. As in HumanEval's own harness, assert-test programs run as module ``solution``, not ``__main__``
(``if __name__ == "__main__":`` demos do not run); stdin/stdout programs run as ``__main__``.

Verdicts per test: CORRECT, WRONG (wrong output, failed assertion), RUNTIME_ERROR, TIMEOUT, MEMORY_LIMIT,
OUTPUT_LIMIT (INTERNAL if the sandbox itself failed). Per request: CORRECT when every test passes, else the
verdict of the first failing test, with ``detail`` naming that test and why (expected vs got, truncated).
Reward: fraction of tests passed, or 0/1 with ``score_mode="all_or_nothing"``; ``stop_at_first_failure``
skips the remaining tests (they count as not passed). An empty program is NO_ANSWER; a malformed request
raises InvalidArgument naming the field.

`extract_code` takes the text after the last ``</think>``, then its last fenced block tagged with the
language (```python, ```cpp, ...), else its last untagged fenced block, else the whole text if it has no
fence at all.

Tests of one request run one after another; callers judge requests in parallel from several threads (one
`Sandbox` serves them all). Not done: special checkers for problems with several valid outputs, interactive
problems, and other languages. A request may have a deadline for all of it (`judge(..., deadline=)`): each
run's wall clock is cut to what is left, so a request costs at most its deadline, not tests x wall_s.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import time
from dataclasses import dataclass, field, replace

from r1.errors import InvalidArgument
from r1.rewards.sandbox import Limits, RunResult, RunStatus, Sandbox, Workspace
from r1.rewards.verdict import RewardResult, Verdict

PYTHON = "python"
CPP = "cpp"
LANGUAGES = (PYTHON, CPP)
FRACTION = "fraction"
ALL_OR_NOTHING = "all_or_nothing"
SCORE_MODES = (FRACTION, ALL_OR_NOTHING)

_FENCE_TAGS = {PYTHON: ("python", "py", "python3"), CPP: ("cpp", "c++", "cc", "cxx")}
_FENCE = re.compile(r"^[ \t]*```[ \t]*([^\s`]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)
_CLIP = 80
_HARNESS_COMPILE_ERROR = 3  # exit code: the program does not compile (decided before it runs)
_HARNESS_ASSERTION = 2  # exit code: a test block raised AssertionError
_HARNESS_COMPILE_MARK = b"r1-harness: the program does not compile"

_HARNESS = r'''"""r1 code-judge harness: compile the program, run it (and test blocks), print the nonce."""
import os, sys, traceback, types

def _load(path, name):
    with open(path, "rb") as f:
        return compile(f.read(), name, "exec")

def _main(argv):
    mode, program, test_paths = argv[1], argv[2], argv[3:]
    nonce = sys.stdin.readline().strip() if mode == "assert" else ""
    write = os.write
    try:
        code = _load(program, "solution.py")
    except Exception:
        sys.stderr.write("r1-harness: the program does not compile\n")
        traceback.print_exc(limit=0)
        sys.stderr.flush()
        os._exit(3)
    tests = [_load(p, p) for p in test_paths]
    module = types.ModuleType("__main__" if mode == "io" else "solution")
    module.__file__ = "solution.py"
    sys.modules[module.__name__] = module
    sys.argv = ["solution.py"]
    exec(code, module.__dict__)
    if mode == "io":
        return
    try:
        for test in tests:
            exec(test, module.__dict__)
    except AssertionError:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
    sys.stdout.flush()
    write(1, ("\n" + nonce + "\n").encode())

_main(sys.argv)
'''


@dataclass(frozen=True)
class IOTest:
    """One stdin/stdout test: the program reads `stdin` and must print `expected` (token-wise)."""

    stdin: str
    expected: str


@dataclass(frozen=True)
class CodeRequest:
    """One program to judge.

    language: "python" or "cpp".
    source: the program (see `extract_code` for pulling it out of a model response).
    io_tests, assert_tests: the tests, see the module docstring; at least one in all.
    entry_point: the expression passed to `check(...)` after each assert block; "" for plain asserts.
    limits: the limits of each test run (default: `request_limits()`).
    abs_tol, rel_tol: numeric tolerance of io tests; 0 and 0 compare tokens exactly.
    score_mode: "fraction" (passed / total) or "all_or_nothing".
    stop_at_first_failure: skip the tests after the first failure.
    """

    language: str
    source: str
    io_tests: tuple[IOTest, ...] = ()
    assert_tests: tuple[str, ...] = ()
    entry_point: str = ""
    limits: Limits = field(default_factory=lambda: request_limits())
    abs_tol: float = 0.0
    rel_tol: float = 0.0
    score_mode: str = FRACTION
    stop_at_first_failure: bool = False


@dataclass(frozen=True)
class Toolchain:
    """Interpreter and compiler, as paths inside the sandbox, and the limits of a compile."""

    python: tuple[str, ...] = ("/usr/bin/python3", "-I")
    cxx: tuple[str, ...] = ("/usr/bin/g++", "-std=c++17", "-O2", "-pipe")
    compile_limits: Limits = field(
        default_factory=lambda: Limits(
            cpu_s=30, wall_s=60, memory_mb=2048, processes=32, file_size_mb=256, open_files=256, tmpfs_mb=256
        )
    )

    def languages(self) -> tuple[str, ...]:
        """The languages whose interpreter or compiler exists on this host (the sandbox binds /usr)."""
        tools = {PYTHON: self.python[0], CPP: self.cxx[0]}
        return tuple(language for language, tool in tools.items() if os.access(tool, os.X_OK))


@dataclass(frozen=True)
class _Program:
    """How to run the prepared program: for io tests, and (Python) for one assert block (append its path)."""

    io_argv: list[str]
    assert_argv: list[str]


@dataclass(frozen=True)
class _Outcome:
    verdict: Verdict
    detail: str = ""


def request_limits(time_limit_seconds: float = 5.0, memory_limit_mb: int = 512,
                   output_limit_bytes: int = 1 << 20, max_processes: int = 1) -> Limits:
    """Per-test limits in the four terms requests state them (the wire's `CodeLimits`, the "limits" of an
    `r1 verify` line), defaults included. The time limit bounds CPU and wall clock alike; `max_processes`
    counts the program's own processes and threads, the sandbox's init process comes on top. Everything
    else keeps the sandbox's defaults. InvalidArgument names the first limit that is not a positive number
    (or, for max_processes, a positive integer)."""
    stated = dict(time_limit_seconds=time_limit_seconds, memory_limit_mb=memory_limit_mb,
                  output_limit_bytes=output_limit_bytes, max_processes=max_processes)
    for name, value in stated.items():
        whole = name != "time_limit_seconds"
        if (isinstance(value, bool) or not isinstance(value, int if whole else (int, float))
                or not 0 < value < math.inf):
            kind = "a positive integer" if whole else "a positive number of seconds"
            raise InvalidArgument(f"limits.{name}", f"must be {kind}, got {value!r}")
    return Limits(cpu_s=time_limit_seconds, wall_s=time_limit_seconds, memory_mb=memory_limit_mb,
                  output_bytes=output_limit_bytes, processes=max_processes + 1)


def stated_limits(limits: Limits) -> dict[str, float]:
    """The inverse of `request_limits`; InvalidArgument if `limits` sets something those four terms cannot say
    (a CPU limit apart from the wall clock, a file-size limit, ...)."""
    stated = dict(time_limit_seconds=limits.wall_s, memory_limit_mb=limits.memory_mb,
                  output_limit_bytes=limits.output_bytes, max_processes=limits.processes - 1)
    if request_limits(**stated) != limits:
        raise InvalidArgument("limits", f"{limits} cannot be stated as a time, memory, output and process "
                                        "limit; build it with request_limits()")
    return stated


def infer_language(response: str) -> str:
    """The language of the program a response gives: C++ when its last fenced block after </think> is tagged
    cpp/c++/cc/cxx, otherwise Python."""
    blocks = _FENCE.findall(response.rsplit("</think>", 1)[-1])
    return CPP if blocks and blocks[-1][0].lower() in _FENCE_TAGS[CPP] else PYTHON


def extract_code(response: str, language: str) -> str:
    """The program in a model response (see the module docstring); "" if it has fences but none usable."""
    if language not in _FENCE_TAGS:
        raise InvalidArgument("language", f"unknown language {language!r}; valid: {list(LANGUAGES)}")
    text = response.rsplit("</think>", 1)[-1]
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(text)]
    tagged = [body for tag, body in blocks if tag in _FENCE_TAGS[language]]
    untagged = [body for tag, body in blocks if not tag]
    if tagged:
        return tagged[-1]
    if untagged:
        return untagged[-1]
    return "" if "```" in text else text.strip()


def judge_response(response: str, request: CodeRequest, sandbox: Sandbox,
                   deadline: float | None = None) -> RewardResult:
    """Extracts the program from a model response, then `judge`s it; `extracted` holds the program."""
    source = extract_code(response, request.language)
    return replace(judge(replace(request, source=source), sandbox, deadline=deadline), extracted=source)


def judge(request: CodeRequest, sandbox: Sandbox, toolchain: Toolchain | None = None,
          deadline: float | None = None) -> RewardResult:
    """Runs `request.source` against its tests in `sandbox`; never raises on bad programs. `deadline`: seconds
    for the whole request, compile included; every run's wall clock is cut to what is left of it, and the
    tests it leaves no time for are TIMEOUT."""
    validate_request(request)
    toolchain = toolchain or Toolchain()
    if request.language not in toolchain.languages():
        raise InvalidArgument("language", f"{request.language!r} is not available on this server "
                                          "(its compiler or interpreter is not installed)")
    budget = _Budget(None if deadline is None else time.monotonic() + deadline)
    total = len(request.io_tests) + len(request.assert_tests)
    if not request.source.strip():
        return RewardResult(0.0, Verdict.NO_ANSWER, "no code to run", tests_total=total)
    with sandbox.workspace() as ws:
        program = _prepare(request, sandbox, ws, toolchain, budget)
        if isinstance(program, _Outcome):
            return RewardResult(0.0, program.verdict, program.detail, tests_total=total)
        outcomes = _run_tests(request, sandbox, ws, program, budget)
    return _score(request, outcomes, total)


def validate_request(request: CodeRequest) -> None:
    """Raises InvalidArgument naming the first bad field."""
    _check_choice("language", request.language, LANGUAGES)
    if not isinstance(request.source, str):
        raise InvalidArgument("source", "must be a string")
    if not request.io_tests and not request.assert_tests:
        raise InvalidArgument("io_tests", "no tests: give io_tests or assert_tests")
    for i, test in enumerate(request.io_tests):
        if not (isinstance(test, IOTest) and isinstance(test.stdin, str) and isinstance(test.expected, str)):
            raise InvalidArgument(f"io_tests[{i}]", "must be an IOTest of two strings")
    if request.assert_tests and request.language != PYTHON:
        raise InvalidArgument("assert_tests", f"assert tests need language {PYTHON!r}")
    for i, block in enumerate(request.assert_tests):
        _check_python(block, f"assert_tests[{i}]", "exec")
    if request.entry_point:
        _check_python(request.entry_point, "entry_point", "eval")
    request.limits.validate("limits")
    for name in ("abs_tol", "rel_tol"):
        value = getattr(request, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise InvalidArgument(name, f"must be a finite number >= 0, got {value!r}")
    _check_choice("score_mode", request.score_mode, SCORE_MODES)


def compare_output(expected: str, got: str, abs_tol: float = 0.0, rel_tol: float = 0.0) -> str:
    """"" when `got` matches `expected` token-wise (within the tolerance), else why not."""
    want, have = expected.split(), got.split()
    for i, (w, h) in enumerate(zip(want, have)):
        if w != h and not _numbers_close(w, h, abs_tol, rel_tol):
            return f"token {i + 1}: expected {_clip(w)!r}, got {_clip(h)!r} (output {_clip(got)!r})"
    if len(want) != len(have):
        return f"{len(have)} tokens instead of {len(want)}: expected {_clip(expected)!r}, got {_clip(got)!r}"
    return ""


@dataclass(frozen=True)
class _Budget:
    """What is left of a request's deadline (a time.monotonic() instant; None: no deadline)."""

    until: float | None

    def limits(self, limits: Limits) -> Limits | None:
        """`limits` with the wall clock cut to the time left; None when none is left."""
        if self.until is None:
            return limits
        left = self.until - time.monotonic()
        return replace(limits, wall_s=min(limits.wall_s, left)) if left > 0 else None


_OUT_OF_TIME = _Outcome(Verdict.TIMEOUT, "the item's deadline passed before this test could run")


def _prepare(
    request: CodeRequest, sandbox: Sandbox, ws: Workspace, toolchain: Toolchain, budget: _Budget
) -> _Program | _Outcome:
    """Writes the program (and compiles it); returns how to run it, or the outcome of a failed compile."""
    source = request.source.encode("utf-8", "replace")
    if request.language == PYTHON:
        program = ws.write("main.py", source)
        harness = ws.write("_harness.py", _HARNESS)
        run = [*toolchain.python, harness]
        return _Program([*run, "io", program], [*run, "assert", program])
    program = ws.write("main.cpp", source)
    binary = program.removesuffix(".cpp")
    compile_argv = [*toolchain.cxx, "-o", binary, program]
    limits = budget.limits(toolchain.compile_limits)
    if limits is None:
        return _OUT_OF_TIME
    res = sandbox.run(compile_argv, limits=limits, workspace=ws, writable=True)
    if res.status is RunStatus.SANDBOX_ERROR:
        return _Outcome(Verdict.INTERNAL, f"compiler did not start: {res.detail}")
    if not res.ok:
        why = _compiler_error(res.stderr)
        return _Outcome(Verdict.COMPILE_ERROR, f"does not compile ({res.detail}): {why}")
    return _Program([binary], [])


def _run_tests(request: CodeRequest, sandbox: Sandbox, ws: Workspace, program: _Program,
               budget: _Budget) -> list[_Outcome]:
    """One run per test, in order: io tests, then assert blocks. A compile error (Python) ends the list, and
    so does the end of the budget (the tests left are TIMEOUT)."""
    runs = [(test.stdin.encode("utf-8", "replace"), program.io_argv, test) for test in request.io_tests]
    for i, block in enumerate(request.assert_tests):
        check = f"\n\ncheck({request.entry_point})\n" if request.entry_point else "\n"
        nonce = secrets.token_hex(16)
        test_file = ws.write(f"test_{i}.py", block + check)
        runs.append(((nonce + "\n").encode(), [*program.assert_argv, test_file], nonce))
    outcomes: list[_Outcome] = []
    for stdin, argv, test in runs:
        limits = budget.limits(request.limits)
        if limits is None:
            return outcomes + [_OUT_OF_TIME] * (len(runs) - len(outcomes))
        res = sandbox.run(argv, stdin=stdin, limits=limits, workspace=ws)
        io_test = isinstance(test, IOTest)
        outcomes.append(_io_outcome(res, test, request) if io_test else _assert_outcome(res, test))
        if _should_stop(request, outcomes):
            return outcomes
    return outcomes


def _should_stop(request: CodeRequest, outcomes: list[_Outcome]) -> bool:
    last = outcomes[-1].verdict
    return last is Verdict.COMPILE_ERROR or (request.stop_at_first_failure and last is not Verdict.CORRECT)


def _io_outcome(res: RunResult, test: IOTest, request: CodeRequest) -> _Outcome:
    failed = _run_failure(res)
    if failed is not None:
        return failed
    why = compare_output(test.expected, _text(res.stdout), request.abs_tol, request.rel_tol)
    return _Outcome(Verdict.WRONG, f"wrong answer: {why}") if why else _Outcome(Verdict.CORRECT)


def _assert_outcome(res: RunResult, nonce: str) -> _Outcome:
    if res.exit_code == _HARNESS_ASSERTION:
        return _Outcome(Verdict.WRONG, f"assertion failed: {_failed_assertion(res.stderr)}")
    failed = _run_failure(res)
    if failed is not None:
        return failed
    if nonce.encode() not in res.stdout:
        return _Outcome(Verdict.RUNTIME_ERROR, "the program exited before the tests finished")
    return _Outcome(Verdict.CORRECT)


def _run_failure(res: RunResult) -> _Outcome | None:
    """The outcome of a run that did not exit 0, or None if it did."""
    if res.ok:
        return None
    if res.exit_code == _HARNESS_COMPILE_ERROR and _HARNESS_COMPILE_MARK in res.stderr:
        return _Outcome(Verdict.COMPILE_ERROR, f"does not compile: {_last_line(res.stderr)}")
    verdict = {
        RunStatus.TIMEOUT: Verdict.TIMEOUT,
        RunStatus.MEMORY_LIMIT: Verdict.MEMORY_LIMIT,
        RunStatus.OUTPUT_LIMIT: Verdict.OUTPUT_LIMIT,
        RunStatus.SANDBOX_ERROR: Verdict.INTERNAL,
    }.get(res.status, Verdict.RUNTIME_ERROR)
    last = _last_line(res.stderr)
    if last and verdict is Verdict.RUNTIME_ERROR:
        return _Outcome(verdict, f"{res.detail}: {last}")
    return _Outcome(verdict, res.detail)


def _score(request: CodeRequest, outcomes: list[_Outcome], total: int) -> RewardResult:
    passed = sum(o.verdict is Verdict.CORRECT for o in outcomes)
    if passed == total:
        return RewardResult(1.0, Verdict.CORRECT, f"passed {passed}/{total} tests", "", passed, total)
    index, first = next((i, o) for i, o in enumerate(outcomes) if o.verdict is not Verdict.CORRECT)
    reward = passed / total if request.score_mode == FRACTION else 0.0
    detail = f"test {index + 1}/{total}: {first.detail}"
    if first.verdict is Verdict.COMPILE_ERROR:
        detail = first.detail
    return RewardResult(reward, first.verdict, detail, "", passed, total)


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise InvalidArgument(name, f"unknown {name} {value!r}; valid: {list(valid)}")


def _check_python(code: str, where: str, mode: str) -> None:
    """Test code comes with the request, not from the model, so it is compiled (never run) here."""
    if not isinstance(code, str):
        raise InvalidArgument(where, "must be a string")
    try:
        compile(code, where, mode)
    except (SyntaxError, ValueError) as e:
        raise InvalidArgument(where, f"is not valid Python: {e}") from None


def _numbers_close(want: str, have: str, abs_tol: float, rel_tol: float) -> bool:
    if abs_tol == 0 and rel_tol == 0:
        return False
    try:
        w, h = float(want), float(have)
    except ValueError:
        return False
    if not (math.isfinite(w) and math.isfinite(h)):
        return False
    return abs(h - w) <= max(abs_tol, rel_tol * abs(w))


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _compiler_error(stderr: bytes) -> str:
    """The compiler's first error line (or its last line)."""
    for line in _text(stderr).splitlines():
        if "error" in line:
            return _clip(line, 200)
    return _last_line(stderr)


def _failed_assertion(stderr: bytes) -> str:
    """The failing statement and the error, from the traceback's last frame."""
    lines = [ln.strip() for ln in _text(stderr).splitlines() if ln.strip(" ^~")]
    if len(lines) >= 2 and not lines[-2].startswith("File "):
        return _clip(f"{lines[-2]} -> {lines[-1]}", 200)
    return _last_line(stderr)


def _last_line(data: bytes) -> str:
    lines = _text(data).strip().splitlines()
    return _clip(lines[-1], 200) if lines else ""


def _clip(text: str, limit: int = _CLIP) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
