"""Training's sensor faults (``train.fault_damage``): one fault on one modality of a sample,
reproducible, in range, and each kind doing what the fault model says."""

from __future__ import annotations

import pytest
import torch

from unimrseg_core.modalities import MODALITIES, NORMALIZATION
from unimrseg_core.train.fault_damage import EFFECTS, fault_damage, kinds_for

B, H, W = 32, 48, 64


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {m: torch.rand(B, 3 if m == "rgb" else 1, H, W, generator=g) * 0.8 + 0.1 for m in MODALITIES}
    out["depth"][:, :, :4] = 0.0  # no return along the top rows
    out["modality_mask"] = torch.ones(B, 3)
    return out


def changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[B, M]``: which modality of which sample differs."""
    return torch.stack([(a[m] != b[m]).flatten(1).any(1) for m in MODALITIES], 1)


def test_each_sample_gets_at_most_one_fault_reproducibly_and_in_range():
    clean = batch()
    damaged = fault_damage(clean, 1.0, torch.Generator().manual_seed(3))
    again = fault_damage(clean, 1.0, torch.Generator().manual_seed(3))
    hits = changed(clean, damaged)
    assert hits.sum(1).max() == 1
    assert hits.sum() >= B * 3 // 4
    assert all(torch.equal(damaged[m], again[m]) for m in MODALITIES)
    assert all(float(damaged[m].min()) >= 0.0 and float(damaged[m].max()) <= 1.0 for m in MODALITIES)
    assert torch.equal(damaged["modality_mask"], clean["modality_mask"])
    assert torch.equal(clean["rgb"], batch()["rgb"])  # the input is not modified


def test_probability_zero_changes_nothing():
    clean = batch()
    assert not changed(clean, fault_damage(clean, 0.0, torch.Generator().manual_seed(0))).any()


@pytest.mark.parametrize(("kind", "modality"), [(k, m) for m in MODALITIES for k in kinds_for(m)])
def test_every_kind_does_what_it_says(kind: str, modality: str):
    x = batch()[modality][:4]
    s = torch.full((4,), 0.5)
    out = EFFECTS[kind](modality, x, s, torch.Generator().manual_seed(1), x.roll(1, 0))
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    if modality == "depth" and kind in ("noise", "washout"):
        assert torch.equal(out[x == 0], x[x == 0])  # no return stays no return
    if kind in ("depth_holes", "saturate"):
        frac = (out != x).float().mean().item()
        assert 0.3 < frac < 0.7  # blobs over about half the image
    if kind == "blackout":
        norm = NORMALIZATION[modality]
        expected = (293.15 - norm.low) / (norm.high - norm.low) if modality == "thermal" else 0.0
        assert torch.allclose(out, torch.full_like(out, expected))
    if kind == "washout":
        assert out[x > 0].std() < 0.6 * x[x > 0].std()
