"""The expected period of a stream: configured, or learned from receive times and stamps.

A learned period is the median of recent intervals: one long gap (a drop) or a burst of
queued messages barely moves it, unlike a mean. The monitor learns one from receive
times and one from header stamps, and takes the longer (``monitor.py`` says why).
"""

from __future__ import annotations

import statistics
from collections import deque

__all__ = ["RateEstimator"]


class RateEstimator:
    """Median inter-arrival time over the last ``window`` positive intervals, from ``min_samples`` on."""

    def __init__(self, *, window: int, min_samples: int) -> None:
        self._intervals: deque[int] = deque(maxlen=window)
        self._min_samples = min_samples
        self._last_ns: int | None = None
        self._median_ns: float | None = None

    def add(self, time_ns: int) -> None:
        """Record one message's time; a time not after the previous one adds no interval."""
        if self._last_ns is not None and time_ns > self._last_ns:
            self._intervals.append(time_ns - self._last_ns)
            self._median_ns = None
        self._last_ns = time_ns

    @property
    def period_ns(self) -> float | None:
        """The learned period, or None before ``min_samples`` intervals."""
        if len(self._intervals) < self._min_samples:
            return None
        if self._median_ns is None:
            self._median_ns = float(statistics.median(self._intervals))
        return self._median_ns

    @property
    def rate_hz(self) -> float | None:
        period = self.period_ns
        return None if period is None else 1e9 / period
