"""``unimrseg bag play`` and ``unimrseg bag record`` as a user runs them, over real DDS.

Each test has its own ROS domain. The commands run as subprocesses (the ``unimrseg``
script); the test process subscribes or reads the bags back. Bags: a 3 s, 10 Hz,
120x160 bag from ``make_bag``, and a "robot" bag written with rosbags' own Writer under
other topic names, another storage, recorded best-effort QoS and a String topic.
Broken bags must fail at once with the reason, never hang.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from waits import wait_for

from unimrseg_core.bags import BagError, BagReader, make_bag, messages
from unimrseg_core.bags.raw import RawBag
from unimrseg_core.bags.topics import SENSORS

pytestmark = [pytest.mark.ros, pytest.mark.slow]
rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

UNIMRSEG = Path(sys.prefix) / "bin" / "unimrseg"
CAMERAS = tuple(t.topic for t in SENSORS.values())  # rgb/image, depth/image, thermal/image
ROBOT_RGB = "/camera/color/image_raw"
ROBOT_DEPTH = "/camera/depth/image_rect_raw"
ROBOT_STATUS = "/robot/status"
ROBOT_HZ = 15.0
ROBOT_FRAMES = 24


@dataclass
class Arrival:
    time: float
    stamp_ns: int


@dataclass
class Tap:
    """Subscriptions in this process, spun on a thread, recording arrival time and header stamp."""

    context: Any
    arrivals: dict[str, list[Arrival]] = field(default_factory=dict)
    texts: dict[str, list[str]] = field(default_factory=dict)
    clock: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.node = rclpy.create_node("unimrseg_test_tap", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # the context is shut down at teardown
            return

    @staticmethod
    def qos(reliable: bool) -> Any:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        policy = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        return QoSProfile(depth=100, reliability=policy)

    def images(self, topic: str, *, reliable: bool = True) -> None:
        from sensor_msgs.msg import Image

        self.arrivals[topic] = []

        def on_image(msg: Any) -> None:
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            self.arrivals[topic].append(Arrival(time.monotonic(), stamp))

        self.node.create_subscription(Image, topic, on_image, self.qos(reliable))

    def strings(self, topic: str) -> None:
        from std_msgs.msg import String

        self.texts[topic] = []
        self.node.create_subscription(
            String, topic, lambda m: self.texts[topic].append(m.data), self.qos(True)
        )

    def clock_topic(self) -> None:
        from rosgraph_msgs.msg import Clock

        def on_clock(msg: Any) -> None:
            self.clock.append((time.monotonic(), msg.clock.sec * 1_000_000_000 + msg.clock.nanosec))

        self.node.create_subscription(Clock, "/clock", on_clock, self.qos(True))

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()


@pytest.fixture
def tap(rclpy_context: Any) -> Iterator[Tap]:
    tap = Tap(rclpy_context)
    yield tap
    tap.close()


@pytest.fixture(scope="module")
def made_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bags") / "made"
    return make_bag(out, duration_s=3.0, rate_hz=10.0, size=(120, 160), storage="mcap", progress=False).path


def best_effort_qos() -> Any:
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(sec=0, nsec=0)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=5,
        reliability=QosReliability.BEST_EFFORT,
        durability=QosDurability.VOLATILE,
        deadline=zero,
        lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


def write_robot_bag(path: Path, extra_type: str | None = None) -> list[int]:
    """A bag as ``ros2 bag record`` on a robot writes it (sqlite3, absolute names); returns rgb stamps."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = messages.typestore()
    stamps = []
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        rgb = writer.add_connection(
            ROBOT_RGB, "sensor_msgs/msg/Image", typestore=store, offered_qos_profiles=[best_effort_qos()]
        )
        depth = writer.add_connection(ROBOT_DEPTH, "sensor_msgs/msg/Image", typestore=store)
        status = writer.add_connection(ROBOT_STATUS, "std_msgs/msg/String", typestore=store)
        if extra_type is not None:
            extra = writer.add_connection("/tf", extra_type, typestore=store)
            writer.write(
                extra, 1_700_000_000_000_000_000, messages.serialize(store.types[extra_type](transforms=[]))
            )
        rng = np.random.default_rng(3)
        for i in range(ROBOT_FRAMES):
            stamp = 1_700_000_000_000_000_000 + round(i * 1e9 / ROBOT_HZ)
            stamps.append(stamp)
            colour = messages.image_msg(SENSORS["rgb"], rng.integers(0, 255, (60, 80, 3), np.uint8), stamp)
            writer.write(rgb, stamp + 2_000_000, messages.serialize(colour))
            ranges = rng.uniform(0.5, 5.0, (60, 80)).astype(np.float32)
            writer.write(
                depth,
                stamp + 3_000_000,
                messages.serialize(messages.image_msg(SENSORS["depth"], ranges, stamp, modality="depth")),
            )
            if i % 5 == 0:
                writer.write(status, stamp + 4_000_000, messages.serialize(messages.string_msg(f"ok {i}")))
    return stamps


def run(args: list[str], env: dict[str, str], timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(UNIMRSEG), *args], env=env, capture_output=True, text=True, timeout=timeout)


def bag_stamps(path: Path, topic: str) -> tuple[list[int], list[int]]:
    """(header stamps, record times) of ``topic`` in a bag, in record order."""
    with BagReader(path) as bag:
        pairs = [
            (m.msg.header.stamp.sec * 1_000_000_000 + m.msg.header.stamp.nanosec, m.record_ns)
            for m in bag.messages([topic])
        ]
    return [s for s, _ in pairs], [r for _, r in pairs]


# ---------------------------------------------------------------------------- play


def test_play_keeps_the_recorded_timing_and_order_and_publishes_clock(
    made_bag: Path, tap: Tap, ros_env: dict[str, str], tmp_path: Path
) -> None:
    for topic in CAMERAS:
        tap.images(topic)
    tap.strings("faults/timeline")
    tap.clock_topic()
    report_path = tmp_path / "play.json"
    done = run(
        ["bag", "play", str(made_bag), "--clock", "20", "--delay", "1.5", "--json", str(report_path)], ros_env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[XMLPARSER Error]" not in done.stderr  # the generated Fast DDS profile parses
    expected_counts = {topic: len(bag_stamps(made_bag, topic)[0]) for topic in CAMERAS}
    wait_for(lambda: all(len(tap.arrivals[t]) >= n for t, n in expected_counts.items()), 10)

    stamps, records = bag_stamps(made_bag, "rgb/image")
    for topic in CAMERAS:
        got = tap.arrivals[topic]
        assert [a.stamp_ns for a in got] == bag_stamps(made_bag, topic)[0], topic  # all, in order
    rgb = tap.arrivals["rgb/image"]
    arrived = np.array([a.time for a in rgb])
    recorded = (np.array(records) - records[0]) / 1e9
    total, expected = arrived[-1] - arrived[0], recorded[-1]
    assert abs(total - expected) <= 0.10 * expected, (total, expected)
    gaps = np.diff(arrived)
    assert abs(np.median(gaps) - 0.1) <= 0.01, gaps
    assert np.percentile(np.abs(gaps - np.diff(recorded)), 90) < 0.03, gaps  # no drift, no bursts
    assert len(tap.texts["faults/timeline"]) == 1

    clock = np.array([c for _, c in tap.clock])
    assert len(clock) >= 0.7 * 20 * expected, len(clock)
    assert np.all(np.diff(clock) >= 0)
    assert records[0] <= clock[0]
    assert clock[-1] <= records[-1]
    for arrival, stamp in zip(rgb[::5], stamps[::5], strict=True):  # sim time follows the data
        before = [c for t, c in tap.clock if t <= arrival.time + 0.005]
        assert before, "no /clock before the frame"
        assert abs(before[-1] - stamp) <= 0.1e9, (before[-1] - stamp) / 1e9

    report = json.loads(report_path.read_text())
    assert report["topics"]["rgb/image"] == 30
    assert report["messages"] == 30 * 5 + 1
    assert abs(report["timing_error_pct"]) < 5
    assert report["lateness_ms"]["p95"] < 50


def test_play_a_robot_bag_under_other_names_with_remap_topics_and_rate(
    tap: Tap, ros_env: dict[str, str], tmp_path: Path
) -> None:
    bag = tmp_path / "robot"
    stamps = write_robot_bag(bag)
    tap.images("rgb/image", reliable=False)  # the bag says its camera offered best effort
    tap.images(ROBOT_DEPTH)
    tap.strings(ROBOT_STATUS)
    qos_seen: list[Any] = []

    def watch() -> None:
        def seen() -> list[Any]:
            qos_seen.extend(i.qos_profile for i in tap.node.get_publishers_info_by_topic("/rgb/image"))
            return qos_seen

        wait_for(seen, 30)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    args = ["bag", "play", str(bag), "--remap", f"{ROBOT_RGB}:=rgb/image", "--rate", "2", "--delay", "1.5"]
    done = run([*args, "--topics", ROBOT_RGB, ROBOT_STATUS], ros_env)
    assert done.returncode == 0, done.stdout + done.stderr
    watcher.join(1)
    wait_for(lambda: len(tap.arrivals["rgb/image"]) >= len(stamps), 10)

    rgb = tap.arrivals["rgb/image"]
    assert [a.stamp_ns for a in rgb] == stamps
    total, expected = rgb[-1].time - rgb[0].time, (ROBOT_FRAMES - 1) / ROBOT_HZ / 2
    assert abs(total - expected) <= 0.15 * expected, (total, expected)
    assert tap.arrivals[ROBOT_DEPTH] == []  # not selected
    assert tap.texts[ROBOT_STATUS] == [f"ok {i}" for i in range(0, ROBOT_FRAMES, 5)]
    from rclpy.qos import ReliabilityPolicy

    assert qos_seen, "the player's /rgb/image publisher was never seen"
    assert qos_seen[0].reliability == ReliabilityPolicy.BEST_EFFORT  # as recorded (depth is not discovered)


# ---------------------------------------------------------------------------- record


def test_record_a_live_stream_and_read_it_back(
    made_bag: Path, ros_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "recorded"
    topics = [*CAMERAS, "faults/timeline"]
    cmd = [str(UNIMRSEG), "bag", "record", *topics, "--out", str(out), "--storage", "sqlite3", "--wait", "60"]
    recorder = subprocess.Popen(cmd, env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        played = run(["bag", "play", str(made_bag), "--delay", "2"], ros_env)
        assert played.returncode == 0, played.stdout + played.stderr
        recorder.send_signal(signal.SIGINT)  # the player waited for every message to be acknowledged
        output, _ = recorder.communicate(timeout=30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
    assert recorder.returncode == 0, output
    assert "stopped by signal" in output

    with BagReader(out) as bag:  # a complete bag although the recorder was stopped by a signal
        assert bag.storage == "sqlite3"
        assert {t: bag.count(t) for t in topics} == {**dict.fromkeys(CAMERAS, 30), "faults/timeline": 1}
        assert set(bag.bag_topics) == {f"/{t}" for t in topics}
        assert bag.bag_topics["/rgb/image"][0] == "sensor_msgs/msg/Image"
    for topic in CAMERAS:
        assert bag_stamps(out, topic)[0] == bag_stamps(made_bag, topic)[0], topic
    _, received = bag_stamps(out, "rgb/image")
    assert np.all(np.diff(received) >= 0)
    assert abs(np.median(np.diff(received)) / 1e9 - 0.1) < 0.015
    with RawBag(out) as raw:
        qos = raw.topic("/rgb/image").qos
    assert qos is not None
    assert (qos.reliability, qos.publishers) == ("reliable", 1)  # what the player offered

    from unimrseg_ros.bag_recorder import RecordOptions, record_bag

    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        record_bag(RecordOptions(out=out, topics=("rgb/image",), wait_s=0))


# ---------------------------------------------------------------------------- broken bags


def test_broken_bags_and_unknown_types_fail_at_once_with_the_reason(
    made_bag: Path, tmp_path: Path, ros_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from unimrseg_ros.bag_player import PlayOptions, plan_tracks, play_bag
    from unimrseg_ros.bag_types import MessageTypeError

    truncated = tmp_path / "truncated"
    shutil.copytree(made_bag, truncated)
    (storage,) = truncated.glob("*.mcap")
    with storage.open("r+b") as handle:
        handle.truncate(storage.stat().st_size // 2)
    garbage = tmp_path / "garbage.db3"
    garbage.write_bytes(b"not a database, " * 1000)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "unfinished_0.mcap").write_bytes(b"\x89MCAP0\r\n")
    cases = {
        truncated: "truncated",
        garbage: "corrupt",
        unfinished: "no metadata.yaml",
        tmp_path / "missing": "no such file",
    }
    for path, reason in cases.items():
        started = time.monotonic()
        with pytest.raises(BagError, match=reason) as caught:
            play_bag(path, PlayOptions(delay_s=0))
        assert str(path) in str(caught.value)
        assert time.monotonic() - started < 5

    typed = tmp_path / "with_tf"
    write_robot_bag(typed, extra_type="tf2_msgs/msg/TFMessage")  # in ROS 2 Kilted, not in this venv
    with RawBag(typed) as bag:
        # the whole bag: the topic rclpy cannot import is left out with a note naming its type
        tracks, skipped = plan_tracks(bag, PlayOptions())
        assert {t.topic.name for t in tracks} == {ROBOT_RGB, ROBOT_DEPTH, ROBOT_STATUS}
        assert list(skipped) == ["/tf"]
        assert "'tf2_msgs/msg/TFMessage' cannot be imported" in skipped["/tf"]
        assert "extrinsic" in skipped["/tf"]
        # chosen by name, it is an error (or skipped when asked)
        with pytest.raises(MessageTypeError, match=r"tf2_msgs/msg/TFMessage.*'/tf'"):
            plan_tracks(bag, PlayOptions(topics=("/tf", ROBOT_RGB)))
        tracks, skipped = plan_tracks(bag, PlayOptions(topics=("/tf", ROBOT_RGB), skip_unknown=True))
        assert [t.topic.name for t in tracks] == [ROBOT_RGB]
        assert list(skipped) == ["/tf"]
        with pytest.raises(BagError, match="no topic '/nope'"):
            plan_tracks(bag, PlayOptions(topics=("/nope",)))

    from unimrseg_core.cli import main

    assert main(["bag", "play", str(truncated)]) == 2  # the command line says why, with the bag's name
    err = capsys.readouterr().err
    assert f"bag {truncated}" in err
    assert "truncated" in err
