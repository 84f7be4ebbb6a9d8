"""`r1 generate`: a JSONL file of prompts in, the same lines with their samples out; the same file in-process
and through the service; a bad line becomes an error record naming the line and the field."""

from __future__ import annotations

import json

import pytest

from r1.cli import main
from tests.services.generation.conftest import running_generation

LINES = [
    {"id": "text", "prompt": "2 + 2 = 4", "topic": "arithmetic"},
    {"id": "ids", "prompt_ids": [0, 17, 99, 250]},
    {"id": "two", "prompt_ids": [0, 5, 6], "n": 2, "max_tokens": 4, "ignore_eos": True},
    {"id": "stop", "prompt": "hello", "stop": ["e"], "max_tokens": 12},
    {"id": "no prompt"},
    {"id": "both", "prompt": "a", "prompt_ids": [1]},
    {"id": "hot", "prompt": "a", "temperature": "hot"},
    {"id": "cold", "prompt": "a", "temperature": -1},
    {"id": "out of vocabulary", "prompt_ids": [0, 400]},
    {"id": "too long", "prompt_ids": [5] * 2100},
]
ERRORS = {
    "no prompt": 'line 5: prompt: give exactly one of "prompt" (text) and "prompt_ids" (token ids)',
    "both": 'line 6: prompt: give exactly one of "prompt" (text) and "prompt_ids" (token ids)',
    "hot": 'line 7: temperature: must be a number, got "hot"',
    "cold": "line 8: temperature: must be >= 0 (0 is greedy), got -1.0",
    "out of vocabulary": "line 9: prompt_ids[1]: token id 400 is outside the vocabulary [0, 400) (1 such ids)",
    "too long": "line 10: prompt: has 2100 tokens; the context window is 2048",
}


@pytest.fixture(scope="module")
def server(teacher_dir):
    """Served with the engine settings `r1 generate` uses in-process (the model's whole context, 256 slots)."""
    with running_generation(teacher_dir, max_context_tokens=0, max_num_seqs=256) as server:
        yield server


@pytest.fixture
def input_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in LINES) + "\n{not json\n")
    return path


def assert_same_records(local: list[dict], remote: list[dict]) -> None:
    """Everything equal except log-probabilities, which agree to float32 rounding only: the service batches
    requests as they arrive, and a batch of another size sums its matmuls in another order (vLLM is not
    batch-invariant either). The greedy tokens themselves must be the same."""
    def logprobs(records: list[dict]) -> list[float]:
        return [x for r in records for s in r.get("samples", []) for x in s["logprobs"]]

    def without_logprobs(records: list[dict]) -> list[dict]:
        return [{**r, "samples": [{k: v for k, v in s.items() if k != "logprobs"} for s in r["samples"]]}
                if "samples" in r else r for r in records]

    assert without_logprobs(local) == without_logprobs(remote)
    assert logprobs(local) == pytest.approx(logprobs(remote), abs=1e-4)


def test_in_process_and_through_the_service_write_the_same_file(server, teacher_dir, input_file, tmp_path, capsys):
    local, remote = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    common = ["--input", str(input_file), "--temperature", "0", "--max-tokens", "6", "--logprobs"]
    assert main(["generate", "--model", str(teacher_dir), *common, "--output", str(local)]) == 1
    assert main(["generate", "--target", server.target, *common, "--output", str(remote)]) == 1
    out = [json.loads(line) for line in local.read_text().splitlines()]
    assert_same_records(out, [json.loads(line) for line in remote.read_text().splitlines()])
    assert [o.get("id") for o in out] == [line["id"] for line in LINES] + [None]  # input order, one line each
    by_id = {o.get("id"): o for o in out}
    text = by_id["text"]
    assert text["topic"] == "arithmetic" and text["prompt"] == "2 + 2 = 4"  # the input object passes through
    [sample] = text["samples"]
    assert set(sample) == {"index", "finish_reason", "text", "token_ids", "matched_stop", "weight_version",
                           "spec_draft_tokens", "spec_accepted_tokens", "logprobs"}
    assert len(sample["token_ids"]) == len(sample["logprobs"]) <= 6
    two = by_id["two"]["samples"]
    assert [s["index"] for s in two] == [0, 1] and all(len(s["token_ids"]) == 4 for s in two)
    assert two[0]["token_ids"] == two[1]["token_ids"]  # greedy
    assert all(s["finish_reason"] in ("stop", "length", "stop_string") for o in out for s in o.get("samples", []))
    for line_id, error in ERRORS.items():
        assert by_id[line_id]["error"].startswith(error), (line_id, by_id[line_id]["error"])
        assert "samples" not in by_id[line_id]
    assert out[-1] == {"line": 11, "error": out[-1]["error"]} and out[-1]["error"].startswith("line 11: not valid JSON")
    assert "7 bad lines" in capsys.readouterr().err


def test_greedy_text_output_is_the_services_answer(server, teacher_dir, tmp_path):
    from r1.engine.types import SamplingParams
    from services.generation.client import GenerationClient

    path, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    path.write_text(json.dumps({"prompt": "2 + 2 = 4", "max_tokens": 5, "ignore_eos": True}) + "\n")
    assert main(["generate", "--model", str(teacher_dir), "--input", str(path), "--output", str(out),
                 "--temperature", "0"]) == 0
    [sample] = json.loads(out.read_text())["samples"]
    with GenerationClient(server.target) as client:
        [expected] = client.generate("2 + 2 = 4", sampling=SamplingParams(temperature=0, max_tokens=5,
                                                                           ignore_eos=True))
    assert (sample["token_ids"], sample["text"]) == (list(expected.token_ids), expected.text)
    assert sample["finish_reason"] == "length" and "logprobs" not in sample


@pytest.mark.parametrize("argv, message", [
    (["--model", "{model}", "--input", "{missing}"], "--input: no such file"),
    (["--model", "{model}", "--input", "{input}", "--concurrency", "0"], "--concurrency: must be at least 1"),
    (["--input", "{input}"], "--model: is required to generate in-process"),
    (["--input", "{input}", "--target", "127.0.0.1:1", "--mtp", "1"], "--mtp: speculation is the service's setting"),
    (["--input", "{input}", "--target", "127.0.0.1:1"], "generation at 127.0.0.1:1: UNAVAILABLE"),
])
def test_command_line_mistakes_are_clear_errors(input_file, teacher_dir, tmp_path, capsys, argv, message):
    places = {"{model}": str(teacher_dir), "{input}": str(input_file), "{missing}": str(tmp_path / "nope.jsonl")}
    args = [places.get(a, a) for a in argv] + ["--output", str(tmp_path / "out.jsonl")]
    assert main(["generate", *args]) == 2
    assert message in capsys.readouterr().err
