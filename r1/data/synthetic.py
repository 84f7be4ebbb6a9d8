"""Synthetic verifiable problems for a tiny R1-style teacher: pretrain on worked solutions, then RL.

Each `Problem` has a one- or two-sentence prompt, a gold answer that the math reward (`r1.rewards.math`)
accepts (an integer "-42", a reduced fraction "3/4", or for countdown an expression), and a short worked
solution whose last line ends in the result. A tiny model is first trained on `r1_completion(problem)`
(DeepSeek-R1's "<think>...</think><answer>...</answer>" target), then improved with GRPO against the
rule-based math reward, as in DeepSeek-R1 (2025); countdown is TinyZero's R1-Zero task.

Tasks (`TASKS`; each generator is a pure function of (rng, difficulty)):
- arithmetic: +, -, * on `difficulty`-digit integers (1..6); from 3 digits on, half are mixed with
  precedence ("a + b * c"), the multiplier then having half the digits.
- linear: a*x + b = c (difficulty 1-2), a*x + b = d*x + e (3-4); the integer solution is drawn first.
- fractions: two fractions added, subtracted or multiplied (difficulty 1..4 widens the denominators and
  allows improper fractions); the answer is reduced, "n/1" written "n".
- word: buying, travel, sharing and ages templates; difficulty 1..3 is roughly the number of steps.
- countdown: `difficulty` numbers (3..5) and a target built from all of them with integer steps.

Choices:
- Problem i of (task, seed) draws from its own `random.Random(f"{task}-{seed}-{i}")`, its id (string
  seeds are hashed with SHA-512: stable across processes and hash seeds). So an id names its problem, and
  `generate(..., n=10)` is a prefix of `generate(..., n=100)`. The global `random` is never touched.
- Solutions are for a model of a few million parameters: one operation per line, place-value splits
  instead of column algorithms ("47 * 20 = 940", "47 * 3 = 141", "940 + 141 = 1081"), at most about a
  dozen lines. Every line that is an equation is true (the tests check each one).
- One phrasing per task (word problems aside) and countdown numbers listed sorted, so that "disjoint by
  prompt text" in `split` means disjoint by problem.
- `countdown_valid` accepts any expression over the given numbers with the exact target value, fractions
  on the way included (as the value-based math reward does); the generator only builds integer steps.

Not done: decimals, negative operands in prompts, units, multiple phrasings of one problem, duplicate
removal inside a training set (only the held-out set is deduplicated).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from r1.data.countdown import countdown_valid
from r1.errors import InvalidArgument

__all__ = [
    "Problem", "Draft", "Task", "TASKS", "r1_completion", "generate", "split", "difficulty_range", "problem_at",
    "derived_seed", "unseen", "countdown_valid", "countdown_puzzle", "to_jsonl", "from_jsonl", "as_verify_line",
    "arithmetic_problem", "linear_problem", "fraction_problem", "word_problem", "countdown_problem",
    "place_values", "sum_steps", "product_steps", "linear_steps", "fraction_steps", "format_fraction",
]

Difficulty = int | tuple[int, int] | None


@dataclass(frozen=True)
class Problem:
    """One synthetic problem.

    id: f"{task}-{seed}-{index}", which also seeds its draw (see the module docstring).
    prompt: the question, plain text; the chat template wraps it.
    answer: the gold answer: an integer, a reduced fraction "n/d", or (countdown) an expression.
    solution: worked steps, one per line, the last ending in the result.
    difficulty: the task's own scale (see `TASKS`).
    """

    id: str
    task: str
    prompt: str
    answer: str
    solution: str
    difficulty: int


@dataclass(frozen=True)
class Draft:
    """What a task generator returns: the fields of a `Problem` that come from the draw."""

    prompt: str
    answer: str
    solution: str


def r1_completion(problem: Problem) -> str:
    """The SFT target in DeepSeek-R1's format. Only the assistant's side: the prompt side (system prompt,
    user turn, the opening of the assistant turn) comes from the tokenizer's chat template."""
    return f"<think>\n{problem.solution}\n</think>\n<answer>{problem.answer}</answer>"


# ------------------------------------------------------------------------------------------ arithmetic


def place_values(n: int) -> list[int]:
    """The non-zero place-value parts of |n|, largest first: 2591 -> [2000, 500, 90, 1]; 0 -> []."""
    digits = str(abs(n))
    return [int(d) * 10 ** (len(digits) - 1 - i) for i, d in enumerate(digits) if d != "0"]


def sum_steps(a: int, op: str, b: int) -> tuple[list[str], int]:
    """`a + b` or `a - b`, one place value of b at a time: 4738 - 2591 -> "4738 - 2000 = 2738",
    "2738 - 500 = 2238", ... An addition splits whichever operand has fewer parts (it commutes)."""
    if op == "+" and len(place_values(a)) < len(place_values(b)):
        a, b = b, a
    sign = 1 if op == "+" else -1
    parts = place_values(b)
    if len(parts) <= 1:
        return [f"{a} {op} {b} = {a + sign * b}"], a + sign * b
    lines, value = [], a
    for part in parts:
        lines.append(f"{value} {op} {part} = {value + sign * part}")
        value += sign * part
    return lines, value


def product_steps(a: int, b: int) -> tuple[list[str], int]:
    """`a * b` as partial products over the place values of the factor with fewer of them, then a running
    sum: 47 * 23 -> "47 * 20 = 940", "47 * 3 = 141", "940 + 141 = 1081"."""
    if len(place_values(b)) > len(place_values(a)):
        a, b = b, a
    parts = place_values(b)
    if len(parts) <= 1:
        return [f"{a} * {b} = {a * b}"], a * b
    lines = [f"{a} * {part} = {a * part}" for part in parts]
    total = a * parts[0]
    for part in parts[1:]:
        lines.append(f"{total} + {a * part} = {total + a * part}")
        total += a * part
    return lines, total


def _operand(rng: random.Random, digits: int) -> int:
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def arithmetic_problem(rng: random.Random, difficulty: int) -> Draft:
    """`a op b` on `difficulty`-digit operands; from 3 digits on, half the problems are mixed."""
    if difficulty >= 3 and rng.random() < 0.5:
        return _mixed_arithmetic(rng, difficulty)
    a, op, b = _operand(rng, difficulty), rng.choice("+-*"), _operand(rng, difficulty)
    lines, result = product_steps(a, b) if op == "*" else sum_steps(a, op, b)
    return Draft(f"Compute {a} {op} {b}.", str(result), "\n".join(lines))


def _mixed_arithmetic(rng: random.Random, difficulty: int) -> Draft:
    """"c + a * b", "a * b + c" or "a * b - c": the product first, precedence being the lesson. The
    multiplier b has half the digits (at least 2..9) to keep the solution about a dozen lines."""
    a, c = _operand(rng, difficulty), _operand(rng, difficulty)
    b = rng.randint(2, 9) if difficulty // 2 == 1 else _operand(rng, difficulty // 2)
    form = rng.choice(("c + a * b", "a * b + c", "a * b - c"))
    product_lines, product = product_steps(a, b)
    if form == "c + a * b":
        sum_lines, result = sum_steps(c, "+", product)
    else:
        sum_lines, result = sum_steps(product, form[6], c)
    prompt = f"Compute {form.replace('a', str(a)).replace('b', str(b)).replace('c', str(c))}."
    return Draft(prompt, str(result), "\n".join(product_lines + sum_lines))


# ---------------------------------------------------------------------------------------------- linear


def _x_term(coefficient: int) -> str:
    return {1: "x", -1: "-x"}.get(coefficient, f"{coefficient}x")


def _side(coefficient: int, constant: int) -> str:
    """"3x + 5", "-x - 4", "2x": one side of a linear equation."""
    if constant == 0:
        return _x_term(coefficient)
    return f"{_x_term(coefficient)} {'+' if constant > 0 else '-'} {abs(constant)}"


def linear_steps(a: int, b: int, d: int, e: int) -> list[str]:
    """Solve a*x + b = d*x + e (d = 0: one-sided): move x terms left, constants right, then divide.
    3x - 4 = x + 10 -> "3x - x = 10 + 4", "2x = 14", "x = 14 / 2 = 7"."""
    coefficient, rhs = a - d, e - b
    moved = f"{e} {'-' if b > 0 else '+'} {abs(b)}" if b else f"{e}"
    if d:
        lines = [f"{_x_term(a)} {'-' if d > 0 else '+'} {_x_term(abs(d))} = {moved}",
                 f"{_x_term(coefficient)} = {rhs}"]
    else:
        lines = [f"{_x_term(a)} = {moved} = {rhs}"] if b else []
    if coefficient != 1:
        divisor = coefficient if coefficient > 0 else f"({coefficient})"
        lines.append(f"x = {rhs} / {divisor} = {rhs // coefficient}")
    return lines or [f"x = {rhs}"]


def linear_problem(rng: random.Random, difficulty: int) -> Draft:
    """Levels: 1: ax + b = c, small positive numbers; 2: signs; 3: x on both sides; 4: larger, signed."""
    if difficulty == 1:
        a, x, b, d = rng.randint(2, 5), rng.randint(0, 10), rng.randint(1, 20), 0
    elif difficulty == 2:
        a, b = rng.choice((-1, 1)) * rng.randint(2, 9), rng.choice((-1, 1)) * rng.randint(1, 30)
        x, d = rng.randint(-12, 12), 0
    elif difficulty == 3:
        a, d = rng.sample(range(1, 10), 2)
        x, b = rng.randint(-10, 10), rng.randint(-20, 20)
    else:
        a, d = rng.sample([c for c in range(-15, 16) if c], 2)
        x, b = rng.randint(-25, 25), rng.randint(-50, 50)
    e = a * x + b - d * x
    rhs = _side(d, e) if d else str(e)
    prompt = f"Solve for x: {_side(a, b)} = {rhs}."
    return Draft(prompt, str(x), "\n".join(linear_steps(a, b, d, e)))


# ------------------------------------------------------------------------------------------- fractions

# difficulty -> (largest denominator, numerators up to this many times the denominator, operations)
_FRACTION_LEVELS = {1: (6, 1, "+-"), 2: (10, 1, "+-*"), 3: (16, 2, "+-*"), 4: (24, 3, "+-*")}


def format_fraction(value: Fraction) -> str:
    """"3/4", "-3/4", or "2" when the denominator is 1."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def fraction_steps(x: Fraction, op: str, y: Fraction) -> list[str]:
    """Common denominator (lcm), combine, reduce (gcd): 1/4 - 2/3 -> "lcm(4, 3) = 12",
    "1/4 = 3/12, 2/3 = 8/12", "3/12 - 8/12 = -5/12". Multiplication multiplies across, then reduces."""
    xs, ys = format_fraction(x), format_fraction(y)
    if op == "*":
        num, den = x.numerator * y.numerator, x.denominator * y.denominator
        lines = [f"{xs} * {ys} = ({x.numerator} * {y.numerator})/({x.denominator} * {y.denominator})"
                 f" = {num}/{den}"]
    else:
        den = math.lcm(x.denominator, y.denominator)
        xn, yn = x.numerator * (den // x.denominator), y.numerator * (den // y.denominator)
        num = xn + yn if op == "+" else xn - yn
        lines = []
        if x.denominator != y.denominator:
            rewritten = [f"{format_fraction(f)} = {n}/{den}" for f, n in ((x, xn), (y, yn)) if f.denominator != den]
            lines += [f"lcm({x.denominator}, {y.denominator}) = {den}", ", ".join(rewritten)]
        lines.append(f"{xn}/{den} {op} {yn}/{den} = {num}/{den}")
    divisor = math.gcd(num, den)
    if divisor > 1:
        lines.append(f"gcd({abs(num)}, {den}) = {divisor}, so {num}/{den} = {format_fraction(Fraction(num, den))}")
    return lines


def _fraction(rng: random.Random, max_denominator: int, span: int) -> Fraction:
    """A fraction already in lowest terms and not an integer."""
    while True:
        den = rng.randint(2, max_denominator)
        num = rng.randint(1, span * den - 1)
        if math.gcd(num, den) == 1:
            return Fraction(num, den)


def fraction_problem(rng: random.Random, difficulty: int) -> Draft:
    """Two reduced, non-integer fractions and an operation; the level sets their size (`_FRACTION_LEVELS`)."""
    max_denominator, span, ops = _FRACTION_LEVELS[difficulty]
    x, op, y = _fraction(rng, max_denominator, span), rng.choice(ops), _fraction(rng, max_denominator, span)
    value = x + y if op == "+" else x - y if op == "-" else x * y
    prompt = f"Compute {format_fraction(x)} {op} {format_fraction(y)}. Give the answer in lowest terms."
    return Draft(prompt, format_fraction(value), "\n".join(fraction_steps(x, op, y)))


# ------------------------------------------------------------------------------------------------ word

_NAMES = ("Maya", "Omar", "Lena", "Ravi", "Sofia", "Kenji", "Amara", "Lucas", "Ines", "Tariq", "Mei", "Jonas",
          "Zara", "Diego", "Priya", "Noah")
_ITEMS = ("notebooks", "apples", "pens", "tickets", "books", "mugs", "plants", "stamps")
_OBJECTS = ("marbles", "cookies", "stickers", "pencils", "cards", "shells")
_VEHICLES = ("car", "train", "bus", "truck", "boat", "cyclist")
_BILLS = (10, 20, 50, 100, 200)


def _buying(rng: random.Random, difficulty: int) -> Draft:
    name, (item, other) = rng.choice(_NAMES), rng.sample(_ITEMS, 2)
    n, price = rng.randint(2, 9), rng.randint(2, 9 if difficulty == 1 else 20)
    total, lines = n * price, [f"{n} * {price} = {n * price}"]
    bought = f"{name} buys {n} {item} at {price} dollars each"
    if difficulty == 1:
        return Draft(f"{bought}. How many dollars does {name} spend?", str(total), lines[0])
    if difficulty == 2:
        bill = min(b for b in _BILLS if b > total)
        lines.append(f"{bill} - {total} = {bill - total}")
        prompt = f"{bought} and pays with a {bill}-dollar bill. How many dollars of change does {name} get?"
        return Draft(prompt, str(bill - total), "\n".join(lines))
    n2, price2 = rng.randint(2, 9), rng.randint(2, 20)
    lines += [f"{n2} * {price2} = {n2 * price2}", f"{total} + {n2 * price2} = {total + n2 * price2}"]
    prompt = f"{bought} and {n2} {other} at {price2} dollars each. How many dollars does {name} spend in total?"
    return Draft(prompt, str(total + n2 * price2), "\n".join(lines))


def _travel(rng: random.Random, difficulty: int) -> Draft:
    vehicle = rng.choice(_VEHICLES)
    if difficulty == 1:
        speed, hours = 10 * rng.randint(2, 9), rng.randint(2, 6)
        prompt = f"A {vehicle} travels at {speed} km per hour for {hours} hours. How many kilometers does it travel?"
        return Draft(prompt, str(speed * hours), f"distance = {speed} * {hours} = {speed * hours}")
    if difficulty == 2:
        speed, hours = rng.randint(12, 95), rng.randint(2, 9)
        prompt = f"A {vehicle} travels {speed * hours} km at {speed} km per hour. How many hours does the trip take?"
        return Draft(prompt, str(hours), f"time = {speed * hours} / {speed} = {hours}")
    (s1, t1), (s2, t2) = [(rng.randint(12, 95), rng.randint(2, 6)) for _ in range(2)]
    lines = [f"{s1} * {t1} = {s1 * t1}", f"{s2} * {t2} = {s2 * t2}", f"{s1 * t1} + {s2 * t2} = {s1 * t1 + s2 * t2}"]
    prompt = (f"A {vehicle} travels at {s1} km per hour for {t1} hours, then at {s2} km per hour for {t2} hours. "
              f"How many kilometers does it travel in total?")
    return Draft(prompt, str(s1 * t1 + s2 * t2), "\n".join(lines))


def _sharing(rng: random.Random, difficulty: int) -> Draft:
    name, things = rng.choice(_NAMES), rng.choice(_OBJECTS)
    if difficulty == 3:  # boxes: a division with a remainder, rounded up
        size, full = rng.randint(3, 12), rng.randint(2, 15)
        left = rng.randint(1, size - 1)
        total = full * size + left
        lines = [f"{total} / {size} = {full} remainder {left}", f"{full} + 1 = {full + 1}"]
        prompt = f"{name} packs {total} {things} into boxes of {size}. How many boxes does {name} need?"
        return Draft(prompt, str(full + 1), "\n".join(lines))
    friends, each = rng.randint(2, 9), rng.randint(2, 12)
    total, question = friends * each, f"How many {things} does each friend get?"
    if difficulty == 1:
        prompt = f"{name} has {total} {things} and shares them equally among {friends} friends. {question}"
        return Draft(prompt, str(each), f"{total} / {friends} = {each}")
    had = rng.randint(1, total - 1)
    prompt = (f"{name} has {had} {things} and buys {total - had} more, then shares them equally among "
              f"{friends} friends. {question}")
    return Draft(prompt, str(each), f"{had} + {total - had} = {total}\n{total} / {friends} = {each}")


def _ages(rng: random.Random, difficulty: int) -> Draft:
    first, second = rng.sample(_NAMES, 2)
    if difficulty == 3:
        times, young = rng.randint(2, 5), rng.randint(3, 15)
        ago = rng.randint(1, young - 1)
        lines = [f"{times} * {young} = {times * young}", f"{times * young} - {ago} = {times * young - ago}"]
        prompt = (f"{first} is {times} times as old as {second}, who is {young} years old. "
                  f"How old was {first} {ago} years ago?")
        return Draft(prompt, str(times * young - ago), "\n".join(lines))
    age, gap = rng.randint(12, 40), rng.randint(2, 10)
    older = rng.random() < 0.5
    other = age + gap if older else age - gap
    lines = [f"{age} {'+' if older else '-'} {gap} = {other}"]
    comparison = "older" if older else "younger"
    relation = f"{first} is {age} years old and {second} is {gap} years {comparison} than {first}."
    if difficulty == 1:
        return Draft(f"{relation} How old is {second}?", str(other), lines[0])
    later = rng.randint(2, 20)
    lines.append(f"{other} + {later} = {other + later}")
    return Draft(f"{relation} How old will {second} be in {later} years?", str(other + later), "\n".join(lines))


_WORD_TEMPLATES = (_buying, _travel, _sharing, _ages)


def word_problem(rng: random.Random, difficulty: int) -> Draft:
    """Buying, travel, sharing or ages, with names, objects and numbers drawn. Level 1 is one step
    (a product, a quotient, a sum), 2 two steps (change from a bill, buy-then-share, age in n years, or
    time from distance), 3 two or three steps (two purchases, two legs, boxes rounded up, "m times as old")."""
    return rng.choice(_WORD_TEMPLATES)(rng, difficulty)


# ------------------------------------------------------------------------------------------- countdown

_COUNTDOWN_POOL = tuple(range(1, 11)) * 2 + (25, 50, 75, 100)  # the TV game's tiles
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_COUNTDOWN_PROMPT = re.compile(r"Use the numbers ([0-9, and]+), each at most once, with \+, -, \* and / "
                               r"to make (\d+)\.")


@dataclass(frozen=True)
class _Term:
    value: int
    text: str
    precedence: int = 3  # a literal binds tightest


def _combine(left: _Term, op: str, right: _Term) -> _Term:
    """`left op right` with only the parentheses precedence needs: (25 - 5) * 4, 25 - (5 - 4)."""
    p = _PRECEDENCE[op]
    left_text = f"({left.text})" if left.precedence < p else left.text
    right_needs = right.precedence < p or (right.precedence == p and op in "-/")
    right_text = f"({right.text})" if right_needs else right.text
    a, b = left.value, right.value
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]  # b >= 1; "/" is only chosen when exact
    return _Term(value, f"{left_text} {op} {right_text}", p)


def _countdown_ops(a: int, b: int) -> list[str]:
    """With a >= b: the operations that keep every intermediate a positive integer and are not no-ops."""
    return ["+"] + ["-"] * (a > b) + ["*"] * (b > 1) + ["/"] * (b > 1 and a % b == 0)


def _listing(numbers: Sequence[int]) -> str:
    return ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def countdown_problem(rng: random.Random, difficulty: int) -> Draft:
    """`difficulty` numbers from the game's tiles combined pairwise at random (all of them used) into a
    target in 10..999 that is not one of the numbers; redrawn otherwise."""
    for _ in range(1000):
        numbers = rng.sample(_COUNTDOWN_POOL, difficulty)
        terms, lines = [_Term(n, str(n)) for n in numbers], []
        while len(terms) > 1:
            i, j = rng.sample(range(len(terms)), 2)
            right, left = sorted((terms[i], terms[j]), key=lambda t: t.value)
            op = rng.choice(_countdown_ops(left.value, right.value))
            term = _combine(left, op, right)
            lines.append(f"{left.value} {op} {right.value} = {term.value}")
            terms = [t for k, t in enumerate(terms) if k not in (i, j)] + [term]
        target = terms[0]
        if 10 <= target.value <= 999 and target.value not in numbers:
            prompt = (f"Use the numbers {_listing(sorted(numbers))}, each at most once, with +, -, * and / "
                      f"to make {target.value}. Give one expression.")
            return Draft(prompt, target.text, "\n".join(lines + [f"{target.text} = {target.value}"]))
    raise RuntimeError("no countdown target in range after 1000 draws")  # never seen: ~half the draws fit


def countdown_puzzle(problem: Problem) -> tuple[list[int], int]:
    """The (numbers, target) of a countdown problem, read back from its prompt."""
    match = _COUNTDOWN_PROMPT.match(problem.prompt) if problem.task == "countdown" else None
    if match is None:
        raise InvalidArgument("problem", f"{problem.id!r} is not a countdown problem made by this module")
    return [int(n) for n in re.findall(r"\d+", match.group(1))], int(match.group(2))


# ------------------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Task:
    """A registered task: its generator, the difficulties it takes and what difficulty means."""

    make: Callable[[random.Random, int], Draft]
    difficulties: range
    scale: str


TASKS: dict[str, Task] = {
    "arithmetic": Task(arithmetic_problem, range(1, 7), "digits per operand"),
    "linear": Task(linear_problem, range(1, 5), "1-2 one-sided, 3-4 x on both sides"),
    "fractions": Task(fraction_problem, range(1, 5), "denominators up to 6, 10, 16, 24"),
    "word": Task(word_problem, range(1, 4), "about the number of steps"),
    "countdown": Task(countdown_problem, range(3, 6), "how many numbers"),
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _task(name: object, field: str = "task") -> Task:
    if not isinstance(name, str) or name not in TASKS:
        raise InvalidArgument(field, f"unknown task {name!r}; valid tasks: {sorted(TASKS)}")
    return TASKS[name]


def _require_int(field: str, value: object, minimum: int | None = 0) -> None:
    if not _is_int(value) or (minimum is not None and value < minimum):
        kind = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise InvalidArgument(field, f"must be {kind}, got {value!r}")


def difficulty_range(task: str, difficulty: Difficulty) -> tuple[int, int]:
    """The inclusive (low, high) range a `difficulty` argument stands for: None is the task's whole
    range, an int one level, a (low, high) pair (tuple or list) a range drawn from uniformly."""
    levels = _task(task).difficulties
    if difficulty is None:
        return levels[0], levels[-1]
    pair = (difficulty, difficulty) if _is_int(difficulty) else difficulty
    if (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(map(_is_int, pair))
            and levels[0] <= pair[0] <= pair[1] <= levels[-1]):
        return pair[0], pair[1]
    raise InvalidArgument("difficulty", f"task {task!r} takes one of {list(levels)} ({TASKS[task].scale}) or a "
                                        f"(low, high) pair of them with low <= high, got {difficulty!r}")


def problem_at(task: str, seed: int, index: int, levels: tuple[int, int]) -> Problem:
    """Problem `index` of the stream (task, seed): drawn from its own rng, seeded by its id."""
    problem_id = f"{task}-{seed}-{index}"
    rng = random.Random(problem_id)
    difficulty = rng.randint(*levels)
    draft = TASKS[task].make(rng, difficulty)
    return Problem(problem_id, task, draft.prompt, draft.answer, draft.solution, difficulty)


def generate(task: str, n: int, seed: int, difficulty: Difficulty = None) -> list[Problem]:
    """`n` problems of `task`, the same for the same seed; see `difficulty_range` for `difficulty`."""
    levels = difficulty_range(task, difficulty)
    _require_int("n", n)
    _require_int("seed", seed, minimum=None)
    return [problem_at(task, seed, index, levels) for index in range(n)]


def derived_seed(seed: int, purpose: str) -> int:
    """A second seed for `purpose` (e.g. "heldout"), stable across processes: 32 bits of SHA-256."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:4], "big")


def _task_names(tasks: object) -> list[str]:
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise InvalidArgument("tasks", f"must be a list of task names (e.g. [{tasks!r}]), got {tasks!r}")
    if not tasks:
        raise InvalidArgument("tasks", f"must name at least one task; valid tasks: {sorted(TASKS)}")
    for i, name in enumerate(tasks):
        _task(name, f"tasks[{i}]")
    repeated = sorted(name for name, count in Counter(tasks).items() if count > 1)
    if repeated:
        raise InvalidArgument("tasks", f"lists {repeated} more than once; name each task once")
    return list(tasks)


def unseen(task: str, seed: int, levels: tuple[int, int], count: int, taken: set[str],
           field: str = "n_heldout") -> list[Problem]:
    """The first `count` problems of the stream (task, seed) whose prompts are not in `taken` nor repeat
    each other; InvalidArgument naming `field` (the count asked for) after 20 draws per problem wanted
    (plus 100) when too few exist."""
    found, seen, budget = [], set(taken), 20 * count + 100
    for index in range(budget):
        if len(found) == count:
            break
        problem = problem_at(task, seed, index, levels)
        if problem.prompt not in seen:
            found.append(problem)
            seen.add(problem.prompt)
    if len(found) < count:
        raise InvalidArgument(field, f"only {len(found)} of {count} {task!r} problems with prompts unseen so far "
                                     f"were found in {budget} draws (difficulty {levels}); lower {field} (or the "
                                     f"other sets' sizes), or raise the difficulty")
    return found


def split(
    tasks: Sequence[str], n_train: int, n_heldout: int, seed: int, difficulty: Difficulty = None,
) -> tuple[list[Problem], list[Problem]]:
    """Train and held-out sets, tasks mixed round-robin (problem i is of `tasks[i % len(tasks)]`).

    Train is the stream (task, seed), as `generate` gives it (repeats kept). Held-out comes from the
    stream (task, derived_seed(seed, "heldout")) with every prompt seen in train, or earlier in
    held-out, skipped, so the held-out prompts are distinct and none appears in train. `difficulty` is
    checked against every task (None: each task's own range)."""
    names = _task_names(tasks)
    _require_int("n_train", n_train)
    _require_int("n_heldout", n_heldout)
    _require_int("seed", seed, minimum=None)
    levels = {name: difficulty_range(name, difficulty) for name in names}
    k = len(names)
    train = [problem_at(names[i % k], seed, i // k, levels[names[i % k]]) for i in range(n_train)]
    taken = {problem.prompt for problem in train}
    heldout_seed = derived_seed(seed, "heldout")
    pools = {name: unseen(name, heldout_seed, levels[name], len(range(j, n_heldout, k)), taken)
             for j, name in enumerate(names)}
    heldout = [pools[names[i % k]][i // k] for i in range(n_heldout)]
    return train, heldout


# ----------------------------------------------------------------------------------------------- files

_FIELDS = tuple(field.name for field in dataclasses.fields(Problem))


def to_jsonl(problems: Iterable[Problem], path: str | os.PathLike) -> None:
    """One JSON object per line with the `Problem` fields, UTF-8."""
    with open(path, "w", encoding="utf-8") as out:
        for problem in problems:
            out.write(json.dumps(dataclasses.asdict(problem), ensure_ascii=False) + "\n")


def _problem_from_line(text: str, line_no: int) -> Problem:
    try:
        record = json.loads(text)
    except ValueError as e:
        raise InvalidArgument("path", f"line {line_no}: not valid JSON ({e})") from None
    if not isinstance(record, dict) or set(record) != set(_FIELDS):
        got = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise InvalidArgument("path", f"line {line_no}: expected an object with exactly the fields {list(_FIELDS)}, "
                                      f"got {got}")
    for name, value in record.items():
        if not (_is_int(value) if name == "difficulty" else isinstance(value, str)):
            kind = "an integer" if name == "difficulty" else "a string"
            raise InvalidArgument("path", f"line {line_no}: {name!r} must be {kind}, got {value!r}")
    return Problem(**record)


def from_jsonl(path: str | os.PathLike) -> list[Problem]:
    """The problems `to_jsonl` wrote; blank lines are skipped, anything else unreadable is an
    InvalidArgument naming the line."""
    with open(path, encoding="utf-8") as lines:
        return [_problem_from_line(line, n) for n, line in enumerate(lines, 1) if line.strip()]


def as_verify_line(problem: Problem, response: str) -> dict:
    """A `kind: math` line for `r1 verify` (see `r1.rewards.jsonl`). For countdown the reference is the
    target value, so any expression with that value is CORRECT; whether it uses only the given numbers
    is the stricter `countdown_valid`, to be applied on top where it matters."""
    reference = str(countdown_puzzle(problem)[1]) if problem.task == "countdown" else problem.answer
    return {"id": problem.id, "kind": "math", "response": response, "reference": reference}
