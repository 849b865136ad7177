"""The timing side of faults: whether, when and with which stamp each message goes out.

:class:`FaultInjector` is a small state machine per modality, fed every message in
arrival order. It never looks inside a message (``payload`` is anything: a numpy
image in ``bag make``, a serialized or rclpy message in the live injector node), so
both share it; content faults come back in :attr:`Delivery.content` for the caller
to apply with :meth:`FaultSchedule.apply` after decoding.

Precedence when several faults of one modality are active:
``drop`` > ``freeze`` > ``rate_drop`` > content faults; ``delay`` adds to any of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from unimrseg_core.faults.model import KINDS, Fault
from unimrseg_core.faults.schedule import FaultSchedule
from unimrseg_core.modalities import MODALITIES

__all__ = ["Delivery", "FaultInjector"]

P = TypeVar("P")


@dataclass(frozen=True)
class Delivery(Generic[P]):
    """One message to send: what, with which stamp, how late, and which damage to apply first."""

    payload: P
    stamp_ns: int
    """Header stamp to send: the message's own, or during a freeze the frozen message's."""
    delay_s: float
    """Send this long after the message arrived (0: at once). Order is kept, so a delay
    that ends lets the queued messages out first."""
    content: tuple[Fault, ...]
    """Content faults to apply (blackout, saturate, noise, depth_holes); empty if none."""
    frozen: bool = False
    """True when this is the frozen message re-sent (``payload`` is the stale one)."""


@dataclass
class _Stream(Generic[P]):
    last: tuple[P, int] | None = None  # the last message delivered unfrozen: (payload, stamp)
    rate_slot: dict[int, int] = field(default_factory=dict)  # rate_drop fault index -> last slot sent
    release_s: float = -math.inf  # when the previous message goes out (FIFO under delay)


class FaultInjector(Generic[P]):
    """Per-modality fault timing over a :class:`FaultSchedule`; feed messages in arrival order."""

    def __init__(self, schedule: FaultSchedule) -> None:
        self.schedule = schedule
        self._streams: dict[str, _Stream[P]] = {m: _Stream() for m in MODALITIES}

    def reset(self) -> None:
        """Forget every stream's history (a new recording, a restarted schedule)."""
        self._streams = {m: _Stream() for m in MODALITIES}

    def process(self, modality: str, t_s: float, stamp_ns: int, payload: P) -> Delivery[P] | None:
        """The message ``payload`` stamped ``stamp_ns`` arrived at schedule time ``t_s``: what goes out.

        None: nothing is sent (drop, a frame skipped by rate_drop, a freeze with no
        earlier message). Otherwise a :class:`Delivery`.
        """
        if modality not in self._streams:
            raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
        stream = self._streams[modality]
        active = self.schedule.active(modality, t_s)
        by_kind = {f.kind: f for f in active}
        if "drop" in by_kind:
            return None
        delay = by_kind["delay"].params["delay_s"] if "delay" in by_kind else 0.0
        if "freeze" in by_kind:
            if stream.last is None:
                return None
            stale, stale_stamp = stream.last
            stamp = stamp_ns if by_kind["freeze"].params["restamp"] else stale_stamp
            return Delivery(stale, stamp, self._release(stream, t_s, delay), (), frozen=True)
        if "rate_drop" in by_kind:
            fault = by_kind["rate_drop"]
            index = self.schedule.faults.index(fault)
            slot = math.floor((t_s - fault.start_s) * fault.params["rate_hz"] + 1e-9)
            if stream.rate_slot.get(index) == slot:
                return None
            stream.rate_slot[index] = slot
        stream.last = (payload, stamp_ns)
        content = tuple(f for f in active if KINDS[f.kind].effect == "content")
        return Delivery(payload, stamp_ns, self._release(stream, t_s, delay), content)

    @staticmethod
    def _release(stream: _Stream[P], t_s: float, delay_s: float) -> float:
        """The delay that sends this message ``delay_s`` late but never before the previous one."""
        release = max(t_s + delay_s, stream.release_s)
        stream.release_s = release
        return release - t_s
