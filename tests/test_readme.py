"""The README keeps its promises: the two commands first, and a tree that matches the tracked files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_opens_with_the_two_commands():
    first_lines = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make demo") for line in first_lines)
    assert any(line.startswith("make test") for line in first_lines)


def test_readme_tree_matches_the_tracked_files():
    result = subprocess.run([sys.executable, "scripts/readme_tree.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
