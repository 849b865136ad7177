"""The DDS side of ``bag eval --live``: one subscriber keeping what the node and the player publish.

:class:`Collector` subscribes, in this process on its own context and spin thread, to the
node's outputs (class mask, saliency mask, per-frame status), ``/diagnostics`` and the
player's ``/clock``, and keeps each message with its receive time (system clock, ns).
:meth:`Collector.snapshot` hands the lot over as a :class:`Collected`, plain data that
the scoring (:mod:`unimrseg_ros.live_score`) reads without ROS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeAlias

import numpy as np

from unimrseg_core import topics
from unimrseg_core.bags.messages import stamp_to_ns
from unimrseg_ros.bag_player import CLOCK_TOPIC

__all__ = ["Collected", "Collector", "DiagnosticsLog", "Masks", "StatusLog"]

Masks: TypeAlias = dict[str, dict[int, tuple[np.ndarray, int]]]
"""``class_mask`` / ``saliency`` -> {header stamp ns: (HxW uint8 image, receive ns)}."""
StatusLog: TypeAlias = dict[int, tuple[dict[str, str], int]]
"""{header stamp ns: (the frame's status key/values, receive ns)} from ``segmentation/status``."""
DiagnosticsLog: TypeAlias = list[tuple[int, list[tuple[str, int, dict[str, str]]]]]
"""[(receive ns, [(status name, level, key/values), ...]), ...] from ``/diagnostics``, in arrival order."""


@dataclass(frozen=True)
class Collected:
    """What the collector received, each message with its receive time (system clock, ns)."""

    masks: Masks
    status: StatusLog
    diagnostics: DiagnosticsLog
    clock_offsets: list[int]
    """receive time - the /clock value, per /clock message."""


class Collector:
    """The in-process subscriber: the node's outputs, /diagnostics and /clock with receive times."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("unimrseg_live_eval", context=self.context)
        self._lock = threading.Lock()
        self._data = Collected(
            masks={"class_mask": {}, "saliency": {}}, status={}, diagnostics=[], clock_offsets=[]
        )
        best_effort = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, topics.CLASS_MASK, self._on_mask("class_mask"), best_effort)
        self.node.create_subscription(Image, topics.SALIENCY_MASK, self._on_mask("saliency"), best_effort)
        self.node.create_subscription(DiagnosticArray, topics.STATUS, self._on_status, best_effort)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, reliable)
        self.node.create_subscription(Clock, CLOCK_TOPIC, self._on_clock, best_effort)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def __enter__(self) -> Collector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_mask(self, kind: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            now = time.time_ns()
            image = (
                np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)[:, : msg.width].copy()
            )
            with self._lock:
                self._data.masks[kind][stamp_to_ns(msg.header.stamp)] = (image, now)

        return callback

    def _on_status(self, msg: Any) -> None:
        now = time.time_ns()
        values = {kv.key: kv.value for kv in msg.status[0].values} if msg.status else {}
        with self._lock:
            self._data.status[stamp_to_ns(msg.header.stamp)] = (values, now)

    def _on_diagnostics(self, msg: Any) -> None:
        now = time.time_ns()
        rows = [(s.name, s.level[0], {kv.key: kv.value for kv in s.values}) for s in msg.status]
        with self._lock:
            self._data.diagnostics.append((now, rows))

    def _on_clock(self, msg: Any) -> None:
        now = time.time_ns()
        with self._lock:
            self._data.clock_offsets.append(now - stamp_to_ns(msg.clock))

    def ready(self) -> bool:
        """The node has reported its inference status on /diagnostics: it is configured and running."""
        with self._lock:
            return any(
                name.endswith(": inference") for _, rows in self._data.diagnostics for name, _, _ in rows
            )

    def outputs_received(self) -> int:
        """Class masks received so far (for progress lines)."""
        with self._lock:
            return len(self._data.masks["class_mask"])

    def snapshot(self) -> Collected:
        """A copy of everything received so far, safe to read while the subscriptions go on."""
        with self._lock:
            return Collected(
                masks={k: dict(v) for k, v in self._data.masks.items()},
                status=dict(self._data.status),
                diagnostics=list(self._data.diagnostics),
                clock_offsets=list(self._data.clock_offsets),
            )

    def close(self) -> None:
        """Stop spinning, then destroy the node and shut this collector's context down."""
        self._stop.set()
        self._thread.join(timeout=2)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()
