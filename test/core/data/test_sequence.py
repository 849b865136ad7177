"""SequenceGenerator: a moving camera, smooth within a scene, never inside an object, deterministic."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.sequence import (
    BACK_CLEARANCE_M,
    FRONT_CLEARANCE_M,
    SequenceGenerator,
    free_corridor,
)

SIZE = (64, 96)
RATE = 10.0


def _same(a, b) -> None:
    for name in ("rgb", "depth", "thermal", "label", "saliency"):
        np.testing.assert_array_equal(getattr(a.sample, name), getattr(b.sample, name), err_msg=name)
    assert a.sample.meta == b.sample.meta
    assert a.t_s == b.t_s


@pytest.fixture(scope="module")
def sequence() -> SequenceGenerator:
    return SequenceGenerator(SIZE, seed=3, rate_hz=RATE, segment_s=2.0)


def test_frames_are_deterministic_in_any_order(sequence):
    other = SequenceGenerator(SIZE, seed=3, rate_hz=RATE, segment_s=2.0)
    late = other.frame(25)  # another segment first: no state leaks between frames
    _same(sequence.frame(5), other.frame(5))
    _same(sequence.frame(25), late)
    assert not np.array_equal(
        sequence.frame(5).sample.rgb, SequenceGenerator(SIZE, seed=4).frame(5).sample.rgb
    )


def test_a_process_pool_gives_the_same_frames(sequence):
    pooled = list(sequence.frames(18, 23, workers=2))
    assert [f.index for f in pooled] == list(range(18, 23))
    for frame in pooled:
        _same(frame, sequence.frame(frame.index))


def test_sample_contract_and_meta(sequence):
    frame = sequence.frame(12)
    frame.sample.validate()
    assert frame.t_s == pytest.approx(1.2)
    meta = frame.sample.meta
    assert meta["frame"] == 12
    assert meta["segment"] == 0
    assert meta["pose"]["z_m"] == pytest.approx(sequence.pose(12).z_m)
    assert sequence.frame_count(3.0) == 30
    assert sequence.frame_count(0.05) == 1


def test_consecutive_frames_are_similar_and_scenes_change(sequence):
    a, b, c = sequence.frame(10), sequence.frame(11), sequence.frame(30)  # c: segment 1
    step = np.abs(a.sample.rgb.astype(float) - b.sample.rgb).mean()
    cut = np.abs(a.sample.rgb.astype(float) - c.sample.rgb).mean()
    assert step < 0.3 * cut
    assert (a.sample.label == b.sample.label).mean() > 0.9
    assert not np.array_equal(a.sample.rgb, b.sample.rgb)  # the camera moves and the noise is fresh
    assert a.sample.meta["segment"] == 0
    assert c.sample.meta["segment"] == 1
    assert c.sample.meta["conditions"] == ["night"]  # day, night, fog by default


def test_pose_is_continuous_within_a_segment():
    seq = SequenceGenerator((16, 16), seed=8, rate_hz=RATE, segment_s=20.0)
    poses = [seq.pose(k) for k in range(400)]
    for k in range(1, 400):
        if seq.segment_of(k) != seq.segment_of(k - 1):
            continue
        p, q = poses[k - 1], poses[k]
        assert abs(q.z_m - p.z_m) <= 0.1  # <= 1 m/s
        assert abs(q.yaw_rad - p.yaw_rad) <= math.radians(1.0)  # <= 10 deg/s
        assert q.x_m == p.x_m
    z = [p.z_m for p in poses[:200]]
    assert max(z) - min(z) > 1.0  # it really moves
    assert seq.segment_of(199) == 0
    assert seq.segment_of(200) == 1


def test_the_camera_keeps_clear_of_objects():
    """Every pose of many segments stays out of every object's footprint, with the clearances."""
    for seed in range(30):
        seq = SequenceGenerator((16, 16), seed=seed, rate_hz=5.0, segment_s=24.0)
        segment = seq.segment(0)
        blocked = free_corridor(segment.scene, segment.motion.x_m)
        for k in range(0, 120, 3):
            z = seq.pose(k).z_m
            for lo, hi in blocked:
                assert not (lo - FRONT_CLEARANCE_M < z < hi + BACK_CLEARANCE_M), (seed, k, z, lo, hi)


def test_corridor_sees_objects_on_the_path():
    scene = SceneGenerator((16, 16), seed=0).scene(0, ["day"])
    everything = free_corridor(scene, scene.camera.x_m, half_width_m=100.0)
    assert everything  # every object is within 100 m of the path
    assert all(a[1] < b[0] for a, b in itertools.pairwise(everything))  # merged, sorted


def test_bad_arguments():
    with pytest.raises(ValueError, match="rate_hz"):
        SequenceGenerator(SIZE, rate_hz=0)
    with pytest.raises(ValueError, match="segment_s"):
        SequenceGenerator(SIZE, segment_s=-1)
    with pytest.raises(ValueError, match="unknown condition"):
        SequenceGenerator(SIZE, conditions=[["sunny"]])
    with pytest.raises(ValueError, match="index"):
        SequenceGenerator(SIZE).scene_at(-1)
