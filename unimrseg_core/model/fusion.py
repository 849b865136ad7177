"""Cross-modal fusion that only ever looks at the modalities marked present.

``mask`` is ``[B, M]`` (1 = present). Absent modalities are excluded by a large
negative logit before every softmax (not by zeros pretending to be data), and their
features are zeroed, so an absent input cannot change the output. Softmaxes
are over the M modalities of one pixel, which is cheap (M = 3) and exports to
plain elementwise ONNX ops. Features come stacked, ``[B, M, C, H, W]``; the 1x1
convolutions are shared by the modalities and run once on them folded into the batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_MASKED = 1.0e4  # exp(-1e4) is exactly 0 in float32 and float16, with no inf/NaN


def masked_logits(logits: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Push logits of absent modalities (``mask`` broadcast along ``dim``) to -1e4."""
    return logits + (mask - 1.0) * _MASKED


def _expand(mask: torch.Tensor, ndim: int, dim: int) -> torch.Tensor:
    """``[B, M]`` -> broadcastable shape with M at ``dim`` and singleton elsewhere."""
    shape = [1] * ndim
    shape[0], shape[dim] = mask.shape[0], mask.shape[1]
    return mask.reshape(shape)


def _shared(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``conv`` (weights shared by every modality) on ``[B, M, C, H, W]``: the modalities folded
    into the batch, so one operator serves them all."""
    return conv(x.flatten(0, 1)).unflatten(0, (x.shape[0], x.shape[1]))


class CrossModalAttention(nn.Module):
    """Per pixel, each modality queries every present modality and adds what it learns.

    Features of absent modalities come out zero, so the next encoder stage of an
    absent branch starts from nothing.
    """

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.q = nn.Conv2d(channels, dim, 1)
        self.k = nn.Conv2d(channels, dim, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``feats`` ``[B, M, C, H, W]`` -> the same shape."""
        q, k, v = _shared(self.q, feats), _shared(self.k, feats), _shared(self.v, feats)
        logits = (q.unsqueeze(2) * k.unsqueeze(1)).sum(3) * self.scale  # B, Mq, Mk, H, W
        attn = torch.softmax(masked_logits(logits, _expand(mask, 5, 2), 2), dim=2)
        mixed = (attn.unsqueeze(3) * v.unsqueeze(1)).sum(2)  # B, Mq, C, H, W
        return (feats + _shared(self.out, mixed)) * _expand(mask, 5, 1)


class SelfGuidedWeighting(nn.Module):
    """Each modality scores its own reliability against the mean of the present ones.

    The scores become per-pixel fusion weights through a softmax over present
    modalities (mutual guidance: a modality that disagrees with the others, or is
    noisy, lowers its own weight), and each modality also gates its channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.score = nn.Conv2d(2 * channels, 1, 1)
        self.gate = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``feats`` ``[B, M, C, H, W]`` (absent ones zero) -> the fused ``[B, C, H, W]``."""
        present = _expand(mask, 5, 1)
        context = feats.sum(1, keepdim=True) / present.sum(1, keepdim=True).clamp(min=1.0)
        both = torch.cat([feats, context.expand_as(feats)], 2)
        logits = _shared(self.score, both)  # B, M, 1, H, W
        gated = feats * torch.sigmoid(_shared(self.gate, both))
        weights = torch.softmax(masked_logits(logits, present, 1), dim=1)
        return (weights * gated).sum(1)


class StageFusion(nn.Module):
    """Attention exchange between branches, then self-guided weighting into one map."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.attention = CrossModalAttention(channels, dim)
        self.weighting = SelfGuidedWeighting(channels)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats`` ``[B, M, C, H, W]`` -> (the exchanged features, same shape; the fused map)."""
        feats = self.attention(feats, mask)
        return feats, self.weighting(feats, mask)
