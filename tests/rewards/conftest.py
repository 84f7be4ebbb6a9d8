"""Fixtures shared by the reward tests."""

from __future__ import annotations

import pytest

from r1.rewards.sandbox import Sandbox, SandboxUnavailable


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """The full sandbox; the tests that need it are skipped, with the reason, where the host cannot
    provide its required layers (the service itself fails closed there)."""
    try:
        return Sandbox()
    except SandboxUnavailable as e:
        pytest.skip(f"the full sandbox is not available here: {e}")
