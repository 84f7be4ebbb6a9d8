"""Benchmark loaders: every evaluation benchmark, from its offline file or a hub id, as `EvalRecord`s.

`load_benchmark(name, source=None, *, data_dir=None, limit=None)` looks `name` up in `LOADERS` (one explicit
dict; an unknown name fails with the valid ones) and returns the first `limit` records.

Where the rows come from (`source`):
- None: the benchmark's default file under the data directory: `data_dir`, else env R1_DATA_DIR, else
  `../shared/data` beside the repository (found from this package, then from the working directory).
  The layout and files are those of ../shared/data/SOURCES.md (`DEFAULT_FILES`).
- a local file, or a directory holding the default file (in the data-dir layout or directly);
- otherwise an "owner/name" Hugging Face hub id, loaded with `datasets.load_dataset` (optionally
  "owner/name:config@split"; the split defaults to `HUB_SPLITS` or "test"). Rows must have the local
  file's fields, or a known upstream schema (GPQA's original columns, DeepMind's code_contests). Offline
  the hub is unreachable: the error says so and how to pass a local file instead.
- synthetic: a pretrain recipe YAML (default recipes/tiny-teacher.yaml: its held-out problems, exactly
  `r1.rl.recipe.heldout_problems`, computed without importing torch) or a problems JSONL (`to_jsonl`).

Normalisation: answers are strings; integral numbers lose their ".0" (AMC's 27.0 -> "27", AIME's ints).
MATH-500 keeps subject/level/unique_id in metadata and its worked solution as reference_solution.
HumanEval/MBPP: starter_code is the prompt, assert_tests the `check(candidate)` block, entry_point the
function; MBPP's reference program is the prompt without its docstring (the canonical body is indented
differently) plus the body, and tests that use `math.` get back the `import math` the HumanEval-style
conversion dropped. JSONL is split on "\\n" only (some rows hold U+2028).

Deliberately not done: downloading anything when `source` is None; caching hub datasets ourselves.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from r1.data import codeforces as cf
from r1.data.gpqa import gpqa_record, read_zip_member
from r1.data.records import EvalRecord
from r1.data.synthetic import Problem, from_jsonl, split
from r1.errors import InvalidArgument, NotFound, Unavailable

__all__ = ["LOADERS", "DEFAULT_FILES", "load_benchmark", "default_data_dir", "codeforces_participant_ratings",
           "normalize_answer", "read_rows", "synthetic_heldout"]

ROOT = Path(__file__).resolve().parents[2]
DATA_ENV = "R1_DATA_DIR"
DEFAULT_TEACHER_RECIPE = ROOT / "recipes" / "tiny-teacher.yaml"

DEFAULT_FILES: dict[str, str] = {
    "aime24": "aime24/test.jsonl",
    "aime25": "aime25/test.jsonl",
    "amc23": "amc23/test.jsonl",
    "math500": "math500/test.jsonl",
    "gpqa_diamond": "gpqa_diamond/gpqa_diamond.zip",
    "codeforces": "codeforces/codeforces_test.json",
    "code_contests": "code_contests/code_contests_test.json",
    "humaneval": "humaneval/HumanEval.jsonl.gz",
    "mbpp": "mbpp/mbpp_sanitized_for_code_generation.jsonl",
}
HUB_SPLITS = {"gpqa_diamond": "train"}  # Idavidrein/gpqa has only a train split
_DATA_SUFFIXES = (".json", ".jsonl", ".gz", ".zip", ".csv", ".parquet", ".yaml", ".yml", ".txt")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(?::[\w.-]+)?(?:@[\w.\[\]:%+-]+)?")
_DOCSTRING = re.compile(r"^[ \t]*'''.*?'''[ \t]*\n", re.DOTALL | re.MULTILINE)
_DOCSTRING_TEXT = re.compile(r"'''(.*?)'''|\"\"\"(.*?)\"\"\"", re.DOTALL)


# ------------------------------------------------------------------------------------------ where rows come from


def default_data_dir() -> Path:
    """env R1_DATA_DIR, else the first existing `../shared/data` beside the repository or the working
    directory (the package-relative one when none exists, so the missing-file error names it)."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    candidates = [ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data",
                  Path.cwd() / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def _missing(name: str, path: Path, why: str = "") -> NotFound:
    return NotFound(f"{name}: {why or 'benchmark file not found'}: {path}. Put the file there (the layout of "
                    f"../shared/data, see its SOURCES.md), point {DATA_ENV} or data_dir at the data directory, "
                    f"or pass source= a local file or a Hugging Face hub id")


def looks_like_hub_id(source: str) -> bool:
    return bool(_HUB_ID.fullmatch(source)) and not source.lower().endswith(_DATA_SUFFIXES)


def resolve_local(name: str, source: str | os.PathLike | None, data_dir: str | os.PathLike | None) -> Path | None:
    """The local file to read, or None when `source` is a hub id; NotFound names the expected file."""
    relative = Path(DEFAULT_FILES[name])
    if source is None:
        path = Path(data_dir) if data_dir is not None else default_data_dir()
        if not (path / relative).is_file():
            raise _missing(name, path / relative)
        return path / relative
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in (path / relative, path / relative.name):
            if candidate.is_file():
                return candidate
        raise _missing(name, path / relative, f"directory {path} holds neither {relative} nor {relative.name}")
    if isinstance(source, str) and looks_like_hub_id(source):
        return None
    raise _missing(name, path, "no such file or directory (and not an owner/name hub id)")


def load_hub_rows(name: str, hub_id: str) -> list[dict[str, Any]]:
    """Rows of "owner/name[:config][@split]" through `datasets.load_dataset`; Unavailable when the hub
    cannot be reached (or the id does not exist there)."""
    repo, _, split_name = hub_id.partition("@")
    repo, _, config = repo.partition(":")
    split_name = split_name or HUB_SPLITS.get(name, "test")
    try:
        import datasets  # lazy: heavy, and only needed off the offline path
    except ImportError as e:
        raise Unavailable(f"{name}: loading {hub_id!r} from the hub needs the `datasets` package ({e}); "
                          "pass a local file as source instead") from None
    try:
        dataset = datasets.load_dataset(repo, config or None, split=split_name)
    except Exception as e:  # ConnectionError offline, DatasetNotFoundError, gated repos, bad split, ...
        default = DEFAULT_FILES.get(name, "<file>")
        raise Unavailable(
            f"{name}: could not load {hub_id!r} from the Hugging Face hub ({type(e).__name__}: {e}). The hub is "
            f"unreachable from here or the id/config/split is wrong; offline, pass a local file instead, e.g. "
            f"load_benchmark({name!r}, source='/path/to/{default}'), or set {DATA_ENV} to a directory in the "
            f"../shared/data layout") from None
    return [dict(row) for row in dataset]


def _jsonl(text: str, path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(text.split("\n"), 1):  # "\n" only: rows may hold U+2028
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise InvalidArgument("source", f"{path} line {n}: not valid JSON ({e})") from None
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl, .jsonl.gz, .json (a list), .csv or password-protected (GPQA) .zip file."""
    name = path.name.lower()
    if name.endswith(".zip"):
        member, text = read_zip_member(path)
        return list(csv.DictReader(io.StringIO(text))) if member.endswith(".csv") else _text_rows(text, path)
    if name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            return _text_rows(f.read(), path)
    if name.endswith(".csv"):
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    return _text_rows(path.read_text(encoding="utf-8"), path)


def _text_rows(text: str, path: Path) -> list[dict[str, Any]]:
    if text.lstrip().startswith("["):
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise InvalidArgument("source", f"{path}: expected a JSON list of rows")
        return rows
    return _jsonl(text, path)


def rows_for(name: str, source: str | os.PathLike | None, data_dir) -> tuple[list[dict[str, Any]], Path | None]:
    path = resolve_local(name, source, data_dir)
    return (read_rows(path), path) if path is not None else (load_hub_rows(name, str(source)), None)


def _field(row: Mapping[str, Any], index: int, *names: str) -> Any:
    for key in names:
        if key in row and row[key] is not None:
            return row[key]
    raise InvalidArgument(f"rows[{index}]", f"missing field {' or '.join(map(repr, names))}; got {sorted(row)}")


# ------------------------------------------------------------------------------------------------ math


def normalize_answer(value: Any) -> str:
    """A gold answer as a string: 27.0 -> "27", 204 -> "204", "27.0" -> "27"; other text stripped."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return re.sub(r"^(-?\d+)\.0+$", r"\1", text)


def _math_loader(benchmark: str, metadata_keys: tuple[str, ...] = (), id_key: str = "id") -> Callable:
    def load(source, data_dir) -> list[EvalRecord]:
        rows, _ = rows_for(benchmark, source, data_dir)
        return [EvalRecord(id=str(row.get(id_key, i)), benchmark=benchmark, kind="math",
                           problem=str(_field(row, i, "problem", "question", "Problem")).strip(),
                           answer=normalize_answer(_field(row, i, "answer", "Answer")),
                           reference_solution=str(row.get("solution") or ""),
                           metadata={k: row[k] for k in metadata_keys if k in row})
                for i, row in enumerate(rows)]
    load.__name__ = f"load_{benchmark}"
    return load


# ------------------------------------------------------------------------------------------------ choice


def load_gpqa_diamond(source, data_dir) -> list[EvalRecord]:
    rows, _ = rows_for("gpqa_diamond", source, data_dir)
    return [gpqa_record(row, i) for i, row in enumerate(rows)]


# ------------------------------------------------------------------------------------------------ code


def load_codeforces(source, data_dir) -> list[EvalRecord]:
    rows, path = rows_for("codeforces", source, data_dir)
    ids = ratings = None
    if path is not None:
        ids_path, ratings_path = path.parent / cf.IDS_FILE, path.parent / cf.PROBLEM_RATINGS_FILE
        ids = cf.read_json(ids_path) if ids_path.is_file() else None
        ratings = cf.read_problem_ratings(ratings_path) if ratings_path.is_file() else None
    return cf.codeforces_records(rows, ids, ratings or {})


def codeforces_participant_ratings(data_dir: str | os.PathLike | None = None) -> dict[int, int]:
    """Rating -> number of 2024 rated participants (codeforces/codeforces_ratings_2024.json)."""
    path = (Path(data_dir) if data_dir is not None else default_data_dir()) / "codeforces" / cf.PARTICIPANT_RATINGS_FILE
    if not path.is_file():
        raise _missing("codeforces", path, "participant ratings not found")
    return cf.read_participant_ratings(path)


def load_code_contests(source, data_dir) -> list[EvalRecord]:
    rows, _ = rows_for("code_contests", source, data_dir)
    return [cf.code_contests_record(row, i) for i, row in enumerate(rows)]


def load_humaneval(source, data_dir) -> list[EvalRecord]:
    rows, _ = rows_for("humaneval", source, data_dir)
    return [_function_record("humaneval", row, i, row["prompt"] + row["canonical_solution"], row["test"])
            for i, row in enumerate(rows)]


def load_mbpp(source, data_dir) -> list[EvalRecord]:
    rows, _ = rows_for("mbpp", source, data_dir)
    records = []
    for i, row in enumerate(rows):
        program = _DOCSTRING.sub("", row["prompt"], count=1) + row["canonical_solution"]
        test = ("import math\n" if "math." in row["test"] and "import math" not in row["test"] else "") + row["test"]
        records.append(_function_record("mbpp", row, i, program, test))
    return records


def _function_record(benchmark: str, row: Mapping[str, Any], index: int, program: str, test: str) -> EvalRecord:
    """A HumanEval-style row (task_id, prompt, canonical_solution, test, entry_point)."""
    for key in ("task_id", "prompt", "canonical_solution", "test", "entry_point"):
        _field(row, index, key)
    docstring = _DOCSTRING_TEXT.search(row["prompt"])
    statement = " ".join((docstring[1] or docstring[2]).split()) if benchmark == "mbpp" and docstring \
        else row["prompt"].strip()
    return EvalRecord(id=str(row["task_id"]), benchmark=benchmark, kind="code", problem=statement,
                      assert_tests=(test,), entry_point=row["entry_point"], starter_code=row["prompt"],
                      reference_solution=program)


# ------------------------------------------------------------------------------------------------ synthetic


def synthetic_heldout(recipe_path: str | os.PathLike) -> list[Problem]:
    """The held-out problems of a pretrain recipe: `r1.model.pretrain.problems(recipe.data)[1]`, rebuilt from
    the YAML's `data` section without importing torch (each task split on its own, its share of n_heldout)."""
    from r1.config import read_yaml

    data = read_yaml(recipe_path).get("data") or {}
    missing = [k for k in ("tasks", "n_train", "n_heldout", "seed") if k not in data]
    if missing:
        raise InvalidArgument("source", f"{recipe_path}: data section lacks {missing}; use "
                                        "r1.rl.recipe.heldout_problems for recipes that rely on defaults")
    tasks, difficulty = list(data["tasks"]), data.get("difficulty") or {}
    heldout: list[Problem] = []
    for k, task in enumerate(tasks):
        share_train = data["n_train"] // len(tasks) + (k < data["n_train"] % len(tasks))
        share_heldout = data["n_heldout"] // len(tasks) + (k < data["n_heldout"] % len(tasks))
        levels = difficulty.get(task)
        heldout += split([task], share_train, share_heldout, data["seed"], tuple(levels) if levels else None)[1]
    return heldout


def load_synthetic(source, data_dir) -> list[EvalRecord]:
    path = Path(source) if source is not None else DEFAULT_TEACHER_RECIPE
    if not path.is_file():
        raise NotFound(f"synthetic: {path} not found; pass a pretrain recipe YAML (default "
                       f"{DEFAULT_TEACHER_RECIPE.relative_to(ROOT)}) or a problems JSONL (no hub source)")
    problems = from_jsonl(path) if path.suffix == ".jsonl" else synthetic_heldout(path)
    return [EvalRecord(id=p.id, benchmark="synthetic", kind="math", problem=p.prompt, answer=p.answer,
                       reference_solution=p.solution, metadata={"task": p.task, "difficulty": p.difficulty})
            for p in problems]


# ------------------------------------------------------------------------------------------------ registry

Loader = Callable[[Any, Any], list[EvalRecord]]

LOADERS: dict[str, Loader] = {
    "aime24": _math_loader("aime24"),
    "aime25": _math_loader("aime25"),
    "amc23": _math_loader("amc23"),
    "math500": _math_loader("math500", ("subject", "level", "unique_id"), id_key="unique_id"),
    "gpqa_diamond": load_gpqa_diamond,
    "codeforces": load_codeforces,
    "code_contests": load_code_contests,
    "humaneval": load_humaneval,
    "mbpp": load_mbpp,
    "synthetic": load_synthetic,
}


def load_benchmark(name: str, source: str | os.PathLike | None = None, *, data_dir: str | os.PathLike | None = None,
                   limit: int | None = None) -> list[EvalRecord]:
    """The records of benchmark `name` (see the module docstring for `source` and `data_dir`); the first
    `limit` of them when set."""
    if name not in LOADERS:
        raise InvalidArgument("benchmark", f"unknown benchmark {name!r}; valid: {', '.join(LOADERS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidArgument("limit", f"must be a non-negative integer or None, got {limit!r}")
    records = LOADERS[name](source, data_dir)
    return records[:limit] if limit is not None else records
