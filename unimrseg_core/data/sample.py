"""The one sample structure every data source yields (generator, disk layout, real datasets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from unimrseg_core.modalities import MODALITIES, SENSOR_FORMATS, mask_array

# every per-pixel array a sample can carry, in a fixed order
ARRAYS: Final[tuple[str, ...]] = (*MODALITIES, "label", "saliency")
# (ndim, dtype) of each array, as documented in ``Sample``: the images' are the sensor formats
ARRAY_FORMATS: Final[dict[str, tuple[int, type]]] = {
    **SENSOR_FORMATS,
    "label": (2, np.uint8),
    "saliency": (2, np.uint8),
}

__all__ = ["Sample"]


@dataclass
class Sample:
    """One aligned multimodal scene in sensor units; absent modalities are ``None``.

    - ``rgb``: ``HxWx3`` uint8, RGB channel order.
    - ``depth``: ``HxW`` float32 metres; 0 = invalid / no return (REP 118).
    - ``thermal``: ``HxW`` float32 kelvin.
    - ``label``: ``HxW`` uint8 class ids (``modalities.CLASSES``); ``IGNORE_INDEX`` = no ground truth.
    - ``saliency``: ``HxW`` uint8, 1 = salient, 0 = not.
    - ``meta``: JSON-serialisable facts (source file names, conditions, seed, intrinsics...).
    """

    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    thermal: np.ndarray | None = None
    label: np.ndarray | None = None
    saliency: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def present(self) -> tuple[str, ...]:
        """Modalities that are present, in MODALITIES order."""
        return tuple(m for m in MODALITIES if getattr(self, m) is not None)

    @property
    def modality_mask(self) -> np.ndarray:
        return mask_array(self.present)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) shared by every array of the sample."""
        for name in ARRAYS:
            array = getattr(self, name)
            if array is not None:
                return int(array.shape[0]), int(array.shape[1])
        raise ValueError("sample has no arrays")

    def validate(self) -> Sample:
        """Raise ValueError naming the field if any array breaks the contract above."""
        size = self.size
        source = self.meta.get("name", "sample")
        for name, (ndim, dtype) in ARRAY_FORMATS.items():
            array = getattr(self, name)
            if array is None:
                continue
            if array.ndim != ndim or array.dtype != dtype:
                raise ValueError(
                    f"{source}: {name} must be {ndim}-D {np.dtype(dtype).name}, "
                    f"got {array.ndim}-D {array.dtype}"
                )
            if name == "rgb" and array.shape[2] != 3:
                raise ValueError(f"{source}: rgb must have 3 channels, got {array.shape[2]}")
            if tuple(array.shape[:2]) != size:
                raise ValueError(f"{source}: {name} is {array.shape[:2]}, other arrays are {size}")
        if not self.present:
            raise ValueError(f"{source}: no modality present")
        return self
