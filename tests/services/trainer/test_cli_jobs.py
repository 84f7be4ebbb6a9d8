"""`r1 jobs` against a trainer service: submit a recipe, list, watch to the end, get; errors name the field."""

from __future__ import annotations

import json

from r1.cli import main
from tests.services.trainer.test_service import trainer


def test_r1_jobs_submits_lists_watches_and_gets(tmp_path, capsys):
    recipe = tmp_path / "job.yaml"
    recipe.write_text("grpo: {steps: 3}\neval: {every: 1}\n")
    with trainer(tmp_path / "jobs") as (_, server):
        target = ["jobs", "--target", server.target]
        assert main([*target, "submit", "grpo", "--recipe", str(recipe), "--job-id", "cli-1"]) == 0
        assert capsys.readouterr().out.startswith("cli-1 JOB_STATE_QUEUED")
        assert main([*target, "watch", "cli-1"]) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert events[-1]["state"]["state"] == "JOB_STATE_SUCCEEDED"
        assert [e["step"]["step"] for e in events if "step" in e] == ["1", "2", "3"]
        assert main([*target, "list"]) == 0
        assert "cli-1" in capsys.readouterr().out
        assert main([*target, "get", "cli-1"]) == 0
        assert json.loads(capsys.readouterr().out)["step"] == "3"
        recipe.write_text("grpo: {lr: 0}\n")
        assert main([*target, "submit", "grpo", "--recipe", str(recipe)]) == 2
        assert "config.grpo.lr: must be > 0" in capsys.readouterr().err
