"""``StaticTransforms``: a robot's /tf_static tree looked up between any two frames, as tf2 does."""

from __future__ import annotations

import numpy as np
import pytest

from unimrseg_core.bags.messages import header
from unimrseg_core.bags.rig import tf_static_msg
from unimrseg_core.registration import CalibrationError, Transform
from unimrseg_core.registration.tf_tree import StaticTransforms

BASE_FROM_CAMERA = Transform.from_quaternion([0.2, 0.0, 0.5], [0.0, 0.0, 0.0998334, 0.9950042])
CAMERA_FROM_COLOR = Transform.from_quaternion([0.0, 0.0, 0.0], [-0.5, 0.5, -0.5, 0.5])  # body -> optical
BASE_FROM_THERMAL = Transform.from_quaternion([0.2, -0.05, 0.55], [-0.5, 0.5, -0.5, 0.5])


def _robot() -> StaticTransforms:
    """base_link -> camera_link -> color_optical, base_link -> thermal_optical (as a URDF gives it)."""
    tree = StaticTransforms()
    msg = tf_static_msg(
        lambda frame: header(0, frame),
        {
            ("base_link", "camera_link"): BASE_FROM_CAMERA,
            ("camera_link", "/color_optical"): CAMERA_FROM_COLOR,  # a leading slash, as old drivers
            ("base_link", "thermal_optical"): BASE_FROM_THERMAL,
        },
    )
    assert tree.add_message(msg) == 3
    return tree


def test_a_lookup_composes_the_path_through_the_tree_in_either_direction() -> None:
    tree = _robot()
    color_from_thermal = tree.lookup("color_optical", "thermal_optical")
    expected = (BASE_FROM_CAMERA @ CAMERA_FROM_COLOR).inverse() @ BASE_FROM_THERMAL
    np.testing.assert_allclose(color_from_thermal.rotation, expected.rotation, atol=1e-12)
    np.testing.assert_allclose(color_from_thermal.translation, expected.translation, atol=1e-12)
    back = tree.lookup("/thermal_optical", "color_optical")
    np.testing.assert_allclose((back @ color_from_thermal).rotation, np.eye(3), atol=1e-12)
    np.testing.assert_allclose((back @ color_from_thermal).translation, 0, atol=1e-12)
    point = np.array([[0.3, -0.2, 4.0]])  # a point 4 m in front of the thermal camera, via base_link
    in_base = BASE_FROM_THERMAL.apply(point)
    np.testing.assert_allclose(
        (BASE_FROM_CAMERA @ CAMERA_FROM_COLOR).apply(color_from_thermal.apply(point)), in_base, atol=1e-12
    )
    assert tree.lookup("camera_link", "camera_link").is_identity()


def test_frames_not_in_one_tree_are_an_error_naming_them() -> None:
    tree = _robot()
    tree.add("odom", "map_marker", Transform.identity())
    with pytest.raises(CalibrationError, match="'lidar' not in it"):
        tree.lookup("color_optical", "lidar")
    with pytest.raises(CalibrationError, match="not connected"):
        tree.lookup("color_optical", "map_marker")
    with pytest.raises(CalibrationError, match="two different frame ids"):
        tree.add("a", "/a", Transform.identity())
