"""Unit tests of the node package: no test may leave a thread that keeps pytest from exiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.integration.support import leaked_threads


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail the test that leaves a non-daemon thread behind (e.g. an unclosed aiosqlite connection)."""
    before = set(threading.enumerate())
    yield
    leaked = leaked_threads(before)
    assert not leaked, f"threads left running: {leaked}"
