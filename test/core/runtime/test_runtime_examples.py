"""The runtime's own example scenes: what parity checks, smoke tests and INT8 calibration run on."""

from __future__ import annotations

import numpy as np
import pytest

from unimrseg_core.modalities import COMBINATIONS, MODALITIES, MODALITY_CHANNELS
from unimrseg_core.runtime.engine_check import smoke_feeds
from unimrseg_core.runtime.examples import CALIBRATION_SEED, CHECK_SEED, example_scenes


@pytest.mark.parametrize("size", [(32, 48), (240, 320), (480, 640)])
def test_scenes_are_model_inputs_at_any_size(size):
    scenes = example_scenes(3, size, seed=CHECK_SEED)
    for m in MODALITIES:
        assert scenes[m].shape == (3, MODALITY_CHANNELS[m], *size)
        assert scenes[m].dtype == np.float32
        assert 0.0 <= scenes[m].min() <= scenes[m].max() <= 1.0
    np.testing.assert_array_equal(scenes["modality_mask"], np.ones((3, 3), np.float32))


def test_a_scene_is_its_seed_and_index_alone():
    size = (64, 96)
    many = example_scenes(5, size, seed=CHECK_SEED)
    some = example_scenes(2, size, seed=CHECK_SEED, first=3)
    for key, value in some.items():
        np.testing.assert_array_equal(value, many[key][3:], err_msg=key)
    other = example_scenes(1, size, seed=CALIBRATION_SEED)
    assert not np.array_equal(other["rgb"], many["rgb"][:1])


def test_scenes_have_structure_in_every_modality():
    """Ground, sky or far buildings without depth returns, and things standing at their range."""
    scenes = example_scenes(8, (120, 160), seed=CHECK_SEED)
    for m in MODALITIES:
        assert (scenes[m].std(axis=(1, 2, 3)) > 0.02).all(), m
    depth = scenes["depth"][:, 0]
    assert ((depth == 0).mean(axis=(1, 2)) > 0.1).all()  # sky and beyond the range
    assert ((depth > 0).mean(axis=(1, 2)) > 0.3).all()  # the ground and what stands on it
    assert not np.array_equal(scenes["rgb"][0], scenes["rgb"][1])


def test_smoke_feeds_cover_the_combinations_all_three_first():
    feeds = smoke_feeds((32, 48), 9)
    order = COMBINATIONS[::-1]
    for row in range(9):
        combo = order[row % len(order)]
        np.testing.assert_array_equal(feeds["modality_mask"][row], combo.mask)
        for m in MODALITIES:
            assert (np.abs(feeds[m][row]).sum() > 0) == (m in combo), (row, m)


def test_count_must_be_positive():
    with pytest.raises(ValueError, match="count must be >= 1"):
        example_scenes(0, (32, 48), seed=CHECK_SEED)
