"""Any rosbag2 bag as serialized messages: what the player replays and the recorder checks.

:class:`BagReader <unimrseg_core.bags.read.BagReader>` reads this project's topics and
deserializes them for evaluation. Replaying a bag needs neither: every topic of every
bag (a robot's ``/tf``, ``/camera_info``, custom types) is passed on as the CDR bytes
rosbag2 stored, which are exactly what a DDS publisher sends. So :class:`RawBag` opens
the bag with rosbags' storage reader alone (sqlite3 or mcap; a bag directory or a
single ``.mcap`` / ``.db3`` file) and never parses a message definition: a bag whose
types this machine does not know still opens, and the player decides what to do
with them.

The offered QoS that ``ros2 bag record`` stores per topic is summarised as a
:class:`RecordedQos` (the reliability and durability every recorded publisher agreed
on, the deepest history), so a replay can offer what the robot's drivers offered.

Every problem with the file is a :class:`~unimrseg_core.bags.read.BagError` naming
the bag: missing, unfinished or truncated, corrupt, ROS 1, not CDR, messages out of
time order, one topic recorded with two types. Reading is finite: a broken bag
fails, it never hangs.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from rosbags.interfaces import Qos, QosDurability, QosReliability
from rosbags.rosbag2 import Reader

from unimrseg_core.bags.read import (
    BagError,
    check_bag_path,
    check_counts,
    explain_read_error,
    open_reader,
    ordered_messages,
    qos_mismatches,
    storage_connections,
)

__all__ = ["RawBag", "RawMessage", "RawTopic", "RecordedQos", "summarize_qos"]

_RELIABILITY: Final = {QosReliability.RELIABLE: "reliable", QosReliability.BEST_EFFORT: "best_effort"}
_DURABILITY: Final = {QosDurability.VOLATILE: "volatile", QosDurability.TRANSIENT_LOCAL: "transient_local"}


@dataclass(frozen=True)
class RecordedQos:
    """What the recorded publishers of one topic offered; None where they disagreed or did not say."""

    reliability: str | None  # "reliable" | "best_effort"
    durability: str | None  # "volatile" | "transient_local"
    depth: int  # deepest keep-last history offered (0: not recorded)
    publishers: int  # how many publishers the recording saw


def summarize_qos(profiles: Collection[Qos]) -> RecordedQos | None:
    """The QoS a replay should offer for these recorded profiles (rosbag2's own rule).

    A policy is kept only when every publisher offered the same value: a replayed
    best-effort topic stays best effort, a latched (transient local) map stays latched,
    and a topic with mixed publishers gets the caller's default. None: nothing recorded.
    """
    if not profiles:
        return None
    reliabilities = {_RELIABILITY.get(p.reliability) for p in profiles}
    durabilities = {_DURABILITY.get(p.durability) for p in profiles}
    return RecordedQos(
        reliability=reliabilities.pop() if len(reliabilities) == 1 else None,
        durability=durabilities.pop() if len(durabilities) == 1 else None,
        depth=max((int(p.depth) for p in profiles), default=0),
        publishers=len(profiles),
    )


@dataclass(frozen=True)
class RawTopic:
    """One topic of a bag: its name as recorded, type, message count and recorded QoS."""

    name: str
    msgtype: str
    count: int
    qos: RecordedQos | None


@dataclass(frozen=True)
class RawMessage:
    """One message as stored: the bag's topic name, its type, record time and CDR bytes."""

    topic: str
    msgtype: str
    record_ns: int
    data: bytes


class RawBag:
    """A rosbag2 bag read as serialized messages; a context manager (``with RawBag(path) as bag``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._reader: Reader | None = None
        self._topics: dict[str, RawTopic] = {}
        self._connections: dict[str, list[Any]] = {}  # topic -> rosbags Connections
        self.warnings: list[str] = []
        """What is read differently from what the bag says (QoS of metadata.yaml vs its storage)."""

    def __enter__(self) -> RawBag:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        if self._reader is not None:
            raise BagError(self.path, "already open")
        check_bag_path(self.path)
        try:
            reader = Reader(self.path)
        except Exception as exc:  # rosbags raises many types for a broken file; all mean "cannot read"
            raise BagError(self.path, f"cannot open: {explain_read_error(exc)}") from exc
        open_reader(self.path, reader)
        self._reader = reader
        try:
            self._index(reader)
            self.warnings = [
                f"topic {topic!r}: metadata.yaml's offered QoS differs from its storage file's; "
                "replayed with metadata.yaml's, read by the storage's"
                for topic in qos_mismatches(reader)
            ]
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):  # closing a broken bag must not hide why we close it
                reader.close()

    def _index(self, reader: Reader) -> None:
        by_topic: dict[str, list[Any]] = {}
        for connection in reader.connections:
            by_topic.setdefault(connection.topic, []).append(connection)
        for name, connections in sorted(by_topic.items()):
            types = sorted({c.msgtype for c in connections})
            if len(types) > 1:
                raise BagError(
                    self.path, f"topic {name!r} is recorded with several types: {', '.join(types)}"
                )
            formats = {getattr(c.ext, "serialization_format", "cdr") for c in connections}
            if formats != {"cdr"}:
                raise BagError(self.path, f"topic {name!r} is serialized as {formats}, not CDR")
            profiles = [q for c in connections for q in getattr(c.ext, "offered_qos_profiles", [])]
            self._topics[name] = RawTopic(
                name, types[0], sum(int(c.msgcount) for c in connections), summarize_qos(profiles)
            )
            self._connections[name] = connections

    def _open_reader(self) -> Reader:
        if self._reader is None:
            raise BagError(self.path, "not open (use `with RawBag(path) as bag`)")
        return self._reader

    # ------------------------------------------------------------------ facts

    @property
    def topics(self) -> Mapping[str, RawTopic]:
        """Every topic of the bag, by its recorded name."""
        self._open_reader()
        return dict(self._topics)

    @property
    def start_ns(self) -> int:
        """Record time of the first message."""
        return int(self._open_reader().start_time)

    @property
    def end_ns(self) -> int:
        """Record time of the last message (inclusive)."""
        reader = self._open_reader()
        return max(int(reader.end_time) - 1, int(reader.start_time))

    @property
    def message_count(self) -> int:
        return int(self._open_reader().message_count)

    def topic(self, name: str) -> RawTopic:
        """The topic ``name`` as recorded, or as recorded with or without its leading ``/``."""
        self._open_reader()
        for candidate in (name, f"/{name.lstrip('/')}", name.lstrip("/")):
            if candidate in self._topics:
                return self._topics[candidate]
        raise BagError(
            self.path, f"no topic {name!r} in the bag; its topics: {', '.join(self._topics) or 'none'}"
        )

    # ------------------------------------------------------------------ messages

    def messages(
        self,
        topics: Collection[str] | None = None,
        *,
        start_ns: int | None = None,
        stop_ns: int | None = None,
    ) -> Iterator[RawMessage]:
        """Messages of ``topics`` (recorded names; default all) in ``[start_ns, stop_ns)``, in time order.

        A whole read (no ``start_ns`` / ``stop_ns``, or a window holding the whole bag, as ``bag
        play`` asks) that gets fewer messages of a topic than the bag lists ends with a BagError
        giving the numbers.
        """
        reader = self._open_reader()
        names = list(self._topics) if topics is None else [self.topic(t).name for t in topics]
        connections = [c for name in names for c in self._connections[name]]
        if not connections:
            return
        asked = storage_connections(reader, connections)
        stream = reader.messages(connections=asked, start=start_ns, stop=stop_ns)
        read: Counter[str] = Counter()
        for connection, record_ns, data in ordered_messages(self.path, stream):
            read[connection.topic] += 1
            yield RawMessage(connection.topic, connection.msgtype, int(record_ns), bytes(data))
        whole = (start_ns is None or start_ns <= self.start_ns) and (stop_ns is None or stop_ns > self.end_ns)
        if whole:
            check_counts(self.path, {name: self._topics[name].count for name in names}, read)
