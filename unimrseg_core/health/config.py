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

Partial damage (noise, lost depth, partial saturation, washout) is judged against the
stream's own baseline, learned from its good frames (``signals.py``, ``baseline.py``).
The thresholds come from ``benchmarks/health_faults.py`` on the procedural world with the
shipped model: each fault of the fault model that costs more than 10 % mIoU is detected,
the cheaper ones are not flagged, and no healthy stream of any condition is. Where keeping
a damaged modality still beats masking it (noise and depth holes up to ``severe_*``), its
grade is mild, and ``degraded_policy`` decides.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from unimrseg_core.modalities import MODALITIES, NORMALIZATION

__all__ = ["DEGRADED_POLICIES", "HealthConfig", "HealthConfigError"]

DEGRADED_POLICIES: Final = ("mask", "keep_mild")
"""What the pipeline does with a DEGRADED modality whose grade is mild (``degraded_policy``)."""


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


_NOISE_SUFFIX: Final = {"uint8": "level", "m": "m", "K": "k"}
"""The noise fields' suffix for each sensor unit of ``modalities.NORMALIZATION``."""


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

    # --- partial damage, against the stream's own baseline (``benchmarks/health_faults.py``)
    baseline_frames: int = 50
    """The baseline of each signal is the median of its last this many good frames."""
    baseline_min_frames: int = 5
    """Good frames needed before the baseline checks start (after start-up, a size change, or
    for the scene-dependent signals, a new depth scene)."""
    clear_ratio: float = 0.8
    """Hysteresis: a baseline check that fired clears only at this fraction of its threshold
    (a contrast ratio at its threshold divided by this), so a value near it does not flap."""
    min_noise_ratio: float = 1.5
    """Noise is flagged only when also this many times the baseline's (a naturally noisy
    sensor's own fluctuation can exceed the absolute limits below)."""
    max_noise_level: float = 72.0
    """rgb noise (uint8 levels) above the baseline's, added in quadrature: DEGRADED above it."""
    severe_noise_level: float = 72.0
    """rgb noise from which the grade is severe rather than mild (= max: never mild)."""
    max_noise_m: float = 5.0
    """depth noise above the baseline's (metres)."""
    severe_noise_m: float = 5.0
    max_noise_k: float = 1.1
    """thermal noise above the baseline's (kelvin)."""
    severe_noise_k: float = 1.1
    max_depth_loss_fraction: float = 0.3
    """depth holes: DEGRADED when more than this fraction of the baseline's valid pixels is lost."""
    severe_depth_loss_fraction: float = 0.7
    max_rgb_saturated_rise: float = 1.0
    """rgb: saturated fraction above the baseline's (1: never; ``saturated_fraction`` still holds)."""
    max_depth_saturated_rise: float = 0.085
    """depth: fraction of the valid pixels pinned at 20 m (clipped) above the baseline's."""
    max_thermal_saturated_rise: float = 0.375
    """thermal: fraction of the pixels pinned at 340 K (clipped) above the baseline's."""
    min_rgb_contrast_ratio: float = 0.21
    """rgb washout: the 5-95 % spread below this fraction of the baseline's (a change of
    scene, day to fog, reaches 0.45)."""
    min_depth_contrast_ratio: float = 0.12
    """depth washout (a change of scene, day to fog with holes, reaches 0.2)."""
    min_thermal_contrast_ratio: float = 0.17
    """thermal washout; a change of scene (day to a thermal crossover reaches 0.18) is not
    one: the contrast baseline is learned again (``thermal_scene_correlation``)."""
    depth_scene_change_fraction: float = 0.3
    """A new depth scene (not damage), whose valid and saturated baselines are learned again:
    more than this fraction of the pixels valid in both frames changed depth by over 10 %."""
    thermal_scene_correlation: float = 0.9
    """A new thermal scene (not damage), whose contrast baseline is learned again: two frames
    whose pixels correlate below this. A washout or gain change is affine, so it keeps the
    correlation (a moving camera: >= 0.94 on the procedural world, a cut: <= 0.84)."""
    degraded_policy: str = "keep_mild"
    """``mask``: every DEGRADED modality is left out of the model's input; ``keep_mild``: a
    DEGRADED modality whose grade is mild (noisy but still informative) is kept."""

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
        self._validate_baseline()
        return self

    def _validate_baseline(self) -> None:
        for name in ("baseline_frames", "baseline_min_frames"):
            self._check_int(name, minimum=1)
        if self.baseline_min_frames > self.baseline_frames:
            message = f"must be <= baseline_frames ({self.baseline_frames}), got {self.baseline_min_frames}"
            raise HealthConfigError("baseline_min_frames", message)
        self._check_float("clear_ratio", low=0.0, high=1.0, low_open=True)
        self._check_float("min_noise_ratio", low=1.0)
        for unit in _NOISE_SUFFIX.values():
            self._check_float(f"max_noise_{unit}", low=0.0, low_open=True)
            # a severe threshold at or below the detection threshold means: every detection is severe
            self._check_float(f"severe_noise_{unit}", low=0.0, low_open=True)
        self._check_float("max_depth_loss_fraction", low=0.0, high=1.0, low_open=True)
        self._check_float("severe_depth_loss_fraction", low=0.0, high=1.0, low_open=True)
        for modality in MODALITIES:
            self._check_float(f"max_{modality}_saturated_rise", low=0.0, high=1.0, low_open=True)
        for modality in MODALITIES:
            self._check_float(f"min_{modality}_contrast_ratio", low=0.0, high=1.0)
        self._check_float("depth_scene_change_fraction", low=0.0, high=1.0)
        self._check_float("thermal_scene_correlation", low=0.0, high=1.0)
        if self.degraded_policy not in DEGRADED_POLICIES:
            message = f"must be one of {', '.join(DEGRADED_POLICIES)}, got {self.degraded_policy!r}"
            raise HealthConfigError("degraded_policy", message)

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

    def noise_limits(self, modality: str) -> tuple[float, float]:
        """``modality``'s noise above its baseline that makes it DEGRADED, then severe (sensor unit)."""
        suffix = _NOISE_SUFFIX[NORMALIZATION[modality].unit]
        return getattr(self, f"max_noise_{suffix}"), getattr(self, f"severe_noise_{suffix}")

    def max_saturated_rise(self, modality: str) -> float:
        """``modality``'s saturated fraction above its baseline that makes it DEGRADED."""
        return float(getattr(self, f"max_{modality}_saturated_rise"))

    def min_contrast_ratio(self, modality: str) -> float:
        """``modality``'s contrast, as a fraction of its baseline's, below which it is washed out."""
        return float(getattr(self, f"min_{modality}_contrast_ratio"))

    def period_ns(self, modality: str) -> float | None:
        """The configured expected period of ``modality`` in ns, or None when it is learned."""
        rate = self.expected_rate_hz.get(modality)
        return None if rate is None else 1e9 / rate
