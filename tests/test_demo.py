"""`make demo` runs what exists end to end: the tiny teacher (pretrained once, then reused), four services up,
probed, counted, the verifier exercised on its embedded batch (same results as in-process), the teacher's
held-out problems sampled through the generation service and scored by the verifier, and every service
drained cleanly, and in between a short R1-Zero GRPO job through the trainer service. Slow: on a machine without the cached teacher the demo trains it first (~4 minutes)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_demo_runs_the_stack_end_to_end():
    result = subprocess.run([sys.executable, "-m", "r1.cli", "demo", "--rl-minutes", "0.5", "--rl-eval-problems", "20"],
                            capture_output=True, text=True,
                            timeout=1400, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("SERVING") >= 4
    assert "GetModelInfo: OK" in out
    assert "ListJobs: OK" in out and "GetExport: UNIMPLEMENTED" in out
    assert "ListKinds: OK" in out
    identical = re.search(r"(\d+) items through VerifyBatch .* identical for (\d+)/(\d+)", out)
    assert identical and identical[1] == identical[2] == identical[3]
    assert re.search(r"math\s*│\s*66\s*│\s*0\.67\s*│\s*CORRECT 44, WRONG 22", out)
    assert f"r1_verifier_items_total: {identical[1]}" in out
    assert re.search(r"generation -> verifier: 20 held-out problems x n=4", out)
    passed = re.search(r"all\s*│\s*20\s*│\s*80\s*│\s*([0-9.]+)", out)
    assert passed and 0 <= float(passed[1]) <= 1
    assert re.search(r"MTP speculation \(from /metrics\): (\d+ of \d+ draft tokens accepted|no drafts)", out)
    assert re.search(r"state JOB_STATE_SUCCEEDED", out)
    r1_zero = re.search(r"held-out pass@1 \(k=8, T=0\.6, top-p 0\.95, 20 problems\): before ([0-9.]+)% -> after "
                        r"([0-9.]+)%", out)
    assert r1_zero, out[-3000:]
    assert re.search(r"curves \(reward, accuracy, length, pass@1\): \S+curves\.png", out)
    assert "r1_trainer_" in out
    assert re.search(r"r1_eval_pass_at_1\{benchmark=\"synthetic\"", out) and "report.md" in out
    assert "'generation': 0, 'verifier': 0, 'trainer': 0, 'exporter': 0" in out
