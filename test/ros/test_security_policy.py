"""The SROS2 policy names every topic and service a running node has, and nothing is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from unimrseg_core.topics import NODE_NAME
from unimrseg_ros import security

pytestmark = [pytest.mark.ros]

REPO_ROOT = Path(__file__).resolve().parents[2]

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")


def _expand(name: str, namespace: str = "/") -> str:
    """A policy expression as the fully qualified name rcl gives it."""
    if name.startswith("~/"):
        return f"{namespace.rstrip('/')}/{NODE_NAME}/{name[2:]}"
    return name if name.startswith("/") else f"{namespace.rstrip('/')}/{name}"


def test_the_committed_policy_is_the_generated_one():
    assert (REPO_ROOT / "config" / "sros2_policy.xml").read_text() == security.policy_xml()


def test_the_policy_is_well_formed_sros2():
    root = ET.fromstring(security.policy_xml().split("-->", 1)[1])
    assert root.tag == "policy"
    assert root.get("version") == "0.2.0"
    (enclave,) = root.iter("enclave")
    assert enclave.get("path") == security.ENCLAVE
    (profile,) = root.iter("profile")
    assert (profile.get("ns"), profile.get("node")) == ("/", NODE_NAME)
    for group in profile:
        assert set(group.attrib.values()) == {"ALLOW"}


def test_a_running_node_uses_only_what_the_policy_allows(rclpy_context: Any) -> None:
    from rclpy.parameter import Parameter

    from unimrseg_ros.segmentation_node import SegmentationNode

    node = SegmentationNode(context=rclpy_context, parameter_overrides=[Parameter("autostart", value=False)])
    try:
        assert node.start()
        subscribes = {s.topic_name for s in node.subscriptions}
        publishes = {p.topic_name for p in node.publishers}
        replies = {"/" + s.srv_name.lstrip("/") for s in node.services}  # rclpy names some relative
    finally:
        node.release()
        node.destroy_node()
    assert subscribes <= {_expand(t) for t in security.SUBSCRIBES}
    assert publishes <= {_expand(t) for t in security.PUBLISHES}
    assert replies <= {_expand(s) for s in security.REPLIES}
    # and the policy asks for nothing the node does not use (the outputs on demand included)
    assert {_expand(t) for t in security.SUBSCRIBES} == subscribes
    made_by_rcl = {"/rosout", _expand("~/transition_event")}  # publishers rclpy does not list
    assert {_expand(t) for t in security.PUBLISHES} - publishes == made_by_rcl
    missing = {_expand(s) for s in security.REPLIES} - replies
    assert missing <= {_expand("~/get_type_description")}, missing  # only on distros that have it


def test_compressed_inputs_are_the_topics_the_policy_allows(rclpy_context: Any) -> None:
    from rclpy.parameter import Parameter

    from unimrseg_ros.segmentation_node import SegmentationNode

    transports = {"rgb": "compressed", "depth": "compressedDepth", "thermal": "raw"}
    overrides = [Parameter("autostart", value=False)]
    overrides += [Parameter(f"{m}.transport", value=t) for m, t in transports.items()]
    node = SegmentationNode(context=rclpy_context, parameter_overrides=overrides)
    try:
        assert node.start()
        subscribed = {s.topic_name: s.msg_type.__name__ for s in node.subscriptions}
    finally:
        node.release()
        node.destroy_node()
    assert set(subscribed) == {_expand(t) for t in security.subscribes(transports)}
    assert (
        subscribed["/rgb/image/compressed"] == subscribed["/depth/image/compressedDepth"] == "CompressedImage"
    )
    assert subscribed["/thermal/image"] == "Image"
    assert "<topic>rgb/image/compressed</topic>" in security.policy_xml(transports=transports)
