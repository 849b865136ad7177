"""The fault injector node in-process: its parameter table, the CDR stamp helpers, and each message path.

The node is constructed on this test's own domain, configured and activated, and fed
serialized images directly (``_on_image``), with its publishers replaced by lists, so
every fault kind is checked deterministically without timing between processes;
test_fault_injector.py runs it for real between a camera rig and the segmentation node.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from waits import wait_for, wait_until

from unimrseg_core.bags import messages
from unimrseg_core.bags.topics import SENSORS
from unimrseg_core.faults import KINDS
from unimrseg_core.image_msg import decode
from unimrseg_ros import injector_parameters as params
from unimrseg_ros.cdr_header import cdr_stamp_ns, with_cdr_stamp

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

STAMP = 1_767_225_600_123_456_789


def image_bytes(modality: str, stamp_ns: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arrays = {
        "rgb": rng.integers(20, 230, (24, 32, 3), dtype=np.uint8),
        "depth": rng.uniform(1.0, 8.0, (24, 32)).astype(np.float32),
        "thermal": rng.uniform(280.0, 310.0, (24, 32)).astype(np.float32),
    }
    msg = messages.image_msg(SENSORS[modality], arrays[modality], stamp_ns, modality=modality)
    return messages.serialize(msg)


# ---------------------------------------------------------------------------- pure helpers


def test_cdr_stamp_read_and_rewrite_match_rclpy() -> None:
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    msg = Image(height=2, width=2, encoding="mono8", step=2, data=bytes(4))
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_767_225_600, 5
    msg.header.frame_id = "cam"
    data = serialize_message(msg)
    assert cdr_stamp_ns(data) == 1_767_225_600_000_000_005
    moved = deserialize_message(with_cdr_stamp(data, STAMP), Image)
    assert (moved.header.stamp.sec, moved.header.stamp.nanosec) == divmod(STAMP, 1_000_000_000)
    assert moved.header.frame_id == "cam"
    assert bytes(moved.data) == bytes(4)
    assert cdr_stamp_ns(image_bytes("rgb", STAMP)) == STAMP  # rosbags' CDR too
    with pytest.raises(ValueError, match="too short"):
        cdr_stamp_ns(b"\x00\x01\x00\x00")


def test_parameter_table_covers_every_kind_and_parameter_of_the_model() -> None:
    for modality in ("rgb", "depth", "thermal"):
        choices = params.BY_NAME[f"{modality}.fault"].choices
        assert choices[0] == "none"
        assert set(choices[1:]) == {k for k, s in KINDS.items() if modality in s.modalities}
        for kind in choices[1:]:
            for p in KINDS[kind].params:
                if modality in p.modalities:
                    assert f"{modality}.{kind}.{p.name}" in params.BY_NAME
    assert "rgb.depth_holes.fraction" not in params.BY_NAME  # depth only
    assert "thermal.blackout.value_k" in params.BY_NAME
    assert "rgb.blackout.value_k" not in params.BY_NAME
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert params.markdown_table() in readme, (
        "README's injector table is stale: python -m unimrseg_ros.injector_parameters"
    )


# ---------------------------------------------------------------------------- the node in-process


class Capture:
    def __init__(self) -> None:
        self.sent: list[tuple[float, Any]] = []

    def publish(self, msg: Any) -> None:
        self.sent.append((time.monotonic(), msg))


@pytest.fixture
def injector(rclpy_context: Any, tmp_path: Path) -> Any:
    from unimrseg_ros.fault_injector_node import FaultInjectorNode

    node = FaultInjectorNode(context=rclpy_context)
    assert node.start()  # what autostart does
    publishers = node._pubs
    node.capture = {m: Capture() for m in publishers}
    node._pubs = node.capture
    yield node
    node._pubs = publishers  # the real ones, for the lifecycle to destroy
    node.destroy_node()


def set_param(node: Any, name: str, value: Any) -> Any:
    from rclpy.parameter import Parameter

    return node.set_parameters([Parameter(name, value=value)])[0]


def sent_bytes(node: Any, modality: str) -> list[Any]:
    return [msg for _, msg in node.capture[modality].sent]


def test_no_fault_passes_the_bytes_through_untouched(injector: Any) -> None:
    data = image_bytes("rgb", STAMP)
    injector._on_image("rgb", data)
    assert sent_bytes(injector, "rgb") == [data]  # the very bytes, not a re-encoded copy


def test_drop_freeze_and_restamp_by_parameter(injector: Any) -> None:
    first, second = image_bytes("depth", STAMP, 1), image_bytes("depth", STAMP + 100_000_000, 2)
    injector._on_image("depth", first)
    assert set_param(injector, "depth.fault", "freeze").successful
    injector._on_image("depth", second)
    assert sent_bytes(injector, "depth") == [first, first]  # the stale frame, its stale stamp
    assert set_param(injector, "depth.freeze.restamp", True).successful  # re-commands with restamp
    injector._on_image("depth", second)
    restamped = sent_bytes(injector, "depth")[-1]
    assert cdr_stamp_ns(restamped) == STAMP + 100_000_000
    assert restamped[12:] == first[12:]
    assert set_param(injector, "depth.fault", "drop").successful
    injector._on_image("depth", second)
    assert len(sent_bytes(injector, "depth")) == 3
    assert set_param(injector, "depth.fault", "none").successful
    injector._on_image("depth", second)
    assert sent_bytes(injector, "depth")[-1] == second
    counts = injector.status()["counts"]["depth"]
    assert counts["received"] == 5
    assert counts["dropped"] == 1
    assert counts["frozen"] == 2


def test_content_faults_damage_in_sensor_units_and_keep_the_encoding(injector: Any) -> None:
    from sensor_msgs.msg import Image

    assert set_param(injector, "thermal.fault", "blackout").successful
    assert set_param(injector, "thermal.blackout.value_k", 250.0).successful
    injector._on_image("thermal", image_bytes("thermal", STAMP))
    out = sent_bytes(injector, "thermal")[-1]
    assert isinstance(out, Image)
    assert out.encoding == "mono16"
    assert np.allclose(decode(out, "thermal"), 250.0)
    assert set_param(injector, "rgb.fault", "noise").successful
    clean = image_bytes("rgb", STAMP)
    injector._on_image("rgb", clean)
    noisy = decode(sent_bytes(injector, "rgb")[-1], "rgb").astype(int)
    from rclpy.serialization import deserialize_message

    original = decode(deserialize_message(clean, Image), "rgb").astype(int)
    assert noisy.shape == original.shape
    assert 2 < np.abs(noisy - original).mean() < 20


def test_delay_keeps_order_and_releases_later(injector: Any) -> None:
    assert set_param(injector, "rgb.fault", "delay").successful
    assert set_param(injector, "rgb.delay.delay_s", 0.2).successful
    start = time.monotonic()
    frames = [image_bytes("rgb", STAMP + i * 100_000_000, i) for i in range(3)]
    for data in frames:
        injector._on_image("rgb", data)
    assert sent_bytes(injector, "rgb") == []
    wait_for(lambda: len(injector.capture["rgb"].sent) >= 3, 3.0)
    sent = injector.capture["rgb"].sent
    assert [msg for _, msg in sent] == frames
    assert sent[0][0] - start >= 0.19


def test_bad_values_are_refused_with_the_reason(injector: Any, tmp_path: Path) -> None:
    result = set_param(injector, "thermal.noise.sigma", 0.0)
    assert result.successful  # no noise is commanded: the value is kept for later ...
    refused = set_param(injector, "thermal.fault", "noise")  # ... and refused once it would be used
    assert not refused.successful
    assert "sigma" in refused.reason
    assert not set_param(injector, "rgb.fault", "depth_holes").successful  # not an rgb fault
    bad = tmp_path / "bad.yaml"
    bad.write_text("faults:\n  - {modality: thermal, kind: drop, start_s: 3, end_s: 1}\n")
    refused = set_param(injector, "schedule_file", str(bad))
    assert not refused.successful
    assert "end_s" in refused.reason
    missing = set_param(injector, "schedule_file", str(tmp_path / "nope.yaml"))
    assert not missing.successful
    assert "nope.yaml" in missing.reason


def test_schedule_file_set_at_run_time_starts_now_and_is_reported(injector: Any, tmp_path: Path) -> None:
    schedule = tmp_path / "s.yaml"
    schedule.write_text("faults:\n  - {modality: thermal, kind: drop, start_s: 0.0, end_s: 0.3}\n")
    assert set_param(injector, "schedule_file", str(schedule)).successful
    injector._on_image("thermal", image_bytes("thermal", STAMP))
    assert sent_bytes(injector, "thermal") == []
    status = injector.status()
    assert status["schedule"]["file"] == str(schedule)
    (active,) = status["active"]
    assert (active["modality"], active["kind"], active["source"]) == ("thermal", "drop", "schedule")
    assert active["end_ns"] - active["start_ns"] == 300_000_000
    json.dumps(status)  # what faults/active carries
    wait_until(lambda: injector.status()["active"] == [], 5, "the scheduled drop to end")
    injector._on_image("thermal", image_bytes("thermal", STAMP + 1))
    assert len(sent_bytes(injector, "thermal")) == 1
