"""The world's offset-camera option: each sensor through its own camera; the default path untouched."""

from __future__ import annotations

import numpy as np
import pytest

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.rig import DEMO_RIG, CameraRig, Mount
from unimrseg_core.data.sequence import SequenceGenerator

SIZE = (64, 96)


def test_a_rig_whose_sensors_share_the_anchor_camera_renders_exactly_the_plain_sample():
    generator = SceneGenerator(SIZE, seed=5)
    plain, rig = generator.sample(3), generator.sample_rig(3, CameraRig("rgb"))
    for name in ("rgb", "depth", "thermal", "label", "saliency"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(rig, name), err_msg=name)


def test_each_sensor_has_its_own_size_and_its_mount_is_its_pose_in_the_anchor():
    sample = SceneGenerator(SIZE, seed=5).sample_rig(2, DEMO_RIG)
    assert sample.rgb.shape == (*SIZE, 3)
    assert sample.depth.shape == (48, 72)
    assert sample.thermal.shape == (32, 48)
    assert sample.label.shape == SIZE
    assert sample.saliency.shape == SIZE
    assert sample.truth_depth["thermal"].shape == (32, 48)
    for modality, mount in DEMO_RIG.mounts.items():
        rotation, translation = sample.pose_in_anchor(modality)
        np.testing.assert_allclose(translation, mount.offset_m, atol=1e-9)
        # the optical axis turns right by yaw and down by pitch
        axis = rotation @ np.array([0.0, 0.0, 1.0])
        assert np.degrees(np.arctan2(axis[0], axis[2])) == pytest.approx(mount.yaw_deg, abs=0.05)
        assert np.degrees(np.arcsin(axis[1])) == pytest.approx(mount.pitch_deg, abs=0.05)
    rotation, translation = sample.pose_in_anchor("rgb")
    np.testing.assert_allclose(rotation, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(translation, 0, atol=1e-12)
    # a camera mounted higher sees the ground further below: the same ground plane in the world
    assert sample.cameras["thermal"].ground_y == pytest.approx(sample.cameras["rgb"].ground_y)
    assert sample.meta["rig"]["mounts"]["thermal"]["offset_m"] == [0.04, -0.06, 0.01]


def test_rig_frames_of_a_sequence_are_deterministic_and_keep_the_plain_frames():
    plain = SequenceGenerator(SIZE, seed=2, rate_hz=10.0, segment_s=2.0)
    rigged = SequenceGenerator(SIZE, seed=2, rate_hz=10.0, segment_s=2.0, rig=DEMO_RIG)
    again = SequenceGenerator(SIZE, seed=2, rate_hz=10.0, segment_s=2.0, rig=DEMO_RIG)
    a, b = rigged.frame(23), again.frame(23)
    for modality in ("rgb", "depth", "thermal"):
        np.testing.assert_array_equal(a.sample.images[modality], b.sample.images[modality])
    assert a.sample.thermal.shape == (32, 48)
    # the anchor's ground truth is the plain sequence's: the same scene, pose and camera
    np.testing.assert_array_equal(a.sample.label, plain.frame(23).sample.label)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"scale": 0.0}, "scale"),
        ({"hfov_deg": 200.0}, "hfov_deg"),
        ({"offset_m": (0.0, 5.0, 0.0)}, "offset_m"),
    ],
)
def test_a_mount_no_robot_could_have_is_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Mount(**kwargs)


def test_a_rig_names_real_modalities_and_mounts_no_anchor():
    with pytest.raises(ValueError, match="anchor"):
        CameraRig("sonar")
    with pytest.raises(ValueError, match="other than the anchor"):
        CameraRig("rgb", {"rgb": Mount()})
