"""Saliency ground truth: the main foreground object(s) of a scene, not "all thing pixels".

Definition (precise, so a model can learn it and a reader can check it):

1. Candidates are the *real* thing instances (person, vehicle, obstacle) visible
   in the image with at least ``MIN_AREA`` (0.4 %) of the pixels. Decals
   (pictures of people or cars) and stuff classes are never salient.
2. Each candidate scores ``area_fraction * exp(-d^2 / (2 * 0.3^2))``, where ``d`` is
   the distance of its visible centroid from the image centre, in units of
   image width/height per axis (so big, central objects win).
3. Salient = every candidate scoring at least ``RELATIVE`` (0.5) of the best
   score: one dominant object, or a group of comparable ones.
4. The mask is the visible pixels of the salient instances; empty if there are
   no candidates.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_AREA", "RELATIVE", "saliency_mask", "salient_instances"]

MIN_AREA = 0.004
RELATIVE = 0.5
_SIGMA = 0.3


def salient_instances(inst: np.ndarray, instance_class: dict[int, int], thing_ids: set[int]) -> list[int]:
    """Instance ids that are salient under the definition above."""
    h, w = inst.shape
    counts = np.bincount(inst.ravel(), minlength=max(instance_class, default=0) + 1)
    candidates = [
        i
        for i, c in instance_class.items()
        if c in thing_ids and i < counts.size and counts[i] >= MIN_AREA * h * w
    ]
    if not candidates:
        return []
    yy, xx = np.indices((h, w))
    sum_x = np.bincount(inst.ravel(), weights=xx.ravel(), minlength=counts.size)
    sum_y = np.bincount(inst.ravel(), weights=yy.ravel(), minlength=counts.size)
    scores = {}
    for i in candidates:
        cx, cy = sum_x[i] / counts[i], sum_y[i] / counts[i]
        d2 = ((cx + 0.5) / w - 0.5) ** 2 + ((cy + 0.5) / h - 0.5) ** 2
        scores[i] = counts[i] / (h * w) * np.exp(-d2 / (2 * _SIGMA**2))
    best = max(scores.values())
    return sorted(i for i, s in scores.items() if s >= RELATIVE * best)


def saliency_mask(inst: np.ndarray, instance_class: dict[int, int], thing_ids: set[int]) -> np.ndarray:
    """``HxW`` uint8, 1 on the salient instances' visible pixels."""
    chosen = salient_instances(inst, instance_class, thing_ids)
    return np.isin(inst, chosen).astype(np.uint8) if chosen else np.zeros(inst.shape, np.uint8)
