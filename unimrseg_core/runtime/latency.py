"""Latency percentiles and throughput over a sliding window, for the node's diagnostics."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

__all__ = ["LatencyWindow"]


class LatencyWindow:
    """The last ``size`` latencies (seconds) and completion times (ns); thread-safe."""

    def __init__(self, size: int = 200) -> None:
        if size < 2:
            raise ValueError(f"size must be >= 2, got {size}")
        self._latencies: deque[float] = deque(maxlen=size)
        self._done_ns: deque[int] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, latency_s: float, done_ns: int) -> None:
        with self._lock:
            self._latencies.append(float(latency_s))
            self._done_ns.append(int(done_ns))

    def __len__(self) -> int:
        return len(self._latencies)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0..100) in seconds, or None when empty."""
        with self._lock:
            values = list(self._latencies)
        return float(np.percentile(values, q)) if values else None

    def rate_hz(self, now_ns: int, horizon_s: float = 5.0) -> float:
        """Completions per second over the last ``horizon_s`` before ``now_ns`` (0 when none)."""
        start = now_ns - int(horizon_s * 1e9)
        with self._lock:
            recent = [t for t in self._done_ns if start < t <= now_ns]
        return len(recent) / horizon_s
