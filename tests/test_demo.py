"""`make demo` runs what exists end to end: four services up, probed, counted and drained cleanly."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_the_four_services_end_to_end():
    result = subprocess.run([sys.executable, "-m", "r1.cli", "demo"], capture_output=True, text=True,
                            timeout=300, env={"COLUMNS": "200", **__import__("os").environ})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("SERVING") >= 4
    for method in ("GetModelInfo", "ListKinds", "ListJobs", "GetExport"):
        assert f"{method}: UNIMPLEMENTED" in out
    assert "'generation': 0, 'verifier': 0, 'trainer': 0, 'exporter': 0" in out
