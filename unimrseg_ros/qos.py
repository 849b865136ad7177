"""QoS profiles from parameters, and incompatible-QoS events turned into a diagnosis with the fix.

Why: a reliable subscriber never connects to a best-effort camera driver, and DDS says
nothing about it: no message, no error. rclpy reports the mismatch through event
callbacks on both ends; :class:`QosWatch` records each one per topic, logs it, and
the node puts it on /diagnostics with what to change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_policy_name_from_kind,
)

from unimrseg_ros.parameters import QosSettings

__all__ = ["LATCHED", "QosIncident", "QosWatch", "fix_for", "profile"]

_RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}

LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""For the label table: late subscribers get the last message (ROS 1's "latched")."""


def profile(settings: QosSettings) -> QoSProfile:
    """Keep-last ``depth``, volatile, with the given reliability (best_effort = SensorDataQoS's)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=settings.depth,
        reliability=_RELIABILITY[settings.reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def fix_for(side: str, policy: str, topic: str) -> str:
    """What to change when ``policy`` is incompatible on ``topic``; ``side`` is our end's kind."""
    if side == "subscription" and policy == "RELIABILITY":
        return (
            f"a publisher of {topic} is best_effort but this node subscribes reliable: "
            "set input_qos.reliability:=best_effort (the default, as SensorDataQoS)"
        )
    if side == "subscription" and policy == "DURABILITY":
        return f"a publisher of {topic} is volatile but this node asks for transient_local: use volatile"
    if side == "publisher" and policy == "RELIABILITY":
        return (
            f"a subscriber of {topic} asks for reliable but this node publishes best_effort: "
            "set output_qos.reliability:=reliable, or subscribe best_effort"
        )
    if side == "publisher" and policy == "DURABILITY":
        return (
            f"a subscriber of {topic} asks for transient_local but this node publishes volatile: "
            "subscribe with volatile durability"
        )
    return f"make the {policy} QoS policy of {topic} compatible on both ends"


@dataclass(frozen=True)
class QosIncident:
    topic: str
    side: str  # our end: "subscription" or "publisher"
    policy: str  # QoSPolicyKind name, e.g. RELIABILITY
    total: int  # incompatible peers seen so far on this topic
    fix: str
    wall_time: float


class QosWatch:
    """Collects incompatible-QoS events of the node's endpoints (thread-safe)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._incidents: dict[tuple[str, str], QosIncident] = {}

    def _record(self, side: str, topic: str, event: object) -> None:
        try:
            policy = qos_policy_name_from_kind(event.last_policy_kind)  # type: ignore[attr-defined]
        except ValueError:
            policy = str(getattr(event, "last_policy_kind", "unknown"))
        incident = QosIncident(
            topic,
            side,
            policy,
            int(getattr(event, "total_count", 0)),
            fix_for(side, policy, topic),
            time.time(),
        )
        with self._lock:
            self._incidents[(side, topic)] = incident
        self._log(f"incompatible QoS ({policy}) on {topic}: {incident.fix}")

    def subscription(self, topic: str) -> SubscriptionEventCallbacks:
        return SubscriptionEventCallbacks(incompatible_qos=lambda e: self._record("subscription", topic, e))

    def publisher(self, topic: str) -> PublisherEventCallbacks:
        return PublisherEventCallbacks(incompatible_qos=lambda e: self._record("publisher", topic, e))

    def incidents(self) -> list[QosIncident]:
        with self._lock:
            return list(self._incidents.values())

    def for_topic(self, topic: str) -> list[QosIncident]:
        return [i for i in self.incidents() if i.topic == topic]

    def clear(self) -> None:
        with self._lock:
            self._incidents.clear()
