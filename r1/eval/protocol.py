"""Per-benchmark defaults of the R1 protocol, and the settings one evaluation run resolves them into.

DeepSeek-R1 samples k responses per question, "between 4 and 64 depending on the test set size", at
temperature 0.6 and top-p 0.95 with up to 32,768 generated tokens, and reports pass@1 as their mean (and
cons@64 on AIME). The defaults below follow that rule: small sets get many samples (AIME 64), large ones few
(MATH-500 4). Every value can be overridden per run (`--k`, `--max-tokens`, ...); the resolved values are
written into results.json beside the numbers they produced.
"""

from __future__ import annotations

from dataclasses import dataclass

from r1.errors import InvalidArgument
from r1.eval.prompts import FRAMES, MESSAGES

R1_MAX_TOKENS = 32768


@dataclass(frozen=True)
class BenchmarkProtocol:
    """k: samples per question; prompt: the user message (`r1/eval/prompts.py`); rated: the records carry
    Codeforces difficulty ratings, so a rating is estimated."""

    k: int
    prompt: str
    max_tokens: int = R1_MAX_TOKENS
    rated: bool = False


PROTOCOLS: dict[str, BenchmarkProtocol] = {
    "aime24": BenchmarkProtocol(k=64, prompt="math"),
    "aime25": BenchmarkProtocol(k=64, prompt="math"),
    "amc23": BenchmarkProtocol(k=32, prompt="math"),
    "math500": BenchmarkProtocol(k=4, prompt="math"),
    "gpqa_diamond": BenchmarkProtocol(k=8, prompt="gpqa"),
    "codeforces": BenchmarkProtocol(k=8, prompt="code", rated=True),
    "code_contests": BenchmarkProtocol(k=8, prompt="code"),
    "humaneval": BenchmarkProtocol(k=4, prompt="code"),
    "mbpp": BenchmarkProtocol(k=4, prompt="code"),
    "synthetic": BenchmarkProtocol(k=8, prompt="question", max_tokens=96),
}


@dataclass(frozen=True)
class EvalSettings:
    """One run's choices. k, max_tokens, prompt: None takes the benchmark's default; limit: the first N
    questions (None: all); concurrency: generation requests in flight; seed: sample j of question i uses
    seed + 1024 * i + j, so a resumed run draws what an uninterrupted one would; frame: see prompts.py."""

    k: int | None = None
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int | None = None
    limit: int | None = None
    concurrency: int = 8
    seed: int = 0
    frame: str = "raw"
    prompt: str | None = None
    data_dir: str | None = None

    def check(self) -> None:
        if self.k is not None and self.k < 1:
            raise InvalidArgument("k", f"must be >= 1, got {self.k}")
        if self.temperature < 0:
            raise InvalidArgument("temperature", f"must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InvalidArgument("top_p", f"must be in (0, 1], got {self.top_p}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InvalidArgument("max_tokens", f"must be >= 1, got {self.max_tokens}")
        if self.limit is not None and self.limit < 1:
            raise InvalidArgument("limit", f"must be >= 1, got {self.limit}")
        if self.concurrency < 1:
            raise InvalidArgument("concurrency", f"must be >= 1, got {self.concurrency}")
        if self.frame not in FRAMES:
            raise InvalidArgument("frame", f"unknown frame {self.frame!r}; valid: {', '.join(FRAMES)}")
        if self.prompt is not None and self.prompt not in MESSAGES:
            raise InvalidArgument("prompt", f"unknown prompt {self.prompt!r}; valid: {', '.join(MESSAGES)}")


@dataclass(frozen=True)
class Resolved:
    """The settings for one benchmark, every default filled in."""

    benchmark: str
    k: int
    temperature: float
    top_p: float
    max_tokens: int
    prompt: str
    frame: str
    seed: int
    limit: int | None
    rated: bool

    def fingerprint(self) -> dict:
        """What a cached sample depends on: a cache written under other values is not reused. The limit is not
        part of it: a larger --limit extends a cached run."""
        return {"benchmark": self.benchmark, "k": self.k, "temperature": self.temperature, "top_p": self.top_p,
                "max_tokens": self.max_tokens, "prompt": self.prompt, "frame": self.frame, "seed": self.seed}


def protocol_for(name: str) -> BenchmarkProtocol:
    if name not in PROTOCOLS:
        raise InvalidArgument("benchmark", f"unknown benchmark {name!r}; valid: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def resolve(name: str, settings: EvalSettings) -> Resolved:
    settings.check()
    protocol = protocol_for(name)
    return Resolved(benchmark=name, k=settings.k or protocol.k, temperature=settings.temperature,
                    top_p=settings.top_p, max_tokens=settings.max_tokens or protocol.max_tokens,
                    prompt=settings.prompt or protocol.prompt, frame=settings.frame, seed=settings.seed,
                    limit=settings.limit, rated=protocol.rated)


def parse_benchmarks(text: str) -> list[str]:
    """"aime24,math500" -> ["aime24", "math500"], each checked, duplicates refused."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise InvalidArgument("benchmark", f"name at least one benchmark; valid: {', '.join(PROTOCOLS)}")
    for name in names:
        protocol_for(name)
    if len(set(names)) != len(names):
        raise InvalidArgument("benchmark", f"{text!r} names a benchmark twice")
    return names

