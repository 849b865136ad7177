"""What a sensor fault is: its kinds, their parameters, and one validated :class:`Fault`.

One table, :data:`KINDS`, says for every kind whether it changes *when* messages
arrive (``timing``: drop, freeze, rate_drop, delay) or *what* they contain
(``content``: blackout, saturate, noise, depth_holes), which parameters it takes
(type, default or required, range) and which modalities it applies to. Validation
reads only this table, so the YAML loader, ``bag make``, the fault injector node
and the docs agree on it.

A fault is active on ``[start_s, end_s)``: seconds from the start of the recording
(``bag make``) or from the injector's start (live).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from unimrseg_core.modalities import MODALITIES, NORMALIZATION

__all__ = [
    "CONTENT_KINDS",
    "KINDS",
    "TIMING_KINDS",
    "Fault",
    "FaultError",
    "KindSpec",
    "Param",
]


class FaultError(ValueError):
    """A fault or schedule that cannot be used; ``field`` names the offending entry.

    ``field`` is a path such as ``faults[2].end_s`` (``source`` is the file, when
    there is one), so a bad YAML file is reported as ``faults.yaml: faults[2].end_s: ...``.
    """

    def __init__(self, field_name: str, reason: str, source: str | None = None) -> None:
        self.field = field_name
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field_name}: {reason}" if field_name else f"{where}{reason}")

    def at(self, prefix: str, source: str | None = None) -> FaultError:
        """The same error with ``prefix`` (e.g. ``faults[2]``) before its field, and a source file."""
        name = f"{prefix}.{self.field}" if self.field else prefix
        return FaultError(name, self.reason, source or self.source)


@dataclass(frozen=True)
class Param:
    """One parameter of a fault kind: a float (range-checked) or a bool."""

    name: str
    type: type  # float or bool
    help: str
    default: float | bool | None = None  # None: required
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    modalities: tuple[str, ...] = MODALITIES  # where the parameter means something

    def check(self, value: object) -> float | bool:
        if self.type is bool:
            if not isinstance(value, bool):
                raise FaultError(self.name, f"must be true or false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FaultError(self.name, f"must be a finite number, got {value!r}")
        low_ok = value > self.low if self.low_open else value >= self.low
        if not (low_ok and value <= self.high):
            lo = f"{'>' if self.low_open else '>='} {self.low:g}" if self.low > -math.inf else ""
            hi = f"<= {self.high:g}" if self.high < math.inf else ""
            raise FaultError(self.name, f"must be {' and '.join(b for b in (lo, hi) if b)}, got {value!r}")
        return float(value)


@dataclass(frozen=True)
class KindSpec:
    """A fault kind: what it does, its parameters, the modalities it applies to."""

    name: str
    effect: Literal["timing", "content"]
    help: str
    params: tuple[Param, ...] = ()
    modalities: tuple[str, ...] = MODALITIES


_SPAN = ", ".join(f"{m} {n.high - n.low:g} {n.unit}" for m, n in NORMALIZATION.items())

KINDS: Final[Mapping[str, KindSpec]] = {
    spec.name: spec
    for spec in (
        KindSpec("drop", "timing", "no messages at all: the driver or the cable died"),
        KindSpec(
            "freeze",
            "timing",
            "the last message delivered before the fault is re-sent unchanged at the sensor's rate "
            "(a frozen driver); nothing is sent if none came before",
            (
                Param(
                    "restamp",
                    bool,
                    "give the repeated message the current stamp instead of its own stale one",
                    default=False,
                ),
            ),
        ),
        KindSpec(
            "blackout",
            "content",
            "an all-zero image: black rgb, depth 0 everywhere (= invalid), thermal one flat value",
            (
                Param(
                    "value_k",
                    float,
                    "thermal: the flat temperature (a closed shutter)",
                    default=293.15,
                    low=0.0,
                    low_open=True,
                    modalities=("thermal",),
                ),
            ),
        ),
        KindSpec(
            "saturate",
            "content",
            "pixels at the top of the modality's normalisation range (rgb 255, depth 20 m, thermal 340 K)",
            (
                Param(
                    "fraction",
                    float,
                    "fraction of the image saturated, in blobs (1 = all)",
                    default=1.0,
                    low=0.0,
                    high=1.0,
                    low_open=True,
                ),
            ),
        ),
        KindSpec(
            "noise",
            "content",
            "additive Gaussian noise (depth: on valid pixels only; a pixel pushed to <= 0 is invalid)",
            (
                Param(
                    "sigma",
                    float,
                    f"standard deviation as a fraction of the normalisation span ({_SPAN})",
                    low=0.0,
                    high=1.0,
                    low_open=True,
                ),
            ),
        ),
        KindSpec(
            "depth_holes",
            "content",
            "blobs of depth set to 0 (no return)",
            (
                Param(
                    "fraction",
                    float,
                    "fraction of the image set to 0",
                    default=0.5,
                    low=0.0,
                    high=1.0,
                    low_open=True,
                ),
            ),
            modalities=("depth",),
        ),
        KindSpec(
            "rate_drop",
            "timing",
            "only the first message of every 1 / rate_hz interval is sent",
            (Param("rate_hz", float, "the reduced rate", low=0.0, low_open=True),),
        ),
        KindSpec(
            "delay",
            "timing",
            "messages keep their stamps but arrive delay_s late, in order",
            (Param("delay_s", float, "added latency", low=0.0, high=60.0, low_open=True),),
        ),
    )
}
"""Every fault kind, by name."""

TIMING_KINDS: Final[tuple[str, ...]] = tuple(k for k, s in KINDS.items() if s.effect == "timing")
CONTENT_KINDS: Final[tuple[str, ...]] = tuple(k for k, s in KINDS.items() if s.effect == "content")

_FIELDS: Final[tuple[str, ...]] = ("modality", "kind", "start_s", "end_s")


def _time(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FaultError(name, f"must be a finite number of seconds, got {value!r}")
    if value < 0:
        raise FaultError(name, f"must be >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Fault:
    """One fault of one modality over ``[start_s, end_s)``; validated and completed on creation.

    ``params`` holds every parameter of the kind that applies to the modality, defaults
    filled in. Raises
    :class:`FaultError` naming the field: an unknown modality or kind, a kind that
    does not apply to the modality, a bad window (``end_s <= start_s``), a missing,
    unknown or out-of-range parameter.
    """

    modality: str
    kind: str
    start_s: float
    end_s: float
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise FaultError(
                "modality", f"unknown modality {self.modality!r}; valid: {', '.join(MODALITIES)}"
            )
        spec = KINDS.get(self.kind)  # type: ignore[call-overload]
        if spec is None:
            raise FaultError("kind", f"unknown kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if self.modality not in spec.modalities:
            raise FaultError(
                "kind", f"{self.kind} applies to {', '.join(spec.modalities)}, not {self.modality}"
            )
        start, end = _time("start_s", self.start_s), _time("end_s", self.end_s)
        if end <= start:
            raise FaultError("end_s", f"must be > start_s ({start:g}), got {end:g}")
        if not isinstance(self.params, Mapping):
            raise FaultError("params", f"must be a mapping, got {type(self.params).__name__}")
        known = {p.name: p for p in spec.params}
        unknown = sorted(str(k) for k in self.params if k not in known)
        if unknown:
            valid = ", ".join(known) or "none"
            raise FaultError(unknown[0], f"unknown parameter of {self.kind}; valid: {valid}")
        params: dict[str, Any] = {}
        for name, param in known.items():
            if self.modality not in param.modalities:
                if name in self.params:
                    raise FaultError(name, f"applies to {', '.join(param.modalities)} only")
                continue
            if name in self.params:
                params[name] = param.check(self.params[name])
            elif param.default is None:
                raise FaultError(name, f"missing; {self.kind} needs {name} ({param.help})")
            else:
                params[name] = param.default
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "end_s", end)
        object.__setattr__(self, "params", params)

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s

    def overlaps(self, other: Fault) -> bool:
        return self.start_s < other.end_s and other.start_s < self.end_s

    @classmethod
    def from_dict(cls, entry: object) -> Fault:
        """``{modality, kind, start_s, end_s, **params}`` (the YAML form) -> Fault."""
        if not isinstance(entry, Mapping):
            raise FaultError("", f"a fault must be a mapping with {', '.join(_FIELDS)}, got {entry!r}")
        for name in _FIELDS:
            if name not in entry:
                raise FaultError(name, "missing")
        params = {k: v for k, v in entry.items() if k not in _FIELDS}
        return cls(entry["modality"], entry["kind"], entry["start_s"], entry["end_s"], params)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form: the four fields, then the parameters (defaults included)."""
        return {
            "modality": self.modality,
            "kind": self.kind,
            "start_s": self.start_s,
            "end_s": self.end_s,
            **self.params,
        }

    def __str__(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.params.items())
        return f"{self.modality} {self.kind} {self.start_s:g}-{self.end_s:g} s{extra}"
