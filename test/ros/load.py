"""A CPU hog: busy-loop processes, one per core, at the default priority (nice 0).

It stands for "another job on the robot's computer": the node, the cameras and the test
share the cores with it, so a test that passes under it does not depend on an idle machine.
Used by ``test_observer_stall.py`` and ``benchmarks/flake.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["cpu_hog"]

BUSY_LOOP = "while True:\n    pass\n"


@contextmanager
def cpu_hog(processes: int | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run ``processes`` busy loops (default: one per core) for the ``with`` block, then end them."""
    count = processes if processes is not None else os.cpu_count() or 1
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()
