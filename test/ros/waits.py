"""Waiting on events, never on the clock: what the DDS tests use instead of fixed sleeps.

A fixed sleep is too short on a loaded machine and too long on an idle one. Each wait here
polls the condition the sleep stood for (a peer discovered, N outputs received, a
deadline passed) and returns as soon as it holds, or fails with what it waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["wait_for", "wait_matched", "wait_past", "wait_until"]

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


def wait_matched(entity: Any, count: int = 1, timeout: float = 20.0) -> int:
    """Wait until an rclpy publisher has ``count`` subscriptions matched (a subscription: publishers)."""
    counter = getattr(entity, "get_subscription_count", None) or entity.get_publisher_count
    peers = "subscriptions" if hasattr(entity, "get_subscription_count") else "publishers"
    return wait_until(
        lambda: (n := counter()) >= count and n, timeout, f"{count} {peers} matched on {entity.topic_name}"
    )


def wait_past(wall_ns: int) -> None:
    """Return once the wall clock (``time.time_ns()``, the cameras' stamps) is past ``wall_ns``.

    For a window of outputs defined by camera stamps: the window is over when its end has passed.
    """
    wait_until(
        lambda: time.time_ns() > wall_ns, max(0.0, (wall_ns - time.time_ns()) / 1e9) + 5.0, "the clock"
    )
