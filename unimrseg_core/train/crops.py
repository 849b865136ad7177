"""Where the samples of a training batch come from: one draw, shared by both ways of cutting batches.

The DataLoader path (``batches.StepBatches``) and the tensor pool (``pool.TensorPool``) both
cut batch ``step`` from these draws, so they give the same batches; a module of its own, so
neither of them imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unimrseg_core.train.config import DataConfig

__all__ = ["Crops", "step_crops"]


@dataclass(frozen=True)
class Crops:
    """Where the samples of one batch come from: scene (``None`` on the fly, where the step names
    the scenes), top-left corner, horizontal mirror; and the crop's size."""

    scene: np.ndarray | None
    y: np.ndarray
    x: np.ndarray
    flip: np.ndarray
    size: tuple[int, int]


def step_crops(
    cfg: DataConfig, batch_size: int, phase: int, step: int, rank: int, scenes: int | None
) -> Crops:
    """The draws of batch ``step``, in the one order every pipeline uses: per sample the scene
    (out of ``scenes``), the crop's row and column, the mirror."""
    rng = np.random.default_rng([cfg.seed, phase, step, rank])
    h, w = cfg.size
    ch, cw = cfg.crop or (h, w)
    draws = np.empty((batch_size, 4), np.int64)
    for i in range(batch_size):
        scene = int(rng.integers(scenes)) if scenes is not None else -1
        draws[i] = scene, rng.integers(h - ch + 1), rng.integers(w - cw + 1), rng.random() < 0.5
    scene, y, x, flip = draws.T
    return Crops(scene if scenes is not None else None, y, x, flip.astype(bool), (ch, cw))
