"""GPU test fixtures: one engine cache for the whole run, so each engine is built (and vetted) once.

``scripts/gpu_check.sh`` points ``UNIMRSEG_CACHE`` at the cache its benchmarks use too, so an
engine the tests built is the one the benchmark times.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.modalities import COMBINATIONS, Combination

HELD_OUT = 21  # 3 scenes per combination


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory) -> Path:
    """The ``engines`` folder of ``$UNIMRSEG_CACHE`` (as ``selection`` lays it out), else a temporary one."""
    root = (
        Path(os.environ["UNIMRSEG_CACHE"])
        if os.environ.get("UNIMRSEG_CACHE")
        else tmp_path_factory.mktemp("cache")
    )
    return root / "engines"


@pytest.fixture(scope="session")
def held_out_scenes() -> list[tuple[Sample, Combination]]:
    """Held-out 240x320 scenes, each with the combination it is seen in (cycling all 7)."""
    gen = SceneGenerator((240, 320), TEST_SEED)
    return [(gen.sample(i), COMBINATIONS[i % len(COMBINATIONS)]) for i in range(HELD_OUT)]
