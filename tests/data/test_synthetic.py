"""Synthetic problems: deterministic, correct by independent recomputation, accepted by our math verifier,
with true solution steps; split() keeps held-out prompts out of train; countdown_valid is safe."""

from __future__ import annotations

import ast
import json
import math
import re
from fractions import Fraction

import pytest

from r1.data.synthetic import (
    TASKS,
    Problem,
    as_verify_line,
    countdown_puzzle,
    countdown_valid,
    derived_seed,
    difficulty_range,
    fraction_steps,
    from_jsonl,
    generate,
    linear_steps,
    place_values,
    product_steps,
    r1_completion,
    split,
    sum_steps,
    to_jsonl,
)
from r1.errors import InvalidArgument
from r1.rewards.jsonl import parse_line
from r1.rewards.items import MathCheck
from r1.rewards.math import MathChecker, Profile
from r1.rewards.verdict import Verdict

PER_LEVEL = 40
LEVELS = [(task, level) for task, spec in TASKS.items() for level in spec.difficulties]


@pytest.fixture(scope="module")
def checker():
    with MathChecker(pool_size=1, spare_workers=0) as checker:
        yield checker


@pytest.fixture(scope="module")
def samples() -> dict[tuple[str, int], list[Problem]]:
    return {(task, level): generate(task, PER_LEVEL, seed=11, difficulty=level) for task, level in LEVELS}


# ------------------------------------------------------------------ independent recomputation, per task


def exact(expression: str) -> Fraction:
    """The value of a + - * / expression over integers (unary minus allowed), in Fractions."""
    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp):
            ops = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__"}
            return getattr(value(node.left), ops[type(node.op)])(value(node.right))
        raise ValueError(ast.dump(node))
    return value(ast.parse(expression, mode="eval").body)


def solve_arithmetic(prompt: str) -> str:
    expression = re.fullmatch(r"Compute ([0-9 +*-]+)\.", prompt).group(1)
    return str(eval(expression))  # our own digits-and-operators text: plain Python int arithmetic


def solve_linear(prompt: str) -> str:
    left, right = re.fullmatch(r"Solve for x: (.+) = (.+)\.", prompt).groups()

    def at(side: str, x: int) -> Fraction:
        return exact(re.sub(r"(\d*)x", lambda m: f"{m.group(1) or 1} * ({x})", side))

    f0, f1 = at(left, 0) - at(right, 0), at(left, 1) - at(right, 1)
    root = -f0 / (f1 - f0)
    assert root.denominator == 1
    return str(root.numerator)


def solve_fractions(prompt: str) -> str:
    expression = re.fullmatch(r"Compute (\d+/\d+ [-+*] \d+/\d+)\. Give the answer in lowest terms\.", prompt)
    x, op, y = expression.group(1).split(" ")
    value = {"+": Fraction(x) + Fraction(y), "-": Fraction(x) - Fraction(y), "*": Fraction(x) * Fraction(y)}[op]
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


WORD_PATTERNS = [
    (r"\w+ buys (\d+) \w+ at (\d+) dollars each\. How many dollars", lambda n, p: n * p),
    (r"\w+ buys (\d+) \w+ at (\d+) dollars each and pays with a (\d+)-dollar bill\.", lambda n, p, b: b - n * p),
    (r"\w+ buys (\d+) \w+ at (\d+) dollars each and (\d+) \w+ at (\d+) dollars each\.",
     lambda n, p, m, q: n * p + m * q),
    (r"A \w+ travels at (\d+) km per hour for (\d+) hours\. How many", lambda s, t: s * t),
    (r"A \w+ travels (\d+) km at (\d+) km per hour\.", lambda d, s: d // s if d % s == 0 else None),
    (r"A \w+ travels at (\d+) km per hour for (\d+) hours, then at (\d+) km per hour for (\d+) hours\.",
     lambda s, t, u, v: s * t + u * v),
    (r"\w+ has (\d+) \w+ and shares them equally among (\d+) friends\.",
     lambda a, k: a // k if a % k == 0 else None),
    (r"\w+ has (\d+) \w+ and buys (\d+) more, then shares them equally among (\d+) friends\.",
     lambda a, b, k: (a + b) // k if (a + b) % k == 0 else None),
    (r"\w+ packs (\d+) \w+ into boxes of (\d+)\.", lambda t, s: math.ceil(t / s)),
    (r"\w+ is (\d+) years old and \w+ is (\d+) years older than \w+\. How old is", lambda a, k: a + k),
    (r"\w+ is (\d+) years old and \w+ is (\d+) years younger than \w+\. How old is", lambda a, k: a - k),
    (r"\w+ is (\d+) years old and \w+ is (\d+) years older than \w+\. How old will \w+ be in (\d+) years",
     lambda a, k, y: a + k + y),
    (r"\w+ is (\d+) years old and \w+ is (\d+) years younger than \w+\. How old will \w+ be in (\d+) years",
     lambda a, k, y: a - k + y),
    (r"\w+ is (\d+) times as old as \w+, who is (\d+) years old\. How old was \w+ (\d+) years ago",
     lambda m, b, y: m * b - y),
]


def solve_word(prompt: str) -> str:
    matches = [(p, f) for p, f in WORD_PATTERNS if re.match(p, prompt)]
    assert len(matches) == 1, prompt
    pattern, solve = matches[0]
    return str(solve(*map(int, re.match(pattern, prompt).groups())))


def countdown_prompt(prompt: str) -> tuple[list[int], int]:
    match = re.match(r"Use the numbers (.+), each at most once, .* to make (\d+)\.", prompt)
    return [int(n) for n in re.findall(r"\d+", match.group(1))], int(match.group(2))


SOLVERS = {"arithmetic": solve_arithmetic, "linear": solve_linear, "fractions": solve_fractions,
           "word": solve_word}


@pytest.mark.parametrize("task,level", LEVELS)
def test_answers_are_correct(samples, task, level):
    for problem in samples[task, level]:
        assert (problem.task, problem.difficulty) == (task, level)
        if task == "countdown":
            numbers, target = countdown_prompt(problem.prompt)
            assert len(numbers) == level and numbers == sorted(numbers) and target not in numbers
            assert countdown_valid(problem.answer, numbers, target), problem
            assert countdown_puzzle(problem) == (numbers, target)
        else:
            assert SOLVERS[task](problem.prompt) == problem.answer, problem


def test_arithmetic_difficulty_is_the_number_of_digits(samples):
    for level in TASKS["arithmetic"].difficulties:
        for problem in samples["arithmetic", level]:
            lengths = [len(n) for n in re.findall(r"\d+", problem.prompt)]
            assert max(lengths) == level or level == 1, problem.prompt
            assert max(lengths) <= level
    mixed = [p for level in (3, 4, 5, 6) for p in samples["arithmetic", level]
             if len(re.findall(r"[-+*]", p.prompt)) == 2]
    assert mixed, "higher difficulties mix operations"


# --------------------------------------------------------------------------- solutions, prompts, format


def equation_parts(line: str) -> list[list[str]]:
    """The pure-arithmetic sides of each clause of a solution line ("lcm(4, 6) = 12" has none)."""
    clauses = re.split(r",\s*(?:so\s+)?", line)
    return [[part for part in clause.split(" = ") if re.fullmatch(r"[0-9 ()+*/-]+", part)] for clause in clauses]


@pytest.mark.parametrize("task,level", LEVELS)
def test_every_solution_step_is_true_and_ends_in_the_answer(samples, task, level):
    for problem in samples[task, level]:
        lines = problem.solution.split("\n")
        assert 1 <= len(lines) <= 12 and all(line.strip() == line and line for line in lines), problem
        for line in lines:
            for parts in equation_parts(line):
                values = set()
                for part in parts:
                    try:
                        values.add(exact(part))
                    except (SyntaxError, ValueError):  # half of "lcm(4, 6)" split at its comma
                        pass
                assert len(values) <= 1, (line, problem)
        if task == "countdown":
            assert lines[-1] == f"{problem.answer} = {countdown_prompt(problem.prompt)[1]}"
        else:
            assert lines[-1].endswith(f"= {problem.answer}"), problem


@pytest.mark.parametrize("task", sorted(TASKS))
def test_prompts_are_one_or_two_sentences(samples, task):
    for level in TASKS[task].difficulties:
        for problem in samples[task, level]:
            assert 1 <= len(re.findall(r"[.?](?:\s|$)", problem.prompt)) <= 2, problem.prompt
            assert "\n" not in problem.prompt


def test_every_gold_answer_is_accepted_by_the_math_verifier(samples, checker):
    for problems in samples.values():
        for problem in problems:
            result = checker.check(f"\\boxed{{{problem.answer}}}", problem.answer)
            assert result.verdict is Verdict.CORRECT, (problem, result)
            line = as_verify_line(problem, r1_completion(problem))
            result = checker.check(line["response"], line["reference"], Profile.STRICT)
            assert result.verdict is Verdict.CORRECT, (problem, result)


def test_a_wrong_answer_is_wrong(checker):
    problem = generate("fractions", 1, seed=3, difficulty=2)[0]
    wrong = Fraction(problem.answer) + 1
    assert checker.check(f"<answer>{wrong}</answer>", problem.answer).verdict is Verdict.WRONG


def test_r1_completion_format():
    problem = Problem("t-0-0", "arithmetic", "Compute 47 * 23.", "1081", "47 * 20 = 940\n47 * 3 = 141", 2)
    assert r1_completion(problem) == "<think>\n47 * 20 = 940\n47 * 3 = 141\n</think>\n<answer>1081</answer>"


# ---------------------------------------------------------------------------------- worked by hand


def test_place_value_steps_by_hand():
    assert place_values(2591) == [2000, 500, 90, 1] and place_values(0) == [] and place_values(-305) == [300, 5]
    assert product_steps(47, 23) == (["47 * 20 = 940", "47 * 3 = 141", "940 + 141 = 1081"], 1081)
    assert product_steps(3, 47) == (["47 * 3 = 141"], 141)
    assert sum_steps(4738, "+", 2591) == (
        ["4738 + 2000 = 6738", "6738 + 500 = 7238", "7238 + 90 = 7328", "7328 + 1 = 7329"], 7329)
    assert sum_steps(20, "+", 4738) == (["4738 + 20 = 4758"], 4758)
    assert sum_steps(1000, "-", 2500) == (["1000 - 2000 = -1000", "-1000 - 500 = -1500"], -1500)


def test_linear_and_fraction_steps_by_hand():
    assert linear_steps(3, 5, 0, 20) == ["3x = 20 - 5 = 15", "x = 15 / 3 = 5"]
    assert linear_steps(-3, -4, 0, 11) == ["-3x = 11 + 4 = 15", "x = 15 / (-3) = -5"]
    assert linear_steps(3, -4, 1, 10) == ["3x - x = 10 + 4", "2x = 14", "x = 14 / 2 = 7"]
    assert linear_steps(4, 0, 3, -2) == ["4x - 3x = -2", "x = -2"]
    assert fraction_steps(Fraction(1, 4), "-", Fraction(2, 3)) == [
        "lcm(4, 3) = 12", "1/4 = 3/12, 2/3 = 8/12", "3/12 - 8/12 = -5/12"]
    assert fraction_steps(Fraction(2, 3), "*", Fraction(9, 4)) == [
        "2/3 * 9/4 = (2 * 9)/(3 * 4) = 18/12", "gcd(18, 12) = 6, so 18/12 = 3/2"]
    assert fraction_steps(Fraction(1, 4), "+", Fraction(3, 4)) == ["1/4 + 3/4 = 4/4", "gcd(4, 4) = 4, so 4/4 = 1"]


# --------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("task", sorted(TASKS))
def test_same_seed_same_problems_different_seed_different(task):
    first = generate(task, 20, seed=5)
    assert first == generate(task, 20, seed=5)
    assert first[:7] == generate(task, 7, seed=5)  # problem i does not depend on n
    other = generate(task, 20, seed=6)
    assert [p.prompt for p in first] != [p.prompt for p in other]
    assert [p.id for p in first] == [f"{task}-5-{i}" for i in range(20)]


def test_a_difficulty_range_mixes_levels_and_none_is_the_whole_range():
    levels = {p.difficulty for p in generate("arithmetic", 60, seed=1, difficulty=(2, 4))}
    assert levels == {2, 3, 4}
    assert {p.difficulty for p in generate("countdown", 30, seed=1)} == {3, 4, 5}
    assert difficulty_range("word", None) == (1, 3) and difficulty_range("word", [2, 3]) == (2, 3)


# ----------------------------------------------------------------------------------------------- split


def test_split_is_disjoint_round_robin_and_sized():
    tasks = ["arithmetic", "linear", "fractions", "word", "countdown"]
    train, heldout = split(tasks, 203, 57, seed=9)
    assert (len(train), len(heldout)) == (203, 57)
    assert [p.task for p in train] == [tasks[i % 5] for i in range(203)]
    assert [p.task for p in heldout] == [tasks[i % 5] for i in range(57)]
    assert not {p.prompt for p in train} & {p.prompt for p in heldout}
    assert len({p.prompt for p in heldout}) == len(heldout)
    assert len({p.id for p in train + heldout}) == len(train) + len(heldout)
    assert train[:5] == [generate(t, 1, seed=9)[0] for t in tasks]  # train is the seed's own stream
    assert (train, heldout) == split(tasks, 203, 57, seed=9)


def test_split_drops_collisions_in_a_small_space():
    # 1-digit arithmetic has 300 prompts: 400 training draws cover most of them
    train, heldout = split(["arithmetic"], 400, 30, seed=2, difficulty=1)
    assert len(heldout) == 30 and not {p.prompt for p in train} & {p.prompt for p in heldout}
    heldout_seed = derived_seed(2, "heldout")
    assert any(p.id != f"arithmetic-{heldout_seed}-{i}" for i, p in enumerate(heldout))  # some were skipped


def test_split_raises_when_the_held_out_set_cannot_be_filled():
    with pytest.raises(InvalidArgument) as error:
        split(["arithmetic"], 2000, 200, seed=2, difficulty=1)
    assert error.value.field == "n_heldout"


# ------------------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("call,field,says", [
    (lambda: generate("algebra", 3, 0), "task", "arithmetic"),
    (lambda: generate("linear", -1, 0), "n", "integer >= 0"),
    (lambda: generate("linear", True, 0), "n", "integer >= 0"),
    (lambda: generate("linear", 2.0, 0), "n", "integer >= 0"),
    (lambda: generate("linear", 3, "0"), "seed", "integer"),
    (lambda: generate("arithmetic", 3, 0, difficulty=7), "difficulty", "[1, 2, 3, 4, 5, 6]"),
    (lambda: generate("countdown", 3, 0, difficulty=2), "difficulty", "[3, 4, 5]"),
    (lambda: generate("word", 3, 0, difficulty=(3, 1)), "difficulty", "low <= high"),
    (lambda: generate("word", 3, 0, difficulty="easy"), "difficulty", "[1, 2, 3]"),
    (lambda: split("arithmetic", 3, 3, 0), "tasks", "list of task names"),
    (lambda: split([], 3, 3, 0), "tasks", "countdown"),
    (lambda: split(["linear", "lineer"], 3, 3, 0), "tasks[1]", "valid tasks"),
    (lambda: split(["linear", "linear"], 3, 3, 0), "tasks", "more than once"),
    (lambda: split(["linear", "countdown"], 3, 3, 0, difficulty=1), "difficulty", "[3, 4, 5]"),
    (lambda: split(["linear"], 3, -3, 0), "n_heldout", "integer >= 0"),
    (lambda: countdown_puzzle(generate("linear", 1, 0)[0]), "problem", "not a countdown problem"),
])
def test_bad_arguments_name_the_field_and_the_valid_values(call, field, says):
    with pytest.raises(InvalidArgument) as error:
        call()
    assert error.value.field == field and says in error.value.message


# ----------------------------------------------------------------------------------------- countdown


def test_countdown_valid_accepts_any_exact_expression_over_the_numbers():
    assert countdown_valid("(25 - 5) * 4", [4, 5, 25], 80)
    assert countdown_valid("4 * (25 - 5)", [25, 4, 5, 7], 80)  # not every number need be used
    assert countdown_valid(" 3 * 3 ", [3, 3], 9)  # a number given twice may be used twice
    assert countdown_valid("8 / (3 - 8 / 3)", [3, 3, 8, 8], 24)  # fractions on the way are exact
    assert not countdown_valid("(25 - 5) * 4", [4, 5, 25], 81)  # wrong value
    assert not countdown_valid("3 * 3", [3], 9)  # used twice, given once
    assert not countdown_valid("20 * 4", [4, 5, 25], 80)  # 20 is not given
    assert not countdown_valid("7 / 2", [7, 2], 3)  # 3.5 is not 3
    assert not countdown_valid("-5 + 85", [5, 85], 80)  # no unary minus
    assert not countdown_valid("(25 - 5) * 4 = 80", [4, 5, 25], 80)
    assert not countdown_valid("5 / (4 - 4)", [4, 4, 5], 0)


@pytest.mark.parametrize("expression", [
    "2 ** 99999999999", "9**9**9**9", "25 // 5", "25 % 5", "__import__('os').system('true')", "x",
    "(25).__class__", "abs(25)", "[25]", "lambda: 25", "25 if 1 else 5", "25 5", "25.0", "1e5", "0x19",
    "2_5", "True", "", "   ", "\x00", "(" * 10_000 + "25" + ")" * 10_000, "1" * 100_000, "+".join(["25"] * 5000),
    "(" * 99 + "25" + ")" * 99, "25 +", "((25)", "25\n+ 5",
])
def test_countdown_valid_rejects_hostile_expressions(expression):
    assert countdown_valid(expression, [25, 5, 4], 30) is False


def test_countdown_valid_rejects_non_strings():
    assert countdown_valid(None, [25, 5], 30) is False
    assert countdown_valid(b"25 + 5", [25, 5], 30) is False


# --------------------------------------------------------------------------------------------- files


def test_jsonl_round_trip(tmp_path):
    problems = [p for task in sorted(TASKS) for p in generate(task, 3, seed=4)]
    path = tmp_path / "problems.jsonl"
    to_jsonl(problems, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(problems) and set(json.loads(lines[0])) == {
        "id", "task", "prompt", "answer", "solution", "difficulty"}
    assert from_jsonl(path) == problems


@pytest.mark.parametrize("text,says", [
    ("not json\n", "line 1: not valid JSON"),
    ('{"id": "a"}\n', "line 1: expected an object with exactly the fields"),
    ("\n[1, 2]\n", "line 2: expected an object"),
    ('{"id": "a", "task": "t", "prompt": "p", "answer": "1", "solution": "s", "difficulty": "2"}', "'difficulty'"),
])
def test_from_jsonl_names_the_bad_line(tmp_path, text, says):
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidArgument) as error:
        from_jsonl(path)
    assert error.value.field == "path" and says in error.value.message


def test_verify_lines_read_as_math_checks():
    linear = generate("linear", 1, seed=0)[0]
    countdown = generate("countdown", 1, seed=0)[0]
    line = as_verify_line(linear, "<answer>7</answer>")
    assert line == {"id": linear.id, "kind": "math", "response": "<answer>7</answer>", "reference": linear.answer}
    assert parse_line(json.dumps(line), 1)[1].check == MathCheck(linear.answer, Profile.STRICT)
    target = countdown_puzzle(countdown)[1]
    assert as_verify_line(countdown, "r")["reference"] == str(target)
