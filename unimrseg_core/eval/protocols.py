"""Robustness protocols of the missing-modality segmentation literature, as pure input damage.

Every function takes a model input dict in the layout of ``data.tensors.model_inputs``
(images ``[..., C, H, W]`` normalised to [0, 1], ``modality_mask [..., 3]``; a
leading batch axis is optional), returns a new dict and leaves its argument alone.
Randomness comes only from the ``numpy.random.Generator`` passed in, so a protocol
run is reproducible.

- EMM (entire modality missing): :func:`drop` keeps one combination's modalities.
- RMM (random modality missing): :func:`random_missing` blanks a fraction of
  16x16 patches of every modality, independently, while all stay marked present
  (the sensor delivers, but parts of its image are lost).
- NM (noisy modality): :func:`gaussian_noise` and :func:`salt_pepper` corrupt one
  modality and leave the others untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from unimrseg_core.modalities import MODALITIES, Combination, apply_mask

__all__ = [
    "NOISE_LEVELS",
    "RMM_RATIOS",
    "Damage",
    "Inputs",
    "drop",
    "gaussian_noise",
    "random_missing",
    "robustness_protocols",
    "salt_pepper",
]

Inputs = dict[str, np.ndarray]

RMM_RATIOS: Final[tuple[float, ...]] = (0.25, 0.5, 0.75)
NOISE_LEVELS: Final[dict[str, float]] = {"gaussian": 0.1, "salt_pepper": 0.1}
"""NM strength: Gaussian sigma and salt-and-pepper pixel fraction, both on the [0, 1] scale."""


def drop(inputs: Inputs, combination: Combination) -> Inputs:
    """EMM: only ``combination``'s modalities stay; the others become zeros and are marked absent."""
    return apply_mask(inputs, combination.mask)


def random_missing(inputs: Inputs, ratio: float, rng: np.random.Generator, patch: int = 16) -> Inputs:
    """RMM: zero exactly ``round(ratio * cells)`` of the ``patch`` x ``patch`` cells of each modality.

    Cells are drawn independently per modality and per sample; edge cells of an image
    whose size is not a multiple of ``patch`` are cropped. The mask is unchanged.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be within [0, 1], got {ratio}")
    if patch < 1:
        raise ValueError(f"patch must be >= 1, got {patch}")
    out = dict(inputs)
    for m in MODALITIES:
        image = inputs[m]
        *lead, _, height, width = image.shape
        grid_h, grid_w = -(-height // patch), -(-width // patch)
        cells = grid_h * grid_w
        # each row a random permutation of 0..cells-1: exactly `lost` ranks fall below the cut
        ranks = rng.permuted(np.broadcast_to(np.arange(cells), (*lead, cells)), axis=-1)
        keep = (ranks >= round(ratio * cells)).reshape(*lead, 1, grid_h, grid_w)
        keep = keep.repeat(patch, axis=-2).repeat(patch, axis=-1)[..., :height, :width]
        out[m] = image * keep.astype(image.dtype)
    out["modality_mask"] = inputs["modality_mask"].copy()
    return out


def gaussian_noise(inputs: Inputs, modality: str, sigma: float, rng: np.random.Generator) -> Inputs:
    """NM: add zero-mean Gaussian noise of std ``sigma`` to ``modality`` only, clipped to [0, 1]."""
    image = inputs[modality]
    noisy = image + rng.normal(0.0, sigma, image.shape).astype(image.dtype)
    return {**inputs, modality: np.clip(noisy, 0.0, 1.0)}


def salt_pepper(inputs: Inputs, modality: str, amount: float, rng: np.random.Generator) -> Inputs:
    """NM: set a fraction ``amount`` of ``modality``'s pixels (all channels) to 1 or 0, half each."""
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be within [0, 1], got {amount}")
    image = inputs[modality]
    u = rng.random((*image.shape[:-3], 1, *image.shape[-2:]))
    noisy = np.where(u < amount / 2, 1.0, np.where(u < amount, 0.0, image)).astype(image.dtype)
    return {**inputs, modality: noisy}


@dataclass(frozen=True)
class Damage:
    """One protocol setting: its group (``rmm`` / ``nm``), its JSON row identity, and the damage."""

    group: str
    row: dict[str, Any]
    apply: Callable[[Inputs, np.random.Generator], Inputs]


def robustness_protocols(modalities: Sequence[str]) -> list[Damage]:
    """RMM at every ratio, then NM of each noise on each of ``modalities`` (those a dataset has)."""
    rmm = [Damage("rmm", {"ratio": r}, lambda x, rng, r=r: random_missing(x, r, rng)) for r in RMM_RATIOS]
    noises = {"gaussian": gaussian_noise, "salt_pepper": salt_pepper}
    nm = [
        Damage(
            "nm",
            {"modality": m, "noise": name, "level": NOISE_LEVELS[name]},
            lambda x, rng, m=m, f=noises[name], level=NOISE_LEVELS[name]: f(x, m, level, rng),
        )
        for m in modalities
        for name in NOISE_LEVELS
    ]
    return rmm + nm
