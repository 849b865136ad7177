"""diagnostic_msgs for /diagnostics (about 1 Hz) and for the per-frame ``segmentation/status``.

Levels are the DiagnosticStatus byte constants: a sensor that is OK is OK, DEGRADED
is WARN (it talks but is masked out), LOST is ERROR (silent); a disabled one is OK
and says so. Status names follow the ``node: component`` convention of the
diagnostics aggregator. Values are strings (KeyValue), numbers in SI units with the
unit in the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from unimrseg_core.health import HealthState, ModalityHealth
from unimrseg_core.sync import Frame
from unimrseg_ros.qos import QosIncident

__all__ = [
    "NO_FRAME_YET",
    "InferenceReport",
    "SensorReport",
    "frame_status",
    "inference_status",
    "level_name",
    "sensor_status",
    "worst",
]

OK, WARN, ERROR, STALE = (
    DiagnosticStatus.OK,
    DiagnosticStatus.WARN,
    DiagnosticStatus.ERROR,
    DiagnosticStatus.STALE,
)
NO_FRAME_YET = "no frame yet"
"""A sensor's ``registration`` value before any frame was planned (``bag eval --live`` skips it)."""
LEVEL_OF_STATE = {HealthState.OK: OK, HealthState.DEGRADED: WARN, HealthState.LOST: ERROR}
_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}


def worst(*levels: bytes) -> bytes:
    """The most severe of byte levels (OK < WARN < ERROR < STALE)."""
    return max(levels, key=lambda level: level[0])


def level_name(level: bytes) -> str:
    return _NAMES.get(level, str(level))


def _kv(values: Mapping[str, object]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_text(v)) for k, v in values.items()]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):  # times since the epoch keep their microseconds
        return f"{value:.6f}" if abs(value) >= 1e6 else f"{value:.6g}"
    return str(value)


def _seconds(ns: int | float | None) -> float | None:
    return None if ns is None else ns / 1e9


@dataclass(frozen=True)
class SensorReport:
    """What the node knows about one input besides its health."""

    modality: str
    enabled: bool
    topic: str
    health: ModalityHealth
    expected_period_ns: float
    age_ns: int | None  # since the last accepted message
    frame_id: str
    rejected: Mapping[str, int]  # malformed messages by reason, since activation
    rejected_new: int  # since the previous report
    qos: Sequence[QosIncident] = ()
    registration: str = ""  # how its images reach the anchor camera, or why they are only resized


def sensor_status(node: str, report: SensorReport) -> DiagnosticStatus:
    """One sensor: its health state and reasons, rate, age, last stamp, rejects, QoS problems."""
    health = report.health
    name = f"{node}: {report.modality}"
    if not report.enabled:
        return DiagnosticStatus(
            level=OK,
            name=name,
            message="disabled by parameter",
            hardware_id=report.topic,
            values=_kv({"state": "DISABLED", "topic": report.topic}),
        )
    level = LEVEL_OF_STATE[health.state]
    message = health.summary if health.state is HealthState.OK else f"{health.state}: {health.summary}"
    if health.state is HealthState.DEGRADED:
        # the grade decides, with health.degraded_policy, whether the model still sees the stream
        message += f" ({health.grade}, {'kept' if health.usable else 'masked out'})"
    if report.rejected_new:
        level = worst(level, WARN)
        reasons = ", ".join(f"{r} x{n}" for r, n in report.rejected.items())
        message += f"; rejecting malformed messages ({reasons})"
    for incident in report.qos:
        level = worst(level, ERROR)
        message += f"; incompatible QoS ({incident.policy}): {incident.fix}"
    values: dict[str, object] = {
        "state": str(health.state),
        "reasons": "; ".join(health.reasons),
        "grade": str(health.grade),
        "used_by_model": health.usable,
        "topic": report.topic,
        "frame_id": report.frame_id,
        "rate_hz": health.rate_hz,
        "expected_period_s": report.expected_period_ns / 1e9,
        "age_s": _seconds(report.age_ns),
        "last_stamp_s": _seconds(health.last_stamp_ns),
        "state_since_s": _seconds(health.since_ns),
        "messages": health.messages,
        "rejected_total": sum(report.rejected.values()),
    }
    values.update({f"rejected.{reason}": n for reason, n in report.rejected.items()})
    for incident in report.qos:
        values[f"qos_incompatible.{incident.policy}"] = incident.total
    if report.registration:
        values["registration"] = report.registration
    return DiagnosticStatus(
        level=level, name=name, message=message, hardware_id=report.frame_id, values=_kv(values)
    )


@dataclass(frozen=True)
class InferenceReport:
    backend: str
    precision: str
    device: str
    notes: Sequence[str]
    latency_p50_s: float | None  # anchor received -> outputs published
    latency_p95_s: float | None
    inference_p50_s: float | None  # Segmenter.segment alone
    inference_p95_s: float | None
    fps: float
    frames: int  # assembled
    dropped: int  # replaced in the one-slot hand-off before inference
    published: int
    errors: int
    idle_reason: str | None
    anchor: str | None
    outputs: Mapping[str, int] = field(default_factory=dict)
    qos: Sequence[QosIncident] = ()
    switches: Sequence[str] = ()  # runtime failovers, oldest first (FailoverBackend.switches)


def inference_status(node: str, report: InferenceReport) -> DiagnosticStatus:
    """The model: backend, precision, latency p50/p95, fps, dropped frames; ERROR while nothing is output."""
    level, message = OK, f"{report.backend} {report.precision}, anchor {report.anchor}"
    if report.idle_reason:
        level, message = ERROR, f"no output: {report.idle_reason}"
    elif report.published == 0:
        level, message = WARN, "waiting for the first frame"
    if report.errors:
        level = worst(level, WARN)
        message += f"; {report.errors} frames failed"
    if report.switches:  # still running, on a slower backend than asked for: someone should look
        level = worst(level, WARN if report.backend != "none" else ERROR)
        message += f"; {report.switches[-1]}"
    for incident in report.qos:
        level = worst(level, WARN)
        message += f"; incompatible QoS ({incident.policy}): {incident.fix}"

    def ms(value: float | None) -> float | None:
        return None if value is None else 1e3 * value

    values: dict[str, object] = {
        "backend": report.backend,
        "precision": report.precision,
        "device": report.device,
        "backend_notes": "; ".join(report.notes),
        "anchor": report.anchor or "",
        "latency_p50_ms": ms(report.latency_p50_s),
        "latency_p95_ms": ms(report.latency_p95_s),
        "inference_p50_ms": ms(report.inference_p50_s),
        "inference_p95_ms": ms(report.inference_p95_s),
        "fps": report.fps,
        "frames": report.frames,
        "dropped_frames": report.dropped,
        "published_frames": report.published,
        "failed_frames": report.errors,
        "backend_switches": len(report.switches),
        "last_backend_switch": report.switches[-1] if report.switches else "",
    }
    values.update({f"published.{topic}": n for topic, n in report.outputs.items()})
    for incident in report.qos:
        values[f"qos_incompatible.{incident.topic}"] = f"{incident.policy} x{incident.total}"
    return DiagnosticStatus(level=level, name=f"{node}: inference", message=message, values=_kv(values))


def frame_status(
    node: str,
    header: object,
    frame: Frame[object],
    health_notes: Mapping[str, str],
    *,
    inference_s: float,
    latency_s: float,
    dropped: int,
) -> DiagnosticArray:
    """``segmentation/status`` for one output frame: same header as the masks, which modalities fed it.

    The message is the combination name (``rgb+depth``); a modality left out is a value
    with the reason (and its health when that was the reason). WARN when any enabled
    modality was left out.
    """
    values: dict[str, object] = {"used": frame.used.name, "anchor": frame.anchor}
    for modality, why in frame.skipped.items():
        values[f"skipped.{modality}"] = (
            f"{why} ({health_notes[modality]})" if modality in health_notes else why
        )
    values.update(
        {
            "inference_ms": 1e3 * inference_s,
            "latency_ms": 1e3 * latency_s,
            "waited_ms": frame.waited_ns / 1e6,
            "dropped_frames": dropped,
        }
    )
    status = DiagnosticStatus(
        level=WARN if frame.skipped else OK,
        name=f"{node}: frame",
        message=frame.used.name,
        hardware_id=getattr(header, "frame_id", ""),
        values=_kv(values),
    )
    return DiagnosticArray(header=header, status=[status])
