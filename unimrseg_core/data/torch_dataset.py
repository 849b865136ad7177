"""The procedural world as a torch ``Dataset``, for on-the-fly training data.

Scene ``i`` depends only on ``(seed, i)``, so batches are identical whatever the
number of DataLoader workers or their order; no worker seeding is needed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from unimrseg_core.data.conditions import ConditionProbabilities
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.tensors import model_inputs, targets

__all__ = ["ProceduralDataset"]


class ProceduralDataset(Dataset[dict[str, torch.Tensor]]):
    """``length`` scenes of ``SceneGenerator(size, seed)`` as tensors (see ``data.tensors``)."""

    def __init__(
        self,
        length: int,
        *,
        size: tuple[int, int] = (240, 320),
        seed: int = 0,
        probabilities: ConditionProbabilities | None = None,
    ) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.length = length
        self.generator = SceneGenerator(size, seed, probabilities)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} scenes")
        sample = self.generator.sample(index)
        arrays: dict[str, np.ndarray] = {**model_inputs(sample), **targets(sample)}
        return {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}
