"""``unimrseg bag play`` of a bag whose index lists more messages than its storage holds: it plays what
is there, then fails with the numbers per topic (as ``bag eval`` does), never a silent success."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

from rosbags.rosbag2 import Writer  # noqa: E402
from waits import wait_for  # noqa: E402

from unimrseg_core.bags import messages as bag_messages  # noqa: E402
from unimrseg_core.bags.topics import IMAGE_TYPE, SENSORS  # noqa: E402

COUNT = 12
LISTED = 15


def _short_bag(path: Path) -> Path:
    """``COUNT`` rgb images at 50 Hz whose metadata.yaml claims ``LISTED``."""
    with Writer(path, version=9) as writer:
        rgb = writer.add_connection("/rgb/image", IMAGE_TYPE, typestore=bag_messages.typestore())
        image = np.zeros((4, 6, 3), np.uint8)
        for k in range(COUNT):
            stamp = 1_000_000_000 + k * 20_000_000
            writer.write(
                rgb, stamp, bag_messages.serialize(bag_messages.image_msg(SENSORS["rgb"], image, stamp))
            )
    meta = path / "metadata.yaml"
    data = yaml.safe_load(meta.read_text())
    info = data["rosbag2_bagfile_information"]
    info["topics_with_message_count"][0]["message_count"] = LISTED
    info["message_count"] = LISTED
    meta.write_text(yaml.safe_dump(data))
    return path


def test_play_reports_a_short_read_with_the_numbers_after_playing_what_is_there(
    rclpy_context: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from unimrseg_core.cli import main

    bag = _short_bag(tmp_path / "short")
    node = rclpy.create_node("unimrseg_test_short_read", context=rclpy_context)
    received: list[Image] = []
    node.create_subscription(
        Image,
        SENSORS["rgb"].topic,
        received.append,
        QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
    )
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        status = main(["bag", "play", str(bag), "--delay", "1.5"])
        err = capsys.readouterr().err
        assert status == 2
        assert "short read" in err
        assert f"/rgb/image: {COUNT} of {LISTED}" in err
        assert str(bag) in err
        assert wait_for(lambda: len(received) >= COUNT, 5), len(received)  # what the bag holds was played
    finally:
        executor.shutdown(timeout_sec=2)
        node.destroy_node()
