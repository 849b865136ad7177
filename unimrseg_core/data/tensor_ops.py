"""Torch mirrors of the numpy preprocessing facts, for code that works on device tensors.

The GPU inference path (``runtime.device_stages``) and anything else that normalises
on the device use these; the constants stay in ``modalities.NORMALIZATION``, so the
numpy and the torch versions cannot drift apart (a test holds them equal).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from unimrseg_core.modalities import MODALITIES, NORMALIZATION

__all__ = ["apply_mask_tensor", "normalize_tensor", "saliency_mono8_tensor"]


def normalize_tensor(modality: str, image: torch.Tensor) -> torch.Tensor:
    """``modalities.normalize`` on a tensor of any layout: sensor units -> float32 in [0, 1].

    Integer images (uint8 RGB, uint16 millimetres or centikelvin already converted by the
    caller) are taken as they are; NaN and inf of float images become 0, as in numpy.
    """
    norm = NORMALIZATION[modality]
    x = image.float()
    # a 0-dim CPU tensor reaches a CUDA kernel as a scalar argument: no copy, no wait for the GPU
    scale = torch.tensor(1.0 / (norm.high - norm.low), dtype=torch.float32)
    out = ((x - norm.low) * scale).clamp_(0.0, 1.0)
    if image.is_floating_point():
        out = torch.where(torch.isfinite(x), out, torch.zeros((), device=x.device))
    return out


def apply_mask_tensor(inputs: Mapping[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """``modalities.apply_mask`` on a batch of tensors: ``mask [B, 3]``, on the inputs' device."""
    out = {m: inputs[m] * mask[:, i].reshape(-1, 1, 1, 1) for i, m in enumerate(MODALITIES)}
    out["modality_mask"] = mask
    return out


def saliency_mono8_tensor(probability: torch.Tensor) -> torch.Tensor:
    """``runtime.segmenter.saliency_mono8`` on a tensor: ``round(255 * p)`` clipped, NaN -> 0, uint8."""
    scaled = torch.nan_to_num(probability.float(), nan=0.0) * 255.0
    return scaled.round_().clamp_(0, 255).to(torch.uint8)
