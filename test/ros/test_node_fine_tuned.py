"""A model fine-tuned onto a user's 5-class table deploys in the node without code changes: the
node (a real process over DDS, fed by the simulated cameras) publishes that table on its latched
labels topic, class ids of it, and the colour mask in its colours, all read from the model's
metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from node_rig import ROS_KEYS, SIZE, Listener, Sim, start_node  # test/ros is on sys.path
from waits import wait_for

from unimrseg_core import topics

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

FIVE = """\
classes:
  - {name: ground, color: [128, 64, 128]}
  - {name: structure, color: [70, 70, 70]}
  - {name: person, color: [220, 20, 60], is_thing: true}
  - {name: vehicle, color: [0, 0, 142], is_thing: true}
  - {name: nature, color: [107, 142, 35]}
"""
OURS_TO_FIVE = """\
mapping: {background: structure, ground: ground, sky: nature, building: structure, vegetation: nature,
  person: person, vehicle: vehicle, obstacle: structure}
"""


def fine_tune(tmp: Path) -> Path:
    """A few steps from the shipped weights onto FIVE (the world relabelled), exported: its folder."""
    from unimrseg_core.model.checkpoint import SHIPPED
    from unimrseg_core.runtime.export import export_onnx
    from unimrseg_core.train.config import from_dict
    from unimrseg_core.train.trainer import Trainer

    (tmp / "five.yaml").write_text(FIVE)
    (tmp / "map.yaml").write_text(OURS_TO_FIVE)
    source = {"kind": "procedural", "seed": 9, "scenes": 4, "classmap": str(tmp / "map.yaml")}
    cfg = from_dict(
        {
            "out_dir": str(tmp / "run"),
            "device": "cpu",
            "init": str(SHIPPED),
            "classes": str(tmp / "five.yaml"),
            "batch_size": 2,
            "data": {"size": [64, 80], "crop": None, "sources": [source]},
            "stages": {"stage1": {"steps": 0}, "stage2": {"steps": 3}, "stage3": {"steps": 0}},
        }
    )
    final = Trainer(cfg, progress=False).run()
    export_onnx(final, final.with_suffix(".onnx"), parity_scenes=1)
    return final.parent


def test_a_fine_tuned_five_class_model_runs_in_the_node(
    module_ros_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = fine_tune(tmp_path)
    for key in ROS_KEYS:
        monkeypatch.setenv(key, module_ros_env[key])
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(module_ros_env["ROS_DOMAIN_ID"]))
    listener = Listener(context)
    received: list[str] = []
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    listener.node.create_subscription(String, topics.LABELS, lambda m: received.append(m.data), latched)
    params = (f"model_dir:={model_dir}", "onnx:=model.onnx", "checkpoint:=model.pt", "backend:=onnxruntime")
    node = start_node(module_ros_env, tmp_path, *(a for p in params for a in ("-p", p)))
    sim = Sim(module_ros_env, tmp_path)
    try:

        def both() -> list[int] | None:
            masks, colours = listener.data_of(topics.CLASS_MASK), listener.data_of(topics.COLORED_MASK)
            common = sorted(set(masks) & set(colours))
            return common[:3] if len(common) >= 3 else None

        stamps = wait_for(both, 90)
        assert stamps, f"no masks from the node\n{node.text()[-3000:]}"
        assert wait_for(lambda: received, 10), "no latched label table"
        table = json.loads(received[0])
        assert [c["name"] for c in table["classes"]] == ["ground", "structure", "person", "vehicle", "nature"]
        colours = np.zeros((256, 3), np.uint8)
        for c in table["classes"]:
            colours[c["id"]] = c["color"]
        masks, coloured = listener.data_of(topics.CLASS_MASK), listener.data_of(topics.COLORED_MASK)
        for stamp in stamps:
            ids = np.frombuffer(masks[stamp], np.uint8).reshape(SIZE)
            rgb = np.frombuffer(coloured[stamp], np.uint8).reshape(*SIZE, 3)
            assert ids.max() < 5
            np.testing.assert_array_equal(rgb, colours[ids])  # the model's colours, not ours
        assert "Traceback" not in node.text()
    finally:
        sim.stop()
        node.stop()
        listener.close()
        rclpy.shutdown(context=context)
