"""Write the README's file tree (one line per tracked file) from each file's own first docstring line.

`python scripts/readme_tree.py` rewrites the block between the tree markers in README.md;
`--check` exits 1 if the README is out of date (the test suite runs it, so the tree stays true).
Python files describe themselves by their module docstring, protos by their first comment line, shell
scripts by their first comment after the shebang; other files by the table below.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- tree:start -->", "<!-- tree:end -->"
OTHER = {
    "README.md": "this page",
    "Makefile": "setup (venv, torch CPU wheel, editable install), protos, test tiers, demo",
    "pyproject.toml": "package metadata, dependencies, pytest and import-linter settings",
    ".gitignore": "venv, generated stubs, caches",
    "helm/r1/files/grafana-dashboard.json": "the Grafana dashboard (uid r1-stack): throughput, latency, queues, MTP, RL, sync, pass@1",
    "helm/r1/templates/NOTES.txt": "what `helm install` prints: how to reach each service (port-forward, grpcurl, /metrics)",
    "helm/r1/values.schema.json": "JSON schema of values.yaml: types and enums, so a wrong value fails at install",
}


def describe(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    if rel in OTHER:
        return OTHER[rel]
    text = path.read_text(errors="replace")
    if path.suffix == ".py":
        doc = ast.get_docstring(ast.parse(text)) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""
    comment = "//" if path.suffix == ".proto" else "#"
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(comment) and not stripped.startswith("#!"):
            return stripped.lstrip(comment + "/ ").strip()
    return ""


def tracked_files() -> list[Path]:
    """Every tracked file but empty `__init__.py` markers."""
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    paths = [ROOT / line for line in sorted(out.splitlines())]
    return [p for p in paths if p.is_file() and not (p.name == "__init__.py" and not p.read_text().strip())]


def render() -> str:
    rows = [(p.relative_to(ROOT).as_posix(), describe(p)) for p in tracked_files()]
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"{name.ljust(width)}{what}".rstrip() for name, what in rows]
    return "\n".join([START, "```", *lines, "```", END])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    args = parser.parse_args()
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    updated = head + render() + tail
    if args.check:
        if updated != text:
            print("README.md tree is out of date: run `python scripts/readme_tree.py`", file=sys.stderr)
            return 1
        return 0
    readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
