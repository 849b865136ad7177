"""What a bag's message types and recorded QoS become in rclpy, and back: shared by play and record.

Bags name types as ``package/msg/Name`` (rosbag2) and store the QoS their publishers
offered; rclpy needs the generated Python class and a ``QoSProfile``. Both directions
live here so the player and the recorder cannot disagree about them.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

from unimrseg_core.bags.raw import RecordedQos

__all__ = [
    "DEFAULT_DEPTH",
    "MessageTypeError",
    "bag_qos",
    "message_class",
    "replay_qos",
]

DEFAULT_DEPTH: Final = 10
"""History depth when a bag recorded none: room for a burst without holding stale frames."""

_RELIABILITY: Final = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
_DURABILITY: Final = {
    "volatile": DurabilityPolicy.VOLATILE,
    "transient_local": DurabilityPolicy.TRANSIENT_LOCAL,
}


class MessageTypeError(ValueError):
    """A message type this Python environment has no rclpy class for; names the type and the topic."""

    def __init__(self, msgtype: str, topic: str, reason: str) -> None:
        self.msgtype = msgtype
        self.topic = topic
        super().__init__(f"message type {msgtype!r} of topic {topic!r}: {reason}")


def message_class(msgtype: str, topic: str = "?") -> type:
    """The rclpy message class of ``package/msg/Name`` (``package/Name`` is read as a msg)."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise MessageTypeError(msgtype, topic, "not a ROS 2 type name (package/msg/Name)")
    package, kind, name = parts
    try:
        module = importlib.import_module(f"{package}.{kind}")
    except ImportError:
        raise MessageTypeError(
            msgtype,
            topic,
            f"package {package!r} is not installed in this Python environment (in a ROS workspace: "
            f"source it; in the venv: pip install ros-{package.replace('_', '-')} pinned to the "
            "ROS 2 Kilted set), or leave the topic out (--topics / --skip-unknown)",
        ) from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise MessageTypeError(msgtype, topic, f"{package}.{kind} has no type {name!r}")
    return cls


def replay_qos(recorded: RecordedQos | None, *, reliability: str | None = None) -> QoSProfile:
    """The QoS to publish a recorded topic with: what its publishers offered, else reliable and volatile.

    Reliable is the default because a reliable publisher serves both reliable and
    best-effort subscribers (a best-effort one serves only the latter). ``reliability``
    overrides the recorded value.
    """
    rel = reliability or (recorded.reliability if recorded else None) or "reliable"
    durability = (recorded.durability if recorded else None) or "volatile"
    depth = recorded.depth if recorded and recorded.depth > 0 else DEFAULT_DEPTH
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=_RELIABILITY[rel],
        durability=_DURABILITY[durability],
    )


_ZERO: Final = QosTime(sec=0, nsec=0)


def bag_qos(profile: Any) -> Qos:
    """rclpy ``QoSProfile`` (e.g. a discovered publisher's) -> the rosbags ``Qos`` a bag stores."""

    def enum(target: type, value: Any, fallback: Any) -> Any:
        try:
            return target[getattr(value, "name", str(value)).upper()]
        except KeyError:
            return fallback

    def duration(value: Any) -> QosTime:
        ns = int(getattr(value, "nanoseconds", 0) or 0)
        if ns <= 0 or ns >= (1 << 63) - 1:  # "infinite" is stored as 0 (the rosbag2 convention)
            return _ZERO
        sec, nsec = divmod(ns, 1_000_000_000)
        return QosTime(sec=sec, nsec=nsec)

    return Qos(
        history=enum(QosHistory, profile.history, QosHistory.UNKNOWN),
        depth=int(profile.depth),
        reliability=enum(QosReliability, profile.reliability, QosReliability.UNKNOWN),
        durability=enum(QosDurability, profile.durability, QosDurability.UNKNOWN),
        deadline=duration(profile.deadline),
        lifespan=duration(profile.lifespan),
        liveliness=enum(QosLiveliness, profile.liveliness, QosLiveliness.UNKNOWN),
        liveliness_lease_duration=duration(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )
