"""Counts of rejected input messages per modality and reason, with rate-limited warnings.

Why: a broken driver can send hundreds of bad images per second; the node must count
each one (for /diagnostics) but log only now and then, per reason, saying how many
were suppressed in between. ROS-free: time is injected.
"""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["RejectCounter"]


class RejectCounter:
    """Thread-safe counters keyed by ``(modality, reason)`` with one warning per key per ``period_s``."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._counts: Counter[tuple[str, str]] = Counter()
        self._last_warn: dict[tuple[str, str], float] = {}
        self._suppressed: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def count(self, modality: str, reason: str, now_s: float) -> int | None:
        """Count one rejection; return how many were suppressed since the last warning when a
        warning is due now (0 for the first), else None."""
        key = (modality, reason)
        with self._lock:
            self._counts[key] += 1
            last = self._last_warn.get(key)
            if last is not None and now_s - last < self.period_s:
                self._suppressed[key] += 1
                return None
            self._last_warn[key] = now_s
            return self._suppressed.pop(key, 0)

    def by_reason(self, modality: str) -> dict[str, int]:
        with self._lock:
            return {r: n for (m, r), n in sorted(self._counts.items()) if m == modality}

    def total(self, modality: str | None = None) -> int:
        with self._lock:
            return sum(n for (m, _), n in self._counts.items() if modality is None or m == modality)
