"""Content checks of one image in sensor units, on a strided subsample so they stay cheap.

Each check returns short reasons ("blackout: mean 2.1 levels < 8.0"); no reason means
the frame looks usable. A weird input (wrong type, dtype, rank, empty) is a bad frame
with a reason, never an exception: the health monitor must outlive any sensor.

Checks are chosen by the modality's unit in ``modalities.NORMALIZATION`` (uint8
intensity, metres, kelvin), so no modality name is repeated here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from unimrseg_core.health.config import HealthConfig
from unimrseg_core.health.signals import Signals, measure
from unimrseg_core.health.text import percent, size
from unimrseg_core.modalities import MODALITIES, MODALITY_CHANNELS, NORMALIZATION, SENSOR_FORMATS

__all__ = ["FrameCheck", "check_frame"]


@dataclass(frozen=True)
class FrameCheck:
    """What the content checks found, plus the facts the stream and baseline checks compare between frames."""

    reasons: tuple[str, ...]
    fingerprint: bytes | None  # hash of the subsample; None when the frame could not be read
    shape: tuple[int, ...] | None  # None when the input is not an array
    signals: Signals | None = None  # for the baseline checks; None when the frame could not be read


def check_frame(modality: str, image: object, config: HealthConfig) -> FrameCheck:
    """Format, then content checks of ``image`` as ``modality``; the modality must be known."""
    if not isinstance(image, np.ndarray):
        return FrameCheck((f"not an image array: {type(image).__name__}",), None, None)
    shape = tuple(int(n) for n in image.shape)
    problem = _format_problem(modality, image)
    if problem:
        return FrameCheck((problem,), None, shape)
    step = config.check_stride
    sub = np.ascontiguousarray(image[::step, ::step])
    digest = hashlib.blake2b(repr(shape).encode(), digest_size=16)  # a resized image never matches
    digest.update(sub.data)
    fingerprint = digest.digest()
    with np.errstate(all="ignore"):
        reasons = _CONTENT_CHECKS[NORMALIZATION[modality].unit](sub, modality, config)
        signals = measure(modality, image, sub, step)
    return FrameCheck(tuple(reasons), fingerprint, shape, signals)


def _format_problem(modality: str, image: np.ndarray) -> str | None:
    ndim, dtype = SENSOR_FORMATS[modality]
    channels = MODALITY_CHANNELS[modality]
    want = f"{ndim}-D {np.dtype(dtype).name}" + (f" with {channels} channels" if ndim == 3 else "")
    if image.ndim != ndim or image.dtype != dtype or (ndim == 3 and image.shape[2] != channels):
        return f"bad format: expected {want}, got {image.ndim}-D {image.dtype} {size(image.shape)}"
    if image.size == 0:
        return f"empty image: {size(image.shape)}"
    return None


def _intensity(sub: np.ndarray, modality: str, config: HealthConfig) -> list[str]:
    """uint8 camera image: blackout (dark), saturation (most values at 255), flat."""
    top = NORMALIZATION[modality].high
    values = sub.astype(np.float32)
    mean = float(values.mean())
    saturated = np.count_nonzero(values >= top) / values.size
    if mean < config.dark_mean_level:
        return [f"blackout: mean {mean:.1f} levels < {config.dark_mean_level:g}"]
    if saturated >= config.saturated_fraction:
        return [f"saturated: {percent(saturated)} of values at {top:g}"]
    std = float(values.std())
    if std < config.min_std_level:
        return [f"flat: std {std:.2f} levels < {config.min_std_level:g}"]
    return []


def _range(sub: np.ndarray, modality: str, config: HealthConfig) -> list[str]:
    """Depth in metres (0, NaN, inf and negative = no return): blackout, holes, flat, saturated."""
    valid = np.isfinite(sub) & (sub > 0)
    count = int(np.count_nonzero(valid))
    if count == 0:
        return ["blackout: no valid depth"]
    reasons = []
    invalid = 1.0 - count / sub.size
    if invalid > config.max_invalid_depth_fraction:
        reasons.append(
            f"holes: {percent(invalid)} of pixels invalid (max {percent(config.max_invalid_depth_fraction)})"
        )
    values = sub[valid].astype(np.float64)
    top = NORMALIZATION[modality].high
    saturated = np.count_nonzero(values >= top) / count
    if saturated >= config.saturated_fraction:
        reasons.append(f"saturated: {percent(saturated)} of valid pixels at or beyond {top:g} m")
    elif count > 1 and float(values.std()) < config.min_std_m:
        reasons.append(f"flat: std {float(values.std()):.4f} m < {config.min_std_m:g} m")
    return reasons


def _temperature(sub: np.ndarray, modality: str, config: HealthConfig) -> list[str]:
    """Thermal in kelvin: NaN/inf ratio, blackout (a flat field), saturated (mostly above range)."""
    finite = np.isfinite(sub)
    count = int(np.count_nonzero(finite))
    if count == 0:
        return ["blackout: no finite pixels"]
    reasons = []
    nonfinite = 1.0 - count / sub.size
    if nonfinite > config.max_nonfinite_fraction:
        reasons.append(
            f"nan: {percent(nonfinite)} of pixels NaN/inf (max {percent(config.max_nonfinite_fraction)})"
        )
    values = (sub if count == sub.size else sub[finite]).astype(np.float64)
    top = NORMALIZATION[modality].high
    saturated = np.count_nonzero(values >= top) / count
    std = float(values.std())
    if saturated >= config.saturated_fraction:
        reasons.append(f"saturated: {percent(saturated)} of pixels at or above {top:g} K")
    elif std < config.min_std_k:
        reasons.append(f"blackout: flat field, std {std:.3f} K < {config.min_std_k:g} K")
    return reasons


_CONTENT_CHECKS: Final[dict[str, Callable[[np.ndarray, str, HealthConfig], list[str]]]] = {
    "uint8": _intensity,
    "m": _range,
    "K": _temperature,
}
_unchecked = [m for m in MODALITIES if NORMALIZATION[m].unit not in _CONTENT_CHECKS]
if _unchecked:  # a new modality needs its content checks before the monitor can watch it
    raise ImportError(f"no health content checks for modalities {_unchecked}")
