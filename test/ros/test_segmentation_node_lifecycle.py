"""The node's lifecycle, parameters and QoS reports, driven in-process with ``trigger_*``.

The node and a peer node (camera publishers and output subscribers) share one rclpy
context on this test's ROS domain, spun by one executor in the background (the node's
inference has its own thread).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from reliability_rig import camera_frames  # noqa: E402  (test/ros is on sys.path)
from sensor_msgs.msg import Image  # noqa: E402
from waits import wait_for, wait_until  # noqa: E402

from unimrseg_core import topics  # noqa: E402
from unimrseg_core.image_msg import decode  # noqa: E402
from unimrseg_core.modalities import MODALITIES  # noqa: E402
from unimrseg_core.runtime.overlay import overlay  # noqa: E402
from unimrseg_ros.segmentation_node import SegmentationNode  # noqa: E402

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
INPUT_TOPICS = {f"/{t}" for t in topics.INPUTS.values()}


@dataclass
class Harness:
    node: SegmentationNode
    peer: Any
    executor: SingleThreadedExecutor
    statuses: list[Any] = field(default_factory=list)
    sent: int = 0  # camera frames published (each on every input)
    stop: threading.Event = field(default_factory=threading.Event)

    def outputs(self) -> int:
        return len(self.statuses)

    def wait_outputs(self, more: int, timeout: float = 30.0) -> bool:
        target = self.outputs() + more
        return bool(wait_for(lambda: self.outputs() >= target, timeout))

    def wait_sent(self, more: int) -> None:
        """A window measured in camera frames, so a loaded machine stretches it with the cameras."""
        target = self.sent + more
        wait_until(lambda: self.sent >= target, 10 + more, f"{more} more camera frames")

    def input_subscriptions(self) -> set[str]:
        return {s.topic_name for s in self.node.subscriptions} & INPUT_TOPICS

    def diagnostics(self) -> dict[str, Any]:
        return {s.name.rpartition(": ")[2]: s for s in self.node.diagnostics().status}


@pytest.fixture
def harness(rclpy_context: Any) -> Iterator[Harness]:
    node = SegmentationNode(context=rclpy_context, parameter_overrides=[Parameter("autostart", value=False)])
    peer = rclpy.create_node("unimrseg_lifecycle_peer", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    h = Harness(node, peer, executor)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    peer.create_subscription(DiagnosticArray, topics.STATUS, h.statuses.append, qos)
    pubs = {m: peer.create_publisher(Image, topics.INPUTS[m], qos) for m in MODALITIES}
    frames = camera_frames(seed=0)

    def publish() -> None:
        i = 0
        while not h.stop.wait(0.05):  # 20 Hz
            stamp = peer.get_clock().now().to_msg()
            for m in MODALITIES:
                msg = frames[i % len(frames)][m]
                msg.header.stamp = stamp
                msg.header.frame_id = f"test_{m}"
                pubs[m].publish(msg)
            i += 1
            h.sent = i

    executor.add_node(node)
    executor.add_node(peer)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        yield h
    finally:
        h.stop.set()
        publisher.join(5)
        node.release()
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        peer.destroy_node()


def test_configure_loads_activate_runs_deactivate_stops_cleanup_releases(harness: Harness) -> None:
    node = harness.node
    assert node.state_label == "unconfigured"
    assert node.segmenter is None

    assert node.trigger_configure() == SUCCESS
    assert node.state_label == "inactive"
    assert node.segmenter is not None  # the model is loaded at configure ...
    assert harness.input_subscriptions() == set()  # ... but nothing listens yet
    harness.wait_sent(10)
    assert harness.outputs() == 0

    assert node.trigger_activate() == SUCCESS
    assert node.state_label == "active"
    assert harness.input_subscriptions() == INPUT_TOPICS
    assert harness.wait_outputs(5), node.diagnostics()

    assert node.trigger_deactivate() == SUCCESS
    assert node.state_label == "inactive"
    assert harness.input_subscriptions() == set()
    harness.wait_sent(5)  # what was already on the wire
    stopped_at = harness.outputs()
    harness.wait_sent(20)
    assert harness.outputs() == stopped_at, "outputs continued after deactivate"
    assert node.segmenter is not None

    assert node.trigger_activate() == SUCCESS
    assert harness.wait_outputs(5), "outputs did not resume after activate"

    assert node.trigger_deactivate() == SUCCESS
    assert node.trigger_cleanup() == SUCCESS
    assert node.state_label == "unconfigured"
    assert node.segmenter is None  # the model is released

    assert node.trigger_shutdown() == SUCCESS
    assert node.state_label == "finalized"


def test_parameters_are_validated_and_change_only_while_unconfigured(harness: Harness) -> None:
    node = harness.node

    def set_one(name: str, value: Any) -> Any:
        return node.set_parameters([Parameter(name, value=value)])[0]

    result = set_one("backend", "nonsense")
    assert not result.successful
    assert "backend" in result.reason
    assert not set_one("sync.anchor_priority", ["rgb", "lidar"]).successful
    assert not set_one("health.silence_periods", 0.5).successful  # below the descriptor's range
    assert not set_one("autostart", False).successful  # read-only

    # a file outside model_dir (the shipped weights folder here): refused when set, with the reason
    result = set_one("onnx", "/etc/passwd")
    assert not result.successful
    assert "outside" in result.reason
    assert "model_dir" in result.reason
    assert not set_one("model_dir", "/").successful  # read-only: set at launch only
    assert not set_one("engine_cache_dir", "/tmp").successful  # read-only: engines are code

    # inside model_dir, but no model there: configure fails and says why, no exception
    assert set_one("onnx", "nonexistent.onnx").successful
    assert node.trigger_configure() == FAILURE
    assert node.state_label == "unconfigured"
    assert node.segmenter is None

    assert set_one("onnx", "").successful
    assert node.trigger_configure() == SUCCESS
    result = set_one("sync.max_skew_seconds", 0.2)
    assert not result.successful
    assert "configure" in result.reason  # read at configure: refused while configured
    assert node.get_parameter("sync.max_skew_seconds").value == 0.05


def test_incompatible_qos_is_reported_on_diagnostics_with_the_fix(harness: Harness) -> None:
    node = harness.node
    assert node.set_parameters([Parameter("input_qos.reliability", value="reliable")])[0].successful
    assert node.start()
    # a best-effort camera against a reliable subscription; a transient-local reader of a volatile output
    best_effort = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
    harness.peer.create_publisher(Image, topics.INPUTS["rgb"], best_effort)
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    harness.peer.create_subscription(Image, topics.CLASS_MASK, lambda m: None, latched)

    def reported() -> dict[str, Any] | None:
        diags = harness.diagnostics()
        ok = "input_qos.reliability:=best_effort" in diags["rgb"].message
        return diags if ok and "DURABILITY" in diags["inference"].message else None

    diags = wait_for(reported, 10)
    assert diags is not None, {k: v.message for k, v in harness.diagnostics().items()}
    assert diags["rgb"].level == DiagnosticStatus.ERROR
    assert any(kv.key == "qos_incompatible.RELIABILITY" for kv in diags["rgb"].values)
    assert "subscribe with volatile durability" in diags["inference"].message


def test_colored_mask_and_probability_are_computed_only_while_subscribed(harness: Harness) -> None:
    node = harness.node
    assert node.start()
    assert harness.wait_outputs(5)

    def published(topic: str) -> int:
        values = {kv.key: kv.value for kv in harness.diagnostics()["inference"].values}
        return int(values.get(f"published.{topic}", 0))

    assert published(topics.CLASS_MASK) >= 5
    assert published(topics.COLORED_MASK) == 0
    assert published(topics.SALIENCY_PROBABILITY) == 0
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    colored: list[Image] = []
    harness.peer.create_subscription(Image, topics.COLORED_MASK, colored.append, qos)
    assert wait_for(lambda: colored, 10)
    assert (colored[0].encoding, colored[0].height, colored[0].width) == ("rgb8", 120, 160)
    assert published(topics.COLORED_MASK) >= 1
    assert published(topics.SALIENCY_PROBABILITY) == 0


def test_overlay_is_the_class_colours_on_the_anchor_image_computed_only_while_subscribed(
    harness: Harness,
) -> None:
    node = harness.node
    assert node.start()
    assert harness.wait_outputs(5)

    def published() -> int:
        values = {kv.key: kv.value for kv in harness.diagnostics()["inference"].values}
        return int(values.get(f"published.{topics.OVERLAY}", 0))

    assert published() == 0
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    overlays: list[Image] = []
    masks: dict[tuple[int, int], Image] = {}
    harness.peer.create_subscription(
        Image,
        topics.CLASS_MASK,
        lambda m: masks.setdefault((m.header.stamp.sec, m.header.stamp.nanosec), m),
        qos,
    )
    harness.peer.create_subscription(Image, topics.OVERLAY, overlays.append, qos)

    def matched() -> tuple[Image, Image] | None:
        for msg in list(overlays):
            mask = masks.get((msg.header.stamp.sec, msg.header.stamp.nanosec))
            if mask is not None:
                return msg, mask
        return None

    pair = wait_for(matched, 10)
    assert pair is not None, f"{len(overlays)} overlays, {len(masks)} class masks, none with one stamp"
    msg, mask = pair
    assert (msg.encoding, msg.height, msg.width) == ("rgb8", 120, 160)
    assert published() >= 1
    got, class_ids = decode(msg, "rgb"), decode(mask, "rgb")[..., 0]
    # the anchor (rgb) was one of the harness's camera frames: the overlay is exactly the core's blend on it
    candidates = [overlay("rgb", decode(frame["rgb"], "rgb"), class_ids) for frame in camera_frames(seed=0)]
    assert any(np.array_equal(got, c) for c in candidates)


def test_a_backend_failing_at_runtime_hands_over_to_the_next_and_says_so_on_diagnostics(
    harness: Harness,
) -> None:
    """CUDA out of memory from the running engine: after 2 failures torch takes over; outputs go on."""
    import torch

    node = harness.node
    received: list[DiagnosticArray] = []
    harness.peer.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, received.append, 10)
    assert node.set_parameters(
        [Parameter("backend", value="onnxruntime"), Parameter("fallback_after_failures", value=2)]
    )
    assert node.start()
    assert harness.wait_outputs(3)

    def out_of_memory(feeds: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    node.segmenter.backend.current.infer = out_of_memory  # the engine breaks while running
    assert harness.wait_outputs(5), node.diagnostics()

    def switched() -> DiagnosticStatus | None:
        for array in reversed(received):
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name.endswith(": inference") and values.get("backend") == "torch":
                    return status
        return None

    status = wait_for(switched, 10)
    assert status is not None, "no /diagnostics message named the new backend"
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN
    assert "onnxruntime failed 2x at runtime (OutOfMemoryError: CUDA out of memory" in status.message
    assert "switched to torch" in values["last_backend_switch"]
    assert values["backend_switches"] == "1"
    assert values["failed_frames"] == "1"  # only the first failure cost a frame; the second ran on torch
