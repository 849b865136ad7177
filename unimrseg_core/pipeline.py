"""The node's input logic without ROS: decoded images -> health monitor -> frame assembler -> frames.

``unimrseg_node`` and ``unimrseg bag eval`` must turn the same messages into the same
frames, or offline numbers would say nothing about the robot. :class:`FramePipeline`
holds that logic once: each received image is checked by the
:class:`~unimrseg_core.health.HealthMonitor` (header stamp and receive time), the
modalities that are usable right after it decide the anchor, and the
:class:`~unimrseg_core.sync.FrameAssembler` gets the message with the monitor's verdict
on that very frame. A timer calls :meth:`FramePipeline.poll` every
``1 / poll_rate_hz`` seconds (:data:`DEFAULT_POLL_RATE_HZ`, the node's
``health_poll_rate_hz`` default) to detect silence and flush frames whose wait for
companions ran out.

Time is injected (nanoseconds): the node passes its clock, bag evaluation the bag's
record times, so a replay is deterministic. Not thread-safe: callers serialise calls
(the node holds its lock around them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Generic, TypeVar

from unimrseg_core.health import HealthConfig, HealthMonitor
from unimrseg_core.sync import Frame, FrameAssembler, Message, SyncConfig

__all__ = ["DEFAULT_POLL_RATE_HZ", "FramePipeline"]

T = TypeVar("T")

DEFAULT_POLL_RATE_HZ: Final = 50.0
"""How often silence is checked and waiting frames are flushed (the node's ``health_poll_rate_hz``)."""


class FramePipeline(Generic[T]):
    """Health monitor + frame assembler for the enabled modalities of ``sync``; payloads are opaque."""

    def __init__(self, health: HealthConfig | None = None, sync: SyncConfig | None = None) -> None:
        self.monitor = HealthMonitor(health)
        self.assembler: FrameAssembler[T] = FrameAssembler(sync)

    @property
    def enabled(self) -> tuple[str, ...]:
        return self.assembler.config.enabled

    def usable(self, now_ns: int) -> tuple[str, ...]:
        """The enabled modalities the monitor calls usable (OK) at ``now_ns``, in MODALITIES order."""
        return tuple(m for m in self.monitor.usable(now_ns) if m in self.enabled)

    def receive(
        self,
        modality: str,
        image: object,
        payload: T,
        *,
        stamp_ns: int,
        receive_ns: int,
        encoding: str | None = None,
    ) -> list[Frame[T]]:
        """One decoded image (sensor units) arrived at ``receive_ns``: the frames it completes.

        A disabled modality is ignored (the node does not even subscribe to it).
        """
        if modality not in self.enabled:
            return []
        health = self.monitor.observe(
            modality, image, stamp_ns=stamp_ns, receive_ns=receive_ns, encoding=encoding
        )
        message = Message(modality, stamp_ns, receive_ns, payload, health.usable)
        return self.assembler.add(message, self.usable(receive_ns), receive_ns)

    def poll(self, now_ns: int) -> list[Frame[T]]:
        """The timer: apply silence at ``now_ns`` and emit frames whose wait ran out."""
        return self.assembler.poll(self.usable(now_ns), now_ns)

    def health_notes(self, frames: Sequence[Frame[T]], now_ns: int) -> list[dict[str, str]]:
        """Per frame: each modality left out because it is not usable -> ``"DEGRADED: <reasons>"``."""
        if not frames:
            return []
        health = self.monitor.poll(now_ns)
        return [
            {m: f"{health[m].state}: {health[m].summary}" for m in f.skipped if not health[m].usable}
            for f in frames
        ]
