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

from unimrseg_core.modalities import MODALITIES, MODALITY_CHANNELS
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


def _stacked_inputs(images: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """``[B, M, 3, H, W]``: each modality's image brought to 3 channels (one-channel images
    repeated), in MODALITIES order, an absent one (``mask [B, M]`` 0) replaced by zeros, whatever
    it holds (NaN too)."""
    x = torch.cat(
        [i if i.shape[1] == STEM_CHANNELS else i.expand(-1, STEM_CHANNELS, -1, -1) for i in images], 1
    ).unflatten(1, (len(MODALITIES), STEM_CHANNELS))
    return torch.where(mask[:, :, None, None, None] > 0.5, x, 0.0)  # a scalar: no zeros tensor


class ModalityEncoder(nn.Module):
    """One modality's four stages at strides 2, 4, 8, 16."""

    def __init__(self, in_channels: int, cfg: ModelConfig) -> None:
        super().__init__()
        chans = (in_channels, *cfg.widths)
        self.stages = nn.ModuleList(
            EncoderStage(chans[i], chans[i + 1], cfg.depths[i]) for i in range(len(cfg.widths))
        )


# Every layout has the same three methods, so the network runs one loop for all of them:
#   inputs(images, mask) -> the first stage's input (absent modalities zeroed)
#   stage(s, x) -> stage s's features, [B, M, C, H, W]; its x is inputs' or the previous
#                  stage's features after the fusion
#   branch_tensors(i) -> (tensor, slice of its first dimension) of modality i's branch


class SeparateEncoders(nn.ModuleDict):
    """``encoder: separate``: one :class:`ModalityEncoder` per modality (state-dict names
    ``encoders.<modality>.*``, as the checkpoints made before the other layouts)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__({m: ModalityEncoder(MODALITY_CHANNELS[m], cfg) for m in MODALITIES})

    def inputs(self, images: list[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        return [torch.where(mask[:, i].reshape(-1, 1, 1, 1) > 0.5, x, 0.0) for i, x in enumerate(images)]

    def stage(self, s: int, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        branches = x if isinstance(x, list) else x.unbind(1)
        return torch.stack([self[m].stages[s](b) for m, b in zip(MODALITIES, branches, strict=True)], 1)

    def branch_tensors(self, i: int) -> list[tuple[torch.Tensor, slice]]:
        module = self[MODALITIES[i]]
        return [(t, slice(None)) for t in (*module.parameters(), *module.buffers()) if t.ndim]


class GroupedEncoder(nn.Module):
    """``encoder: grouped``: every modality's four stages as one grouped network on the modalities
    stacked on channels (modality-major), so each layer is one operator for all of them."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        m = len(MODALITIES)
        chans = (STEM_CHANNELS, *cfg.widths)
        self.stages = nn.ModuleList(
            EncoderStage(chans[i], chans[i + 1], cfg.depths[i], groups=m) for i in range(len(cfg.widths))
        )

    def inputs(self, images: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return _stacked_inputs(images, mask)

    def stage(self, s: int, x: torch.Tensor) -> torch.Tensor:
        return self.stages[s](x.flatten(1, 2)).unflatten(1, (len(MODALITIES), -1))

    def branch_tensors(self, i: int) -> list[tuple[torch.Tensor, slice]]:
        """The modality's block of every tensor's output channels (its layers are modality-major)."""
        m = len(MODALITIES)
        tensors = (*self.parameters(), *self.buffers())
        return [(t, slice(i * (n := t.shape[0] // m), (i + 1) * n)) for t in tensors if t.ndim]


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
    """``encoder: shared``: every modality through the same four stages, folded into the batch,
    then its own :class:`ModalityAffine` per stage."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        chans = (STEM_CHANNELS, *cfg.widths)
        self.stages = nn.ModuleList(
            EncoderStage(chans[i], chans[i + 1], cfg.depths[i]) for i in range(len(cfg.widths))
        )
        self.affines = nn.ModuleList(ModalityAffine(w) for w in cfg.widths)

    def inputs(self, images: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return _stacked_inputs(images, mask)

    def stage(self, s: int, x: torch.Tensor) -> torch.Tensor:
        out = self.stages[s](x.flatten(0, 1))
        return self.affines[s](out.unflatten(0, (x.shape[0], x.shape[1])))

    def branch_tensors(self, i: int) -> list[tuple[torch.Tensor, slice]]:
        """The weights are every modality's: its own are its scale and shift."""
        return [(t, slice(i, i + 1)) for t in self.affines.parameters()]


ENCODER_LAYOUTS: dict[str, type[nn.Module]] = {
    "grouped": GroupedEncoder,
    "shared": SharedEncoder,
    "separate": SeparateEncoders,
}
"""``ModelConfig.encoder`` -> its class (every one built from the config alone)."""
