"""sensor_sim ``--transport``: CompressedImages laid out as image_transport's plugins write them."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from unimrseg_core.compressed_msg import decode_compressed  # noqa: E402
from unimrseg_core.data.generator import SceneGenerator  # noqa: E402
from unimrseg_core.image_msg import ImageMsgError, decode  # noqa: E402
from unimrseg_ros import sensor_sim  # noqa: E402
from unimrseg_ros.sensor_sim import SimCamera  # noqa: E402

SIZE = (24, 32)
PNG = b"\x89PNG\r\n\x1a\n"


def camera(context: Any, modality: str, transport: str) -> SimCamera:
    return SimCamera(modality, size=SIZE, seed=3, scenes=1, transport=transport, context=context)


def test_compressed_rgb_is_a_bgr_jpeg_on_the_compressed_topic(rclpy_context: Any) -> None:
    cam = camera(rclpy_context, "rgb", "compressed")
    try:
        msg = cam.scenes[0]
        assert cam.topic == "rgb/image/compressed"
        assert isinstance(msg, CompressedImage)
        assert msg.format == "rgb8; jpeg compressed bgr8"
        data = bytes(msg.data)
        assert data[:2] == b"\xff\xd8"
        truth = SceneGenerator(SIZE, seed=3).sample(0, ["day"]).rgb
        as_stored = cv2.imdecode(
            np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR
        )  # BGR, as cv::imencode took it
        assert np.abs(as_stored[..., ::-1].astype(int) - truth.astype(int)).mean() < 6
        np.testing.assert_array_equal(decode_compressed(msg, "rgb"), as_stored[..., ::-1])
    finally:
        cam.destroy_node()


@pytest.mark.parametrize(
    ("modality", "transport", "fmt", "header"),
    [
        ("depth", "compressed", "16UC1; png compressed ", b""),
        ("thermal", "compressed", "mono16; png compressed ", b""),
        ("depth", "compressedDepth", "16UC1; compressedDepth png", struct.pack("<iff", 0, 0.0, 0.0)),
    ],
)
def test_depth_and_thermal_are_lossless_16_bit_pngs(
    rclpy_context: Any, modality: str, transport: str, fmt: str, header: bytes
) -> None:
    cam = camera(rclpy_context, modality, transport)
    try:
        msg = cam.scenes[0]
        assert cam.topic == f"{modality}/image/{transport}"
        assert msg.format == fmt
        data = bytes(msg.data)
        assert data[: len(header)] == header  # compressedDepth: the 12-byte ConfigHeader (INV_DEPTH, 0, 0)
        assert data[len(header) : len(header) + 8] == PNG
        stored = cv2.imdecode(np.frombuffer(data[len(header) :], np.uint8), cv2.IMREAD_UNCHANGED)
        assert (stored.dtype, stored.shape) == (np.uint16, SIZE)
        raw = SimCamera(modality, size=SIZE, seed=3, scenes=1, context=rclpy_context)
        try:
            np.testing.assert_array_equal(
                stored.tobytes(), bytes(raw.scenes[0].data)
            )  # the raw Image's pixels
            np.testing.assert_array_equal(decode_compressed(msg, modality), decode(raw.scenes[0], modality))
        finally:
            raw.destroy_node()
    finally:
        cam.destroy_node()


def test_faults_keep_the_transport(rclpy_context: Any) -> None:
    cam = camera(rclpy_context, "depth", "compressedDepth")
    try:
        assert cam.command("holes")["event"] == "holes"
        event = cam.tick(1, 1_000_000_000)
        assert event is not None
        assert event["transport"] == "compressedDepth"
        holes = decode_compressed(cam.last, "depth")
        assert np.mean(holes == 0) > 0.9
        assert "ignored" in cam.command("black")  # an rgb fault: the depth camera cannot show it
        cam.command("malformed")
        kinds = []
        for tick in range(2, 4):
            cam.tick(tick, tick * 1_000_000_000)
        for _, bad in cam.malformed:
            with pytest.raises(ImageMsgError) as info:
                decode_compressed(bad, "rgb")
            kinds.append(info.value.reason)
        assert kinds == ["unknown_format", "bad_compressed"]
        assert cam.malformed_sent == {"unknown_format": 1, "bad_compressed": 1}
    finally:
        cam.destroy_node()


def test_a_transport_the_modality_lacks_is_refused(rclpy_context: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rgb has no transport 'compressedDepth'"):
        SimCamera("rgb", size=SIZE, scenes=1, transport="compressedDepth", context=rclpy_context)
    argv = [
        "sensor_sim",
        "--modality",
        "rgb",
        "--transport",
        "compressedDepth",
        "--events",
        str(tmp_path / "e"),
    ]
    with pytest.raises(SystemExit) as exit_info:
        sensor_sim.main(argv)
    assert exit_info.value.code == 2
    raw = SimCamera("rgb", size=SIZE, scenes=1, context=rclpy_context)
    try:
        assert isinstance(raw.scenes[0], Image)  # raw stays the default
    finally:
        raw.destroy_node()
