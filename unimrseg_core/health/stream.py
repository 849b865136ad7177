"""Checks that compare a frame with the ones before it: frozen, stamps, size and encoding.

A frozen driver keeps publishing on time, so silence does not catch it: only a
repeated stamp or repeated content does. A size or encoding change is one bad frame;
the stream is trusted again after ``recover_frames`` frames of the new kind.
"""

from __future__ import annotations

from unimrseg_core.health.text import seconds, size

__all__ = ["StreamChecks"]


class StreamChecks:
    """The previous frame's stamp, fingerprint, shape and encoding, and how long they repeated."""

    def __init__(self, frozen_frames: int) -> None:
        self._frozen_frames = frozen_frames
        self._stamp_ns: int | None = None
        self._fingerprint: bytes | None = None
        self._shape: tuple[int, ...] | None = None
        self._encoding: str | None = None
        self._same_stamp = 0  # frames in a row with this stamp
        self._same_content = 0  # frames in a row with this fingerprint

    def check(
        self,
        *,
        stamp_ns: int,
        fingerprint: bytes | None,
        shape: tuple[int, ...] | None,
        encoding: str | None,
    ) -> list[str]:
        """Reasons this frame is bad compared with the previous ones; then remember it."""
        reasons = []
        if self._stamp_ns is not None and stamp_ns < self._stamp_ns:
            reasons.append(f"stamp went back {seconds(self._stamp_ns - stamp_ns)}")
        self._same_stamp = self._same_stamp + 1 if stamp_ns == self._stamp_ns else 1
        repeated = fingerprint is not None and fingerprint == self._fingerprint
        self._same_content = self._same_content + 1 if repeated else 1
        frozen = self._frozen_frames
        if self._same_content >= frozen:
            same_stamp = " with the same stamp" if self._same_stamp >= frozen else ""
            reasons.append(f"frozen: {self._same_content} identical frames{same_stamp}")
        elif self._same_stamp >= frozen:
            reasons.append(f"frozen: same stamp in {self._same_stamp} frames")
        if shape is not None and self._shape is not None and shape != self._shape:
            reasons.append(f"size changed: {size(self._shape)} -> {size(shape)}")
        if encoding is not None and self._encoding is not None and encoding != self._encoding:
            reasons.append(f"encoding changed: {self._encoding} -> {encoding}")

        self._stamp_ns = stamp_ns
        self._fingerprint = fingerprint
        self._shape = shape if shape is not None else self._shape
        self._encoding = encoding if encoding is not None else self._encoding
        return reasons
