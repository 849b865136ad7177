"""Equal encoders for every modality (EQUISeg's equal encoding), in three layouts.

No branch is wider or deeper than another, so no modality is privileged by capacity;
the fusion decides, per pixel, how much each one counts.

- ``GroupedEncoder`` (``encoder: grouped``): the modalities stacked on channels and every
  layer one grouped convolution (``groups`` = number of modalities, or depthwise), so the
  three branches are one operator per layer instead of three: a third of the graph's nodes,
  larger kernels for the runtime. Each group sees only its own modality's channels, so the
  branches stay separate and equal. Inputs are brought to 3 channels each (depth and
  thermal repeated), the same stem for all.
- ``SharedEncoder`` (``encoder: shared``): one set of weights for every modality, the
  modalities folded into the batch (plain and depthwise convolutions, which CPU runtimes run
  fastest, a third of the nodes), each modality told apart by its own per-channel scale and
  shift after every stage (:class:`ModalityAffine`). Equal by construction.
- ``ModalityEncoder`` (``encoder: separate``): one chain of convolutions per modality, the
  layout of the models trained before the grouped encoder.

Stages are run one at a time so the fusion can feed back between them.
"""

from __future__ import annotations

import torch
from torch import nn

from unimrseg_core.modalities import MODALITIES
from unimrseg_core.model.config import ModelConfig
from unimrseg_core.model.layers import ConvBNAct, SeparableBlock

STEM_CHANNELS = 3
"""Input channels per modality of the grouped encoder (rgb's; one-channel images are repeated)."""


class EncoderStage(nn.Module):
    """Strided downsampling followed by residual separable blocks, for ``groups`` branches at once
    (channels are ``groups`` x per-branch; 1 for one modality)."""

    def __init__(self, cin: int, cout: int, depth: int, groups: int = 1) -> None:
        super().__init__()
        g = groups
        self.down = nn.Sequential(
            ConvBNAct(g * cin, g * cin, 3, stride=2, groups=g * cin)
            if cin > 4
            else ConvBNAct(g * cin, g * cout, 3, stride=2, groups=g),
            ConvBNAct(g * cin, g * cout, 1, groups=g) if cin > 4 else nn.Identity(),
        )
        self.blocks = nn.Sequential(*(SeparableBlock(g * cout, groups=g) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.down(x))


class ModalityEncoder(nn.Module):
    """One modality's four stages at strides 2, 4, 8, 16."""

    def __init__(self, in_channels: int, cfg: ModelConfig) -> None:
        super().__init__()
        chans = (in_channels, *cfg.widths)
        self.stages = nn.ModuleList(
            EncoderStage(chans[i], chans[i + 1], cfg.depths[i]) for i in range(len(cfg.widths))
        )


class GroupedEncoder(nn.Module):
    """Every modality's four stages as one grouped network: ``[B, M*3, H, W]`` in, ``[B, M*w, ...]``
    per stage out, modality-major channels (``stack_inputs``, ``split``)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        m = len(MODALITIES)
        chans = (STEM_CHANNELS, *cfg.widths)
        self.stages = nn.ModuleList(
            EncoderStage(chans[i], chans[i + 1], cfg.depths[i], groups=m) for i in range(len(cfg.widths))
        )

    @staticmethod
    def stack_inputs(images: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """``[B, M*3, H, W]``: each modality's image brought to 3 channels, in MODALITIES order, an
        absent one (``mask [B, M]`` 0) replaced by zeros, whatever it holds (NaN too)."""
        x = torch.cat(
            [i if i.shape[1] == STEM_CHANNELS else i.expand(-1, STEM_CHANNELS, -1, -1) for i in images], 1
        )
        present = mask.repeat_interleave(STEM_CHANNELS, 1)[:, :, None, None] > 0.5
        return torch.where(present, x, torch.zeros_like(x))

    @staticmethod
    def split(x: torch.Tensor) -> torch.Tensor:
        """``[B, M*C, H, W]`` -> ``[B, M, C, H, W]`` (no copy)."""
        return x.unflatten(1, (len(MODALITIES), -1))


class ModalityAffine(nn.Module):
    """A per-modality, per-channel scale and shift on ``[B, M, C, H, W]`` (identity at start)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        m = len(MODALITIES)
        self.scale = nn.Parameter(torch.ones(m, channels, 1, 1))
        self.shift = nn.Parameter(torch.zeros(m, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class SharedEncoder(nn.Module):
    """Every modality through the same four stages, folded into the batch: ``[B*M, 3, H, W]`` in,
    ``[B, M, w, ...]`` per stage out (:meth:`stage`); inputs as :meth:`GroupedEncoder.stack_inputs`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        chans = (STEM_CHANNELS, *cfg.widths)
        self.stages = nn.ModuleList(
            EncoderStage(chans[i], chans[i + 1], cfg.depths[i]) for i in range(len(cfg.widths))
        )
        self.affines = nn.ModuleList(ModalityAffine(w) for w in cfg.widths)

    def stage(self, s: int, x: torch.Tensor) -> torch.Tensor:
        """Stage ``s`` on ``[B, M, C, H, W]`` -> ``[B, M, C', H', W']``."""
        out = self.stages[s](x.flatten(0, 1))
        return self.affines[s](out.unflatten(0, (x.shape[0], x.shape[1])))
