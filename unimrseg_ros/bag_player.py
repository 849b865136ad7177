"""``unimrseg bag play``: replay any rosbag2 bag into live topics with its recorded timing.

The bytes rosbag2 stored are the CDR that DDS sends, so every message is published as
it was recorded (``Publisher.publish(bytes)``), never deserialized: any message type
rclpy can import plays, images cost no conversion, and what a subscriber receives is
bit for bit what the robot's driver sent. A type this Python environment lacks (a
robot's ``/tf_static``: no tf2_msgs wheel) is left out with a one-line note naming it when
the whole bag plays; a topic chosen by name (``--topics``) with such a type is an error
naming it (or skipped with ``skip_unknown``).

Timing: message ``i`` is due at ``t0 + (record_ns[i] - origin) / rate`` on the
monotonic clock, ``t0`` taken once, so sleeping late on one message never shifts the
next (no drift); a late message goes out at once and the lateness is reported. A
reader thread keeps a bounded queue of messages ahead, so reading the file never
delays a publish. With ``clock`` the player also publishes ``/clock``
(rosgraph_msgs/Clock) with the bag time of the playback position at ``clock_hz``,
for nodes run with ``use_sim_time``.

QoS: each topic is offered with what its recorded publishers offered (reliability,
durability, depth), else reliable + volatile, which serves reliable and best-effort
subscribers alike. One process publishes every camera here, so the Fast DDS shared-memory
segment is enlarged first (:mod:`unimrseg_ros.transport`), else frames are lost.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from unimrseg_core.bags.raw import RawBag, RawMessage, RawTopic
from unimrseg_core.bags.read import BagError
from unimrseg_core.bags.topics import TF_MESSAGE_TYPE

__all__ = ["NODE_NAME", "PlayOptions", "PlayReport", "Track", "plan_tracks", "play_bag"]

NODE_NAME: Final = "unimrseg_bag_player"
CLOCK_TOPIC: Final = "/clock"
_NS: Final = 1_000_000_000
_PREFETCH: Final = 64  # messages read ahead of the one being published
_END: Final = object()
_LINGER_S: Final = 0.3


@dataclass(frozen=True)
class PlayOptions:
    """How to play: speed, which topics under which names, which part, how often."""

    rate: float = 1.0
    clock: bool = False
    clock_hz: float = 40.0
    loop: bool = False
    topics: tuple[str, ...] = ()  # recorded names (leading "/" optional); empty: all
    remap: Mapping[str, str] = field(default_factory=dict)  # recorded name -> published name
    start_s: float = 0.0  # skip this much of the bag's beginning
    duration_s: float | None = None  # play at most this much bag time
    delay_s: float = 1.0  # after creating publishers, before the first message: discovery time
    reliability: str | None = None  # override every topic's recorded reliability
    skip_unknown: bool = False  # leave out chosen topics whose type rclpy cannot import (unchosen: always)
    segment_mb: float | None = None  # Fast DDS shared-memory segment (None: env or default)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if not (math.isfinite(self.clock_hz) and self.clock_hz > 0):
            raise ValueError(f"clock_hz must be > 0, got {self.clock_hz}")
        if not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise ValueError(f"start_s must be >= 0, got {self.start_s}")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")
        if not (math.isfinite(self.delay_s) and self.delay_s >= 0):
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s}")
        if self.reliability not in (None, "reliable", "best_effort"):
            raise ValueError(f"reliability must be reliable or best_effort, got {self.reliability!r}")


@dataclass(frozen=True)
class Track:
    """One recorded topic and the name it is published under."""

    topic: RawTopic
    out: str


@dataclass
class PlayReport:
    """What was played and how closely the recorded timing was kept."""

    bag: str
    span_s: float  # bag time selected: first to last message of the window
    rate: float
    messages: Counter[str] = field(default_factory=Counter)  # published name -> messages
    loops: int = 0
    clock_messages: int = 0
    first_publish: float | None = None  # monotonic
    last_publish: float | None = None
    expected_s: float = 0.0  # due time of the last message published - due time of the first
    lateness_s: list[float] = field(default_factory=list)  # publish time - due time, per message
    interrupted: bool = False
    skipped: dict[str, str] = field(default_factory=dict)  # recorded topic -> why it was left out

    @property
    def total(self) -> int:
        return sum(self.messages.values())

    @property
    def wall_s(self) -> float:
        if self.first_publish is None or self.last_publish is None:
            return 0.0
        return self.last_publish - self.first_publish

    def as_json(self) -> dict[str, Any]:
        late = np.asarray(self.lateness_s or [0.0]) * 1e3
        return {
            "bag": self.bag,
            "rate": self.rate,
            "span_s": round(self.span_s, 4),
            "messages": self.total,
            "topics": dict(sorted(self.messages.items())),
            "loops": self.loops,
            "clock_messages": self.clock_messages,
            "expected_s": round(self.expected_s, 4),
            "wall_s": round(self.wall_s, 4),
            "timing_error_pct": round(100 * (self.wall_s - self.expected_s) / self.expected_s, 3)
            if self.expected_s > 0
            else None,
            "lateness_ms": {
                "p50": round(float(np.percentile(late, 50)), 3),
                "p95": round(float(np.percentile(late, 95)), 3),
                "max": round(float(late.max()), 3),
            },
            "interrupted": self.interrupted,
            "skipped": dict(self.skipped),
        }


def plan_tracks(bag: RawBag, options: PlayOptions) -> tuple[list[Track], dict[str, str]]:
    """The topics to play and their published names; (tracks, skipped topic -> reason).

    Raises BagError for a ``--topics`` or ``--remap`` name the bag lacks, and MessageTypeError for
    a topic of ``--topics`` whose type rclpy cannot import (unless ``skip_unknown``); playing the
    whole bag, such topics are skipped (a robot's /tf_static: tf2_msgs is no wheel here).
    """
    from unimrseg_ros.bag_types import MessageTypeError, message_class

    chosen = [bag.topic(name) for name in options.topics] if options.topics else list(bag.topics.values())
    remap: dict[str, str] = {}
    for old, new in options.remap.items():
        remap[bag.topic(old).name] = new
    tracks, skipped = [], {}
    for topic in chosen:
        try:
            message_class(topic.msgtype, topic.name)
        except MessageTypeError as exc:
            if options.topics and not options.skip_unknown:
                raise
            skipped[topic.name] = _skip_note(topic.msgtype, exc)
            continue
        tracks.append(Track(topic, remap.get(topic.name, topic.name)))
    outs = Counter(t.out for t in tracks)
    twice = sorted(name for name, n in outs.items() if n > 1)
    if twice:
        raise BagError(bag.path, f"two recorded topics would be published as {twice[0]!r}; check --remap")
    if not tracks:
        raise BagError(bag.path, "nothing to play: no topic selected")
    return tracks, skipped


def _skip_note(msgtype: str, exc: Exception) -> str:
    """Why a topic is left out, in one line (the type, and for a TF topic where its facts go)."""
    reason = f"message type {msgtype!r} cannot be imported by rclpy here"
    if msgtype == TF_MESSAGE_TYPE:
        return f"{reason} (the cameras' mounting: give the node <modality>.extrinsic; bag eval --live does)"
    return f"{reason} ({str(exc).split(': ', 1)[-1].split(' (')[0]})"


class _Prefetch(threading.Thread):
    """Reads ``(loop, message)`` ahead into a bounded queue; an error is handed over, not lost."""

    def __init__(self, source: Iterator[tuple[int, RawMessage]], stop: threading.Event) -> None:
        super().__init__(name="unimrseg-bag-prefetch", daemon=True)
        self._source = source
        self._halt = stop
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=_PREFETCH)

    def _put(self, item: Any) -> bool:
        while not self._halt.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the publishing thread, which raises it
            self._put(exc)
            return
        self._put(_END)


class _Player:
    """The publishing loop: due times on the monotonic clock, /clock between messages."""

    def __init__(
        self,
        node: Any,
        bag: RawBag,
        tracks: Sequence[Track],
        options: PlayOptions,
        report: PlayReport,
    ) -> None:
        from unimrseg_ros.bag_types import message_class, replay_qos

        self.bag, self.options, self.report = bag, options, report
        self.tracks = {t.topic.name: t for t in tracks}
        self.pubs = {
            t.topic.name: node.create_publisher(
                message_class(t.topic.msgtype, t.topic.name),
                t.out,
                replay_qos(t.topic.qos, reliability=options.reliability),
            )
            for t in tracks
        }
        self.clock_pub = None
        self._clock_period = 1.0 / options.clock_hz
        self._next_clock = 0.0  # monotonic time of the next /clock message
        if options.clock:
            from rclpy.qos import QoSProfile, ReliabilityPolicy
            from rosgraph_msgs.msg import Clock

            self._clock_cls = Clock
            self.clock_pub = node.create_publisher(
                Clock, CLOCK_TOPIC, QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
            )
        self.origin_ns = bag.start_ns + round(options.start_s * _NS)
        last = bag.end_ns
        if options.duration_s is not None:
            last = min(last, self.origin_ns + round(options.duration_s * _NS) - 1)
        if last < self.origin_ns:
            raise BagError(bag.path, f"--start {options.start_s:g} s is past the bag's end")
        self.stop_ns = last + 1
        span = last - self.origin_ns
        busiest = max(t.topic.count for t in tracks)  # its mean period separates two loops
        period = (bag.end_ns - bag.start_ns) // (busiest - 1) if busiest > 1 else 0
        self.loop_ns = span + (period or _NS // 10)
        report.span_s = span / _NS

    def drain(self, stop: threading.Event, timeout_s: float = 1.0) -> None:
        """Let the last messages reach their subscribers before the publishers go away.

        Reliable ones are waited for until acknowledged; best-effort ones are read out of this
        process's shared memory by the subscriber after publish returns, so the player lingers a
        moment instead of removing that memory under them (the last frame was lost without it).
        """
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout_s
        for pub in self.pubs.values():
            left = deadline - time.monotonic()
            if left <= 0 or stop.is_set():
                break
            pub.wait_for_all_acked(Duration(nanoseconds=round(left * _NS)))
        stop.wait(_LINGER_S)

    def _messages(self) -> Iterator[tuple[int, RawMessage]]:
        names = list(self.tracks)
        for loop in range(sys.maxsize):
            seen = False
            for message in self.bag.messages(names, start_ns=self.origin_ns, stop_ns=self.stop_ns):
                seen = True
                yield loop, message
            if not (self.options.loop and seen):
                return

    def due(self, t0: float, loop: int, record_ns: int) -> float:
        return t0 + (loop * self.loop_ns + record_ns - self.origin_ns) / _NS / self.options.rate

    def _publish_clock(self, t0: float, at: float) -> None:
        bag_ns = self.origin_ns + round((at - t0) * self.options.rate * _NS) % self.loop_ns
        sec, nanosec = divmod(bag_ns, _NS)
        msg = self._clock_cls()
        msg.clock.sec, msg.clock.nanosec = sec, nanosec
        self.clock_pub.publish(msg)
        self.report.clock_messages += 1

    def _next(self, prefetch: _Prefetch, stop: threading.Event) -> tuple[int, RawMessage] | None:
        """The next message read ahead; None at the end of the bag or when stopped."""
        while not stop.is_set():
            try:
                item = prefetch.queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _END:
                return None
            if isinstance(item, BaseException):
                raise item
            return item
        return None

    def _wait_until(self, due: float, t0: float, stop: threading.Event) -> bool:
        """Sleep until ``due``, publishing /clock on its ticks meanwhile; False when stopped."""
        while not stop.is_set():
            now = time.monotonic()
            if self.clock_pub is not None and self._next_clock <= min(now, due):
                self._publish_clock(t0, self._next_clock)
                self._next_clock = max(self._next_clock + self._clock_period, now - self._clock_period)
                continue
            if now >= due:
                return True
            wake = min(due, self._next_clock) if self.clock_pub is not None else due
            stop.wait(max(0.0, wake - now))
        return False

    def run(self, stop: threading.Event) -> None:
        """Publish until the bag ends or ``stop`` is set."""
        halt = threading.Event()  # ends the reader thread whatever ends playing
        prefetch = _Prefetch(self._messages(), halt)
        prefetch.start()
        report = self.report
        try:
            item = self._next(prefetch, stop)  # t0 only once the first message is read: it is on time
            t0 = time.monotonic()
            self._next_clock = t0
            first_due: float | None = None
            while item is not None:
                loop, message = item
                due = self.due(t0, loop, message.record_ns)
                if not self._wait_until(due, t0, stop):
                    return
                self.pubs[message.topic].publish(message.data)
                published = time.monotonic()
                report.messages[self.tracks[message.topic].out] += 1
                report.loops = loop + 1
                report.lateness_s.append(published - due)
                if first_due is None:
                    report.first_publish, first_due = published, due
                report.last_publish = published
                report.expected_s = due - first_due
                item = self._next(prefetch, stop)
        finally:
            report.interrupted = stop.is_set()
            halt.set()
            prefetch.join(timeout=2.0)


def play_bag(
    path: str | Path,
    options: PlayOptions,
    *,
    stop: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> PlayReport:
    """Play the bag at ``path`` until it ends (or, looping, until ``stop`` is set); return the report.

    The bag is opened and every selected type checked before ROS starts, so a bad bag
    or an unknown type fails at once. Raises BagError, MessageTypeError, ValueError.
    """
    stop = stop if stop is not None else threading.Event()
    with RawBag(path) as bag:
        tracks, skipped = plan_tracks(bag, options)
        report = PlayReport(str(path), 0.0, options.rate, skipped=skipped)
        for topic, reason in skipped.items():
            log(f"skipping {topic}: {reason}")
        for warning in bag.warnings:
            log(f"warning: {warning}")

        import rclpy
        from rclpy.signals import SignalHandlerOptions

        from unimrseg_ros.transport import use_large_shm_segment

        use_large_shm_segment(options.segment_mb)
        context = rclpy.Context()
        rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
        node = None
        try:
            node = rclpy.create_node(NODE_NAME, context=context)
            player = _Player(node, bag, tracks, options, report)
            for track in tracks:
                renamed = f" as {track.out}" if track.out != track.topic.name else ""
                log(f"  {track.topic.name}{renamed}: {track.topic.msgtype}, {track.topic.count} messages")
            if options.delay_s > 0:
                stop.wait(options.delay_s)
            if stop.is_set():
                report.interrupted = True
            else:
                player.run(stop)
                player.drain(stop)
        finally:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown(context=context)
    return report
