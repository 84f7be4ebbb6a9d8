"""Math checker against Math-Verify: throughput and agreement on the same items, in one run.

    PYTHONPATH=. .venv/bin/python benchmarks/verifier_math.py [--limit 500] [--deadline 5]

Items:
- MATH-500 (`shared/data/math500/test.jsonl`, field `answer`): each gold answer against rewrites that keep
  its value (boxed; `\\dfrac` for `\\frac`; a decimal for a simple fraction; a `\\text{ cm}` unit; extra
  spaces; an `x = ` prefix; `\\left( \\right)`; a "The final answer is ..." line) and rewrites that change it
  (a number perturbed, a sign flipped, a tuple's order swapped, a fraction inverted), each inside a short
  response. Expected label: 1 for the first kind, 0 for the second.
- The grader-bench cases (`shared/data/grader_bench/math_verify_test_cases.jsonl`), each read the way its
  harness says, with its own expected label.

Both checkers see the same (gold, response) strings. Math-Verify runs in-process (`parse` + `verify`, its
signal timeouts disabled); ours is a `MathChecker` (LENIENT profile, cache off) whose symbolic fallback runs
in its worker pool. Both are warmed up on the same pairs (`math_symbolic.WARM_UP_PAIRS`) first and run one
item at a time, alternating item by item (each call timed on its own, so load changes on a shared machine
hit both alike); `--threads N` lets N threads call our checker at once (the verifier service's setting),
Math-Verify staying sequential (its own timeouts need the main thread). Prints items/s for both, the
ratio, and the agreement of each with the expected labels. Quote the numbers with the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from r1.rewards.math import CompareOptions, MathChecker, Profile
from r1.rewards.math_extract import ExtractionPolicy
from r1.rewards.math_symbolic import WARM_UP_PAIRS, warm_up
from r1.rewards.symbolic_pool import SymbolicPool
from r1.rewards.verdict import Verdict

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MATH500 = DATA / "math500" / "test.jsonl"
GRADER_BENCH = DATA / "grader_bench" / "math_verify_test_cases.jsonl"
TARGET_RATIO = 5.0


@dataclass(frozen=True)
class Item:
    source: str  # "math500" | "grader"
    gold: str
    response: str
    expected: int
    match_types: tuple[str, ...] = ("latex", "expr")
    options: CompareOptions = CompareOptions()
    gold_is_text: bool = False  # grader rows: the gold is parsed like the response
    default_parse: bool = False  # grader rows of the `parse_defaults_then_verify` harness


# --------------------------------------------------------------------------------------------- rewrites

_INT = re.compile(r"-?\d+")
_SIMPLE_FRAC = re.compile(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}")


def _decimal(gold: str) -> str | None:
    m = _SIMPLE_FRAC.fullmatch(gold.strip())
    if not m or int(m.group(3)) == 0:
        return None
    value = Fraction(int(m.group(2)), int(m.group(3)))
    return f"{m.group(1)}{float(value):.6f}".rstrip("0").rstrip(".")


def equivalent_rewrites(gold: str) -> list[str]:
    """Answers that keep the gold's value, each already inside a response."""
    out = [
        f"So the result is $\\boxed{{{gold}}}$.",
        f"Final Answer: The final answer is ${gold}$. I hope it is correct.",
    ]
    if "\\frac" in gold:
        dfrac = gold.replace("\\frac", "\\dfrac")
        out.append(f"Hence $\\boxed{{{dfrac}}}$")
    if (dec := _decimal(gold)) is not None:
        out.append(f"which gives \\boxed{{{dec}}}")
    if _INT.fullmatch(gold.strip()):
        out.append(f"The length is $\\boxed{{{gold}\\text{{ cm}}}}$.")
    spaced = re.sub(r"\s*([,+=])\s*", r" \1 ", gold)
    if spaced != gold and not re.search(r"\d,(\\!)?\s*\d{3}", gold):  # not inside 10,\!080
        out.append(f"Answer: $\\boxed{{ {spaced} }}$")
    if "=" not in gold and "," not in gold and "\\text" not in gold:
        out.append(f"Therefore $\\boxed{{x = {gold}}}$.")
    if gold.startswith("(") and gold.endswith(")") and "\\left" not in gold:
        out.append(f"$\\boxed{{\\left{gold[:-1]}\\right)}}$")
    return out


def _perturbed(gold: str) -> str | None:
    """The last integer plus one (not a subscript: 52_8 -> 52_9 would change the base, not the value)."""
    m = None
    for candidate in _INT.finditer(gold.split("\\text")[0].split("\\mbox")[0]):
        if not gold[: candidate.start()].endswith(("_", "_{")):
            m = candidate
    if m is None:
        return None
    return gold[: m.start()] + str(int(m.group()) + 1) + gold[m.end() :]


def _swapped(gold: str) -> str | None:
    if not (gold.startswith("(") and gold.endswith(")")):
        return None
    parts = [p.strip() for p in gold[1:-1].split(",")]
    if len(parts) < 2 or parts[0] == parts[1] or any("(" in p or "{" in p and "}" not in p for p in parts):
        return None
    return "(" + ", ".join([parts[1], parts[0], *parts[2:]]) + ")"


def _inverted(gold: str) -> str | None:
    m = _SIMPLE_FRAC.fullmatch(gold.strip())
    if not m or m.group(2) == m.group(3) or m.group(2) == "0":
        return None
    return f"{m.group(1)}\\frac{{{m.group(3)}}}{{{m.group(2)}}}"


def _negated(gold: str) -> str | None:
    g = gold.strip()
    if not re.fullmatch(r"-?\d+(\.\d+)?|-?\\frac\{\d+\}\{\d+\}", g) or float(re.sub(r"[^\d.]", "", g) or 0) == 0:
        return None
    return g[1:] if g.startswith("-") else "-" + g


def wrong_rewrites(gold: str) -> list[str]:
    """Answers that change the gold's value, each inside a response."""
    out = []
    for rewrite in (_perturbed(gold), _swapped(gold), _inverted(gold), _negated(gold)):
        if rewrite is not None and rewrite != gold:
            out.append(f"After simplifying, we get $\\boxed{{{rewrite}}}$.")
    return out


# ------------------------------------------------------------------------------------------------ items


def math500_items(limit: int) -> list[Item]:
    items = []
    with MATH500.open(encoding="utf-8") as f:
        for line in list(f)[:limit]:
            gold = json.loads(line)["answer"]
            items += [Item("math500", gold, r, 1) for r in equivalent_rewrites(gold)]
            items += [Item("math500", gold, r, 0) for r in wrong_rewrites(gold)]
    return items


def grader_items() -> list[Item]:
    items = []
    with GRADER_BENCH.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            options = CompareOptions(row["precision"], row["strict"], row["allow_set_relation_comp"])
            types = tuple(row["match_types"] or ("latex", "expr"))
            default = row["harness"] == "parse_defaults_then_verify"
            items.append(Item("grader", row["gold"], row["pred"], row["expected"], types, options, True, default))
    return items


# ----------------------------------------------------------------------------------------------- runners


def math_verify_runner() -> Callable[[Item], bool]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    def configs(item: Item) -> list:
        out: list = []
        if "latex" in item.match_types:
            # the compare_strings harness gives boxes the first priority; plain parse() uses the default
            harness_priority = item.gold_is_text and not item.default_parse
            priority = 0 if harness_priority else LatexExtractionConfig().boxed_match_priority
            out.append(LatexExtractionConfig(boxed_match_priority=priority))
        if "expr" in item.match_types:
            out.append(ExprExtractionConfig())
        return out

    def run(item: Item) -> bool:
        cfg = configs(item)
        gold_text = item.gold if item.gold_is_text else f"${item.gold}$"
        gold = parse(gold_text, cfg, parsing_timeout=None)
        pred = parse(item.response, cfg, parsing_timeout=None)
        o = item.options
        return verify(
            gold, pred, float_rounding=o.float_rounding, strict=o.strict,
            allow_set_relation_comp=o.allow_set_relation_comp, timeout_seconds=None,
        )

    return run


def ours_runner(pool: SymbolicPool, deadline: float) -> Callable[[Item], bool]:
    checkers: dict[CompareOptions, MathChecker] = {}

    def run(item: Item) -> bool:
        checker = checkers.get(item.options)
        if checker is None:  # setdefault: two threads may race here, one checker wins
            checker = checkers.setdefault(item.options, MathChecker(pool=pool, cache_size=0, options=item.options))
        if item.gold_is_text:
            policy = ExtractionPolicy(
                answer_tags=False, boxed="latex" in item.match_types, anchors=True,
                math_envs="latex" in item.match_types, numbers="expr" in item.match_types,
            )
            result = checker.check(item.response, item.gold, policy, gold_policy=policy, deadline=deadline)
        else:
            result = checker.check(item.response, item.gold, Profile.LENIENT, deadline=deadline)
        return result.verdict is Verdict.CORRECT

    return run


def timed_run(run: Callable[[Item], bool], items: list[Item], threads: int) -> tuple[list[bool], float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as executor:
        verdicts = [bool(v) for v in executor.map(run, items)]
    return verdicts, time.perf_counter() - start


def interleaved_run(
    first: Callable[[Item], bool], second: Callable[[Item], bool], items: list[Item]
) -> tuple[list[bool], float, list[bool], float]:
    """Both checkers item by item, alternating, each call timed on its own: a load change on a shared
    machine then hits both alike."""
    verdicts: tuple[list[bool], list[bool]] = ([], [])
    seconds = [0.0, 0.0]
    for item in items:
        for k, run in enumerate((first, second)):
            start = time.perf_counter()
            verdicts[k].append(bool(run(item)))
            seconds[k] += time.perf_counter() - start
    return verdicts[0], seconds[0], verdicts[1], seconds[1]


@dataclass
class Row:
    name: str
    items: list[Item]
    mv: list[bool]
    mv_time: float
    ours: list[bool]
    our_time: float

    def agreement(self, verdicts: list[bool]) -> float:
        return sum(v == bool(it.expected) for v, it in zip(verdicts, self.items)) / len(self.items)

    def line(self) -> str:
        n = len(self.items)
        mv_rate, our_rate = n / self.mv_time, n / self.our_time
        return (f"{self.name:<10}{n:>7}  {mv_rate:>17.1f}{our_rate:>11.1f}{our_rate / mv_rate:>8.1f}x"
                f"  {self.agreement(self.mv):>9.2%}{self.agreement(self.ours):>11.2%}")


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=500, help="MATH-500 problems to use (default all)")
    parser.add_argument("--deadline", type=float, default=5.0, help="our symbolic deadline, seconds")
    parser.add_argument("--no-grader", action="store_true", help="leave out the grader-bench cases")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads calling our checker (its pool has as many workers); Math-Verify stays at one")
    parser.add_argument("--show-disagreements", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # Math-Verify warns once per call when its timeouts are disabled

    sets = {"math500": math500_items(args.limit)}
    if not args.no_grader:
        sets["grader"] = grader_items()
    mv = math_verify_runner()
    rows: list[Row] = []
    with SymbolicPool(max(2, args.threads), warmup=warm_up) as pool:
        pool.wait_ready(120)
        ours = ours_runner(pool, args.deadline)
        # the same warm-up for both: sympy's first-call costs (relations, sets, solve, matrices, ...) are
        # paid before timing; our workers have also run `warm_up` (the same pairs) at start-up
        warm = [Item("math500", gold, f"\\boxed{{{pred}}}", 1) for gold, pred in WARM_UP_PAIRS]
        for run in (mv, ours):
            for item in warm:
                run(item)
        for name, items in sets.items():
            if args.threads == 1:
                mv_verdicts, mv_time, our_verdicts, our_time = interleaved_run(mv, ours, items)
            else:
                mv_verdicts, mv_time = timed_run(mv, items, 1)
                our_verdicts, our_time = timed_run(ours, items, args.threads)
            rows.append(Row(name, items, mv_verdicts, mv_time, our_verdicts, our_time))
    if len(rows) > 1:
        rows.append(Row("all", [i for r in rows for i in r.items], [v for r in rows for v in r.mv],
                        sum(r.mv_time for r in rows), [v for r in rows for v in r.ours], sum(r.our_time for r in rows)))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}; "
          f"ours with {args.threads} calling thread(s), Math-Verify with 1")
    header = f"{'set':<10}{'items':>7}  {'math_verify it/s':>17}{'ours it/s':>11}{'ratio':>9}"
    print(f"{header}  {'agree mv':>9}{'agree ours':>11}")
    for row in rows:
        print(row.line())
    print(f"target: ours >= {TARGET_RATIO:g}x Math-Verify's items/s on 'all', agreement not lower")
    if args.show_disagreements:
        for row in rows[: len(sets)]:
            for item, m, o in zip(row.items, row.mv, row.ours):
                if m != bool(item.expected) or o != bool(item.expected):
                    print(f"  [{item.source}] expected={item.expected} mv={int(m)} ours={int(o)}"
                          f"  gold={item.gold[:50]!r}  response={item.response[-70:]!r}")


if __name__ == "__main__":
    main()
