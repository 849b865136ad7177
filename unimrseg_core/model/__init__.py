"""The UniMRSeg network: one model for every combination of RGB, depth and thermal.

Modules, in data-flow order:

- ``encoder``: one light 4-stage encoder per modality, all the same width (EQUISeg's
  equal encoding: no privileged RGB branch).
- ``fusion``: at each stage, masked cross-modal attention (each present modality
  attends over the present ones only) and self-guided weighting (each modality sets
  its own contribution by comparing itself with the others) into one fused map.
- ``adapter``: UniMRSeg's reverse-attention adapter on the fused maps, always on.
- ``decoder``: top-down decoder with semantic, saliency and (training-only)
  reconstruction heads, all from one pass.
- ``network``: ``UniMRSegNet`` ties them together behind the I/O contract of
  ``modalities`` (``rgb``, ``depth``, ``thermal``, ``modality_mask`` ->
  ``seg_logits``, ``saliency``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unimrseg_core.lazy import lazy_exports
from unimrseg_core.model.config import ModelConfig

if TYPE_CHECKING:
    from unimrseg_core.model.network import UniMRSegNet

__all__ = ["ModelConfig", "UniMRSegNet"]


# ``UniMRSegNet`` is imported on first use: reading a config (CLI parsers) needs no torch
__getattr__, __dir__ = lazy_exports(__name__, {"UniMRSegNet": "network"}, globals(), __all__)
