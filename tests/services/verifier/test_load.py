"""1,000 mixed items through VerifyBatch from 32 concurrent clients: no errors, and every result identical
to the in-process verifier's for the same item."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

from r1.rewards.code import CodeRequest, IOTest
from r1.rewards.items import ChoiceCheck, FormatCheck, Item, LanguageCheck, MathCheck
from r1.rewards.math import Profile
from r1.rewards.verifier import Verifier, VerifierConfig
from services.verifier.client import VerifierClient
from tests.paths import SHARED_DATA

CLIENTS = 32
ITEMS = 1000


def mixed_items(n: int, seed: int = 0) -> list[Item]:
    """Math from the Math-Verify grader cases (both profiles), choice, format, language and code items
    (right, wrong, crashing; mostly Python, some C++), shuffled."""
    rng = random.Random(seed)
    cases = [json.loads(line) for line in (SHARED_DATA / "grader_bench" / "math_verify_test_cases.jsonl").open()]
    doubler = CodeRequest("python", "", io_tests=(IOTest("3", "6"), IOTest("-4", "-8")))
    cpp = CodeRequest("cpp", "", io_tests=(IOTest("5", "10"),))
    programs = ["print(int(input()) * 2)", "print(int(input()) + 2)", "raise SystemExit(3)", "print(undefined)"]
    makers = [
        lambda i: Item(f"\\boxed{{{cases[i % len(cases)]['pred']}}}", MathCheck(
            cases[i % len(cases)]["gold"], Profile.STRICT if i % 2 else Profile.LENIENT)),
        lambda i: Item(f"The answer is ({'ABCD'[i % 4]})", ChoiceCheck("ABCD"[i % 3])),
        lambda i: Item("<think>ok</think><answer>1</answer>" if i % 2 else "no tags", FormatCheck()),
        lambda i: Item("<think>" + ("the cat" if i % 2 else "le chat noir") + "</think>", LanguageCheck("en")),
        lambda i: Item(f"```python\n{programs[i % len(programs)]}\n```", doubler),
    ]
    weights = [0.55, 0.12, 0.1, 0.1, 0.13]
    items = [Item(it.response, it.check, id=f"item-{i}", deadline=60.0) for i, it in
             ((i, rng.choices(makers, weights)[0](i)) for i in range(n - 3))]
    items += [Item(f"```cpp\n#include <cstdio>\nint main(){{int x; scanf(\"%d\", &x); printf(\"%d\", {k} * x);}}\n```",
                   cpp, id=f"cpp-{k}", deadline=60.0) for k in (1, 2, 3)]
    rng.shuffle(items)
    return items


def test_32_concurrent_clients_get_the_in_process_results(server):
    items = mixed_items(ITEMS)
    with Verifier(VerifierConfig(workers=2, math_workers=2)) as verifier:
        expected = {v.id: v.result for v in verifier.verify_batch(items)}
    shares = [items[k::CLIENTS] for k in range(CLIENTS)]

    def one_client(share: list[Item]) -> dict:
        with VerifierClient(server.target, timeout=300) as client:
            half = len(share) // 2  # two calls each, so calls overlap and interleave in the queue
            return {v.id: v.result for part in (share[:half], share[half:]) for v in client.verify_batch(part)}

    with ThreadPoolExecutor(CLIENTS) as pool:
        got = {}
        for results in pool.map(one_client, shares):
            got.update(results)
    assert len(got) == ITEMS
    assert got == expected
    assert {item.kind for item in items} == {"math", "choice", "code", "format", "language"}
    assert {r.verdict.value for r in got.values()} == {"CORRECT", "WRONG", "FORMAT_ERROR", "RUNTIME_ERROR"}
