"""Content faults on images in sensor units (``modalities.SENSOR_FORMATS``).

Pure functions: an image in, a new image out (the input is never modified), the
randomness from the generator passed in. :meth:`FaultSchedule.apply` seeds that
generator per (fault, frame), so the same frame always gets the same damage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import cv2
import numpy as np

from unimrseg_core.faults.model import Fault
from unimrseg_core.modalities import NORMALIZATION

__all__ = ["EFFECTS", "apply_effect", "blob_mask"]


def blob_mask(rng: np.random.Generator, shape: tuple[int, int], fraction: float) -> np.ndarray:
    """``HxW`` bool mask of smooth blobs covering ``fraction`` of the pixels (all of them at 1)."""
    if fraction >= 1.0:
        return np.ones(shape, bool)
    h, w = shape
    cell = max(4, min(h, w) // 6)
    small = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return field >= np.quantile(field, 1.0 - fraction)


def _blackout(
    modality: str, image: np.ndarray, params: Mapping[str, Any], rng: np.random.Generator
) -> np.ndarray:
    if modality == "thermal":
        return np.full(image.shape, params["value_k"], dtype=image.dtype)
    return np.zeros_like(image)


def _saturate(
    modality: str, image: np.ndarray, params: Mapping[str, Any], rng: np.random.Generator
) -> np.ndarray:
    top = NORMALIZATION[modality].high
    out = image.copy()
    out[blob_mask(rng, image.shape[:2], params["fraction"])] = top
    return out


def _noise(
    modality: str, image: np.ndarray, params: Mapping[str, Any], rng: np.random.Generator
) -> np.ndarray:
    norm = NORMALIZATION[modality]
    sigma = params["sigma"] * (norm.high - norm.low)
    noisy = image.astype(np.float32) + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    if modality == "rgb":
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if modality == "depth":  # no return stays no return; a return pushed to <= 0 is lost
        noisy[~(image > 0)] = 0.0
        noisy[noisy < 0] = 0.0
    return noisy.astype(image.dtype)


def _depth_holes(
    modality: str, image: np.ndarray, params: Mapping[str, Any], rng: np.random.Generator
) -> np.ndarray:
    out = image.copy()
    out[blob_mask(rng, image.shape[:2], params["fraction"])] = 0.0
    return out


Effect = Callable[[str, np.ndarray, Mapping[str, Any], np.random.Generator], np.ndarray]

EFFECTS: Final[Mapping[str, Effect]] = {
    "blackout": _blackout,
    "saturate": _saturate,
    "noise": _noise,
    "depth_holes": _depth_holes,
}
"""Image function of every content kind (``model.CONTENT_KINDS``)."""


def apply_effect(fault: Fault, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (sensor units of ``fault.modality``) with ``fault``'s damage; a new array."""
    effect = EFFECTS.get(fault.kind)
    if effect is None:
        raise ValueError(f"{fault.kind} is a timing fault; it does not change image content")
    return effect(fault.modality, image, fault.params, rng)
