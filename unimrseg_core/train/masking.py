"""Input damage for training: whole-modality dropout and UniMRSeg's hybrid shuffled masking.

Inputs are dicts of normalised tensors (``rgb``, ``depth``, ``thermal``,
``modality_mask``) as in ``data.tensors``; masks are applied with
``data.tensor_ops.apply_mask_tensor``, the torch mirror of ``modalities.apply_mask``.
Every function returns new tensors and draws from the given ``torch.Generator``, so a
step's damage is reproducible.

Devices: the draws are made on the step's CPU generator and the small results (a
``[B, 3]`` mask, the ``[B, 3, H/16, W/16]`` patch cells) are moved to ``device``
once (``devices.to_device``: pinned, non-blocking), where they are expanded and
applied. So a step damages its batch the same way on every device and whatever
CUDA's generator does, and no image-sized tensor is ever made on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch

from unimrseg_core.data.tensor_ops import apply_mask_tensor
from unimrseg_core.modalities import COMBINATIONS, MODALITIES
from unimrseg_core.train.devices import to_device

Batch = dict[str, torch.Tensor]

COMBINATION_MASKS = torch.from_numpy(np.stack([c.mask for c in COMBINATIONS]).astype(np.float32))
"""``[7, 3]``: the masks of ``modalities.COMBINATIONS``, in that order."""


def within(drawn: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """``[B, 3]`` drawn masks restricted to the modalities each sample has (``presence``); a row
    left empty (it drew only what the sample lacks) keeps all the sample has. Made on the device,
    without reading anything back; with every modality present it is ``drawn`` itself."""
    kept = drawn * presence
    return torch.where(kept.sum(1, keepdim=True) > 0, kept, presence)


def random_combinations(
    batch_size: int, gen: torch.Generator, device: torch.device | None = None
) -> torch.Tensor:
    """``[B, 3]`` masks, each row one of the 7 non-empty combinations, uniformly."""
    rows = torch.randint(len(COMBINATIONS), (batch_size,), generator=gen)
    return to_device(COMBINATION_MASKS[rows], device)


def cycled_combinations(
    batch_size: int, gen: torch.Generator, device: torch.device | None = None
) -> torch.Tensor:
    """``[B, 3]``: all 7 combinations in turn from a random offset, so every batch covers them evenly."""
    start = int(torch.randint(len(COMBINATIONS), (1,), generator=gen))
    return to_device(COMBINATION_MASKS[(torch.arange(batch_size) + start) % len(COMBINATIONS)], device)


def keep_k_masks(
    batch_size: int, drop_prob: float, gen: torch.Generator, device: torch.device | None = None
) -> torch.Tensor:
    """Stage 1's modality drop: with ``drop_prob`` keep k ~ U{1..3} random modalities, else all."""
    m = len(MODALITIES)
    mask = torch.ones(batch_size, m)
    drop = torch.rand(batch_size, generator=gen) < drop_prob
    for b in torch.nonzero(drop).flatten().tolist():
        k = int(torch.randint(1, m + 1, (1,), generator=gen))
        keep = torch.randperm(m, generator=gen)[:k]
        mask[b] = 0.0
        mask[b, keep] = 1.0
    return to_device(mask, device)


def patch_masks(
    batch_size: int,
    height: int,
    width: int,
    ratio: float,
    patch: int,
    gen: torch.Generator,
    device: torch.device | None = None,
) -> torch.Tensor:
    """``[B, M, H, W]`` keep-masks (1 keep, 0 masked) with ``ratio`` of patch cells masked per modality.

    The masks of one sample are drawn for M modalities and then shuffled across them
    (hybrid *shuffled* masking): which modality loses which region is random, so no
    modality can learn that its own holes are always in the same places relative to
    the others'. Cells are drawn on the CPU and expanded to pixels on ``device``.
    """
    m = len(MODALITIES)
    gh, gw = -(-height // patch), -(-width // patch)
    cells = (torch.rand(batch_size, m, gh, gw, generator=gen) >= ratio).float()
    order = torch.argsort(torch.rand(batch_size, m, generator=gen), dim=1)
    cells = to_device(torch.gather(cells, 1, order[:, :, None, None].expand_as(cells)), device)
    full = cells.repeat_interleave(patch, 2).repeat_interleave(patch, 3)
    return full[:, :, :height, :width]


def hybrid_shuffled_masking(
    inputs: Batch, drop_prob: float, ratio: float, patch: int, gen: torch.Generator
) -> Batch:
    """Stage 1 input: modalities dropped (keep k ~ U{1..3} with ``drop_prob``, among those the
    sample has: ``inputs["modality_mask"]``), then shuffled patch masks."""
    b, _, h, w = inputs["rgb"].shape
    device = inputs["rgb"].device
    damaged = apply_mask_tensor(
        inputs, within(keep_k_masks(b, drop_prob, gen, device), inputs["modality_mask"])
    )
    keep = patch_masks(b, h, w, ratio, patch, gen, device)
    for i, m in enumerate(MODALITIES):
        damaged[m] = damaged[m] * keep[:, i : i + 1]
    return damaged
