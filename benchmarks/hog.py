"""A CPU hog: busy-loop processes, one per core, at the default priority (nice 0).

It stands for "another job on the robot's computer": the node, the cameras and the test
share the cores with it, so a result measured under it does not depend on an idle machine.
The one implementation, used by ``benchmarks/flake.py`` (on for each run of the tests),
``benchmarks/soak.py`` (switched on and off in blocks) and ``test/ros/test_observer_stall.py``
(through ``test/ros/load.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

__all__ = ["BUSY_LOOP", "CpuHog", "cpu_hog"]

BUSY_LOOP = "while True:\n    pass\n"


class CpuHog:
    """``processes`` busy loops (default: one per core) that can be switched on and off; off on exit."""

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes if processes is not None else os.cpu_count() or 1
        if self.processes < 1:
            raise ValueError(f"a CPU hog needs at least one process, got {self.processes}")
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def on(self) -> bool:
        return bool(self.procs)

    def start(self) -> None:
        """Start the busy loops (nothing if they run already)."""
        if not self.procs:
            self.procs = [
                subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL)
                for _ in range(self.processes)
            ]

    def stop(self) -> None:
        """End the busy loops and reap them (nothing if they are off)."""
        procs, self.procs = self.procs, []
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()

    def __enter__(self) -> CpuHog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextmanager
def cpu_hog(processes: int | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run ``processes`` busy loops (default: one per core) for the ``with`` block, then end them."""
    with CpuHog(processes) as hog:
        hog.start()
        yield hog.procs
