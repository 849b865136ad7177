"""Intrinsics and extrinsics: what CameraInfo and tf2 say, read exactly; what no camera can be, refused."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from unimrseg_core.registration import CalibrationError, Intrinsics, Transform, plane_homography
from unimrseg_core.registration.reproject import sampling_maps


def camera_info(**overrides):
    """A CameraInfo-shaped object (the fields rclpy's and rosbags' messages both have)."""
    fields = {
        "width": 640,
        "height": 480,
        "distortion_model": "plumb_bob",
        "d": [0.0] * 5,
        "k": [500.0, 0.0, 319.5, 0.0, 510.0, 239.5, 0.0, 0.0, 1.0],
        "binning_x": 0,
        "binning_y": 0,
        "roi": SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False),
    }
    return SimpleNamespace(**{**fields, **overrides})


def test_a_camera_info_is_read_as_its_size_k_and_distortion():
    info = Intrinsics.from_camera_info(camera_info(d=[-0.1, 0.01, 0.001, -0.002, 0.0]))
    assert (info.width, info.height, info.fx, info.fy, info.cx, info.cy) == (640, 480, 500, 510, 319.5, 239.5)
    assert info.distorted
    assert info.d.tolist() == [-0.1, 0.01, 0.001, -0.002, 0.0]
    assert not Intrinsics.from_camera_info(camera_info()).distorted  # all-zero D: a pinhole


def test_scaling_maps_pixel_centres_as_an_opencv_resize_does():
    full = Intrinsics.pinhole(640, 480, 500.0, 510.0, 319.5, 239.5)
    half = full.scaled(320, 240)
    assert (half.fx, half.fy) == (250.0, 255.0)
    assert (half.cx, half.cy) == (159.5, 119.5)  # (c + 0.5) / 2 - 0.5: still the image centre
    # a point seen at pixel u in the full image is at (u + 0.5) / 2 - 0.5 in the half-size one
    point = np.array([[0.3, -0.2, 2.0]])
    u_full, u_half = full.project(point)[0], half.project(point)[0]
    np.testing.assert_allclose(u_half, (u_full + 0.5) / 2 - 0.5)
    assert full.scaled(640, 480) is full


def test_binning_in_a_camera_info_scales_the_camera():
    binned = Intrinsics.from_camera_info(camera_info(binning_x=2, binning_y=2))
    assert (binned.width, binned.height, binned.fx) == (320, 240, 250.0)


def test_projection_and_rays_invert_each_other_with_distortion():
    camera = Intrinsics.from_camera_info(camera_info(d=[-0.25, 0.08, 0.001, -0.0015, -0.01]))
    v, u = np.mgrid[0:480:37, 0:640:41].astype(float)
    x, y = camera.rays(u, v)
    back = camera.project(np.stack([x.ravel(), y.ravel(), np.ones(x.size)], axis=1))
    np.testing.assert_allclose(back, np.stack([u.ravel(), v.ravel()], axis=1), atol=1e-6)
    # and the distortion is real: an undistorted camera puts the corner pixel elsewhere
    pinhole = Intrinsics.pinhole(640, 480, 500.0, 510.0, 319.5, 239.5)
    assert (
        abs(pinhole.rays(np.array(0.0), np.array(0.0))[0] - camera.rays(np.array(0.0), np.array(0.0))[0])
        > 0.01
    )


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"k": [0.0, 0, 319.5, 0, 510, 239.5, 0, 0, 1]}, "positive focal"),
        ({"k": [500.0, 0, 319.5, 0, -510, 239.5, 0, 0, 1]}, "positive focal"),
        ({"k": [math.nan, 0, 319.5, 0, 510, 239.5, 0, 0, 1]}, "non-finite"),
        ({"k": [500.0, 0, 319.5, 0, 510, 239.5]}, "K must have 9 numbers, got 6"),
        ({"k": [500.0, 0, 319.5, 0, 510, 239.5, 0, 0, 2]}, "[fx s cx; 0 fy cy; 0 0 1]"),
        ({"d": [0.1, 0.0, 0.0]}, "needs D of length 0 or 5, got 3"),
        ({"d": [0.1, math.inf, 0, 0, 0]}, "non-finite"),
        ({"width": 0}, "width must be a positive integer"),
        ({"height": 0}, "height must be a positive integer"),
        ({"distortion_model": "equidistant", "d": [0.1, 0, 0, 0]}, "'equidistant' is not supported"),
        ({"roi": SimpleNamespace(x_offset=10, y_offset=0, width=320, height=240)}, "roi"),
    ],
)
def test_a_calibration_no_camera_can_have_is_refused_with_the_field(overrides, words):
    with pytest.raises(CalibrationError, match=None) as caught:
        Intrinsics.from_camera_info(camera_info(**overrides))
    assert words in str(caught.value)


def test_a_quaternion_is_read_in_tf2_order_and_round_trips():
    # 90 degrees about z: x -> y
    turn = Transform.from_quaternion([1.0, 2.0, 3.0], [0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)])
    np.testing.assert_allclose(turn.apply(np.array([[1.0, 0.0, 0.0]])), [[1.0, 3.0, 3.0]], atol=1e-12)
    for xyzw in ([0.1, -0.2, 0.3, 0.9], [0.7, 0.1, -0.1, 0.01], [0.0, 1.0, 0.0, 0.0]):
        q = np.array(xyzw) / np.linalg.norm(xyzw)
        back = Transform.from_quaternion([0, 0, 0], q).quaternion()
        np.testing.assert_allclose(np.abs(np.dot(back, q)), 1.0, atol=1e-12)  # q and -q: one rotation
    pose = Transform.parse("0.05, -0.02 0.01  0 0 0.0087265 0.9999619")
    np.testing.assert_allclose((pose.inverse() @ pose).rotation, np.eye(3), atol=1e-12)
    np.testing.assert_allclose((pose @ pose.inverse()).translation, 0, atol=1e-12)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0 0 0 0 0 0", "7 numbers"),
        ("0 0 0 0 0 0 x", "7 numbers"),
        ("0 0 0 0 0 0 0", "not unit length"),
        ("0 0 0 0 0 0.5 0.5", "not unit length"),
        ("0 nan 0 0 0 0 1", "non-finite"),
    ],
)
def test_a_bad_extrinsic_is_refused(text, words):
    with pytest.raises(CalibrationError) as caught:
        Transform.parse(text)
    assert words in str(caught.value)


def test_the_plane_homography_is_the_plane_maps_for_undistorted_cameras():
    anchor = Intrinsics.pinhole(320, 240, 280.0, 280.0, 159.5, 119.5)
    thermal = Intrinsics.pinhole(160, 120, 150.0, 150.0, 79.5, 59.5)
    anchor_from_thermal = Transform.from_quaternion([0.04, -0.06, 0.01], [0.0087, 0.013, 0.0, 0.99988])
    h = plane_homography(thermal, anchor, anchor_from_thermal, 4.0)
    map_x, map_y, valid = sampling_maps(4.0, anchor, thermal, anchor_from_thermal.inverse())
    assert valid.all()
    # the 3x3 sends every thermal pixel the maps read to the anchor pixel that reads it
    v, u = np.mgrid[0:240:13, 0:320:17]
    src = np.stack([map_x[v, u].ravel(), map_y[v, u].ravel(), np.ones(u.size)])
    dst = h @ src
    np.testing.assert_allclose(dst[:2] / dst[2], np.stack([u.ravel(), v.ravel()]), atol=1e-3)
    with pytest.raises(CalibrationError, match="plane distance"):
        plane_homography(thermal, anchor, anchor_from_thermal, 0.0)
