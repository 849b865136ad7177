"""Top-down decoder with every head computed in one pass from the same features."""

from __future__ import annotations

import torch
from torch import nn

from unimrseg_core.modalities import MODALITY_CHANNELS
from unimrseg_core.model.config import ModelConfig
from unimrseg_core.model.layers import ConvBNAct, SeparableBlock, upsample2

RECON_CHANNELS = sum(MODALITY_CHANNELS.values())  # rgb + depth + thermal, normalised


class Decoder(nn.Module):
    """Lateral 1x1 projections, coarse-to-fine sum and refine, at stride 2; heads upsample x2."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.decoder_width
        self.lateral = nn.ModuleList(ConvBNAct(w, d, 1) for w in cfg.widths)
        self.refine = nn.ModuleList(SeparableBlock(d) for _ in cfg.widths[:-1])
        self.seg = nn.Sequential(SeparableBlock(d), nn.Conv2d(d, cfg.num_classes, 1))
        self.sal = nn.Sequential(SeparableBlock(d), nn.Conv2d(d, 1, 1))
        self.recon = nn.Sequential(SeparableBlock(d), nn.Conv2d(d, RECON_CHANNELS, 1))

    def features(self, fused: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](fused[-1])
        for i in range(len(fused) - 2, -1, -1):
            x = self.refine[i](upsample2(x) + self.lateral[i](fused[i]))
        return x

    def forward(self, fused: list[torch.Tensor], with_recon: bool = False) -> dict[str, torch.Tensor]:
        x = self.features(fused)
        out = {"seg_logits": upsample2(self.seg(x)), "saliency_logits": upsample2(self.sal(x))}
        if with_recon:
            out["recon"] = torch.sigmoid(upsample2(self.recon(x)))
        return out
