"""One encoder per modality, all the same shape (EQUISeg's equal encoding).

No branch is wider or deeper than another, so no modality is privileged by
capacity; the fusion decides, per pixel, how much each one counts.
"""

from __future__ import annotations

import torch
from torch import nn

from unimrseg_core.model.config import ModelConfig
from unimrseg_core.model.layers import ConvBNAct, SeparableBlock


class EncoderStage(nn.Module):
    """Strided downsampling followed by residual separable blocks."""

    def __init__(self, cin: int, cout: int, depth: int) -> None:
        super().__init__()
        self.down = nn.Sequential(
            ConvBNAct(cin, cin, 3, stride=2, groups=cin) if cin > 4 else ConvBNAct(cin, cout, 3, stride=2),
            ConvBNAct(cin, cout, 1) if cin > 4 else nn.Identity(),
        )
        self.blocks = nn.Sequential(*(SeparableBlock(cout) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.down(x))


class ModalityEncoder(nn.Module):
    """Four stages at strides 2, 4, 8, 16; stages are run one at a time so fusion can feed back."""

    def __init__(self, in_channels: int, cfg: ModelConfig) -> None:
        super().__init__()
        chans = (in_channels, *cfg.widths)
        self.stages = nn.ModuleList(
            EncoderStage(chans[i], chans[i + 1], cfg.depths[i]) for i in range(len(cfg.widths))
        )
