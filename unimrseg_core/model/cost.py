"""What a network costs, counted the same way for every architecture: parameters and
multiply-accumulates of one forward pass at a given input size (batch 1)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from unimrseg_core.modalities import MODALITIES, MODALITY_CHANNELS


def model_cost(net: torch.nn.Module, size: tuple[int, int]) -> dict[str, Any]:
    """``{"params", "gmacs"}`` of ``net`` on one frame of ``size`` with every modality present.

    MACs are torch's FLOP counter's count halved (it counts convolutions and matrix products,
    groups included, as 2 FLOPs per MAC); elementwise operators are not counted, as usual.
    """
    h, w = size
    inputs = [torch.zeros(1, MODALITY_CHANNELS[m], h, w) for m in MODALITIES]
    inputs.append(torch.ones(1, len(MODALITIES)))
    was_training = net.training
    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(*inputs)
    net.train(was_training)
    return {
        "params": int(sum(p.numel() for p in net.parameters())),
        "gmacs": round(counter.get_total_flops() / 2e9, 4),
    }
