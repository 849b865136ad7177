"""``bag eval --live`` of a robot's bag: compressed cameras with their own intrinsics and mounting.

One ``bag make --rig --transport compressed depth=compressedDepth`` command writes what a robot
records (JPEG rgb, compressedDepth depth, PNG thermal, each camera offset with its CameraInfo,
one /tf_static). Played against ``unimrseg_node`` in their own processes, the node gets the
CameraInfo topics and the bag's /tf_static as ``<modality>.extrinsic`` parameters (it cannot
subscribe to /tf_static), registers as offline ``bag eval`` does, and scores alike; both score
above the same bag only resized (measured, 4 s at 120x160: mIoU 0.606 live and offline, 0.512
resized). ``bag play`` of the whole bag leaves /tf_static out with a note.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(400)]
pytest.importorskip("rclpy", reason="rclpy is not installed")

SIZE = "120x160"
DURATION_S = 4.0


@pytest.fixture(scope="module")
def robot_bag(tmp_path_factory) -> Path:
    from unimrseg_core.cli import main

    out = tmp_path_factory.mktemp("robot") / "robot"
    args = ["bag", "make", "--out", str(out), "--duration", str(DURATION_S), "--size", SIZE, "--rig"]
    assert main([*args, "--transport", "compressed", "depth=compressedDepth", "--quiet"]) == 0
    return out


def test_a_compressed_rig_bag_is_registered_live_as_offline(
    robot_bag: Path, ros_env: dict[str, str], tmp_path: Path
) -> None:
    from unimrseg_core.bags.evaluate import evaluate_bag
    from unimrseg_ros.live_eval import evaluate_live

    live = evaluate_live(robot_bag, domain_id=int(ros_env["ROS_DOMAIN_ID"]), log_dir=tmp_path / "logs")
    offline = evaluate_bag(robot_bag)
    resized = evaluate_bag(robot_bag, registration=False)

    node_args = live["config"]["node_args"]
    offline_rows = offline["registration"]["modalities"]
    for modality in ("depth", "thermal"):  # the bag's /tf_static, as the node's parameters
        assert f"{modality}.extrinsic:={offline_rows[modality]['extrinsic']}" in node_args
    assert "rgb.extrinsic" not in " ".join(node_args)  # the reference camera
    assert "depth.transport:=compressedDepth" in node_args
    rows = live["registration"]["modalities"]
    assert rows["depth"]["how"] == offline_rows["depth"]["how"] == "reprojected into rgb"
    assert rows["thermal"]["how"] == offline_rows["thermal"]["how"]
    assert rows["thermal"]["how"].startswith("via_depth into rgb")
    assert live["summary"]["rejected"] == {"rgb": 0, "depth": 0, "thermal": 0}
    outputs = live["summary"]["all"]["outputs"]
    live_miou, offline_miou = live["summary"]["all"]["miou"], offline["summary"]["all"]["miou"]
    anchor_frames = live["summary"]["all"]["anchor_frames"]
    # every frame reached the node: published, or dropped by its one-slot hand-off when the model
    # is slower than the cameras (measured: 39 of 40 published idle, 31 + 8 dropped on a busy machine)
    assert outputs + int(live["live"]["node"]["dropped_frames"]) >= anchor_frames - 2
    assert outputs >= 0.5 * anchor_frames > 0
    assert abs(live_miou - offline_miou) <= 0.02
    assert live_miou > resized["summary"]["all"]["miou"] + 0.03  # the node did register


def test_bag_play_of_the_whole_bag_leaves_tf_static_out_with_a_note(
    robot_bag: Path, ros_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from unimrseg_core.cli import main

    assert main(["bag", "play", str(robot_bag), "--delay", "0", "--duration", "0.3"]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("skipping ")]
    assert notes == [
        "skipping /tf_static: message type 'tf2_msgs/msg/TFMessage' cannot be imported by rclpy here "
        "(the cameras' mounting: give the node <modality>.extrinsic; bag eval --live does)"
    ]
    assert "depth/camera_info" in out
