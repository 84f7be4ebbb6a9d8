"""Per-run cost of the sandbox: a trivial program run bare (subprocess) and sandboxed, interleaved.

    PYTHONPATH=. .venv/bin/python benchmarks/sandbox_overhead.py [-n 200] [--program true|python]

Prints the median wall time of each, the median per-run overhead (sandboxed minus bare, pairwise) against the
20 ms target, the ratio, and the isolation layers that were active. Quote the numbers with the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time

from r1.rewards.sandbox import Sandbox, SandboxConfig

PROGRAMS = {"true": ["/bin/true"], "python": ["/usr/bin/python3", "-c", "pass"]}
TARGET_MS = 20.0


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(sandbox: Sandbox, argv: list[str], n: int) -> tuple[list[float], list[float]]:
    """n interleaved (bare, sandboxed) pairs, in ms, after a few warm-up runs of each."""
    bare = lambda: subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)  # noqa: E731
    boxed = lambda: _check(sandbox.run(argv))  # noqa: E731
    for _ in range(5):
        bare(), boxed()
    pairs = [(timed(bare), timed(boxed)) for _ in range(n)]
    return [b for b, _ in pairs], [s for _, s in pairs]


def _check(result) -> None:
    if not result.ok:
        raise RuntimeError(f"sandboxed run failed: {result.detail} {result.stderr[-300:]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="runs of each kind")
    parser.add_argument("--program", choices=sorted(PROGRAMS), default="true")
    parser.add_argument("--allow-degraded", action="store_true", help="measure whatever layers this host has")
    args = parser.parse_args()

    sandbox = Sandbox(SandboxConfig(allow_degraded=args.allow_degraded))
    argv = PROGRAMS[args.program]
    bare, boxed = measure(sandbox, argv, args.n)
    overhead = [s - b for b, s in zip(bare, boxed)]
    med_bare, med_boxed = statistics.median(bare), statistics.median(boxed)
    med_over, p90 = statistics.median(overhead), statistics.quantiles(overhead, n=10)[-1]

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Linux {platform.release()}")
    print(f"program: {' '.join(argv)}   runs: {args.n} of each, interleaved")
    print(f"layers:  {', '.join(sandbox.layers)}")
    print(f"bare subprocess     median {med_bare:7.2f} ms")
    print(f"sandboxed           median {med_boxed:7.2f} ms   ({med_boxed / med_bare:.1f}x)")
    verdict = "within" if med_over <= TARGET_MS else "OVER"
    print(f"overhead per run    median {med_over:7.2f} ms   p90 {p90:.2f} ms", end="   ")
    print(f"({verdict} the {TARGET_MS:g} ms target)")


if __name__ == "__main__":
    main()
