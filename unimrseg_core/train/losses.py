"""Losses of the three stages. All take and return torch tensors; reductions are means."""

from __future__ import annotations

import torch
from torch.nn import functional as F  # noqa: N812 (the universal torch idiom)
from torchmetrics.functional.image import structural_similarity_index_measure

from unimrseg_core.modalities import IGNORE_INDEX, MODALITIES, MODALITY_CHANNELS


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``weights`` (same shape, 0/1) are set; 0 when none is (no NaN, no
    device-to-host read)."""
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def channel_presence(presence: torch.Tensor) -> torch.Tensor:
    """``[B, 3]`` modality presence -> ``[B, C]`` per input channel (rgb's three, depth, thermal)."""
    return torch.cat(
        [presence[:, i : i + 1].expand(-1, MODALITY_CHANNELS[m]) for i, m in enumerate(MODALITIES)], 1
    )


def reconstruction(
    pred: torch.Tensor,
    inputs: dict[str, torch.Tensor],
    ssim_weight: float,
    presence: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 + ``ssim_weight`` * (1 - SSIM) between the predicted and the complete normalised inputs,
    over the channels of the modalities each sample has (``presence [B, 3]``; default all): a
    sample without thermal is never asked to reconstruct the zeros standing in for it."""
    target = torch.cat([inputs[m] for m in MODALITIES], 1)
    b, c = target.shape[:2]
    weights = channel_presence(presence) if presence is not None else target.new_ones(b, c)
    l1 = _masked_mean((pred - target).abs().mean((2, 3)), weights)
    if ssim_weight == 0:
        return l1
    flat = (b * c, 1, *target.shape[2:])  # SSIM per image channel: [B * C]
    ssim = structural_similarity_index_measure(
        pred.reshape(flat), target.reshape(flat), data_range=1.0, kernel_size=7, reduction="none"
    )
    return l1 + ssim_weight * (1.0 - _masked_mean(ssim.reshape(b, c), weights))


def segmentation(logits: torch.Tensor, label: torch.Tensor, dice_weight: float) -> torch.Tensor:
    """Cross-entropy + soft Dice over classes present in the batch, ignoring IGNORE_INDEX pixels
    (all of a sample without semantic ground truth); 0 for a batch without any."""
    valid_pixels = (label != IGNORE_INDEX).sum().clamp(min=1)
    ce = F.cross_entropy(logits, label, ignore_index=IGNORE_INDEX, reduction="sum") / valid_pixels
    if dice_weight == 0:
        return ce
    valid = (label != IGNORE_INDEX).unsqueeze(1)
    prob = logits.softmax(1) * valid
    onehot = F.one_hot(label.clamp(max=logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2) * valid
    inter = (prob * onehot).sum((0, 2, 3))
    total = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = (onehot.sum((0, 2, 3)) > 0).to(logits.dtype)
    dice = 1.0 - (2 * inter + 1.0) / (total + 1.0)
    # a masked mean, not dice[present]: boolean indexing would stall the GPU on a device-to-host copy
    return ce + dice_weight * (dice * present).sum() / present.sum().clamp(min=1.0)


def saliency(logits: torch.Tensor, target: torch.Tensor, has: torch.Tensor | None = None) -> torch.Tensor:
    """BCE + soft IoU, the usual pair for salient-object detection, over the samples with saliency
    ground truth (``has [B]``; default all); 0 for a batch without any."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean((1, 2, 3))
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum((1, 2, 3))
    union = (prob + target - prob * target).sum((1, 2, 3))
    iou = 1.0 - (inter + 1.0) / (union + 1.0)
    weights = has.to(bce.dtype) if has is not None else torch.ones_like(bce)
    return _masked_mean(bce + iou, weights)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR): row i of z1 and row i of z2 are a positive pair, all other 2N-2 rows negatives."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.arange(2 * n, device=z.device).roll(n)
    return F.cross_entropy(sim, target)


def prediction_consistency(
    seg_logits: torch.Tensor,
    sal_logits: torch.Tensor,
    teacher_seg: torch.Tensor,
    teacher_sal: torch.Tensor,
) -> torch.Tensor:
    """KL to the complete-input teacher's class distribution + BCE to its saliency probability."""
    kl = F.kl_div(seg_logits.log_softmax(1), teacher_seg.softmax(1), reduction="none").sum(1).mean()
    bce = F.binary_cross_entropy_with_logits(sal_logits, torch.sigmoid(teacher_sal))
    return kl + bce


def feature_consistency(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared distance between multi-level features, per level then averaged."""
    return torch.stack([F.mse_loss(s, t) for s, t in zip(student, teacher, strict=True)]).mean()
