"""`make demo` runs what exists end to end: four services up, probed, counted, the verifier exercised on its
embedded batch (same results as in-process), and every service drained cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_runs_the_stack_end_to_end():
    result = subprocess.run([sys.executable, "-m", "r1.cli", "demo"], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("SERVING") >= 4
    for method in ("GetModelInfo", "ListJobs", "GetExport"):
        assert f"{method}: UNIMPLEMENTED" in out
    assert "ListKinds: OK" in out
    identical = re.search(r"(\d+) items through VerifyBatch .* identical for (\d+)/(\d+)", out)
    assert identical and identical[1] == identical[2] == identical[3]
    assert re.search(r"math\s*│\s*66\s*│\s*0\.67\s*│\s*CORRECT 44, WRONG 22", out)
    assert f"r1_verifier_items_total: {identical[1]}" in out
    assert "'generation': 0, 'verifier': 0, 'trainer': 0, 'exporter': 0" in out
