"""Waiting on events, never on the clock: what the DDS tests use instead of fixed sleeps.

A fixed sleep is too short on a loaded machine and too long on an idle one. Each wait here
polls the condition the sleep stood for (a peer that counted a probe, N outputs or camera
frames, a state reported) and returns as soon as it holds; ``wait_until`` fails with what
it waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for", "wait_until"]

T = TypeVar("T")

INTERVAL_S = 0.02
"""How often a condition is polled: short next to the 100 ms camera period of the tests."""


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = INTERVAL_S) -> T | None:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` s pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_until(
    predicate: Callable[[], T], timeout: float, what: str, *, context: Callable[[], str] | None = None
) -> T:
    """Like :func:`wait_for`, but a timeout raises ``TimeoutError`` naming ``what`` (and ``context()``:
    logs, say)."""
    value = wait_for(predicate, timeout)
    if not value:
        detail = f"\n{context()}" if context is not None else ""
        raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{detail}")
    return value
