"""Read any rosbag2 bag (sqlite3 or mcap; this project's or a robot's) in recorded time order.

:class:`BagReader` opens a bag directory (or a single ``.mcap`` / ``.db3`` file) with
rosbags' ``AnyReader``: message definitions come from the bag itself, else from ROS 2
Kilted's typestore. Topics are addressed by this project's names
(:data:`READ_TOPICS`: the camera, ground-truth and fault topics of
:mod:`unimrseg_core.bags.topics`). A bag recorded with other names is read through a
**remap** ``{bag topic: project topic}``, e.g.
``{"/camera/color/image_raw": "rgb/image"}``; without one, a bag topic matches when it
equals a project name with or without the leading ``/`` (``ros2 bag record`` writes
absolute names).

Everything that can go wrong with the file is a :class:`BagError` naming the bag and
the problem: no bag there, an unfinished or truncated recording, a corrupt database or
chunk, a topic of the wrong type, a message type with no definition, messages out of
time order, a bad remap. Reading is finite, so a broken bag fails, it never hangs.

Cameras recorded through image_transport: a camera topic may be a sensor_msgs/Image (raw)
or a sensor_msgs/CompressedImage, found under the camera's name or image_transport's
(``rgb/image/compressed``, ``depth/image/compressedDepth``), or remapped onto either
(``/camera/color/image_raw/compressed:=rgb/image``). The message type tells which
(``compressedDepth`` when the name ends so). When a bag holds one camera by two
transports, raw is read (lossless, no decoding), unless ``transports`` asks for another
(``{"rgb": "compressed"}``, the command line's ``--transport rgb=compressed``).

The fault schedule of a bag (:meth:`BagReader.fault_schedule`) is looked for, in order,
in ``metadata.yaml``'s ``custom_data`` (``unimrseg.faults``), on the ``faults/timeline``
topic, then in the ``faults.yaml`` sidecar; a bag without one (a robot's) is fine.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader

from unimrseg_core.bags import messages
from unimrseg_core.bags.topics import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    GROUND_TRUTH,
    IMAGE_TYPE,
    SENSORS,
    STRING_TYPE,
    TF_MESSAGE_TYPE,
)
from unimrseg_core.bags.write import FAULTS_SIDECAR
from unimrseg_core.faults import FaultError, FaultSchedule
from unimrseg_core.topics import (
    CAMERA_INFOS,
    FAULT_EVENTS,
    FAULT_TIMELINE,
    TF_STATIC,
    TRANSPORTS,
    input_topic,
)

__all__ = [
    "CAMERA_TOPICS",
    "READ_TOPICS",
    "BagError",
    "BagMessage",
    "BagReader",
    "parse_remap",
    "parse_transports",
    "transport_of",
]

READ_TOPICS: Final[Mapping[str, str]] = {
    **{t.topic: IMAGE_TYPE for t in SENSORS.values()},
    **{t.topic: IMAGE_TYPE for t in GROUND_TRUTH.values()},
    FAULT_TIMELINE: STRING_TYPE,
    FAULT_EVENTS: STRING_TYPE,
    **dict.fromkeys(CAMERA_INFOS.values(), CAMERA_INFO_TYPE),
    TF_STATIC.lstrip("/"): TF_MESSAGE_TYPE,
}
"""The project topics a bag is read as, with the message type each must have (a camera's may also be
a CompressedImage: :data:`CAMERA_TOPICS`); the calibration topics (``rgb/camera_info``, ``tf_static``)
are read by :mod:`unimrseg_core.bags.calibration`."""
CAMERA_TOPICS: Final[Mapping[str, str]] = {t.topic: m for m, t in SENSORS.items()}
"""Camera project topic -> its modality."""
_TRANSPORT_NAMES: Final[Mapping[str, str]] = {
    input_topic(m, t): SENSORS[m].topic for m in SENSORS for t in TRANSPORTS[m] if t != "raw"
}
"""image_transport's names of the cameras (``rgb/image/compressed``) -> the camera topic they are read as."""
_CAMERA_TYPES: Final = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)

FAULTS_KEY: Final = "unimrseg.faults"
SEQUENCE_KEY: Final = "unimrseg.sequence"
_STORAGES: Final = {"McapReader": "mcap", "Sqlite3Reader": "sqlite3"}
ROS1_MAGIC: Final = b"#ROSBAG"


def transport_of(msgtype: str, name: str) -> str:
    """The image_transport a camera topic was recorded by: its type says raw or compressed, a
    CompressedImage topic whose name ends in ``compressedDepth`` is compressed_depth's."""
    if msgtype != COMPRESSED_IMAGE_TYPE:
        return "raw"
    return "compressedDepth" if name.rstrip("/").endswith("compressedDepth") else "compressed"


class BagError(ValueError):
    """A bag that cannot be read as asked; the message names the bag and what is wrong with it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"bag {path}: {reason}")


@dataclass(frozen=True)
class BagMessage:
    """One deserialized message: the project topic it is read as, the bag's own name, record time."""

    topic: str
    bag_topic: str
    msgtype: str
    record_ns: int
    msg: Any


def parse_remap(items: Collection[str]) -> dict[str, str]:
    """``["old:=new", ...]`` (ROS remapping syntax) -> ``{old: new}``; ValueError naming a bad item."""
    remap: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition(":=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"remap must be OLD:=NEW (bag topic := project topic), got {item!r}")
        if old.strip() in remap:
            raise ValueError(f"bag topic {old.strip()!r} is remapped twice")
        remap[old.strip()] = new.strip()
    return remap


def explain_read_error(exc: BaseException) -> str:
    """A reader exception as one line, with a hint for the usual causes."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()  # rosbags', sqlite's and apsw's wording
    if "malformed" in lowered or "not a database" in lowered or "corrupterror" in type(exc).__name__.lower():
        return f"corrupt storage file ({text})"
    if "end magic is invalid" in lowered:
        return f"truncated or unfinished recording ({text}); was the recorder killed?"
    if "magic is invalid" in lowered:
        return f"not an mcap file or corrupt ({text})"
    return f"{type(exc).__name__}: {text}"


def parse_transports(items: Collection[str]) -> dict[str, str]:
    """``["rgb=compressed", ...]`` -> ``{"rgb": "compressed"}``; ValueError naming a bad item."""
    chosen: dict[str, str] = {}
    for item in items:
        modality, sep, transport = (part.strip() for part in item.partition("="))
        if not sep or modality not in TRANSPORTS:
            raise ValueError(
                f"transport must be MODALITY=TRANSPORT (MODALITY: {', '.join(TRANSPORTS)}), got {item!r}"
            )
        if transport not in TRANSPORTS[modality]:
            raise ValueError(
                f"{modality} has no transport {transport!r}; valid: {', '.join(TRANSPORTS[modality])}"
            )
        if modality in chosen:
            raise ValueError(f"transport of {modality} given twice")
        chosen[modality] = transport
    return chosen


Record = tuple[Any, int, bytes]  # rosbags: (connection, record_ns, data)


def ordered_messages(path: Path, stream: Iterator[Record]) -> Iterator[Record]:
    """rosbags' ``(connection, record_ns, data)`` stream, with a read failure or a record out of time
    order (an unindexed or damaged file) raised as a BagError naming the bag."""
    count, last_ns = 0, -1
    while True:
        try:
            item = next(stream, None)
        except Exception as exc:
            raise BagError(path, f"reading failed after {count} messages: {explain_read_error(exc)}") from exc
        if item is None:
            return
        connection, record_ns, _ = item
        if record_ns < last_ns:
            raise BagError(
                path,
                f"messages are not in time order ({connection.topic!r} at {record_ns} ns after "
                f"{last_ns} ns); an unindexed or damaged file",
            )
        count += 1
        last_ns = record_ns
        yield item


def check_bag_path(path: Path) -> None:
    """Refuse what no rosbags reader can open, with the reason: missing, ROS 1, unfinished.

    A directory with a ``metadata.yaml`` is a rosbag2 bag whatever its name (``run_01.bag/``
    is common); only a *file* is judged a ROS 1 bag, by its ``#ROSBAG`` header or its name.
    A path the system cannot even look at (a name too long, a folder without permission)
    is a BagError too, not the OSError of the look-up.
    """
    try:
        exists, is_dir = path.exists(), path.is_dir()
        has_metadata = is_dir and (path / "metadata.yaml").is_file()
        ros1 = not is_dir and exists and _has_ros1_header(path)
    except OSError as exc:
        raise BagError(path, f"cannot access: {exc.strerror or exc}") from None
    if not exists:
        raise BagError(path, "no such file or directory")
    if ros1 or (not is_dir and path.suffix == ".bag"):
        what = "a ROS 1 bag" if ros1 else "a .bag file without the ROS 1 header (#ROSBAG); damaged?"
        raise BagError(path, f"{what}; convert a ROS 1 bag with `rosbags-convert` first")
    if is_dir and not has_metadata:
        raise BagError(
            path,
            "no metadata.yaml: not a rosbag2 bag directory, or a recording that did not finish "
            "(`ros2 bag reindex` rebuilds it)",
        )


def _has_ros1_header(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(ROS1_MAGIC)) == ROS1_MAGIC


class Rosbag2AnyReader(AnyReader):
    """rosbags' AnyReader for one rosbag2 bag, also when its directory name ends in ``.bag``.

    AnyReader picks the ROS 1 reader by the ``.bag`` suffix alone; :func:`check_bag_path` has
    already established that ``path`` is a rosbag2 directory (it has a ``metadata.yaml``)
    or a storage file, so the rosbag2 reader is the right one whatever the name.
    """

    def __init__(self, path: Path, *, default_typestore: Any) -> None:
        super().__init__([path], default_typestore=default_typestore)
        if not self.is2:
            self.is2 = True
            self.readers = [Reader(path)]


def storage_connections(reader: Reader, connections: Collection[Any]) -> list[Any]:
    """``connections`` (from ``metadata.yaml``) as the storage file records them, for ``messages()``.

    rosbags' ``Reader.messages`` yields a storage connection's messages only when its
    ``ext`` (serialization format and offered QoS profiles) equals the asked one; a bag
    whose ``metadata.yaml`` lists other QoS than its ``.mcap`` / ``.db3`` (edited,
    re-indexed, written by another tool) then yields nothing at all. The QoS is only a
    record of the publishers' offer, the messages are all there: ask for each topic with
    the storage's own ``ext`` and type hash too (one entry per distinct one).
    """
    asked = list(connections)
    for conn in connections:
        for stored in _stored_connections(reader):
            if stored.topic != conn.topic or stored.msgtype != conn.msgtype:
                continue
            variant = conn._replace(ext=stored.ext, digest=stored.digest or conn.digest)
            if variant not in asked:
                asked.append(variant)
    return asked


def qos_mismatches(reader: Reader) -> list[str]:
    """Topics whose offered QoS in ``metadata.yaml`` differs from their storage file's."""
    stored = [(c.topic, c.ext) for c in _stored_connections(reader)]
    return sorted({c.topic for c in reader.connections if (c.topic, c.ext) not in stored})


def _stored_connections(reader: Reader) -> list[Any]:
    """The connections as the storage files record them (a bag directory's, or the one file's)."""
    inner = reader.storage
    return [c for storage in getattr(inner, "storages", None) or [inner] for c in storage.connections]


def check_counts(path: Path, expected: Mapping[str, int], read: Mapping[str, int]) -> None:
    """A complete read that got fewer messages of a topic than the bag's index lists is a BagError
    with the numbers (rosbags silently yields nothing for what it cannot match)."""
    short = [f"{t}: {read.get(t, 0)} of {n}" for t, n in expected.items() if read.get(t, 0) < n]
    if short:
        raise BagError(
            path,
            f"short read: fewer messages than metadata.yaml lists ({'; '.join(short)}); "
            "a damaged storage file or index (`ros2 bag reindex` rebuilds metadata.yaml)",
        )


def open_reader(path: Path, reader: Any) -> None:
    """``reader.open()`` with every rosbags failure turned into one BagError line."""
    try:
        reader.open()
    except Exception as exc:  # rosbags raises many types for a broken file; all mean "cannot read"
        raise BagError(path, f"cannot open: {explain_read_error(exc)}") from exc


class BagReader:
    """A rosbag2 bag read by project topic names; a context manager (``with BagReader(path) as bag``).

    ``remap``: ``{bag topic: project topic}`` for bags recorded under other names.
    ``transports``: ``{modality: transport}``, which of a camera's recorded transports to read
    (default: raw where the bag has it, else the one it has).
    Raises :class:`BagError` from :meth:`open` and while iterating :meth:`messages`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        remap: Mapping[str, str] | None = None,
        transports: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        # Names compare without their leading "/": ros2 bag records "/rgb/image", bag make "rgb/image".
        self.remap = {old.lstrip("/"): new.lstrip("/") for old, new in (remap or {}).items()}
        unknown = sorted(
            new for new in self.remap.values() if new not in READ_TOPICS and new not in _TRANSPORT_NAMES
        )
        if unknown:
            raise BagError(
                self.path,
                f"remap target {unknown[0]!r} is not a topic bag tools read; valid: {', '.join(READ_TOPICS)} "
                "(a camera also as image_transport names it, e.g. rgb/image/compressed)",
            )
        try:
            self.wanted_transports = parse_transports(f"{m}={t}" for m, t in (transports or {}).items())
        except ValueError as exc:
            raise BagError(self.path, str(exc)) from None
        self._reader: AnyReader | None = None
        self._connections: dict[str, Any] = {}  # project topic -> rosbags Connection
        self._transports: dict[str, str] = {}  # modality -> the transport read
        self._custom: dict[str, str] = {}
        self.warnings: list[str] = []
        """What was read differently from what the bag says (QoS of metadata.yaml vs its storage)."""

    # ------------------------------------------------------------------ open / close

    def __enter__(self) -> BagReader:
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
        try:  # AnyReader refuses a file it has no storage plugin for (a .txt) already here
            reader = Rosbag2AnyReader(self.path, default_typestore=messages.typestore())
        except Exception as exc:  # rosbags raises many types for a broken file; all mean "cannot read"
            raise BagError(self.path, f"cannot open: {explain_read_error(exc)}") from exc
        open_reader(self.path, reader)
        self._reader = reader
        try:
            self._resolve()
            metadata = getattr(reader.readers[0].storage, "metadata", None)
            custom = getattr(metadata, "custom", None)
            self._custom = {str(k): str(v) for k, v in (custom or {}).items()}
            self.warnings = [
                f"topic {topic!r}: metadata.yaml's offered QoS differs from its storage file's; "
                "read by the storage's"
                for topic in qos_mismatches(reader.readers[0])
            ]
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        reader, self._reader = self._reader, None
        self._connections, self._transports = {}, {}
        if reader is not None:
            with contextlib.suppress(Exception):  # closing a broken bag must not hide why we close it
                reader.close()

    def _open_reader(self) -> AnyReader:
        if self._reader is None:
            raise BagError(self.path, "not open (use `with BagReader(path) as bag`)")
        return self._reader

    def _resolve(self) -> None:
        """Map the bag's connections onto project topics; check types and definitions."""
        reader = self._open_reader()
        bag_topics = sorted({c.topic for c in reader.connections})
        plain = {t.lstrip("/") for t in bag_topics}
        missing = [old for old in self.remap if old not in plain]
        if missing:
            raise BagError(
                self.path,
                f"remap source {missing[0]!r} is not in the bag; "
                f"its topics: {', '.join(bag_topics) or 'none'}",
            )
        found: dict[str, dict[str, Any]] = {}  # project topic -> {bag topic: connection}
        for connection in reader.connections:
            topic = self._project_name(connection.topic)
            if topic is None:
                continue
            self._check_type(reader, connection, topic)
            by_bag = found.setdefault(topic, {})
            if connection.topic in by_bag:
                raise BagError(self.path, f"topic {connection.topic!r} is recorded with several types")
            by_bag[connection.topic] = connection
        for topic, by_bag in found.items():
            self._connections[topic] = self._choose(topic, by_bag)
        missing_cameras = [m for m in self.wanted_transports if SENSORS[m].topic not in self._connections]
        if missing_cameras:
            raise BagError(
                self.path, f"--transport {missing_cameras[0]}: the bag has no {missing_cameras[0]} camera"
            )

    def _check_type(self, reader: AnyReader, connection: Any, topic: str) -> None:
        """The bag topic read as ``topic`` has a type bag tools read it as, and a definition of it."""
        want = _CAMERA_TYPES if topic in CAMERA_TOPICS else (READ_TOPICS[topic],)
        if connection.msgtype not in want:
            raise BagError(
                self.path,
                f"topic {connection.topic!r} (read as {topic!r}) has type {connection.msgtype!r}, "
                f"expected {' or '.join(map(repr, want))}",
            )
        if connection.msgtype not in reader.typestore.types:
            raise BagError(
                self.path,
                f"message type {connection.msgtype!r} of topic {connection.topic!r} is unknown: the bag "
                "holds no definition of it and ROS 2 Kilted has none",
            )

    def _choose(self, topic: str, by_bag: Mapping[str, Any]) -> Any:
        """The connection read as ``topic``: the only one, or for a camera recorded by several
        transports the asked one (``transports``), else raw, else the first of ``TRANSPORTS``."""
        modality = CAMERA_TOPICS.get(topic)
        if modality is None:
            if len(by_bag) > 1:
                first, second = sorted(by_bag)[:2]
                raise BagError(self.path, f"bag topics {first!r} and {second!r} both read as {topic!r}")
            return next(iter(by_bag.values()))
        by_transport: dict[str, Any] = {}
        for name, connection in sorted(by_bag.items()):
            transport = transport_of(connection.msgtype, self._remapped_name(name))
            if transport in by_transport:
                raise BagError(
                    self.path,
                    f"bag topics {by_transport[transport].topic!r} and {name!r} both read as {topic!r} "
                    f"({transport})",
                )
            by_transport[transport] = connection
        want = self.wanted_transports.get(modality)
        if want is None:
            want = next(t for t in TRANSPORTS[modality] if t in by_transport)
        elif want not in by_transport:
            have = ", ".join(f"{t} ({c.topic})" for t, c in by_transport.items())
            raise BagError(self.path, f"--transport {modality}={want}: the bag has {modality} as {have}")
        self._transports[modality] = want
        return by_transport[want]

    def _remapped_name(self, bag_topic: str) -> str:
        """What ``bag_topic`` is read as before the transport suffix goes: the remap target or itself."""
        name = bag_topic.lstrip("/")
        return self.remap.get(name, name)

    def _project_name(self, bag_topic: str) -> str | None:
        name = bag_topic.lstrip("/")
        if name in self.remap:
            target = self.remap[name]
            return _TRANSPORT_NAMES.get(target, target)
        if name in self.remap.values():
            return None  # a remap target's own topic is replaced by the remapped one
        if name in _TRANSPORT_NAMES:
            return _TRANSPORT_NAMES[name]
        return name if name in READ_TOPICS else None

    # ------------------------------------------------------------------ facts

    @property
    def storage(self) -> str:
        reader = self._open_reader()
        storage = reader.readers[0].storage
        inner = getattr(storage, "storages", None) or [storage]
        return _STORAGES.get(type(inner[0]).__name__, type(inner[0]).__name__)

    @property
    def topics(self) -> dict[str, str]:
        """Project topic -> the bag topic read as it (only those present)."""
        self._open_reader()
        return {topic: c.topic for topic, c in self._connections.items()}

    @property
    def transports(self) -> dict[str, str]:
        """Camera modality -> the image_transport its messages are read by (raw, compressed, ...)."""
        self._open_reader()
        return dict(self._transports)

    @property
    def bag_topics(self) -> dict[str, tuple[str, int]]:
        """Every topic in the bag -> (type, message count)."""
        reader = self._open_reader()
        return {name: (info.msgtype or "?", info.msgcount) for name, info in reader.topics.items()}

    def count(self, topic: str) -> int:
        """Messages of project topic ``topic`` (0 when the bag has none)."""
        connection = self._connections.get(topic)
        return int(connection.msgcount) if connection is not None else 0

    @property
    def start_ns(self) -> int:
        return int(self._open_reader().start_time)

    @property
    def end_ns(self) -> int:
        """Record time of the last message (inclusive)."""
        return int(self._open_reader().end_time) - 1

    @property
    def message_count(self) -> int:
        return int(self._open_reader().message_count)

    @property
    def custom_data(self) -> dict[str, str]:
        """``metadata.yaml`` ``custom_data`` (empty for bags without it)."""
        return dict(self._custom)

    def sequence(self) -> dict[str, Any] | None:
        """``bag make``'s ``unimrseg.sequence`` (seed, size, rate, start stamp, ...), or None."""
        text = self._custom.get(SEQUENCE_KEY)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BagError(self.path, f"custom_data {SEQUENCE_KEY} is not JSON: {exc}") from None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------------ messages

    def messages(self, topics: Collection[str] | None = None) -> Iterator[BagMessage]:
        """Messages of the project ``topics`` present in the bag (default: all), in record time order."""
        reader = self._open_reader()
        unknown = [t for t in topics or () if t not in READ_TOPICS]
        if unknown:
            raise BagError(self.path, f"unknown topic {unknown[0]!r}; valid: {', '.join(READ_TOPICS)}")
        wanted = {t: c for t, c in self._connections.items() if topics is None or t in topics}
        if not wanted:
            return
        by_topic = {c.topic: t for t, c in wanted.items()}
        stream = reader.messages(connections=storage_connections(reader.readers[0], wanted.values()))
        read: Counter[str] = Counter()
        for count, (connection, record_ns, raw) in enumerate(ordered_messages(self.path, stream)):
            try:
                msg = reader.deserialize(raw, connection.msgtype)
            except Exception as exc:
                raise BagError(
                    self.path,
                    f"message {count} ({connection.topic!r} at {record_ns} ns) cannot be deserialized as "
                    f"{connection.msgtype}: {explain_read_error(exc)}",
                ) from exc
            read[connection.topic] += 1
            yield BagMessage(
                by_topic[connection.topic], connection.topic, connection.msgtype, int(record_ns), msg
            )
        check_counts(self.path, {c.topic: int(c.msgcount) for c in wanted.values()}, read)

    # ------------------------------------------------------------------ faults

    def fault_schedule(self) -> tuple[FaultSchedule | None, str | None]:
        """(schedule, where it came from) or (None, None) when the bag records none.

        Sources, first found wins: ``custom_data`` ``unimrseg.faults``, the first
        ``faults/timeline`` message, the ``faults.yaml`` sidecar in the bag directory.
        A schedule that is there but invalid is a :class:`BagError` naming the source.
        """
        text = self._custom.get(FAULTS_KEY)
        if text is not None:
            return self._schedule(text, f"custom_data {FAULTS_KEY}"), f"custom_data {FAULTS_KEY}"
        if FAULT_TIMELINE in self._connections:
            for message in self.messages([FAULT_TIMELINE]):
                source = f"topic {message.bag_topic}"
                return self._schedule(str(message.msg.data), source), source
        sidecar = self.path / FAULTS_SIDECAR if self.path.is_dir() else None
        if sidecar is not None and sidecar.is_file():
            try:
                text = sidecar.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise BagError(self.path, f"cannot read {sidecar}: {exc}") from None
            return self._schedule(text, str(sidecar)), str(sidecar)
        return None, None

    def _schedule(self, text: str, source: str) -> FaultSchedule:
        try:
            return FaultSchedule.from_yaml(text, source)
        except FaultError as exc:
            raise BagError(self.path, f"bad fault schedule: {exc}") from None
