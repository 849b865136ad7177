"""image_msg on real rclpy ``sensor_msgs.msg.Image`` objects, also through CDR serialisation.

No DDS and no ``rclpy.init()``: messages are built, (de)serialised and decoded in-process.
If a ROS 2 cv_bridge is importable, decoding is cross-checked against it.
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np
import pytest

from unimrseg_core.image_msg import ENCODINGS, MODALITY_ENCODINGS, decode, encode, fill_msg
from unimrseg_core.modalities import MODALITIES

pytestmark = pytest.mark.ros

pytest.importorskip("rclpy", reason="rclpy is not installed")
sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs is not installed")
serialization = pytest.importorskip("rclpy.serialization")
std_msgs = pytest.importorskip("std_msgs.msg")

Image = sensor_msgs.Image
H, W = 6, 9
PAIRS = [(m, e) for m in MODALITIES for e in MODALITY_ENCODINGS[m] if ENCODINGS[e].writable]
"""What the project writes (Bayer and YUV are read from drivers, never written)."""


def header() -> Any:
    h = std_msgs.Header(frame_id="unimrseg_test_optical_frame")
    h.stamp.sec, h.stamp.nanosec = 1_700_000_000, 123_456_789
    return h


def sample(modality: str, encoding: str, rng: np.random.Generator) -> np.ndarray:
    """Values each encoding represents exactly: gray RGB for one channel, whole mm, whole counts."""
    if modality == "rgb":
        x = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        return np.repeat(x[..., :1], 3, axis=2) if ENCODINGS[encoding].channels == 1 else x
    if modality == "depth":
        return (rng.integers(0, 65536, (H, W)) / 1000).astype(np.float32)
    if encoding == "mono8":
        return (240 + rng.integers(0, 256, (H, W)) * (100 / 255)).astype(np.float32)
    return (rng.integers(0, 65536, (H, W)) * 0.01).astype(np.float32)


def round_trip(msg: Any) -> Any:
    return serialization.deserialize_message(serialization.serialize_message(msg), Image)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize(("modality", "encoding"), PAIRS)
def test_rclpy_image_round_trip(modality: str, encoding: str, bigendian: bool) -> None:
    rng = np.random.default_rng(7)
    x = sample(modality, encoding, rng)
    expected = encode(x, encoding, modality=modality, bigendian=bigendian)
    reference = decode(Image(**expected), modality)

    filled = fill_msg(Image(), x, encoding, modality=modality, header=header(), bigendian=bigendian)
    assert isinstance(filled.data, array.array)
    assert filled.data.tobytes() == expected["data"]
    assert filled.header.frame_id == "unimrseg_test_optical_frame"

    back = round_trip(filled)
    assert isinstance(back.data, array.array)
    assert (back.height, back.width, back.step, back.encoding) == (H, W, expected["step"], encoding)
    assert back.is_bigendian == expected["is_bigendian"]
    assert back.header.stamp.nanosec == 123_456_789
    for message in (filled, back):
        out = decode(message, modality)
        np.testing.assert_array_equal(out, reference)
        assert not np.shares_memory(out, np.frombuffer(message.data, dtype=np.uint8))
    if modality == "thermal" and encoding != "32FC1":
        np.testing.assert_allclose(reference, x, rtol=0, atol=1e-3)
    else:
        np.testing.assert_array_equal(reference, x)


@pytest.mark.parametrize("encoding", ["rgb8", "16UC1", "32FC1"])
def test_padded_rows_survive_serialisation(encoding: str) -> None:
    modality = "rgb" if encoding == "rgb8" else "depth"
    x = sample(modality, encoding, np.random.default_rng(3))
    fields = encode(x, encoding, modality=modality)
    row = fields["step"]
    padded = np.full((H, row + 3), 0xEE, dtype=np.uint8)  # odd padding: 16/32-bit rows unaligned
    padded[:, :row] = np.frombuffer(fields["data"], dtype=np.uint8).reshape(H, row)
    msg = Image(**{**fields, "step": row + 3, "data": padded.tobytes()})
    np.testing.assert_array_equal(decode(round_trip(msg), modality), x)


def test_rclpy_accepts_bytes_and_array_for_data() -> None:
    """bytes work with the default setter; array.array is the type that skips the checked path."""
    fields = encode(np.arange(H * W, dtype=np.uint8).reshape(H, W), "mono8")
    from_bytes = Image(**fields)
    assert isinstance(from_bytes.data, array.array)
    assert from_bytes.data.tobytes() == fields["data"]
    checked = Image(check_fields=True)  # what ROS_PYTHON_CHECK_FIELDS=1 gives every message
    fill_msg(checked, np.zeros((H, W), dtype=np.uint8), "mono8", header=header())
    assert checked.data.tobytes() == bytes(H * W)
    checked.data = fields["data"]  # bytes pass the per-element check too (slowly, for big images)
    assert decode(round_trip(checked), "rgb").shape == (H, W, 3)


def test_every_table_encoding_is_a_valid_rclpy_message() -> None:
    for encoding, spec in ENCODINGS.items():
        msg = Image(height=2, width=3, encoding=encoding, step=3 * spec.bytes_per_pixel)
        msg.data = bytes(msg.step * msg.height)
        back = round_trip(msg)
        assert back.encoding == encoding
        assert len(back.data) == msg.step * msg.height


def ros2_cv_bridge() -> Any:
    """The ROS 2 CvBridge, or skip: the PyPI ``cv-bridge`` is a ROS 1 port that fails on these messages."""
    try:
        import cv_bridge
    except ImportError as exc:
        pytest.skip(f"cv_bridge is not importable ({exc}); ROS 2 cv_bridge is not on PyPI")
    try:
        bridge = cv_bridge.CvBridge()
        probe = bridge.cv2_to_imgmsg(np.zeros((2, 3), dtype=np.uint16), "16UC1")
        if not isinstance(probe, Image) or not isinstance(probe.data, array.array):
            raise TypeError(f"cv2_to_imgmsg made a {type(probe).__module__}.{type(probe).__name__}")
        bridge.imgmsg_to_cv2(probe, "passthrough")
    except Exception as exc:  # any failure means it is not a working ROS 2 cv_bridge
        pytest.skip(f"cv_bridge at {getattr(cv_bridge, '__file__', '?')} is not the ROS 2 one: {exc!r}")
    return bridge


@pytest.mark.parametrize(("modality", "encoding"), PAIRS)
def test_matches_ros2_cv_bridge(modality: str, encoding: str) -> None:
    bridge = ros2_cv_bridge()
    x = sample(modality, encoding, np.random.default_rng(11))
    msg = fill_msg(Image(), x, encoding, modality=modality, bigendian=encoding == "32FC1")
    ours = decode(msg, modality)
    if modality == "rgb":
        theirs = bridge.imgmsg_to_cv2(msg, "rgb8").astype(np.int16)
        # 16 -> 8 bits: we keep the high byte, cv_bridge scales (and rounds): at most 1 apart
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1 if encoding == "mono16" else 0)
        return
    raw = bridge.imgmsg_to_cv2(msg, "passthrough").astype(np.float64)
    if encoding == "32FC1":
        np.testing.assert_array_equal(ours, raw)
    elif modality == "depth":
        np.testing.assert_allclose(ours, raw / 1000, rtol=1e-6)
    elif encoding == "mono8":
        np.testing.assert_allclose(ours, 240 + raw * (100 / 255), rtol=1e-6)
    else:
        np.testing.assert_allclose(ours, raw * 0.01, rtol=1e-6)
