"""UniMRSeg's reverse-attention adapter: re-examine what the fused features under-attend.

``a = sigmoid(mean over channels of F)`` marks regions the features already respond
to; ``(1 - a) * F`` keeps the rest, a light depthwise-separable conv turns it into
a correction, added back. When a modality is missing, the regions it would have
lit up are exactly the low-``a`` ones, which is where the correction is needed.
Always on: the network does not need to be told whether the input is complete.
"""

from __future__ import annotations

import torch
from torch import nn

from unimrseg_core.model.layers import ConvBNAct


class ReverseAttentionAdapter(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.correct = nn.Sequential(
            ConvBNAct(channels, channels, 3, groups=channels),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.sigmoid(x.mean(1, keepdim=True))
        return x + self.correct((1.0 - a) * x)
