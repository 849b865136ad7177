"""The CPU hog for the tests: ``benchmarks/hog.py``'s, so the tests and benchmarks load alike.

Used by ``test_observer_stall.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from hog import cpu_hog  # benchmarks/hog.py

__all__ = ["cpu_hog"]
