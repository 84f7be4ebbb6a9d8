"""Benchmark loaders: row counts as in ../shared/data/SOURCES.md, sane fields, the GPQA shuffle, errors."""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from r1.data import benchmarks as bm
from r1.data.benchmarks import LOADERS, codeforces_participant_ratings, load_benchmark, normalize_answer, read_rows
from r1.data.gpqa import shuffle_choices
from r1.errors import InvalidArgument, NotFound, Unavailable
from tests.paths import ROOT, SHARED_DATA

ROWS = {"aime24": 30, "aime25": 30, "amc23": 40, "math500": 500, "gpqa_diamond": 198, "codeforces": 408,
        "code_contests": 165, "humaneval": 164, "mbpp": 427, "synthetic": 200}
KINDS = {"aime24": "math", "aime25": "math", "amc23": "math", "math500": "math", "synthetic": "math",
         "gpqa_diamond": "choice", "codeforces": "code", "code_contests": "code", "humaneval": "code", "mbpp": "code"}

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is not on this machine")


@pytest.fixture(scope="module")
def loaded() -> dict:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not on this machine")
    return {name: load_benchmark(name, data_dir=SHARED_DATA) for name in LOADERS}


def test_the_registry_is_the_ten_benchmarks():
    assert sorted(LOADERS) == sorted(ROWS)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_counts_match_sources_and_fields_are_sane(loaded, name):
    records = loaded[name]
    assert len(records) == ROWS[name]
    assert len({r.id for r in records}) == len(records)  # ids unique within the benchmark
    for r in records:
        assert r.benchmark == name and r.kind == KINDS[name]
        assert r.problem and r.problem == r.problem.strip()
        if r.kind != "code":
            assert r.answer and r.answer == r.answer.strip()
        json.dumps(dict(r.metadata))  # plain JSON values


def test_math_answers_are_normalised(loaded):
    assert loaded["amc23"][0].answer == "27"
    assert not any(r.answer.endswith(".0") for r in loaded["amc23"])
    for name in ("aime24", "aime25"):
        assert all(r.answer.isdigit() and 0 <= int(r.answer) <= 999 for r in loaded[name]), name
    assert loaded["aime24"][0].answer == "204" and loaded["aime25"][0].answer == "70"
    assert sum(bool(r.reference_solution) for r in loaded["aime24"]) == 30
    assert not any(r.reference_solution for r in loaded["aime25"] + loaded["amc23"])


def test_math500_keeps_subject_level_and_solution(loaded):
    first = loaded["math500"][0]
    assert first.id == "test/precalculus/807.json"
    assert first.metadata == {"subject": "Precalculus", "level": 2, "unique_id": "test/precalculus/807.json"}
    assert first.answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert all("\\boxed" in r.reference_solution for r in loaded["math500"])
    assert {r.metadata["level"] for r in loaded["math500"]} == {1, 2, 3, 4, 5}
    assert len({r.metadata["subject"] for r in loaded["math500"]}) == 7


@pytest.mark.parametrize(("value", "text"), [(27.0, "27"), (204, "204"), ("27.0", "27"), (" 336 ", "336"),
                                             (0.5, "0.5"), ("\\frac{1}{2}", "\\frac{1}{2}"), (-3.0, "-3")])
def test_normalize_answer(value, text):
    assert normalize_answer(value) == text


# ------------------------------------------------------------------------------------------------ GPQA


def test_gpqa_choices_track_the_correct_text(loaded):
    raw = read_rows(SHARED_DATA / bm.DEFAULT_FILES["gpqa_diamond"])
    records = loaded["gpqa_diamond"]
    for row, r in zip(raw, records):
        assert r.id == str(row["id"])
        assert len(r.choices) == 4 and set(r.choices) == {o.strip() for o in row["options"]}
        assert r.choices["ABCD".index(r.answer)] == row["correct_answer"].strip()
        assert r.problem == row["ori_question"].strip()
        assert "\nA. " not in r.problem  # the stem only; the options are in `choices`


def test_gpqa_shuffle_is_deterministic_per_example_and_spread(loaded):
    records = loaded["gpqa_diamond"]
    again = load_benchmark("gpqa_diamond", data_dir=SHARED_DATA)
    assert [(r.choices, r.answer) for r in again] == [(r.choices, r.answer) for r in records]
    assert load_benchmark("gpqa_diamond", data_dir=SHARED_DATA, limit=5) == records[:5]
    counts = collections.Counter(r.answer for r in records)
    assert set(counts) == set("ABCD") and min(counts.values()) >= 30, counts
    # simple-evals' permutation, from one Random per example seeded by the benchmark and the record id
    permutation = random.Random("gpqa_diamond/0").sample(range(4), 4)
    choices, letter = shuffle_choices("right", ("w1", "w2", "w3"), "gpqa_diamond/0")
    assert choices == tuple(["right", "w1", "w2", "w3"][i] for i in permutation)
    assert choices["ABCD".index(letter)] == "right"


def test_gpqa_reads_the_original_release_columns(tmp_path):
    row = {"Record ID": "recX", "Question": " Q? ", "Correct Answer": "yes", "Incorrect Answer 1": "no",
           "Incorrect Answer 2": "maybe", "Incorrect Answer 3": "never", "High-level domain": "Physics"}
    (tmp_path / "gpqa_diamond.jsonl").write_text(json.dumps(row) + "\n")
    [r] = load_benchmark("gpqa_diamond", tmp_path / "gpqa_diamond.jsonl")
    assert (r.id, r.problem, r.metadata) == ("recX", "Q?", {"domain": "Physics"})
    assert r.choices["ABCD".index(r.answer)] == "yes"


# ------------------------------------------------------------------------------------------------ code


def test_codeforces_ids_tests_and_limits(loaded):
    records = loaded["codeforces"]
    ids = json.loads((SHARED_DATA / "codeforces" / "codeforces_problem_ids.json").read_text())
    assert [r.id for r in records] == ids
    first = records[0]
    assert first.metadata["problem_id"] == "1971A" and first.metadata["contest_id"] == 1971
    assert first.metadata["index"] == "A" and first.metadata["tags"] == ["implementation", "sortings"]
    assert first.metadata["time_limit_s"] == 1.0 and first.metadata["memory_limit_mb"] == 256
    assert first.problem.startswith("You are given two integers $x$ and $y$.")
    assert first.io_tests[0].stdin.startswith("10\n1 9\n") and first.io_tests[0].expected.startswith("1 9\n4 8")
    assert sum(len(r.io_tests) for r in records) == 468 and all(r.io_tests for r in records)
    assert not any("rating" in r.metadata for r in records)  # the offline data has no difficulty ratings


@pytest.mark.parametrize("shape", ["api", "map"])
def test_codeforces_ratings_file_in_either_shape(tmp_path, shape):
    for name in ("codeforces_test.json", "codeforces_problem_ids.json"):
        shutil.copy(SHARED_DATA / "codeforces" / name, tmp_path / name)
    ratings = ({"status": "OK", "result": {"problems": [
        {"contestId": 1971, "index": "A", "rating": 800}, {"contestId": 1971, "index": "B"}]}}
        if shape == "api" else {"1971A": 800})
    (tmp_path / "codeforces_problem_ratings.json").write_text(json.dumps(ratings))
    records = load_benchmark("codeforces", tmp_path)
    assert records[0].metadata["rating"] == 800
    assert [r.id for r in records if "rating" in r.metadata] == ["1971A"]


def test_codeforces_tests_may_be_a_python_literal_string(tmp_path):
    row = {"problem": "Echo.", "tests": repr([{"input": "1\n", "output": "1\n"}, {"input": "2", "output": "2"}])}
    (tmp_path / "codeforces_test.json").write_text(json.dumps([row]))
    (tmp_path / "codeforces_problem_ids.json").write_text(json.dumps(["2000B"]))
    [r] = load_benchmark("codeforces", tmp_path / "codeforces_test.json")
    assert [(t.stdin, t.expected) for t in r.io_tests] == [("1\n", "1\n"), ("2", "2")]
    assert r.metadata == {"problem_id": "2000B", "contest_id": 2000, "index": "B"}
    (tmp_path / "codeforces_test.json").write_text(json.dumps([{"problem": "x", "tests": "__import__('os')"}]))
    with pytest.raises(InvalidArgument, match="Python literal"):
        load_benchmark("codeforces", tmp_path / "codeforces_test.json")


def test_codeforces_participant_ratings():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not on this machine")
    ratings = codeforces_participant_ratings(SHARED_DATA)
    assert len(ratings) == 2502 and all(isinstance(k, int) and isinstance(v, int) for k, v in ratings.items())
    assert ratings[-53] == 2
    with pytest.raises(NotFound, match="codeforces_ratings_2024.json"):
        codeforces_participant_ratings(SHARED_DATA / "nowhere")


def test_code_contests_tests(loaded):
    records = loaded["code_contests"]
    counts = [len(r.io_tests) for r in records]
    assert min(counts) == 1 and max(counts) == 138 and round(sum(counts) / len(counts), 1) == 11.1
    assert records[0].metadata == {"time_limit_s": 2.0, "memory_limit_mb": 512}
    assert records[0].io_tests[0].stdin == "5 2\nAA\nAB\nBB\nBA\nAZ\n"


def test_humaneval_and_mbpp_fields(loaded):
    he = loaded["humaneval"][0]
    assert he.id == "HumanEval/0" and he.entry_point == "has_close_elements"
    assert he.starter_code.strip() == he.problem and he.reference_solution.startswith(he.starter_code)
    assert len(he.assert_tests) == 1 and "def check(candidate)" in he.assert_tests[0]
    mb = loaded["mbpp"][0]
    assert (mb.id, mb.entry_point) == ("MbppEval/2", "similar_elements")
    assert mb.problem == "Write a function to find the shared elements from the given two lists."
    assert mb.starter_code.startswith("def similar_elements(") and "'''" not in mb.reference_solution
    compile(mb.reference_solution, "mbpp", "exec")
    assert all(r.assert_tests and r.entry_point and r.reference_solution for r in loaded["mbpp"])
    uses_math = [r for r in loaded["mbpp"] if "math." in r.assert_tests[0]]
    assert uses_math and all("import math" in r.assert_tests[0] for r in uses_math)


def test_synthetic_is_the_teacher_recipes_heldout_set(loaded):
    from r1.rl.recipe import heldout_problems  # imports torch: only here, the loader itself does not

    expected = heldout_problems("recipes/tiny-teacher.yaml")
    records = loaded["synthetic"]
    assert [(r.id, r.problem, r.answer) for r in records] == [(p.id, p.prompt, p.answer) for p in expected]
    assert {r.metadata["task"] for r in records} == {"word", "linear"}


def test_loading_benchmarks_does_not_import_torch():
    code = ("import sys; from r1.data.benchmarks import load_benchmark; load_benchmark('synthetic', limit=1); "
            "load_benchmark('math500', limit=1); print('torch' in sys.modules, 'datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


# ------------------------------------------------------------------------------------------------ sources and errors


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(InvalidArgument, match="unknown benchmark 'aime23'; valid: aime24, aime25") as e:
        load_benchmark("aime23")
    assert e.value.field == "benchmark" and "synthetic" in str(e.value)


def test_missing_file_names_the_expected_path(tmp_path):
    with pytest.raises(NotFound, match=f"{tmp_path}/math500/test.jsonl.*R1_DATA_DIR"):
        load_benchmark("math500", data_dir=tmp_path)
    with pytest.raises(NotFound, match="neither math500/test.jsonl nor test.jsonl"):
        load_benchmark("math500", tmp_path)
    with pytest.raises(NotFound, match="no such file"):
        load_benchmark("math500", tmp_path / "missing.jsonl")
    with pytest.raises(NotFound, match="no such file"):
        load_benchmark("aime24", "aime24/test.jsonl")  # a relative path, not a hub id
    with pytest.raises(InvalidArgument, match="limit"):
        load_benchmark("aime24", data_dir=SHARED_DATA, limit=-1)


@needs_data
def test_data_dir_from_env_and_default(monkeypatch, tmp_path):
    monkeypatch.delenv(bm.DATA_ENV, raising=False)
    assert bm.default_data_dir() == SHARED_DATA
    monkeypatch.setenv(bm.DATA_ENV, str(tmp_path))
    with pytest.raises(NotFound, match=str(tmp_path)):
        load_benchmark("aime25")
    (tmp_path / "aime25").mkdir()
    shutil.copy(SHARED_DATA / "aime25" / "test.jsonl", tmp_path / "aime25" / "test.jsonl")
    assert len(load_benchmark("aime25")) == 30
    # a source directory in the data-dir layout, or holding the file itself
    assert len(load_benchmark("aime25", tmp_path)) == len(load_benchmark("aime25", tmp_path / "aime25")) == 30


def test_jsonl_is_split_on_newlines_only(tmp_path):
    rows = [{"problem": "a\u2028b", "answer": 1}, {"problem": "c\u2029d", "answer": 2.0}]
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    records = load_benchmark("amc23", path)
    assert [(r.problem, r.answer) for r in records] == [("a\u2028b", "1"), ("c\u2029d", "2")]


class FakeHub:
    def __init__(self, rows=None, error=None):
        self.rows, self.error, self.calls = rows, error, []

    def __call__(self, repo, config=None, split=None):
        self.calls.append((repo, config, split))
        if self.error:
            raise self.error
        return self.rows


def test_hub_ids_go_through_datasets(monkeypatch):
    datasets = pytest.importorskip("datasets")
    hub = FakeHub(rows=[{"problem": "1+1?", "answer": 2, "solution": "\\boxed{2}", "level": 1,
                         "subject": "Algebra", "unique_id": "u/1"}])
    monkeypatch.setattr(datasets, "load_dataset", hub)
    [r] = load_benchmark("math500", "HuggingFaceH4/MATH-500")
    assert (r.id, r.answer, r.metadata["subject"]) == ("u/1", "2", "Algebra")
    load_benchmark("math500", "someone/math:main@validation")
    assert hub.calls == [("HuggingFaceH4/MATH-500", None, "test"), ("someone/math", "main", "validation")]


def test_an_unreachable_hub_says_so_and_how_to_pass_a_local_file(monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets, "load_dataset", FakeHub(error=ConnectionError("Couldn't reach the Hub")))
    with pytest.raises(Unavailable, match="unreachable.*pass a local file.*gpqa_diamond.zip"):
        load_benchmark("gpqa_diamond", "Idavidrein/gpqa:gpqa_diamond")


def test_a_bad_hub_id_fails_offline_for_real():
    pytest.importorskip("datasets")
    code = ("from r1.data.benchmarks import load_benchmark\n"
            "try:\n    load_benchmark('aime24', 'nobody/no-such-dataset')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.startswith("Unavailable aime24: could not load 'nobody/no-such-dataset'"), out.stdout + out.stderr
    assert "pass a local file" in out.stdout


def test_synthetic_sources(tmp_path):
    from r1.data.synthetic import generate, to_jsonl

    to_jsonl(generate("word", 3, seed=1), tmp_path / "problems.jsonl")
    records = load_benchmark("synthetic", tmp_path / "problems.jsonl")
    assert [r.id for r in records] == [p.id for p in generate("word", 3, seed=1)]
    with pytest.raises(NotFound, match="recipe YAML"):
        load_benchmark("synthetic", tmp_path / "none.yaml")
