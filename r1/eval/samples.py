"""The on-disk sample cache that makes an evaluation resumable: one JSONL file per benchmark.

The first line is a header: the resolved settings' fingerprint plus the model id and weight version the
samples came from. Each further line is one question's k graded samples, appended and flushed as soon as the
question is verified, so a killed run loses at most the questions in flight. Choices:
- A question is the unit written: its samples are verified together, and cons@k needs all of them.
- Reopening checks the header. Samples drawn under other settings or from another model are never mixed into
  the numbers: the run stops and says which value differs and how to proceed (another --output, or --fresh).
- A torn last line (the process died while writing) is dropped and rewritten on resume; any other unreadable
  line is an error naming the file and line, since silently skipping it would bias the score.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from r1.errors import FailedPrecondition, InvalidArgument


@dataclass(frozen=True)
class GradedSample:
    """One response: text, generated tokens, why it stopped, and the verifier's reading of it."""

    text: str
    tokens: int
    finish_reason: str
    reward: float
    verdict: str
    extracted: str
    correct: bool
    weight_version: int = 0


@dataclass(frozen=True)
class QuestionResult:
    id: str
    samples: tuple[GradedSample, ...]

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "samples": [asdict(s) for s in self.samples]}, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> QuestionResult:
        data = json.loads(line)
        return cls(data["id"], tuple(GradedSample(**s) for s in data["samples"]))


class SampleCache:
    """`cache = SampleCache(path, header)`; `cache.done` maps question id -> result; `cache.append(result)`."""

    def __init__(self, path: str | os.PathLike, header: dict, fresh: bool = False):
        self.path = Path(path)
        self.header = header
        self.done: dict[str, QuestionResult] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fresh or not self.path.exists() or self.path.stat().st_size == 0:
            self._write_lines([json.dumps({"header": header})])
        else:
            self._load()

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").split("\n")
        torn = bool(lines) and lines[-1] != ""  # a complete file ends in "\n"
        try:
            found = json.loads(lines[0])["header"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InvalidArgument("output", f"{self.path}: line 1 is not a sample-cache header; delete the file "
                                            f"or pass --fresh") from None
        differing = sorted(key for key in {*found, *self.header} if found.get(key) != self.header.get(key))
        if differing:
            changes = "; ".join(f"{key}: cached {found.get(key)!r}, now {self.header.get(key)!r}"
                                for key in differing)
            raise FailedPrecondition(f"{self.path} holds samples drawn under other settings ({changes}); "
                                     f"evaluate into another --output directory, or pass --fresh to discard them")
        body = lines[1:-1] if torn else lines[1:]
        for number, line in enumerate(body, start=2):
            if not line:
                continue
            try:
                result = QuestionResult.from_json(line)
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InvalidArgument("output", f"{self.path}: line {number} is unreadable ({e}); delete the "
                                                f"file or pass --fresh") from None
            self.done[result.id] = result
        if torn:  # rewrite without the partial line so that appends start on a line of their own
            self._write_lines([json.dumps({"header": found}), *(r.to_json() for r in self.done.values())])

    def _write_lines(self, lines: Iterable[str]) -> None:
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)

    def append(self, result: QuestionResult) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(result.to_json() + "\n")
            f.flush()
        self.done[result.id] = result
