"""Partial damage judged against the stream's own healthy past: noise, lost depth, saturation, washout.

Each signal of :mod:`signals` has a baseline: the median of its values over the last
``baseline_frames`` good frames (frames with no reason at all), so a fault never teaches
the baseline, and one odd healthy frame barely moves it. Four checks compare a frame
with it, each with hysteresis (a check that fired clears only at ``clear_ratio`` of its
threshold) and each reason carrying the measured value:

- noise: the frame's noise above the baseline's, in quadrature (``sqrt(n^2 - b^2)``,
  the standard deviation of what was added); in the sensor unit, so a day-to-night
  change (rgb noise 4 -> 16 levels) stays far below a damaging one (36 levels). It must
  also be ``min_noise_ratio`` times the baseline: a sensor noisy by nature fluctuates
  by more than the limit without any damage;
- depth loss: the fraction of the baseline's valid depth pixels that is gone;
- saturation: the fraction pinned at the top of the range above the baseline's (glare
  saturates 10 % of a healthy rgb image); a depth image's far field (beyond 20 m, up to
  3 % of a day scene, drifting as the robot moves) is not pinned at 20 m, so it is no rise;
- washout: the contrast (5-95 % spread) as a fraction of the baseline's.

A new depth scene (more than ``depth_scene_change_fraction`` of the pixels valid and
unsaturated in both frames changed depth by more than :data:`SCENE_CHANGE_RELATIVE`) is not
damage: how much of it returns or saturates depends on the scene, so those two baselines
are learned again. On the procedural world a moving camera changes at most 2.3 % of the
pixels from one frame to the next, a cut at least 73 %, and holes or saturation, which spare
the pixels they do not hit, under 1 %. The noise baseline stays (noise is the sensor's), and
so does contrast: a washout changes every depth, and must not reset its own baseline.

A new thermal scene (the pixels of two frames correlate below ``thermal_scene_correlation``)
relearns thermal contrast: a cut from day to a thermal crossover drops the spread to 0.18x,
as much as a damaging washout, but a washout is affine (every temperature pulled towards
the mean), and correlation does not see affine changes: frames of a moving camera correlate
>= 0.94, washed out or not, a cut <= 0.84. Depth contrast cannot be relearned this way: a
change of conditions keeps the geometry (it correlates like a moving camera), and the
spread of a healthy depth stream falls to 0.21x of its baseline as the camera nears a wall.

Noise and depth loss are graded: mild up to their ``severe_*`` threshold (the modality is
noisy or partly lost, but still worth more to the model than its absence), severe beyond.
The other checks are always severe.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from unimrseg_core.health.config import HealthConfig
from unimrseg_core.health.signals import Signals
from unimrseg_core.health.state import Grade
from unimrseg_core.health.text import percent
from unimrseg_core.modalities import NORMALIZATION

__all__ = ["SCENE_CHANGE_RELATIVE", "BaselineChecks", "RunningMedian", "Verdict"]

SCENE_CHANGE_RELATIVE: Final = 0.1
"""A pixel whose depth changed by more than this fraction between two frames shows something else."""

_UNIT_TEXT: Final = {"uint8": "levels", "m": "m", "K": "K"}


class RunningMedian:
    """The median of the last ``window`` values added."""

    def __init__(self, window: int) -> None:
        self._values: deque[float] = deque(maxlen=window)

    def add(self, value: float) -> None:
        self._values.append(value)

    def clear(self) -> None:
        self._values.clear()

    def median(self, min_count: int) -> float | None:
        """The median, or None before ``min_count`` values."""
        return statistics.median(self._values) if len(self._values) >= min_count else None


@dataclass(frozen=True)
class Verdict:
    """The baseline checks' reasons for one frame and their grade (NONE without reasons)."""

    reasons: tuple[str, ...] = ()
    grade: Grade = Grade.NONE


class BaselineChecks:
    """One modality's baselines and the checks against them."""

    def __init__(self, modality: str, config: HealthConfig) -> None:
        self.modality = modality
        self.config = config
        unit = NORMALIZATION[modality].unit
        self._unit = _UNIT_TEXT[unit]
        self._is_depth = unit == "m"
        window = config.baseline_frames
        self.noise = RunningMedian(window)
        self.valid = RunningMedian(window)
        self.saturated = RunningMedian(window)
        self.spread = RunningMedian(window)
        self._shape: tuple[int, ...] | None = None
        self._previous_depth: np.ndarray | None = None
        self._previous_scene: np.ndarray | None = None  # thermal
        self._active: set[str] = set()  # checks that fired and have not cleared

    def check(self, signals: Signals | None, shape: tuple[int, ...] | None) -> Verdict:
        """The reasons ``signals`` (None: an unreadable frame, no verdict) differ from the baseline."""
        if signals is None:
            return Verdict()
        if shape != self._shape:  # a new resolution changes every signal's scale
            self._shape = shape
            self._previous_depth = self._previous_scene = None
            self._forget(self.noise, self.valid, self.saturated, self.spread)
        if self._is_depth and self._new_depth_scene(signals.scene):
            self._forget(self.valid, self.saturated)
        elif not self._is_depth and self._new_thermal_scene(signals.scene):
            self._forget(self.spread)
        findings = [
            finding
            for finding in (
                self._noise(signals),
                self._loss(signals),
                self._rise(signals),
                self._washout(signals),
            )
            if finding is not None
        ]
        if not findings:
            return Verdict()
        return Verdict(tuple(r for r, _ in findings), max(g for _, g in findings))

    def learn(self, signals: Signals | None) -> None:
        """Add a good frame's signals to the baselines."""
        if signals is None:
            return
        if signals.noise is not None:
            self.noise.add(signals.noise)
        self.valid.add(signals.valid)
        self.saturated.add(signals.saturated)
        if signals.spread is not None:
            self.spread.add(signals.spread)

    # ------------------------------------------------------------------ internals

    def _forget(self, *baselines: RunningMedian) -> None:
        for baseline in baselines:
            baseline.clear()

    def _new_depth_scene(self, depth: np.ndarray | None) -> bool:
        """Whether ``depth`` shows another scene than the previous frame (then remembered)."""
        previous, self._previous_depth = self._previous_depth, depth
        if depth is None or previous is None or previous.shape != depth.shape:
            return False
        top = NORMALIZATION[self.modality].high
        with np.errstate(all="ignore"):
            both = (depth > 0) & (depth < top) & (previous > 0) & (previous < top)  # False for NaN
            count = np.count_nonzero(both)
            if count == 0:
                return False
            relative = np.abs(depth[both] - previous[both]) / previous[both]
            changed = np.count_nonzero(relative > SCENE_CHANGE_RELATIVE) / count
        return changed > self.config.depth_scene_change_fraction

    def _new_thermal_scene(self, frame: np.ndarray | None) -> bool:
        """Whether thermal ``frame`` correlates with the previous one (then remembered) too little
        to be the same scene (False for rgb, which has no ``frame``)."""
        previous, self._previous_scene = self._previous_scene, frame
        if frame is None or previous is None or previous.shape != frame.shape:
            return False
        with np.errstate(all="ignore"):
            both = np.isfinite(frame) & np.isfinite(previous)
            if np.count_nonzero(both) < 2:
                return False
            a = frame[both].astype(np.float64)
            b = previous[both].astype(np.float64)
            a -= a.mean()
            b -= b.mean()
            norm = math.sqrt(float(a @ a) * float(b @ b))
        if norm == 0.0:  # a flat frame: the content checks judge it, not the baselines
            return False
        return float(a @ b) / norm < self.config.thermal_scene_correlation

    def _ready(self, baseline: RunningMedian) -> float | None:
        return baseline.median(self.config.baseline_min_frames)

    def _fires(self, name: str, exceeds: Callable[[float], bool]) -> bool:
        """Hysteresis: ``exceeds(1.0)`` fires check ``name``, ``exceeds(clear_ratio)`` keeps it fired
        (the argument scales the threshold's distance from the healthy side)."""
        fired = exceeds(self.config.clear_ratio if name in self._active else 1.0)
        (self._active.add if fired else self._active.discard)(name)
        return fired

    def _noise(self, signals: Signals) -> tuple[str, Grade] | None:
        base = self._ready(self.noise)
        if base is None or signals.noise is None:
            return None
        limit, severe = self.config.noise_limits(self.modality)
        added = math.sqrt(max(signals.noise**2 - base**2, 0.0))
        ratio = signals.noise / base if base > 0 else math.inf
        least = self.config.min_noise_ratio
        if not self._fires("noise", lambda k: added > limit * k and ratio > 1.0 + (least - 1.0) * k):
            return None
        times = f"{ratio:.1f}x baseline" if base > 0 else "baseline"
        u = self._unit
        reason = f"noise {signals.noise:.3g} {u}, {times} {base:.3g} {u} (+{added:.3g} > +{limit:g} {u})"
        return reason, Grade.MILD if limit < severe and added < severe else Grade.SEVERE

    def _loss(self, signals: Signals) -> tuple[str, Grade] | None:
        base = self._ready(self.valid)
        if not self._is_depth or not base:
            return None
        config = self.config
        loss = 1.0 - signals.valid / base
        limit = config.max_depth_loss_fraction
        if not self._fires("loss", lambda k: loss > limit * k):
            return None
        reason = (
            f"holes: {percent(signals.valid)} of pixels valid, {signals.valid / base:.2f}x baseline "
            f"{percent(base)} (lost {percent(loss)} > {percent(limit)})"
        )
        severe = config.severe_depth_loss_fraction
        return reason, Grade.MILD if limit < severe and loss < severe else Grade.SEVERE

    def _rise(self, signals: Signals) -> tuple[str, Grade] | None:
        base = self._ready(self.saturated)
        if base is None:
            return None
        rise = signals.saturated - base
        limit = self.config.max_saturated_rise(self.modality)
        if not self._fires("saturated", lambda k: rise > limit * k):
            return None
        top = NORMALIZATION[self.modality].high
        reason = (
            f"saturated: {percent(signals.saturated)} of pixels at {top:g} {self._unit}, "
            f"baseline {percent(base)} (+{percent(rise)} > +{percent(limit)})"
        )
        return reason, Grade.SEVERE

    def _washout(self, signals: Signals) -> tuple[str, Grade] | None:
        base = self._ready(self.spread)
        if not base or signals.spread is None:
            return None
        ratio = signals.spread / base
        limit = self.config.min_contrast_ratio(self.modality)
        if not self._fires("washout", lambda k: ratio < limit / k):
            return None
        u = self._unit
        reason = (
            f"washout: contrast {ratio:.2f}x baseline "
            f"(spread {signals.spread:.3g} {u}, baseline {base:.3g} {u}, min {limit:g}x)"
        )
        return reason, Grade.SEVERE
