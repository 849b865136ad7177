"""What one frame says about its sensor, as numbers a stream's own baseline can be compared with.

The content checks (``checks.py``) judge a frame alone, against fixed limits. Partial damage
(noise, a part of the depth image lost, a part saturated, contrast washed out) is only
visible against what the same stream looked like while it was healthy, because healthy
scenes differ as much as damaged ones do from each other (night rgb is four times noisier
than day rgb; an outdoor depth image loses 25 % to 75 % of its pixels to the sky).

Cheap on purpose (about 0.3 ms at 240x320): the noise estimate reads every ``stride``-th
column at full vertical resolution (a second difference needs neighbouring pixels), the
rest reads the subsample the content checks already made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from unimrseg_core.modalities import NORMALIZATION

__all__ = ["MIN_NOISE_SAMPLES", "SCENE_MODALITIES", "Signals", "measure", "noise_sigma"]

SCENE_MODALITIES: Final = ("depth", "thermal")
"""Modalities whose baselines are learned again on a new scene (rgb's frames of one moving camera
correlate as little as 0.7, as low as a cut's, so rgb cannot tell them apart this way)."""

MIN_NOISE_SAMPLES: Final = 16
"""Fewer usable second differences than this give no noise estimate (a tiny or mostly invalid image)."""

_MAD_TO_SIGMA: Final = 1.4826 / math.sqrt(6.0)
"""The second difference ``a - 2b + c`` of white noise has standard deviation sqrt(6) sigma;
1.4826 turns a median absolute deviation into a Gaussian standard deviation."""


@dataclass(frozen=True)
class Signals:
    """Per-frame numbers in the modality's sensor unit (``modalities.NORMALIZATION``)."""

    noise: float | None
    """Robust standard deviation of pixel-to-pixel noise; None when too few usable pixels."""
    valid: float
    """Fraction of the subsample with a usable value (depth: finite and > 0; others: finite)."""
    saturated: float
    """Fraction of the usable subsample pinned at the top of the modality's range: clipped (255
    levels, 20 m, 340 K). A far return beyond 20 m, or a hot engine above 340 K, is not."""
    spread: float | None
    """Contrast: the 5th to 95th percentile range of the usable subsample; None when empty."""
    scene: np.ndarray | None
    """Depth and thermal: the subsample, to tell a new scene from damage to the old one."""


def _usable(values: np.ndarray, unit: str) -> np.ndarray:
    return np.isfinite(values) & (values > 0) if unit == "m" else np.isfinite(values)


def noise_sigma(plane: np.ndarray, unit: str) -> float | None:
    """Noise of a 2-D image (columns kept whole): MAD of the vertical second difference.

    Vertical, so that a thermal camera's column fixed-pattern noise (constant down a
    column) cancels; only triplets of usable pixels count, so depth holes add nothing.
    Scene edges are the outliers the median ignores.
    """
    values = plane.astype(np.float32, copy=False)
    if values.shape[0] < 3:
        return None
    top, middle, bottom = values[:-2], values[1:-1], values[2:]
    second = top - 2.0 * middle + bottom
    usable = _usable(top, unit) & _usable(middle, unit) & _usable(bottom, unit)
    second = second[usable]
    if second.size < MIN_NOISE_SAMPLES:
        return None
    return float(np.median(np.abs(second))) * _MAD_TO_SIGMA


def measure(modality: str, image: np.ndarray, sub: np.ndarray, stride: int) -> Signals:
    """The signals of ``image`` (format already checked) and its subsample ``sub``."""
    unit = NORMALIZATION[modality].unit
    plane = image[:, ::stride, image.shape[2] // 2] if image.ndim == 3 else image[:, ::stride]
    usable = _usable(sub, unit)
    values = sub[usable].astype(np.float32, copy=False)
    count = values.size
    top = NORMALIZATION[modality].high
    spread = None
    if count:
        low, high = np.percentile(values, (5.0, 95.0))
        spread = float(high - low)
    return Signals(
        noise=noise_sigma(plane, unit),
        valid=count / sub.size,
        saturated=float(np.count_nonzero(values == top)) / count if count else 0.0,
        spread=spread,
        scene=sub if modality in SCENE_MODALITIES else None,
    )
