"""Capture conditions of a procedural scene: lighting/weather plus sensor faults.

A scene has exactly one lighting condition (day, night, fog, glare) and any of the
sensor conditions (depth_holes, thermal_washout). All are recorded in the
sample's metadata under ``conditions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "CONDITIONS",
    "LIGHTING",
    "SENSOR_FAULTS",
    "ConditionProbabilities",
    "sample_conditions",
    "validate_conditions",
]

LIGHTING: Final[tuple[str, ...]] = ("day", "night", "fog", "glare")
SENSOR_FAULTS: Final[tuple[str, ...]] = ("depth_holes", "thermal_washout")
CONDITIONS: Final[tuple[str, ...]] = LIGHTING + SENSOR_FAULTS

DESCRIPTIONS: Final[dict[str, str]] = {
    "day": "daylight, sun and cast shadows, clear depth and thermal",
    "night": "dark, noisy RGB with street-light pools and lit windows; thermal at its best",
    "fog": "low RGB contrast with distance, depth range cut and noisier; thermal mildly attenuated",
    "glare": "low sun or a lamp in view saturates a region of the RGB image",
    "depth_holes": "reflective and dark surfaces (glass, dark paint, puddles) read 0 in depth",
    "thermal_washout": "thermal crossover: every surface near ambient temperature, low contrast",
}


@dataclass(frozen=True)
class ConditionProbabilities:
    """How often the generator picks each condition (lighting weights are normalised)."""

    day: float = 0.4
    night: float = 0.2
    fog: float = 0.2
    glare: float = 0.2
    depth_holes: float = 0.2
    thermal_washout: float = 0.15


def sample_conditions(rng: np.random.Generator, probs: ConditionProbabilities) -> tuple[str, ...]:
    weights = np.array([getattr(probs, name) for name in LIGHTING], dtype=np.float64)
    lighting = LIGHTING[int(rng.choice(len(LIGHTING), p=weights / weights.sum()))]
    chosen = [lighting]
    for fault in SENSOR_FAULTS:
        if rng.random() < getattr(probs, fault) and not (fault == "thermal_washout" and lighting == "night"):
            chosen.append(fault)  # crossover happens around dawn/dusk and hot days, not at night
    return tuple(chosen)


def validate_conditions(conditions: Sequence[str]) -> tuple[str, ...]:
    """Canonical order; exactly one lighting condition (day is added if none given)."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition {unknown!r}; valid: {', '.join(CONDITIONS)}")
    lighting = [c for c in conditions if c in LIGHTING]
    if len(lighting) > 1:
        raise ValueError(f"at most one lighting condition, got {lighting}")
    return (lighting[0] if lighting else "day", *(c for c in SENSOR_FAULTS if c in conditions))
