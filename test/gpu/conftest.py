"""GPU test fixtures: one engine cache for the whole run, so each engine is built (and vetted) once.

``scripts/gpu_check.sh`` points ``UNIMRSEG_CACHE`` at the cache its benchmarks use too, so an
engine the tests built is the one the benchmark times.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory) -> Path:
    """The ``engines`` folder of ``$UNIMRSEG_CACHE`` (as ``selection`` lays it out), else a temporary one."""
    root = (
        Path(os.environ["UNIMRSEG_CACHE"])
        if os.environ.get("UNIMRSEG_CACHE")
        else tmp_path_factory.mktemp("cache")
    )
    return root / "engines"
