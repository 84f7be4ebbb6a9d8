"""The verifier part of `make demo`: an embedded mixed batch through the live service, then in-process.

The batch is built here (no download): math answers against equivalent and non-equivalent rewrites of
their references in both profiles, multiple-choice letters in the styles models write them, Python and C++
programs judged in the sandbox (right, wrong, crashing, looping), R1-Zero format and language checks. The
demo prints what each kind scored, the service's throughput, what its /metrics endpoint counted, and
whether the in-process verifier gave the same result for every item.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from r1.rewards.code import CodeRequest, IOTest, request_limits
from r1.rewards.items import ChoiceCheck, FormatCheck, Item, LanguageCheck, MathCheck
from r1.rewards.math import Profile
from r1.rewards.verifier import Verified, Verifier, VerifierConfig
from services.verifier.client import VerifierClient

# (reference, equivalent rewrites, non-equivalent rewrites)
MATH = [
    ("\\frac{1}{2}", ["0.5", "1/2", "\\dfrac{1}{2}", "50\\%"], ["0.51", "2"]),
    ("204", ["204", "204.0", "\\text{204}", "2.04 \\times 10^2"], ["240", "-204"]),
    ("2\\sqrt{3}", ["\\sqrt{12}", "2 \\sqrt 3", "\\sqrt{3} \\cdot 2"], ["3\\sqrt{2}"]),
    ("(1, 2]", ["(1,2]", "\\left(1, 2\\right]"], ["[1, 2]", "(1, 2)"]),
    ("x^2 + 2x + 1", ["(x+1)^2", "1 + 2x + x^2"], ["x^2 + 1"]),
    ("\\{1, 2, 3\\}", ["\\{3, 2, 1\\}", "1, 2, 3"], ["\\{1, 2\\}"]),
    ("\\pi", ["\\pi", "\\frac{2\\pi}{2}"], ["3.14"]),
    ("1000000", ["1{,}000{,}000", "10^6", "1,000,000"], ["100000"]),
]
CHOICES = ["Answer: B", "**Answer: (B)**", "The answer is $B$.", "\\boxed{B}", "Answer: D", "I am not sure."]
PROGRAMS = {
    "right": "print(sum(map(int, input().split())))",
    "wrong": "print(max(map(int, input().split())))",
    "crash": "print(1 / 0)",
    "loop": "while True:\n    pass",
}
SUM_TESTS = (IOTest("1 2", "3"), IOTest("10 -4", "6"), IOTest("0 0", "0"))
CPP_SUM = "#include <iostream>\nint main(){long a, b; std::cin >> a >> b; std::cout << a + b << \"\\n\";}"


def demo_items() -> list[Item]:
    items = []
    for reference, equal, different in MATH:
        for answer in equal + different:
            for profile in Profile:
                items.append(Item(f"<think>...</think> So the answer is $\\boxed{{{answer}}}$.",
                                  MathCheck(reference, profile)))
    items += [Item(response, ChoiceCheck("B", ("1", "2", "3", "4"))) for response in CHOICES]
    limits = request_limits(time_limit_seconds=1.0)
    items += [Item(f"```python\n{source}\n```", CodeRequest("python", "", io_tests=SUM_TESTS, limits=limits))
              for source in PROGRAMS.values()]
    items.append(Item(f"```cpp\n{CPP_SUM}\n```", CodeRequest("cpp", "", io_tests=SUM_TESTS, limits=limits)))
    items += [Item(text, FormatCheck()) for text in
              ["<think>2+2</think><answer>4</answer>", "<think>2+2</think> \\boxed{4}", "4", "<think>a</think>"]]
    items += [Item(f"<think>{text}</think>", LanguageCheck("en")) for text in
              ["first add the two numbers", "zuerst addieren wir", "先把两个数相加"]]
    return items


def show_verifier(console: Console, target: str, metrics_port: int) -> bool:
    """Runs the demo batch through the service at `target` and in-process; True when both agree."""
    items = demo_items()
    with VerifierClient(target, timeout=300) as client:
        layers = next(k.isolation_layers for k in client.list_kinds().kinds if k.name == "code")
        started = time.perf_counter()
        remote = {v.index: v for v in client.verify_batch(items)}
        seconds = time.perf_counter() - started
    with Verifier(VerifierConfig()) as verifier:
        local = {v.index: v for v in verifier.verify_batch(items)}
    same = sum(remote[i].result == local[i].result for i in range(len(items)))
    console.rule("the verifier service: an embedded mixed batch")
    console.print(_kind_table(list(remote.values())))
    console.print(f"{len(items)} items through VerifyBatch in {seconds:.2f}s ({len(items) / seconds:.0f} items/s, "
                  f"code runs included); in-process results identical for {same}/{len(items)}")
    console.print(f"sandbox isolation layers: {', '.join(layers)}")
    console.print(f"/metrics r1_verifier_items_total: {_items_counted(metrics_port):.0f}")
    return same == len(items)


def _kind_table(results: list[Verified]) -> Table:
    table = Table("kind", "items", "mean reward", "verdicts")
    for kind in ("math", "choice", "code", "format", "language"):
        mine = [v for v in results if v.kind == kind]
        verdicts = Counter(v.result.verdict.value for v in mine)
        table.add_row(kind, str(len(mine)), f"{sum(v.result.reward for v in mine) / len(mine):.2f}",
                      ", ".join(f"{name} {n}" for name, n in verdicts.most_common()))
    return table


def _items_counted(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) if family.name == "r1_verifier_items"
               for sample in family.samples if sample.name == "r1_verifier_items_total")
