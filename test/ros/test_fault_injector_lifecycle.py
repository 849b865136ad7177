"""The fault injector's lifecycle, driven in-process with ``trigger_*`` as a lifecycle manager would.

The injector and a peer node (a camera publishing on the injector's input, a subscriber on
its output) share one rclpy context on this test's ROS domain, spun by one executor in
the background. Only an active injector has subscriptions, publishers, services and
timers of its own; every other state leaves only what rclpy makes for any lifecycle node.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from waits import wait_for, wait_until  # noqa: E402  (test/ros is on sys.path)

from unimrseg_core import topics  # noqa: E402
from unimrseg_ros.fault_injector_node import FaultInjectorNode  # noqa: E402

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
ACTIVE_SUBSCRIPTIONS = {f"/{t}" for t in topics.INJECTOR_INPUTS.values()}
ACTIVE_PUBLISHERS = {f"/{t}" for t in (*topics.INPUTS.values(), topics.FAULTS_ACTIVE)}
ACTIVE_SERVICES = {"~/clear_faults", "~/restart_schedule"}  # as rclpy names the node's own


@dataclass(frozen=True)
class Entities:
    """The node's subscriptions and publishers (fully qualified), services (as created) and timers."""

    subscriptions: frozenset[str]
    publishers: frozenset[str]
    services: frozenset[str]
    timers: int


def entities(node: FaultInjectorNode) -> Entities:
    return Entities(
        frozenset(s.topic_name for s in node.subscriptions),
        frozenset(p.topic_name for p in node.publishers),
        frozenset(s.srv_name for s in node.services),
        len(list(node.timers)),
    )


@dataclass
class Harness:
    node: FaultInjectorNode
    peer: Any
    received: list[Image] = field(default_factory=list)
    sent: int = 0  # camera images published
    stop: threading.Event = field(default_factory=threading.Event)

    def wait_received(self, more: int, timeout: float = 10.0) -> bool:
        target = len(self.received) + more
        return bool(wait_for(lambda: len(self.received) >= target, timeout))

    def wait_sent(self, more: int) -> None:
        """A window measured in camera images, so a loaded machine stretches it with the camera."""
        target = self.sent + more
        wait_until(lambda: self.sent >= target, 10 + more, f"{more} more camera images")


def camera_image(stamp: Any) -> Image:
    msg = Image(height=24, width=32, encoding="rgb8", step=96, data=bytes(range(256)) * 9)
    msg.header.stamp = stamp
    msg.header.frame_id = "test_rgb"
    return msg


@pytest.fixture
def harness(rclpy_context: Any) -> Iterator[Harness]:
    node = FaultInjectorNode(context=rclpy_context)
    peer = rclpy.create_node("unimrseg_injector_lifecycle_peer", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    h = Harness(node, peer)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    peer.create_subscription(Image, topics.INPUTS["rgb"], h.received.append, qos)
    camera = peer.create_publisher(Image, topics.INJECTOR_INPUTS["rgb"], qos)

    def publish() -> None:
        while not h.stop.wait(0.05):  # 20 Hz
            camera.publish(camera_image(peer.get_clock().now().to_msg()))
            h.sent += 1

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
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        peer.destroy_node()


def test_only_the_active_state_has_topics_services_and_timers(harness: Harness) -> None:
    node = harness.node
    assert node.state_label == "unconfigured"
    bare = entities(node)  # what rclpy makes for any lifecycle node: /rosout, transition events ...
    always = {"get_parameters", "set_parameters", "get_state", "change_state"}  # ros2 param / lifecycle
    assert always <= {name.rpartition("/")[2] for name in bare.services}
    assert not bare.subscriptions & ACTIVE_SUBSCRIPTIONS
    assert not bare.publishers & ACTIVE_PUBLISHERS
    assert not bare.services & ACTIVE_SERVICES

    assert node.trigger_configure() == SUCCESS
    assert node.state_label == "inactive"
    assert entities(node) == bare
    harness.wait_sent(10)
    assert harness.received == []  # nothing republished before activation

    assert node.trigger_activate() == SUCCESS
    assert node.state_label == "active"
    active = entities(node)
    assert active.subscriptions - bare.subscriptions == ACTIVE_SUBSCRIPTIONS
    assert active.publishers - bare.publishers == ACTIVE_PUBLISHERS
    assert active.services - bare.services == ACTIVE_SERVICES
    assert active.timers == bare.timers + 2  # fault expiry, faults/active
    assert harness.wait_received(5)

    assert node.trigger_deactivate() == SUCCESS
    assert node.state_label == "inactive"
    assert entities(node) == bare
    harness.wait_sent(5)  # what was already on the wire
    stopped_at = len(harness.received)
    harness.wait_sent(20)
    assert len(harness.received) == stopped_at, "images republished after deactivate"

    assert node.trigger_activate() == SUCCESS
    assert harness.wait_received(5), "republishing did not resume after activate"

    assert node.trigger_deactivate() == SUCCESS
    assert node.trigger_cleanup() == SUCCESS
    assert node.state_label == "unconfigured"
    assert entities(node) == bare

    assert node.trigger_shutdown() == SUCCESS
    assert node.state_label == "finalized"
    assert entities(node) == bare


def test_what_configure_reads_changes_only_while_unconfigured(harness: Harness) -> None:
    node = harness.node

    def set_one(name: str, value: Any) -> Any:
        return node.set_parameters([Parameter(name, value=value)])[0]

    assert set_one("input_qos.depth", 10).successful
    assert not set_one("autostart", False).successful  # read-only
    assert node.start()
    refused = set_one("input_qos.depth", 20)
    assert not refused.successful
    assert "configure" in refused.reason
    assert node.get_parameter("input_qos.depth").value == 10
    assert set_one("thermal.fault", "drop").successful  # faults still change at once
    assert node.status()["active"][0]["kind"] == "drop"

    assert node.trigger_deactivate() == SUCCESS
    assert node.trigger_cleanup() == SUCCESS
    assert set_one("input_qos.depth", 20).successful


def test_a_schedule_file_gone_since_it_was_set_fails_configure(harness: Harness, tmp_path: Path) -> None:
    node = harness.node
    schedule = tmp_path / "faults.yaml"
    schedule.write_text("faults:\n  - {modality: thermal, kind: drop, start_s: 0.0, end_s: 1.0}\n")
    assert node.set_parameters([Parameter("schedule_file", value=str(schedule))])[0].successful
    schedule.unlink()
    assert node.trigger_configure() == FAILURE
    assert node.state_label == "unconfigured"
    assert not node.start()
    assert entities(node).publishers.isdisjoint(ACTIVE_PUBLISHERS)
