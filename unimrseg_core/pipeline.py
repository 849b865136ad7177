"""The one ROS-free path from a camera message to a frame to run: decode -> health -> assembly.

``unimrseg_node`` and ``unimrseg bag eval`` must turn the same messages into the same
frames, or offline numbers would say nothing about the robot. :class:`FramePipeline`
holds that logic once. :meth:`FramePipeline.receive` takes one Image or CompressedImage
message (rclpy's or rosbags', read by ``image_msg.decode`` or
``compressed_msg.decode_compressed``) with its receive time and returns a
:class:`Step`: what happened because of it. The decoded image went through the
:class:`~unimrseg_core.health.HealthMonitor` (header stamp and receive time); the
modalities usable right after it decide the anchor; the
:class:`~unimrseg_core.sync.FrameAssembler` got the message with the monitor's verdict on
that very frame. The step carries the frames ready to run (each with its images, its
modality mask and the health notes of the modalities it left out), the health
transitions, the change of the idle reason and, for a message that could not be decoded,
the rejection. A timer calls :meth:`FramePipeline.poll` every ``1 / poll_rate_hz``
seconds (:data:`DEFAULT_POLL_RATE_HZ`, the node's ``health_poll_rate_hz`` default) to
detect silence and flush frames whose wait for companions ran out; it returns a
:class:`Step` too. Callers (the node, bag evaluation) only act on steps: they never
reach into the monitor or the assembler.

With a :class:`~unimrseg_core.registration.RegistrationConfig`, the pipeline also takes each
modality's CameraInfo (:meth:`FramePipeline.receive_camera_info`) and its frames are
:class:`RegisteredFrame`: a registration plan made with the calibration known when the frame
was emitted, applied when the frame's images are first read (on the thread that runs the
model); :attr:`PipelineStatus.registration` says how each modality was brought into the
anchor camera, or why it was only resized.

Time is injected (nanoseconds): the node passes its clock, bag evaluation the bag's
record times, so a replay is deterministic. Not thread-safe: callers serialise calls
(the node holds its lock around them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any, Final, Generic, TypeVar

import numpy as np

from unimrseg_core.compressed_msg import decode_compressed, is_compressed
from unimrseg_core.health import HealthConfig, HealthMonitor
from unimrseg_core.health.state import ModalityHealth, Transition
from unimrseg_core.image_msg import DEFAULT_THERMAL, MAX_PIXELS, ImageMsgError, ThermalMapping, decode
from unimrseg_core.registration import (
    CalibrationError,
    Outcome,
    Registrar,
    RegistrationConfig,
    RegistrationPlan,
)
from unimrseg_core.sync import Frame, FrameAssembler, Message, SyncConfig
from unimrseg_core.topics import CAMERA_INFOS

__all__ = [
    "DEFAULT_POLL_RATE_HZ",
    "FramePipeline",
    "PipelineStatus",
    "RegisteredFrame",
    "Rejection",
    "Step",
    "stamp_ns",
]

T = TypeVar("T")

DEFAULT_POLL_RATE_HZ: Final = 50.0
"""How often silence is checked and waiting frames are flushed (the node's ``health_poll_rate_hz``)."""


def stamp_ns(header: Any) -> int:
    """A message header's stamp (``builtin_interfaces/Time``, rclpy's or rosbags') in nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


@dataclass(frozen=True)
class Rejection:
    """A message that never reached the health monitor: why (``ImageMsgError.reason``) and the text."""

    modality: str
    reason: str
    text: str


@dataclass(frozen=True)
class Step(Generic[T]):
    """What one received message or one poll caused."""

    frames: tuple[Frame[T], ...] = ()
    """Frames ready to run, oldest first; ``Frame.notes`` says why unhealthy modalities are out."""
    transitions: tuple[Transition, ...] = ()
    """Health state changes of enabled modalities since the previous step, oldest first."""
    idle_reason: str | None = None
    """Why no frame can be made now (None while an anchor is usable)."""
    idle_changed: bool = False
    """``idle_reason`` differs from the previous step's (output stopped, or resumed)."""
    accepted: Message[T] | None = None
    """The received message, decoded and seen by the monitor (None for a poll or a rejection)."""
    rejected: Rejection | None = None


@dataclass(frozen=True)
class PipelineStatus:
    health: Mapping[str, ModalityHealth]
    expected_period_ns: Mapping[str, float]
    anchor: str | None
    emitted: int
    idle_reason: str | None
    registration: Mapping[str, Outcome] = field(default_factory=dict)
    """How each modality reached the anchor in the latest frame it was in (empty without registration)."""


@dataclass(frozen=True)
class RegisteredFrame(Frame[T]):
    """A frame whose images come in the anchor camera's pixels, as ``plan`` says.

    The plan is made when the frame is emitted (cheap); the reprojection runs when ``images``
    is first read, on the caller's thread (the node's inference thread), once.
    """

    plan: RegistrationPlan | None = None

    @cached_property
    def images(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        images = super().images
        return images if self.plan is None else self.plan.apply(images)


class FramePipeline(Generic[T]):
    """Decoder + health monitor + frame assembler for the enabled modalities of ``sync``.

    ``payload`` (any caller data: the node's header and arrival time) travels with each
    message into the frames. ``poll_rate_hz`` is how often the caller polls: a longer gap
    between calls is the caller's own stall, not the cameras' silence (``HealthMonitor``).
    """

    def __init__(
        self,
        health: HealthConfig | None = None,
        sync: SyncConfig | None = None,
        *,
        poll_rate_hz: float = DEFAULT_POLL_RATE_HZ,
        thermal: ThermalMapping = DEFAULT_THERMAL,
        max_pixels: int = MAX_PIXELS,
        registration: RegistrationConfig | None = None,
    ) -> None:
        """``registration``: take CameraInfo and emit :class:`RegisteredFrame`; None: frames as received."""
        self.monitor = HealthMonitor(health, poll_period_ns=round(1e9 / poll_rate_hz))
        self.assembler: FrameAssembler[T] = FrameAssembler(sync)
        self.thermal = thermal
        self.max_pixels = max_pixels
        self.registrar = None if registration is None else Registrar(registration, info_topics=CAMERA_INFOS)
        self._idle_reason: str | None = None  # as last reported: the first step reports a stall

    @property
    def enabled(self) -> tuple[str, ...]:
        return self.assembler.config.enabled

    def usable(self, now_ns: int) -> tuple[str, ...]:
        """The enabled modalities the monitor calls usable at ``now_ns`` (OK, or mildly DEGRADED
        and kept by ``HealthConfig.degraded_policy``), in MODALITIES order."""
        return tuple(m for m in self.monitor.usable(now_ns) if m in self.enabled)

    def receive(self, modality: str, msg: Any, *, receive_ns: int, payload: T) -> Step[T]:
        """One Image or CompressedImage of ``modality`` arrived at ``receive_ns``: decode it and take it in.

        A malformed message is a step with ``rejected`` set (it never reaches the monitor). A
        disabled modality is ignored (the node does not even subscribe to it).
        """
        if modality not in self.enabled:
            return self._step((), now_ns=receive_ns)
        try:
            decoder = decode_compressed if is_compressed(msg) else decode
            image = decoder(msg, modality, thermal=self.thermal, max_pixels=self.max_pixels)
            stamp = stamp_ns(msg.header)
        except ImageMsgError as exc:
            return self._step((), now_ns=receive_ns, rejected=Rejection(modality, exc.reason, str(exc)))
        except Exception as exc:  # not an Image at all (no header, a stamp that is no number)
            text = f"{type(exc).__name__}: {exc}"
            return self._step((), now_ns=receive_ns, rejected=Rejection(modality, "decode_error", text))
        encoding = getattr(msg, "encoding", None) or getattr(msg, "format", None)  # a change is a fault
        return self.receive_image(
            modality, image, payload, stamp_ns=stamp, receive_ns=receive_ns, encoding=encoding
        )

    def receive_image(
        self,
        modality: str,
        image: np.ndarray,
        payload: T,
        *,
        stamp_ns: int,
        receive_ns: int,
        encoding: str | None = None,
    ) -> Step[T]:
        """An already decoded image (sensor units, ``image_msg.decode``'s output) and its stamps."""
        if modality not in self.enabled:
            return self._step((), now_ns=receive_ns)
        health = self.monitor.observe(
            modality, image, stamp_ns=stamp_ns, receive_ns=receive_ns, encoding=encoding
        )
        message = Message(modality, stamp_ns, receive_ns, payload, health.usable, image)
        frames = self.assembler.add(message, self.usable(receive_ns), receive_ns)
        return self._step(frames, now_ns=receive_ns, accepted=message)

    def receive_camera_info(self, modality: str, msg: Any) -> Rejection | None:
        """A CameraInfo of ``modality`` (rclpy's or rosbags'); a bad one is a rejection (reason
        ``bad_camera_info``) and its modality is resized until a good one comes."""
        if self.registrar is None or modality not in self.enabled:
            return None
        try:
            self.registrar.camera_info(modality, msg)
        except CalibrationError as exc:
            return Rejection(modality, "bad_camera_info", f"CameraInfo refused: {exc}")
        return None

    def status(self, now_ns: int) -> PipelineStatus:
        """What /diagnostics reports: every modality's health, the current anchor, frames so far."""
        health = self.monitor.poll(now_ns)
        return PipelineStatus(
            health=health,
            expected_period_ns={m: self.monitor.expected_period_ns(m) for m in health},
            anchor=self.assembler.anchor(self.usable(now_ns)),
            emitted=self.assembler.emitted,
            idle_reason=self.assembler.idle_reason,
            registration=dict(self.registrar.last) if self.registrar is not None else {},
        )

    def poll(self, now_ns: int) -> Step[T]:
        """The timer: apply silence at ``now_ns`` and emit frames whose wait ran out."""
        return self._step(self.assembler.poll(self.usable(now_ns), now_ns), now_ns=now_ns)

    def _step(
        self,
        frames: list[Frame[T]] | tuple[Frame[T], ...],
        *,
        now_ns: int,
        accepted: Message[T] | None = None,
        rejected: Rejection | None = None,
    ) -> Step[T]:
        """The step: frames with their health notes, the transitions, the idle reason's change."""
        if frames:
            health = self.monitor.poll(now_ns)
            frames = [self._registered(replace(f, notes=_health_notes(f, health))) for f in frames]
        transitions = tuple(t for t in self.monitor.pop_transitions() if t.modality in self.enabled)
        idle = self.assembler.idle_reason
        changed, self._idle_reason = idle != self._idle_reason, idle
        return Step(tuple(frames), transitions, idle, changed, accepted, rejected)

    def _registered(self, frame: Frame[T]) -> Frame[T]:
        """The frame with its registration plan (unchanged without registration)."""
        if self.registrar is None:
            return frame
        sizes = {
            m: message.image.shape[:2] for m, message in frame.messages.items() if message.image is not None
        }
        plan = self.registrar.plan(frame.anchor, sizes)
        return RegisteredFrame(**{f.name: getattr(frame, f.name) for f in fields(frame)}, plan=plan)


def _health_notes(frame: Frame[Any], health: Mapping[str, ModalityHealth]) -> dict[str, str]:
    """Each modality the frame left out because it is not usable -> ``"DEGRADED: <reasons>"``."""
    return {m: f"{health[m].state}: {health[m].summary}" for m in frame.skipped if not health[m].usable}
