"""``bag eval --live`` of a robot bag whose cameras were recorded through image_transport.

A 4 s, 10 Hz, 120x160 ``bag make`` bag re-encoded as the plugins write it (rgb JPEG under a
driver's name, ``/camera/color/image_raw/compressed``, read through ``--remap``; depth as
compressedDepth, thermal as 16-bit PNG under image_transport's names) is played against
``unimrseg_node`` in their own processes: the node is told each camera's transport, every
frame's outputs arrive, and the live scores equal the offline ones of the same bag (measured:
39 of 40 frames each, mIoU 0.648 both).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from compressed_bags import TRANSPORT, compressed_copy  # test/ is on sys.path (beside conftest.py)

pytestmark = [pytest.mark.ros, pytest.mark.slow]
pytest.importorskip("rclpy", reason="rclpy is not installed")

DRIVER_RGB = "/camera/color/image_raw/compressed"


def test_a_compressed_robot_bag_evaluates_live_as_offline(ros_env: dict[str, str], tmp_path: Path) -> None:
    from unimrseg_core.bags import make_bag
    from unimrseg_core.bags.evaluate import evaluate_bag
    from unimrseg_ros.live_eval import evaluate_live

    made = tmp_path / "made"
    make_bag(made, duration_s=4.0, rate_hz=10.0, size=(120, 160), progress=False)
    bag = compressed_copy(made, tmp_path / "robot", names={"rgb": DRIVER_RGB})
    remap = {DRIVER_RGB: "rgb/image"}
    live = evaluate_live(bag, domain_id=int(ros_env["ROS_DOMAIN_ID"]), remap=remap, log_dir=tmp_path / "logs")
    offline = evaluate_bag(bag, remap=remap)

    node_args = live["config"]["node_args"]
    for modality, transport in TRANSPORT.items():
        assert f"{modality}.transport:={transport}" in node_args
        assert live["bag"]["topics"][f"{modality}/image"]["transport"] == transport
    assert live["bag"]["topics"]["rgb/image"]["bag_topic"] == DRIVER_RGB
    outputs = live["summary"]["all"]["outputs"]
    assert outputs >= 0.9 * live["summary"]["all"]["anchor_frames"] > 0
    assert live["summary"]["all"]["used"].get("rgb+depth+thermal", 0) >= outputs - 2
    assert live["summary"]["rejected"] == {"rgb": 0, "depth": 0, "thermal": 0}
    assert abs(live["summary"]["all"]["miou"] - offline["summary"]["all"]["miou"]) <= 0.02
