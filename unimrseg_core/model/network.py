"""``UniMRSegNet``: equal encoders, masked fusion per stage, adapter, decoder. One forward path.

Contract (see ``modalities`` and DESIGN.md): inputs ``rgb [B,3,H,W]``,
``depth [B,1,H,W]``, ``thermal [B,1,H,W]`` normalised to [0, 1], and
``modality_mask [B,3]`` (1 = present, at least one per row); outputs
``seg_logits [B,C,H,W]`` and ``saliency [B,1,H,W]`` (a probability). H and W must
be multiples of ``STRIDE``. Absent inputs are replaced by zeros inside the network
(even NaN), so their values cannot change the result.
"""

from __future__ import annotations

import torch
from torch import nn

from unimrseg_core.modalities import INPUT_NAMES, MODALITIES, OUTPUT_NAMES
from unimrseg_core.model.adapter import ReverseAttentionAdapter
from unimrseg_core.model.config import STRIDE, ModelConfig
from unimrseg_core.model.decoder import Decoder
from unimrseg_core.model.encoder import ENCODER_LAYOUTS
from unimrseg_core.model.fusion import StageFusion, presence

__all__ = ["CLASS_HEAD", "INPUT_NAMES", "OUTPUT_NAMES", "UniMRSegNet", "check_input_size"]

CLASS_HEAD = "decoder.seg.1."
"""State-dict prefix of the 1x1 convolution from decoder features to class logits: the one part
whose shape follows the class table, re-initialised when a model is fine-tuned onto another."""


class UniMRSegNet(nn.Module):
    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        encoder = ENCODER_LAYOUTS[self.cfg.encoder](self.cfg)
        if self.cfg.encoder == "separate":
            self.encoders = encoder  # the state-dict names of the checkpoints made before the others
        else:
            self.encoder = encoder
        self.fusions = nn.ModuleList(
            StageFusion(w, self.cfg.attention_dim, attention=s >= self.cfg.attention_from_stage)
            for s, w in enumerate(self.cfg.widths)
        )
        self.adapters = nn.ModuleList(ReverseAttentionAdapter(w) for w in self.cfg.widths)
        self.decoder = Decoder(self.cfg)

    @property
    def equal_encoder(self) -> nn.Module:
        """The encoder, whatever its layout (``model/encoder.py``)."""
        return self.encoders if self.cfg.encoder == "separate" else self.encoder

    def encoder_modules(self) -> list[nn.Module]:
        """Everything stage 3 freezes: the modalities' encoder branches and the fusion between them."""
        return [self.equal_encoder, self.fusions]

    def branch_tensors(self, modality: str) -> list[tuple[torch.Tensor, slice]]:
        """Every parameter and BatchNorm statistic of ``modality``'s encoder branch, as (tensor, the
        slice of its first dimension that is the branch's)."""
        return self.equal_encoder.branch_tensors(MODALITIES.index(modality))  # type: ignore[operator]

    def run(
        self,
        rgb: torch.Tensor,
        depth: torch.Tensor,
        thermal: torch.Tensor,
        modality_mask: torch.Tensor,
        with_recon: bool = False,
    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """All intermediate results training needs: ``fused`` (per stage, before the adapter),
        ``adapted`` (after it), head logits, and ``recon`` when asked."""
        mask = modality_mask.to(rgb.dtype)
        present = presence(mask)
        encoder = self.equal_encoder
        x = encoder.inputs([rgb, depth, thermal], mask)  # type: ignore[operator]
        fused: list[torch.Tensor] = []
        for s, fusion in enumerate(self.fusions):
            x, f = fusion(encoder.stage(s, x), present)  # type: ignore[operator]
            fused.append(f)
        adapted = [adapter(f) for adapter, f in zip(self.adapters, fused, strict=True)]
        out: dict[str, torch.Tensor | list[torch.Tensor]] = dict(self.decoder(adapted, with_recon))
        out["fused"], out["adapted"] = fused, adapted
        return out

    def forward(
        self, rgb: torch.Tensor, depth: torch.Tensor, thermal: torch.Tensor, modality_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.run(rgb, depth, thermal, modality_mask)
        return out["seg_logits"], torch.sigmoid(out["saliency_logits"])  # type: ignore[arg-type]


def check_input_size(height: int, width: int) -> None:
    if height % STRIDE or width % STRIDE or height <= 0 or width <= 0:
        raise ValueError(f"input size {height}x{width} must be positive multiples of {STRIDE}")
