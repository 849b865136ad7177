"""Sample -> model input arrays: the one preprocessing step shared by training, evaluation and inference.

Images become float32 ``CxHxW`` in [0, 1] through ``modalities.normalize``; absent
modalities are zeros and the mask says they are absent (see ``modalities``).
"""

from __future__ import annotations

import numpy as np

from unimrseg_core.data.sample import Sample
from unimrseg_core.modalities import IGNORE_INDEX, MODALITIES, MODALITY_CHANNELS, normalize

__all__ = ["model_inputs", "targets"]


def model_inputs(sample: Sample) -> dict[str, np.ndarray]:
    """``{rgb [3,H,W], depth [1,H,W], thermal [1,H,W], modality_mask [3]}``, all float32."""
    h, w = sample.size
    out: dict[str, np.ndarray] = {}
    for m in MODALITIES:
        image = getattr(sample, m)
        if image is None:
            out[m] = np.zeros((MODALITY_CHANNELS[m], h, w), np.float32)
        else:
            x = normalize(m, image)
            out[m] = np.ascontiguousarray(x.transpose(2, 0, 1) if x.ndim == 3 else x[None])
    out["modality_mask"] = sample.modality_mask
    return out


def targets(sample: Sample) -> dict[str, np.ndarray]:
    """``{label [H,W] int64 (IGNORE_INDEX where unknown), saliency [1,H,W] float32, has_label [],
    has_saliency []}``: the ``has_`` flags say which tasks the sample has ground truth for (training
    leaves the others out of its loss)."""
    h, w = sample.size
    label = (
        sample.label.astype(np.int64) if sample.label is not None else np.full((h, w), IGNORE_INDEX, np.int64)
    )
    has_sal = sample.saliency is not None
    saliency = sample.saliency[None].astype(np.float32) if has_sal else np.zeros((1, h, w), np.float32)
    return {
        "label": label,
        "saliency": saliency,
        "has_label": np.array(sample.label is not None),
        "has_saliency": np.array(has_sal),
    }
