"""`r1 eval` on the command line: a small in-process run writes its files; bad arguments are refused with the
argument named, before anything runs."""

import json

import pytest

from r1.cli import main
from tests.engine.conftest import teacher_dir, tokenizer  # noqa: F401 (fixtures)


def test_in_process_run_writes_results_report_plots_and_samples(teacher_dir, tmp_path, capsys):  # noqa: F811
    code = main(["eval", "--model", str(teacher_dir), "--benchmark", "synthetic,aime24", "--limit", "3", "--k", "2",
                 "--max-tokens", "8", "--frame", "r1-zero", "--output", str(tmp_path), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "synthetic" in out and "aime24" in out and "report.md" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["benchmarks"]["aime24"]["samples"] == 6
    assert results["benchmarks"]["synthetic"]["settings"]["max_tokens"] == 8
    assert {p.name for p in tmp_path.iterdir()} >= {"results.json", "report.md", "pass_at_k.png", "lengths.png",
                                                     "samples"}


@pytest.mark.parametrize("argv, message", [
    (["--benchmark", "aime24"], "--target: give the generation service's host:port, or --model"),
    (["--benchmark", "aime24", "--target", "h:1", "--model", "m"], "not both"),
    (["--benchmark", "aime2024", "--target", "h:1"], "unknown benchmark 'aime2024'; valid: aime24, aime25"),
    (["--benchmark", "aime24,aime24", "--target", "h:1"], "names a benchmark twice"),
    (["--benchmark", "aime24", "--target", "h:1", "--source", "math500=x.jsonl"], "which --benchmark does not"),
    (["--benchmark", "aime24", "--target", "h:1", "--source", "aime24"], "expected NAME=PATH_OR_HUB_ID"),
    (["--benchmark", "aime24", "--target", "h:1", "--k", "0"], "k: must be >= 1, got 0"),
    (["--benchmark", "aime24", "--target", "h:1", "--top-p", "1.5"], "top_p: must be in (0, 1]"),
])
def test_bad_arguments_are_named(argv, message, tmp_path, capsys):
    assert main(["eval", "--output", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
