"""What one optimisation step computes, per phase. Each returns (total loss, named parts for the log).

``TrainNet`` wraps the network and the training-only projection head behind one
``forward`` so DDP sees every parameter use. Phases:

- ``stage1`` (input level): reconstruct the complete inputs from hybrid-shuffle-masked ones.
- ``stage2`` (feature level): supervised losses on a complete and an incomplete view of
  each scene, plus NT-Xent between their pooled multi-level fused features.
- ``stage3`` (output level, encoder frozen): supervised losses, plus prediction and
  feature consistency of the incomplete view to the complete-input teacher; the
  incomplete view cycles through all 7 combinations across the batch.
- ``supervised`` (baselines): supervised losses on complete inputs (``complete-only``)
  or on a random combination per sample (``modality-dropout``).

Every damaged view (stage 1's masked input, the incomplete view, the baselines' input) also
gets sensor faults with ``losses.fault_prob`` (``fault_damage``), the same for every method.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from unimrseg_core.data.tensor_ops import apply_mask_tensor
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.model.network import UniMRSegNet
from unimrseg_core.train import losses, masking
from unimrseg_core.train.config import TrainConfig
from unimrseg_core.train.fault_damage import fault_damage

Batch = dict[str, torch.Tensor]
StepFn = Callable[[nn.Module, Batch, TrainConfig, torch.Generator], tuple[torch.Tensor, dict]]
INPUT_KEYS = (*MODALITIES, "modality_mask")


class TrainNet(nn.Module):
    def __init__(self, net: UniMRSegNet, projection_dim: int = 64) -> None:
        super().__init__()
        self.net = net
        width = sum(net.cfg.widths)
        self.projection = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, projection_dim)
        )

    def forward(self, inputs: Batch, with_recon: bool = False, with_projection: bool = False) -> dict:
        out = self.net.run(*(inputs[k] for k in INPUT_KEYS), with_recon=with_recon)
        if with_projection:
            pooled = torch.cat([f.mean((2, 3)) for f in out["fused"]], 1)
            out["projection"] = self.projection(pooled)
        return out


def _inputs(batch: Batch) -> Batch:
    return {k: batch[k] for k in INPUT_KEYS}


def _concat(a: Batch, b: Batch) -> Batch:
    return {k: torch.cat([a[k], b[k]]) for k in a}


def _supervised(out: dict, batch: Batch, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Segmentation and saliency losses, each over the samples with that ground truth (a sample
    without semantic labels is all IGNORE_INDEX; ``has_saliency`` says which have saliency)."""
    seg = losses.segmentation(out["seg_logits"], batch["label"], cfg.losses.dice)
    sal = losses.saliency(out["saliency_logits"], batch["saliency"], batch.get("has_saliency"))
    return seg, sal


def _complete(batch: Batch) -> Batch:
    """Every modality the sample has (its ``modality_mask``: all three for the procedural world)."""
    inputs = _inputs(batch)
    return apply_mask_tensor(inputs, inputs["modality_mask"])


def stage1(
    model: nn.Module, batch: Batch, cfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, dict]:
    complete = _complete(batch)
    lc = cfg.losses
    damaged = masking.hybrid_shuffled_masking(complete, lc.drop_prob, lc.patch_ratio, lc.patch, gen)
    damaged = fault_damage(damaged, lc.fault_prob, gen)
    out = model(damaged, with_recon=True)
    loss = losses.reconstruction(out["recon"], complete, lc.ssim, complete["modality_mask"])
    return loss, {"recon": loss.detach()}


def _two_views(batch: Batch, cfg: TrainConfig, gen: torch.Generator) -> tuple[Batch, Batch, Batch, int]:
    """Complete inputs (what each sample has), the same scenes in cycled combinations of those
    and with sensor faults (``losses.fault_prob``), targets for both, batch size."""
    complete = _complete(batch)
    b = complete["rgb"].shape[0]
    cycled = masking.cycled_combinations(b, gen, complete["rgb"].device)
    incomplete = apply_mask_tensor(complete, masking.within(cycled, complete["modality_mask"]))
    incomplete = fault_damage(incomplete, cfg.losses.fault_prob, gen)
    both = {k: torch.cat([batch[k], batch[k]]) for k in ("label", "saliency", "has_saliency") if k in batch}
    return complete, incomplete, both, b


def stage2(
    model: nn.Module, batch: Batch, cfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, dict]:
    complete, incomplete, both, b = _two_views(batch, cfg, gen)
    out = model(_concat(complete, incomplete), with_projection=True)
    seg, sal = _supervised(out, both, cfg)
    z = out["projection"]
    con = losses.nt_xent(z[b:], z[:b], cfg.losses.temperature)
    loss = seg + cfg.losses.saliency * sal + cfg.losses.contrastive * con
    return loss, {"seg": seg.detach(), "sal": sal.detach(), "contrastive": con.detach()}


def stage3(
    model: nn.Module, batch: Batch, cfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, dict]:
    complete, incomplete, both, b = _two_views(batch, cfg, gen)
    out = model(_concat(complete, incomplete))
    seg, sal = _supervised(out, both, cfg)
    teacher_seg, student_seg = out["seg_logits"][:b].detach(), out["seg_logits"][b:]
    teacher_sal, student_sal = out["saliency_logits"][:b].detach(), out["saliency_logits"][b:]
    pred = losses.prediction_consistency(student_seg, student_sal, teacher_seg, teacher_sal)
    feat = losses.feature_consistency(
        [f[b:] for f in out["adapted"]], [f[:b].detach() for f in out["adapted"]]
    )
    lc = cfg.losses
    loss = seg + lc.saliency * sal + lc.prediction_consistency * pred + lc.feature_consistency * feat
    return loss, {
        "seg": seg.detach(),
        "sal": sal.detach(),
        "pred_cons": pred.detach(),
        "feat_cons": feat.detach(),
    }


def supervised(
    model: nn.Module, batch: Batch, cfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, dict]:
    inputs = _complete(batch)
    if cfg.method == "modality-dropout":
        b = inputs["rgb"].shape[0]
        drawn = masking.random_combinations(b, gen, inputs["rgb"].device)
        inputs = apply_mask_tensor(inputs, masking.within(drawn, inputs["modality_mask"]))
    out = model(fault_damage(inputs, cfg.losses.fault_prob, gen))
    seg, sal = _supervised(out, batch, cfg)
    return seg + cfg.losses.saliency * sal, {"seg": seg.detach(), "sal": sal.detach()}


STEPS: dict[str, StepFn] = {"stage1": stage1, "stage2": stage2, "stage3": stage3, "supervised": supervised}
