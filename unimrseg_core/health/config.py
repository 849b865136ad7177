"""Every threshold of the health monitor, with its unit in its name and its default.

This is the one schema: the ROS node maps its parameters onto these fields and
reports a :class:`HealthConfigError` by field name. Thresholds on pixel values are
in the modality's sensor unit (``modalities.NORMALIZATION``: uint8 levels for rgb,
metres for depth, kelvin for thermal).

Why the defaults meet the target (a drop, freeze or blackout detected within 3
expected periods T of its start; recovery within 3 T of its end):

- drop: LOST once nothing arrived for ``silence_periods`` = 2.5 T after the last
  frame, so seen by any poll in (2.5 T, 3 T] when polled at least every T / 2. It
  tolerates one missing frame plus half a period of jitter.
- freeze: ``frozen_frames`` = 3 identical frames (or stamps), i.e. the second
  repeat, one T after the first repeat; a single duplicated message is tolerated.
- content faults (blackout, saturation, flat, holes, NaN, size or encoding change,
  stamp going back): ``fault_frames`` = 1, DEGRADED on the first bad frame.
- recovery: ``recover_frames`` = 2 good frames in a row, i.e. one T after the
  first good frame.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from unimrseg_core.modalities import MODALITIES

__all__ = ["HealthConfig", "HealthConfigError"]


class HealthConfigError(ValueError):
    """A health threshold out of its range; ``field`` names it (the ROS node maps it to a parameter)."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"HealthConfig.{field_name}: {message}")


def _is_number(value: object) -> bool:
    """A finite int or float (bools are ints to Python, not to a config).

    An int past the float range is not one: every threshold is used as a float.
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _all_learned() -> dict[str, float | None]:
    return dict.fromkeys(MODALITIES)


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of :class:`~unimrseg_core.health.monitor.HealthMonitor`; validated on creation."""

    # --- timing
    expected_rate_hz: Mapping[str, float | None] = field(default_factory=_all_learned)
    """Per modality: the sensor's rate, or None (or absent) to learn it from receive times."""
    default_rate_hz: float = 1.0
    """Assumed until ``min_rate_samples`` intervals are seen; slow on purpose, so that a slow
    sensor is not called silent at start-up (it only delays the first detections)."""
    min_rate_samples: int = 5
    rate_window: int = 30
    """The learned period is the median of the last ``rate_window`` receive intervals."""
    silence_periods: float = 2.5
    """LOST when the last message is older than this many expected periods."""

    # --- hysteresis (counted in frames)
    fault_frames: int = 1
    """Consecutive bad frames before an OK modality becomes DEGRADED."""
    frozen_frames: int = 3
    """Consecutive frames with identical content or the same stamp that count as frozen."""
    recover_frames: int = 2
    """Consecutive good frames before a DEGRADED or LOST modality is OK again."""

    # --- content (on a subsample: every ``check_stride``-th row and column)
    check_stride: int = 4
    dark_mean_level: float = 8.0
    """rgb blackout: mean below this (uint8 levels; night scenes average above 30)."""
    min_std_level: float = 2.0
    """rgb flat image: standard deviation below this (uint8 levels)."""
    saturated_fraction: float = 0.8
    """Saturated: at least this fraction of pixels at or beyond the top of the modality's range
    (255 levels, 20 m, 340 K; where the model's normalisation clips)."""
    min_std_m: float = 0.001
    """depth flat image: standard deviation of the valid pixels below this (metres)."""
    max_invalid_depth_fraction: float = 0.9
    """depth holes: more invalid pixels (0, NaN, inf, negative) than this; outdoor scenes
    with sky reach 0.75. All invalid is reported as a blackout."""
    min_std_k: float = 0.1
    """thermal blackout: a field flatter than this (kelvin; e.g. the shutter closed for a
    flat-field correction); sensor noise alone is about 0.05 K."""
    max_nonfinite_fraction: float = 0.05
    """thermal: more NaN / inf pixels than this fraction."""

    max_transitions: int = 10_000
    """Transitions kept for :attr:`HealthMonitor.transitions` (oldest dropped first)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> HealthConfig:
        """Raise :class:`HealthConfigError` naming the first field out of range; return self."""
        self._validate_rates()
        for name in (
            "min_rate_samples",
            "rate_window",
            "fault_frames",
            "recover_frames",
            "check_stride",
            "max_transitions",
        ):
            self._check_int(name, minimum=1)
        self._check_int("frozen_frames", minimum=2)
        if self.rate_window < self.min_rate_samples:
            message = f"must be >= min_rate_samples ({self.min_rate_samples}), got {self.rate_window}"
            raise HealthConfigError("rate_window", message)
        self._check_float("default_rate_hz", low=0.0, low_open=True)
        self._check_float("silence_periods", low=1.0, low_open=True)
        self._check_float("dark_mean_level", low=0.0, high=255.0)
        self._check_float("min_std_level", low=0.0)
        self._check_float("saturated_fraction", low=0.0, high=1.0, low_open=True)
        self._check_float("min_std_m", low=0.0)
        self._check_float("max_invalid_depth_fraction", low=0.0, high=1.0)
        self._check_float("min_std_k", low=0.0)
        self._check_float("max_nonfinite_fraction", low=0.0, high=1.0)
        return self

    def _validate_rates(self) -> None:
        rates = self.expected_rate_hz
        if not isinstance(rates, Mapping):
            raise HealthConfigError("expected_rate_hz", f"must map modality to Hz or None, got {rates!r}")
        unknown = sorted(str(k) for k in rates if k not in MODALITIES)
        if unknown:
            raise HealthConfigError(
                "expected_rate_hz", f"unknown modality {unknown!r}; valid: {', '.join(MODALITIES)}"
            )
        for modality, rate in rates.items():
            if rate is None:
                continue
            if not (_is_number(rate) and rate > 0):
                raise HealthConfigError(
                    "expected_rate_hz", f"{modality} must be a finite rate > 0 Hz or None, got {rate!r}"
                )

    def _check_int(self, name: str, *, minimum: int) -> None:
        """An int in ``minimum..sys.maxsize``: counts size deques, which take no more."""
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= sys.maxsize:
            raise HealthConfigError(name, f"must be an integer in {minimum}..{sys.maxsize}, got {value!r}")

    def _check_float(self, name: str, *, low: float, high: float = math.inf, low_open: bool = False) -> None:
        value = getattr(self, name)
        if not (_is_number(value) and (value > low if low_open else value >= low) and value <= high):
            bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high < math.inf else "")
            raise HealthConfigError(name, f"must be a finite number {bounds}, got {value!r}")

    def period_ns(self, modality: str) -> float | None:
        """The configured expected period of ``modality`` in ns, or None when it is learned."""
        rate = self.expected_rate_hz.get(modality)
        return None if rate is None else 1e9 / rate
