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


def _shared(convs: tuple[nn.Conv2d, ...], x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The 1x1 ``convs`` (weights shared by every modality) on ``[B, M, C, H, W]`` as one operator:
    the modalities folded into the batch, the convolutions' weights stacked (constants in an
    exported graph), the result split back, one ``[B, M, C_out, H, W]`` per conv."""
    weight = torch.cat([c.weight for c in convs])
    bias = torch.cat([c.bias for c in convs])  # type: ignore[misc]
    out = nn.functional.conv2d(x.flatten(0, 1), weight, bias).unflatten(0, (x.shape[0], x.shape[1]))
    return out.split([c.out_channels for c in convs], dim=2) if len(convs) > 1 else (out,)


def presence(mask: torch.Tensor) -> torch.Tensor:
    """``[B, M]`` -> ``[B, M, 1, 1, 1]``, the form every fusion stage uses (made once per forward)."""
    return mask if mask.ndim == 5 else _expand(mask, 5, 1)


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
        """``feats`` ``[B, M, C, H, W]`` -> the same shape; ``mask`` ``[B, M]`` or :func:`presence`'s."""
        present = presence(mask)
        q, k, v = _shared((self.q, self.k, self.v), feats)
        logits = (k.unsqueeze(2) * q.unsqueeze(1)).sum(3) * self.scale  # B, Mk, Mq, H, W
        attn = torch.softmax(masked_logits(logits, present, 1), dim=1)
        mixed = (attn.unsqueeze(3) * v.unsqueeze(2)).sum(1)  # B, Mq, C, H, W
        return (feats + _shared((self.out,), mixed)[0]) * present


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
        present = presence(mask)
        context = feats.sum(1, keepdim=True) / present.sum(1, keepdim=True).clamp(min=1.0)
        both = torch.cat([feats, context.expand_as(feats)], 2)
        logits, gate = _shared((self.score, self.gate), both)  # B, M, 1 | C, H, W
        gated = feats * torch.sigmoid(gate)
        weights = torch.softmax(masked_logits(logits, present, 1), dim=1)
        return (weights * gated).sum(1)


class StageFusion(nn.Module):
    """Attention exchange between branches (where ``attention``), then self-guided weighting into
    one map. Without the exchange, absent branches are still zeroed for the next stage."""

    def __init__(self, channels: int, dim: int, *, attention: bool = True) -> None:
        super().__init__()
        self.attention = CrossModalAttention(channels, dim) if attention else None
        self.weighting = SelfGuidedWeighting(channels)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats`` ``[B, M, C, H, W]`` -> (the exchanged features, same shape; the fused map)."""
        mask = presence(mask)
        feats = self.attention(feats, mask) if self.attention is not None else feats * mask
        return feats, self.weighting(feats, mask)
