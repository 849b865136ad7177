"""``unimrseg bag record``: live topics into a rosbag2 bag (sqlite3 or mcap), as ``ros2 bag record`` would.

Each topic's type is read from the ROS graph (so any type rclpy and ROS 2 Kilted's
message definitions know records), the subscription is raw (``raw=True``: the CDR
bytes DDS delivered go into the bag untouched, nothing is deserialized), and the
record time is the middleware's receive time of the message, kept non-decreasing so
the bag is in time order. The QoS the publishers offered is stored with each topic,
so a replay offers the same; the subscription itself is reliable only when every
publisher is (a reliable subscription never hears a best-effort camera).

Topics that have no publisher yet are waited for up to ``wait_s`` at the start; a
topic that appears later is recorded from then on. Recording stops on SIGINT,
SIGTERM (the CLI sets ``stop``) or after ``duration_s``; messages that had already
arrived are still recorded (a player that got every message acknowledged can be
followed by SIGINT at once), then the writer is closed, which writes ``metadata.yaml``
and the storage's index, so a bag stopped by a signal is complete. An existing output is never overwritten.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from unimrseg_core.bags.messages import typestore
from unimrseg_core.bags.write import STORAGES
from unimrseg_ros.bag_types import MessageTypeError, bag_qos, message_class

__all__ = ["NODE_NAME", "RecordOptions", "RecordReport", "record_bag"]

NODE_NAME: Final = "unimrseg_bag_recorder"
_DEPTH: Final = 50  # subscription history: room while the writer is busy with a large message
_GRAPH_POLL_S: Final = 0.25


@dataclass(frozen=True)
class RecordOptions:
    out: Path
    topics: tuple[str, ...]
    storage: str = "mcap"
    duration_s: float | None = None
    wait_s: float = 10.0  # how long to wait at the start for every topic to have a publisher

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("name at least one topic to record")
        if self.storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {self.storage!r}")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")
        if not (math.isfinite(self.wait_s) and self.wait_s >= 0):
            raise ValueError(f"wait_s must be >= 0, got {self.wait_s}")


@dataclass
class RecordReport:
    path: str
    storage: str
    types: dict[str, str] = field(default_factory=dict)  # topic -> type
    counts: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)  # asked for, never published
    seconds: float = 0.0
    stopped_by: str = ""  # "signal" | "duration"

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "storage": self.storage,
            "topics": {t: {"type": self.types[t], "messages": self.counts[t]} for t in sorted(self.types)},
            "missing": self.missing,
            "seconds": round(self.seconds, 3),
            "stopped_by": self.stopped_by,
        }


def subscription_qos(publisher_profiles: Sequence[Any]) -> QoSProfile:
    """Reliable only if every publisher is; transient local only if every publisher is."""
    reliable = bool(publisher_profiles) and all(
        p.reliability == ReliabilityPolicy.RELIABLE for p in publisher_profiles
    )
    latched = bool(publisher_profiles) and all(
        p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publisher_profiles
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=_DEPTH,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class _Recorder:
    """Subscriptions and the bag writer; every callback runs on the one spinning thread."""

    def __init__(self, node: Any, report: RecordReport, log: Callable[[str], None]) -> None:
        self.node, self.report, self.log = node, report, log
        self.writer: Any = None
        self.subs: dict[str, Any] = {}
        self.last_ns = 0

    def pending(self, wanted: Sequence[str]) -> list[str]:
        return [t for t in wanted if t not in self.subs]

    def discover(self, wanted: Sequence[str]) -> dict[str, str]:
        """The pending topics that now have publishers -> their type, checked to be recordable."""
        graph = dict(self.node.get_topic_names_and_types())
        found = {}
        for topic in self.pending(wanted):
            types = graph.get(topic)
            if not types:
                continue
            if len(types) > 1:
                raise ValueError(f"topic {topic} is published with several types: {', '.join(types)}")
            message_class(types[0], topic)
            if types[0] not in typestore().types:
                raise MessageTypeError(
                    types[0], topic, "ROS 2 Kilted has no definition of it to store in the bag"
                )
            found[topic] = types[0]
        return found

    def subscribe(self, topic: str, msgtype: str) -> None:
        profiles = [info.qos_profile for info in self.node.get_publishers_info_by_topic(topic)]
        connection = self.writer.add_connection(
            topic, msgtype, typestore=typestore(), offered_qos_profiles=[bag_qos(p) for p in profiles]
        )
        self.report.types[topic] = msgtype
        self.report.counts[topic] += 0
        self.subs[topic] = self.node.create_subscription(
            message_class(msgtype, topic),
            topic,
            self._callback(connection, topic),
            subscription_qos(profiles),
            raw=True,
        )
        self.log(f"recording {topic} ({msgtype})")

    def _callback(self, connection: Any, topic: str) -> Callable[[bytes, Any], None]:
        def on_message(data: bytes, info: Any) -> None:
            received = int(info.get("received_timestamp") or 0) if isinstance(info, dict) else 0
            stamp = max(received or time.time_ns(), self.last_ns)  # the bag stays in time order
            self.last_ns = stamp
            self.writer.write(connection, stamp, data)
            self.report.counts[topic] += 1

        return on_message


def record_bag(
    options: RecordOptions,
    *,
    stop: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> RecordReport:
    """Record ``options.topics`` into the new bag ``options.out`` until ``stop`` or the duration ends.

    Raises FileExistsError (never overwrites), ValueError when no topic ever appears,
    MessageTypeError for a type that cannot be recorded.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from rosbags.rosbag2 import Writer

    stop = stop if stop is not None else threading.Event()
    out = Path(options.out)
    if out.exists() or out.is_symlink():
        raise FileExistsError(f"{out} exists; refusing to overwrite it (choose a new --out)")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = RecordReport(str(out), options.storage)

    context = rclpy.Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(NODE_NAME, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        wanted = [node.resolve_topic_name(t) for t in options.topics]
        recorder = _Recorder(node, report, log)
        found: dict[str, str] = {}
        deadline = time.monotonic() + options.wait_s
        while not stop.is_set():  # types are checked before the bag exists: a failure leaves nothing
            found |= recorder.discover([t for t in wanted if t not in found])
            if len(found) == len(wanted) or time.monotonic() >= deadline:
                break
            stop.wait(0.05)
        if not found and not stop.is_set():
            raise ValueError(
                f"no publisher of {', '.join(wanted)} appeared within {options.wait_s:g} s "
                "(check the names, ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE)"
            )
        recorder.writer = Writer(out, version=9, storage_plugin=STORAGES[options.storage])
        recorder.writer.open()
        try:
            for topic, msgtype in found.items():
                recorder.subscribe(topic, msgtype)
            for topic in recorder.pending(wanted):
                log(f"{topic} has no publisher yet; it is recorded when one appears")
            started = time.monotonic()
            end = started + options.duration_s if options.duration_s is not None else math.inf
            next_poll = started + _GRAPH_POLL_S
            while not stop.is_set() and time.monotonic() < end:
                executor.spin_once(timeout_sec=min(0.1, max(0.0, end - time.monotonic())))
                if recorder.pending(wanted) and time.monotonic() >= next_poll:
                    for topic, msgtype in recorder.discover(wanted).items():
                        recorder.subscribe(topic, msgtype)
                    next_poll = time.monotonic() + _GRAPH_POLL_S
            report.stopped_by = "signal" if stop.is_set() else "duration"
            report.seconds = time.monotonic() - started
            taken = -1
            while taken != sum(report.counts.values()):  # what already arrived, to the last message
                taken = sum(report.counts.values())
                executor.spin_once(timeout_sec=0)
            report.missing = recorder.pending(wanted)
            for sub in recorder.subs.values():
                node.destroy_subscription(sub)
        finally:
            recorder.writer.close()  # metadata.yaml and the index: a complete bag however we stop
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return report
