"""`r1 verify`: a JSONL file in, the same lines with results out; the same file in-process and remote."""

from __future__ import annotations

import json

import pytest

from r1.cli import main

LINES = [
    {"id": "m", "kind": "math", "response": "so \\boxed{\\frac{1}{2}}", "reference": "0.5"},
    {"id": "aime", "kind": "math", "response": "The final answer is 204.", "reference": 204, "profile": "lenient"},
    {"id": "c", "kind": "choice", "response": "**Answer: (B)**", "reference": "B", "choices": ["1", "2", "3", "4"]},
    {"id": "py", "kind": "code", "response": "```python\nprint(sum(map(int, input().split())))\n```",
     "tests": [{"input": "1 2", "output": "3"}, {"input": "5 5", "output": "11"}],
     "limits": {"time_limit_seconds": 2}},
    {"id": "cpp", "kind": "code", "language": "cpp",
     "source": "#include <iostream>\nint main(){double x; std::cin >> x; std::cout << x / 3;}",
     "response": "", "tests": [{"input": "1", "output": "0.3333"}], "float_tolerance": 1e-3},
    {"id": "he", "kind": "code", "response": "def add(a, b):\n    return a + b",
     "assert_tests": "def check(candidate):\n    assert candidate(2, 3) == 5", "entry_point": "add"},
    {"id": "f", "kind": "format", "response": "reasoning</think><answer>4</answer>", "think_prefilled": True},
    {"id": "l", "kind": "language", "response": "<think>the answer is four</think>4", "reference": "en",
     "dataset": "demo"},
]
EXPECTED = {"m": "CORRECT", "aime": "CORRECT", "c": "CORRECT", "py": "WRONG", "cpp": "CORRECT", "he": "CORRECT",
            "f": "CORRECT", "l": "CORRECT"}


@pytest.fixture
def input_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in LINES) + "\n")
    return path


def test_in_process_and_through_the_service_write_the_same_file(server, input_file, tmp_path):
    local, remote = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    assert main(["verify", "--input", str(input_file), "--output", str(local)]) == 0
    assert main(["verify", "--input", str(input_file), "--output", str(remote), "--target", server.target]) == 0
    assert local.read_text() == remote.read_text()
    out = [json.loads(line) for line in local.read_text().splitlines()]
    assert {o["id"]: o["verdict"] for o in out} == EXPECTED
    assert [o["id"] for o in out] == [line["id"] for line in LINES]  # input order
    py = next(o for o in out if o["id"] == "py")
    assert (py["reward"], py["tests_passed"], py["tests_total"]) == (0.5, 1, 2)
    assert out[-1]["dataset"] == "demo"  # unknown keys pass through


def test_unreadable_lines_are_answered_in_place_and_the_exit_status_says_so(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"kind": "choice", "response": "Answer: A", "reference": "A"}\n{not json\n'
                     b'{"kind": "choice", "response": "\xff Answer: B", "reference": "A"}\n')
    out = tmp_path / "out.jsonl"
    assert main(["verify", "--input", str(path), "--output", str(out)]) == 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["verdict"] for line in lines] == ["CORRECT", "INVALID_INPUT", "WRONG"]
    assert lines[1]["line"] == 2 and lines[1]["detail"].startswith("line 2: not valid JSON")
    assert "INVALID_INPUT 1" in capsys.readouterr().err


def test_a_missing_input_file_is_a_clear_error(tmp_path, capsys):
    assert main(["verify", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert "--input: no such file" in capsys.readouterr().err


def test_an_unreachable_target_is_a_clear_error(input_file, tmp_path, capsys):
    assert main(["verify", "--input", str(input_file), "--output", str(tmp_path / "o"),
                 "--target", "127.0.0.1:1"]) == 2
    assert "verifier at 127.0.0.1:1: UNAVAILABLE" in capsys.readouterr().err
