"""Where tests find the repository and the offline benchmark data (`../shared/data` beside the clone)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
