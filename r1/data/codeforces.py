"""Competitive-programming rows (Codeforces, CodeContests) -> stdin/stdout code `EvalRecord`s.

Codeforces (the DeepCoder/rllm test set, `codeforces/` in ../shared/data):
- `codeforces_test.json`: [{problem, tests}], `tests` a list of {input, output} (or the same list written as
  a Python-literal string, as other rllm exports do: parsed with `ast.literal_eval`, never `eval`);
- `codeforces_problem_ids.json`: the ids ("1971A"), aligned with the tests file by position, which give
  metadata problem_id / contest_id / index;
- `codeforces_problem_ratings.json` (optional, not in the offline data): difficulty ratings, either the
  Codeforces API's `problemset.problems` response ({"status": "OK", "result": {"problems": [{"contestId",
  "index", "rating"}, ...]}}) or a plain {"1971A": 800} map; metadata["rating"] is absent when unknown;
- `codeforces_ratings_2024.json`: rating -> number of rated participants (for the percentile).
The statement's trailing "Tags:", "Time Limit: N ms" and "Memory Limit: N MB" lines are also parsed into
metadata (tags, time_limit_s, memory_limit_mb). The tests are mostly only the public examples, and no
special checker exists, so problems with several valid outputs can be judged wrong.

CodeContests (`code_contests/code_contests_test.json`: [{problem, tests: {inputs, outputs}}], or DeepMind's
hub rows with description and public/private/generated tests): ids are row positions (the file has no
names) or the hub row's `name`.

Deliberately not done: the per-problem limits are kept as metadata only; checks use the verifier's default
limits (Python is slower than the C++ the limits were set for).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from r1.data.records import EvalRecord
from r1.errors import InvalidArgument
from r1.rewards.code import IOTest

IDS_FILE = "codeforces_problem_ids.json"
PROBLEM_RATINGS_FILE = "codeforces_problem_ratings.json"
PARTICIPANT_RATINGS_FILE = "codeforces_ratings_2024.json"

_PROBLEM_ID = re.compile(r"(\d+)([A-Z][0-9]?)")
_TIME_MS = re.compile(r"^Time Limit: (\d+(?:\.\d+)?) ms\s*$", re.MULTILINE)
_MEMORY_MB = re.compile(r"^Memory Limit: (\d+) MB\s*$", re.MULTILINE)
_TAGS = re.compile(r"^Tags:\n(\[.*?\])\s*$", re.MULTILINE)
_CC_TIME = re.compile(r"^Time Limit: (\{.*?\})\s*$", re.MULTILINE)
_CC_MEMORY = re.compile(r"^Memory Limit: (\d+) Bytes\s*$", re.MULTILINE)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise InvalidArgument("source", f"{path} is not valid JSON: {e}") from None


def parse_tests(tests: Any, where: str) -> tuple[IOTest, ...]:
    """[{input, output}, ...], a Python-literal string of that list, or {inputs: [...], outputs: [...]}."""
    if isinstance(tests, str):
        try:
            tests = ast.literal_eval(tests)
        except (ValueError, SyntaxError) as e:
            raise InvalidArgument(where, f"not a Python literal: {e}") from None
    if isinstance(tests, Mapping) and "inputs" in tests:
        inputs, outputs = tests["inputs"], tests["outputs"]
        if len(inputs) != len(outputs):
            raise InvalidArgument(where, f"{len(inputs)} inputs but {len(outputs)} outputs")
        return tuple(IOTest(i, o) for i, o in zip(inputs, outputs))
    if isinstance(tests, Sequence) and all(isinstance(t, Mapping) and {"input", "output"} <= set(t) for t in tests):
        return tuple(IOTest(t["input"], t["output"]) for t in tests)
    raise InvalidArgument(where, "expected a list of {input, output} or {inputs, outputs}, "
                                 f"got {type(tests).__name__}")


def problem_metadata(problem_id: str) -> dict[str, Any]:
    """"1971A" -> {"problem_id": "1971A", "contest_id": 1971, "index": "A"}."""
    match = _PROBLEM_ID.fullmatch(problem_id)
    if not match:
        return {"problem_id": problem_id}
    return {"problem_id": problem_id, "contest_id": int(match[1]), "index": match[2]}


def statement_metadata(text: str) -> dict[str, Any]:
    """Tags and limits from the trailing lines of an rllm Codeforces statement."""
    found: dict[str, Any] = {}
    if match := _TAGS.search(text):
        try:
            found["tags"] = [str(t) for t in ast.literal_eval(match[1])]
        except (ValueError, SyntaxError):
            pass
    if match := _TIME_MS.search(text):
        found["time_limit_s"] = float(match[1]) / 1000
    if match := _MEMORY_MB.search(text):
        found["memory_limit_mb"] = int(match[1])
    return found


def read_problem_ratings(path: Path) -> dict[str, int]:
    """Problem id -> difficulty rating, from either accepted shape (see the module docstring)."""
    data = read_json(path)
    if isinstance(data, Mapping) and "result" in data:
        problems = data["result"].get("problems") if isinstance(data["result"], Mapping) else None
        if not isinstance(problems, list):
            raise InvalidArgument("source", f"{path}: expected result.problems to be a list")
        return {f"{p['contestId']}{p['index']}": int(p["rating"]) for p in problems
                if isinstance(p, Mapping) and p.get("rating") is not None and "contestId" in p and "index" in p}
    if isinstance(data, Mapping) and all(isinstance(v, (int, float)) for v in data.values()):
        return {str(k): int(v) for k, v in data.items()}
    raise InvalidArgument("source", f"{path}: expected the Codeforces API problemset.problems response or a "
                                    '{"1971A": 800} map')


def read_participant_ratings(path: Path) -> dict[int, int]:
    """Rating -> participant count (the file's keys are strings)."""
    data = read_json(path)
    if not isinstance(data, Mapping):
        raise InvalidArgument("source", f"{path}: expected a {{rating: count}} object")
    return {int(k): int(v) for k, v in data.items()}


def codeforces_records(rows: Sequence[Mapping[str, Any]], ids: Sequence[str] | None,
                       ratings: Mapping[str, int], benchmark: str = "codeforces") -> list[EvalRecord]:
    """Rows [{problem, tests}] with their aligned ids (None: ids are positions, no contest metadata)."""
    if ids is not None and len(ids) != len(rows):
        raise InvalidArgument("source", f"{len(rows)} problems but {len(ids)} problem ids; the two files must "
                                        "be aligned by position")
    records = []
    for i, row in enumerate(rows):
        problem_id = str(ids[i]) if ids is not None else str(row.get("id", i))
        metadata = {**(problem_metadata(problem_id) if ids is not None or "id" in row else {}),
                    **statement_metadata(row["problem"])}
        if problem_id in ratings:
            metadata["rating"] = ratings[problem_id]
        records.append(EvalRecord(id=problem_id, benchmark=benchmark, kind="code", problem=row["problem"].strip(),
                                  io_tests=parse_tests(row["tests"], f"rows[{i}].tests"), metadata=metadata))
    return records


def code_contests_record(row: Mapping[str, Any], index: int, benchmark: str = "code_contests") -> EvalRecord:
    """A row of the rllm file ({problem, tests}) or of DeepMind's hub dataset (description, *_tests)."""
    if "description" in row:  # deepmind/code_contests
        tests = tuple(IOTest(i, o) for split in ("public_tests", "private_tests", "generated_tests")
                      for i, o in zip(row.get(split, {}).get("input", []), row.get(split, {}).get("output", [])))
        return EvalRecord(id=str(row.get("name") or index), benchmark=benchmark, kind="code",
                          problem=row["description"].strip(), io_tests=tests)
    if "problem" not in row or "tests" not in row:
        raise InvalidArgument(f"rows[{index}]", f"expected 'problem' and 'tests', got {sorted(row)}")
    metadata: dict[str, Any] = {}
    if match := _CC_TIME.search(row["problem"]):
        try:
            limit = ast.literal_eval(match[1])
            metadata["time_limit_s"] = limit.get("seconds", 0) + limit.get("nanos", 0) / 1e9
        except (ValueError, SyntaxError, AttributeError):
            pass
    if match := _CC_MEMORY.search(row["problem"]):
        metadata["memory_limit_mb"] = int(match[1]) // 1_000_000
    return EvalRecord(id=str(row.get("id", index)), benchmark=benchmark, kind="code", problem=row["problem"].strip(),
                      io_tests=parse_tests(row["tests"], f"rows[{index}].tests"), metadata=metadata)
