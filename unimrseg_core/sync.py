"""Frame assembly that never stalls: the newest messages per modality in, one frame per anchor out.

Why not an approximate-time synchroniser over all sensors: it waits for a complete
set, so one dead camera stops every output for ever. Here a frame is built around
an **anchor** message, the arrival of the first *usable* (healthy) modality in a
priority list; every other modality joins only if it is usable, its message is
fresh (``max_age``) and close in time to the anchor (``max_skew``). When the
anchor modality is not usable, the next one in the list anchors; when none is,
nothing is emitted and :attr:`FrameAssembler.idle_reason` says why.

Cameras do not deliver in a fixed order: the anchor may arrive a few milliseconds
before the depth and thermal images of the same instant. So when a usable
companion has no message close enough to the anchor yet, the frame waits for it,
but at most ``wait`` after the anchor arrived (0 = never wait); the node's timer
calls :meth:`FrameAssembler.poll` to emit frames whose wait ran out. The two
newest messages of each modality are kept, so the companion closest to the
anchor's stamp is used, whichever arrived first.

Time is injected (nanosecond stamps and receive / poll times), and payloads are
opaque, so this is tested without ROS, clocks or threads. Not thread-safe: the
caller serialises calls.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from unimrseg_core.modalities import MODALITIES, Combination, combination

__all__ = ["NO_MESSAGE", "Frame", "FrameAssembler", "Message", "SyncConfig"]

T = TypeVar("T")

_KEPT = 2  # messages kept per modality: the newest and the one before
NO_MESSAGE = "no message yet"


@dataclass(frozen=True)
class SyncConfig:
    """How frames are assembled; times in nanoseconds. Validated on creation (ValueError)."""

    anchor_priority: tuple[str, ...] = MODALITIES
    """Modalities that may anchor a frame, best first."""
    enabled: tuple[str, ...] = MODALITIES
    """Modalities the node listens to; the others are never waited for nor used."""
    max_age_ns: int = 500_000_000
    """A companion received longer ago than this (at emission) is not used."""
    max_skew_ns: int = 50_000_000
    """A companion whose stamp differs from the anchor's by more than this is not used."""
    wait_ns: int = 50_000_000
    """Longest wait, after the anchor arrived, for a usable companion's matching message."""

    def __post_init__(self) -> None:
        for name in ("anchor_priority", "enabled"):
            names = getattr(self, name)
            if not isinstance(names, (tuple, list)):  # a str would be read letter by letter
                raise ValueError(f"{name} must be a tuple of modality names, got {names!r}")
            unknown = [m for m in names if m not in MODALITIES]
            if unknown:
                raise ValueError(f"{name}: unknown modality {unknown!r}; valid: {', '.join(MODALITIES)}")
            if len(set(names)) != len(names):
                raise ValueError(f"{name}: a modality is listed twice: {list(names)!r}")
        anchors = [m for m in self.anchor_priority if m in self.enabled]
        if not anchors:
            raise ValueError(
                f"no enabled modality can anchor: anchor_priority={list(self.anchor_priority)!r}, "
                f"enabled={list(self.enabled)!r}"
            )
        for name in ("max_age_ns", "max_skew_ns", "wait_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")

    @property
    def anchors(self) -> tuple[str, ...]:
        """The enabled modalities that may anchor, best first."""
        return tuple(m for m in self.anchor_priority if m in self.enabled)


@dataclass(frozen=True)
class Message(Generic[T]):
    """One received, decoded message and what the health monitor said right after it."""

    modality: str
    stamp_ns: int
    receive_ns: int
    payload: T
    healthy: bool
    """The modality was usable (OK) after this very message: a frame that made its modality
    DEGRADED is never used, even if the modality is OK again by the time a frame is built."""
    image: np.ndarray | None = None
    """The decoded image in sensor units (``FramePipeline`` sets it; the assembler never reads it)."""


@dataclass(frozen=True)
class Frame(Generic[T]):
    """What the model gets: the anchor and the companions that passed, and why the others did not."""

    anchor: str
    stamp_ns: int
    messages: Mapping[str, Message[T]]
    """Used messages by modality, in MODALITIES order, the anchor included."""
    skipped: Mapping[str, str] = field(default_factory=dict)
    """Enabled modalities left out, with the reason (in MODALITIES order)."""
    waited_ns: int = 0
    """How long the frame waited for companions after its anchor arrived."""
    notes: Mapping[str, str] = field(default_factory=dict)
    """Skipped modalities that were not usable -> their health (``"DEGRADED: frozen ..."``)."""

    @property
    def used(self) -> Combination:
        """The modalities the model gets: the mask of this frame (``used.mask``) is this fact."""
        return combination(list(self.messages))

    @property
    def images(self) -> dict[str, np.ndarray]:
        """The decoded image of every used modality, for ``Segmenter.segment_frame``."""
        out = {}
        for modality, message in self.messages.items():
            if message.image is None:
                raise ValueError(f"frame's {modality} message carries no decoded image")
            out[modality] = message.image
        return out

    @property
    def anchor_image(self) -> np.ndarray:
        """The anchor's image: the masks come back at its size."""
        return self.images[self.anchor]


class FrameAssembler(Generic[T]):
    """Keeps the newest messages per modality and emits a :class:`Frame` per usable anchor message."""

    def __init__(self, config: SyncConfig | None = None) -> None:
        self.config = config or SyncConfig()
        self._recent: dict[str, deque[Message[T]]] = {m: deque(maxlen=_KEPT) for m in MODALITIES}
        self._pending: Message[T] | None = None
        self._deadline_ns = 0
        self._usable: frozenset[str] = frozenset()
        self.idle_reason: str | None = NO_MESSAGE
        """Why no frame is being emitted (None while an anchor is usable)."""
        self.emitted = 0
        self.timed_out = 0
        """Frames emitted because the wait ran out rather than because every companion arrived."""

    def reset(self) -> None:
        """Forget every message and the pending frame (e.g. when the node is deactivated)."""
        for recent in self._recent.values():
            recent.clear()
        self._pending = None
        self.idle_reason = NO_MESSAGE

    def anchor(self, usable: Collection[str]) -> str | None:
        """The modality that anchors frames while ``usable`` are the usable modalities."""
        return next((m for m in self.config.anchors if m in usable), None)

    def add(self, message: Message[T], usable: Collection[str], now_ns: int) -> list[Frame[T]]:
        """Store ``message``; return the frames this completes (at most two: a pending one and this one).

        ``usable`` are the modalities the health monitor calls usable now, after it saw
        ``message``. Messages of disabled modalities are ignored.
        """
        if message.modality not in self.config.enabled:
            return []
        self._usable = frozenset(usable)
        self._recent[message.modality].append(message)
        frames: list[Frame[T]] = []
        anchor = self.anchor(self._usable)
        if self._pending is not None and (
            message.modality == self._pending.modality or self._complete(self._pending, now_ns)
        ):
            # A newer message of the pending anchor's modality ends the wait as well.
            frames.append(self._emit(now_ns))
        if anchor is None:
            self.idle_reason = self._no_anchor()
            return frames
        self.idle_reason = None
        if message.modality == anchor and message.healthy:
            self._pending = message
            self._deadline_ns = now_ns + self.config.wait_ns
            if self.config.wait_ns == 0 or self._complete(message, now_ns):
                frames.append(self._emit(now_ns))
        return frames

    def poll(self, usable: Collection[str], now_ns: int) -> list[Frame[T]]:
        """Emit the pending frame if its wait ran out or it became complete; refresh ``idle_reason``."""
        self._usable = frozenset(usable)
        frames = []
        if self._pending is not None:
            complete = self._complete(self._pending, now_ns)
            if complete or now_ns >= self._deadline_ns:
                frames.append(self._emit(now_ns))
                self.timed_out += not complete
        self.idle_reason = None if self.anchor(self._usable) is not None else self._no_anchor()
        return frames

    # ------------------------------------------------------------------ internals

    def _no_anchor(self) -> str:
        if not any(self._recent[m] for m in self.config.enabled):
            return NO_MESSAGE
        return f"no usable anchor: none of {', '.join(self.config.anchors)} is healthy"

    def _companions(self, anchor: Message[T]) -> list[str]:
        return [m for m in self.config.enabled if m != anchor.modality]

    def _best(self, modality: str, anchor: Message[T], now_ns: int) -> Message[T] | None:
        """The kept message of ``modality`` closest in stamp to ``anchor`` within max skew (and age)."""
        best: Message[T] | None = None
        for message in self._recent[modality]:
            skew = abs(message.stamp_ns - anchor.stamp_ns)
            if not message.healthy or skew > self.config.max_skew_ns:
                continue
            if now_ns - message.receive_ns > self.config.max_age_ns:
                continue
            if best is None or skew < abs(best.stamp_ns - anchor.stamp_ns):
                best = message
        return best

    def _complete(self, anchor: Message[T], now_ns: int) -> bool:
        """Nothing worth waiting for: every usable companion already has a close, fresh message."""
        companions = self._companions(anchor)
        return all(m not in self._usable or self._best(m, anchor, now_ns) is not None for m in companions)

    def _why_not(self, modality: str, anchor: Message[T], now_ns: int) -> str:
        if modality not in self._usable:
            return "not healthy"
        recent = [m for m in self._recent[modality] if m.healthy]
        if not recent:
            return "no healthy message"
        newest = recent[-1]
        skew = min(abs(m.stamp_ns - anchor.stamp_ns) for m in recent)
        if skew > self.config.max_skew_ns:
            return f"skew {skew / 1e9:.3f} s > max {self.config.max_skew_ns / 1e9:.3f} s"
        age = now_ns - newest.receive_ns
        return f"stale: age {age / 1e9:.3f} s > max {self.config.max_age_ns / 1e9:.3f} s"

    def _emit(self, now_ns: int) -> Frame[T]:
        anchor = self._pending
        if anchor is None:  # pragma: no cover - callers check
            raise RuntimeError("no pending frame")
        self._pending = None
        used: dict[str, Message[T]] = {}
        skipped: dict[str, str] = {}
        for modality in MODALITIES:
            if modality == anchor.modality:
                used[modality] = anchor
            elif modality in self.config.enabled:
                best = self._best(modality, anchor, now_ns) if modality in self._usable else None
                if best is not None:
                    used[modality] = best
                else:
                    skipped[modality] = self._why_not(modality, anchor, now_ns)
        self.emitted += 1
        return Frame(anchor.modality, anchor.stamp_ns, used, skipped, max(0, now_ns - anchor.receive_ns))
