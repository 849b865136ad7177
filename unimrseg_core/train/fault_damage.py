"""Sensor faults as training damage: the fault model's content kinds on normalised tensors.

The health monitor masks out what it detects, but a fault it does not catch (mild noise,
partial holes, a washout it cannot tell from a scene change, a frozen frame before the
third repeat) reaches the network. Training on them makes those cheap. Each sample, with
probability ``prob``, gets one fault on one modality, a kind that applies to it and a
strength drawn uniformly from :data:`STRENGTHS`:

- ``noise``: additive Gaussian, sigma a fraction of the normalised span (the fault model's
  ``noise``; 0.1 is the NM protocol's); depth keeps no-return pixels at 0;
- ``salt_pepper``: that fraction of pixels set to 0 or 1 (the NM protocol's other noise);
- ``depth_holes``: smooth blobs of depth set to 0 (no return) over that fraction;
- ``saturate``: blobs at the top of the range over that fraction (``fraction`` 1 = all);
- ``blackout``: the whole image black (rgb), invalid (depth), one flat temperature (thermal);
- ``washout``: contrast scaled by that factor around the image's mean (fog, glare, a
  thermal camera's gain collapse);
- ``stale``: another sample's image (a frozen driver while the robot moves: the content
  no longer matches the scene).

Draws: which samples, modality, kind and strength come from the step's CPU generator (so a
step is reproducible and nothing is read back from the device); image-sized randomness
(noise, blob fields) from a device generator seeded by it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import torch

from unimrseg_core.faults.model import KINDS
from unimrseg_core.modalities import MODALITIES, NORMALIZATION
from unimrseg_core.train.devices import to_device

Batch = dict[str, torch.Tensor]

STRENGTHS: Final[dict[str, tuple[float, float]]] = {
    "noise": (0.02, 0.25),  # sigma, fraction of the span
    "salt_pepper": (0.02, 0.2),  # fraction of pixels
    "depth_holes": (0.1, 0.8),  # fraction of the image
    "saturate": (0.1, 1.0),  # fraction of the image
    "blackout": (1.0, 1.0),
    "washout": (0.1, 0.5),  # remaining contrast
    "stale": (1.0, 1.0),
}
"""Every kind and the range its strength is drawn from (uniformly)."""

_ONLY: Final[dict[str, tuple[str, ...]]] = {"depth_holes": KINDS["depth_holes"].modalities}
"""Kinds that apply to some modalities only (the rest apply to all)."""

_THERMAL_BLACKOUT: Final = (
    float(next(p.default for p in KINDS["blackout"].params if p.name == "value_k"))  # type: ignore[arg-type]
    - NORMALIZATION["thermal"].low
) / (NORMALIZATION["thermal"].high - NORMALIZATION["thermal"].low)


def _blobs(
    n: int, h: int, w: int, fraction: torch.Tensor, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    """``[n, 1, h, w]`` bool: smooth blobs over about ``fraction`` (``[n]``) of each image, as
    ``faults.effects.blob_mask`` (a coarse random field, upsampled, cut at its quantile)."""
    cell = max(4, min(h, w) // 6)
    field = torch.rand(n, 1, h // cell + 2, w // cell + 2, generator=gen, device=device)
    flat = field.flatten(1).sort(1).values
    at = ((1.0 - fraction) * (flat.shape[1] - 1)).round().long().clamp(0, flat.shape[1] - 1)
    cut = flat.gather(1, at[:, None]).reshape(n, 1, 1, 1)
    smooth = torch.nn.functional.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
    return (smooth >= cut) | (fraction.reshape(n, 1, 1, 1) >= 1.0)


def _valid(modality: str, x: torch.Tensor) -> torch.Tensor:
    """Pixels a fault may change the value of: depth's returns (0 is no return), everything else."""
    return x > 0 if modality == "depth" else torch.ones_like(x, dtype=torch.bool)


def _noise(
    m: str, x: torch.Tensor, s: torch.Tensor, gen: torch.Generator, other: torch.Tensor
) -> torch.Tensor:
    noisy = x + s.reshape(-1, 1, 1, 1) * torch.randn(x.shape, generator=gen, device=x.device)
    return torch.where(_valid(m, x), noisy.clamp(0.0, 1.0), x)


def _salt_pepper(
    m: str, x: torch.Tensor, s: torch.Tensor, gen: torch.Generator, other: torch.Tensor
) -> torch.Tensor:
    u = torch.rand((x.shape[0], 1, *x.shape[2:]), generator=gen, device=x.device)
    p = s.reshape(-1, 1, 1, 1)
    return torch.where(u < 0.5 * p, torch.zeros_like(x), torch.where(u < p, torch.ones_like(x), x))


def _depth_holes(
    m: str, x: torch.Tensor, s: torch.Tensor, gen: torch.Generator, other: torch.Tensor
) -> torch.Tensor:
    return x * ~_blobs(x.shape[0], x.shape[2], x.shape[3], s, gen, x.device)


def _saturate(
    m: str, x: torch.Tensor, s: torch.Tensor, gen: torch.Generator, other: torch.Tensor
) -> torch.Tensor:
    return torch.where(_blobs(x.shape[0], x.shape[2], x.shape[3], s, gen, x.device), torch.ones_like(x), x)


def _blackout(
    m: str, x: torch.Tensor, s: torch.Tensor, gen: torch.Generator, other: torch.Tensor
) -> torch.Tensor:
    return torch.full_like(x, _THERMAL_BLACKOUT if m == "thermal" else 0.0)


def _washout(
    m: str, x: torch.Tensor, s: torch.Tensor, gen: torch.Generator, other: torch.Tensor
) -> torch.Tensor:
    valid = _valid(m, x)
    mean = (x * valid).sum((2, 3), keepdim=True) / valid.sum((2, 3), keepdim=True).clamp(min=1)
    return torch.where(valid, mean + (x - mean) * s.reshape(-1, 1, 1, 1), x)


def _stale(
    m: str, x: torch.Tensor, s: torch.Tensor, gen: torch.Generator, other: torch.Tensor
) -> torch.Tensor:
    return other


Effect = Callable[[str, torch.Tensor, torch.Tensor, torch.Generator | None, torch.Tensor], torch.Tensor]
EFFECTS: Final[dict[str, Effect]] = {
    "noise": _noise,
    "salt_pepper": _salt_pepper,
    "depth_holes": _depth_holes,
    "saturate": _saturate,
    "blackout": _blackout,
    "washout": _washout,
    "stale": _stale,
}


def kinds_for(modality: str) -> tuple[str, ...]:
    """The kinds that apply to ``modality``, in :data:`STRENGTHS` order."""
    return tuple(k for k in STRENGTHS if modality in _ONLY.get(k, MODALITIES))


def fault_damage(inputs: Batch, prob: float, gen: torch.Generator) -> Batch:
    """``inputs`` (normalised, as ``data.tensors``) with one fault on one modality of a sample, for
    each sample with probability ``prob``; new tensors, the mask unchanged (the monitor did not
    catch it). A modality the sample lacks stays absent (the network zeroes it anyway)."""
    if prob <= 0:
        return dict(inputs)
    b = inputs["rgb"].shape[0]
    device = inputs["rgb"].device
    hit = torch.rand(b, generator=gen) < prob
    modality = torch.randint(len(MODALITIES), (b,), generator=gen)
    pick = torch.rand(b, generator=gen)
    strength = torch.rand(b, generator=gen)
    seed = int(torch.randint(2**62, (1,), generator=gen))
    device_gen = None  # the meta device (shapes only, the device test) has no generator
    if device.type != "meta":
        device_gen = torch.Generator(device=device)
        device_gen.manual_seed(seed)
    out = dict(inputs)
    for i, m in enumerate(MODALITIES):
        kinds = kinds_for(m)
        kind = (pick * len(kinds)).long().clamp(max=len(kinds) - 1)
        x = inputs[m]
        damaged = x
        for k, name in enumerate(kinds):
            rows = torch.nonzero(hit & (modality == i) & (kind == k)).flatten()
            if rows.numel() == 0:
                continue
            lo, hi = STRENGTHS[name]
            s = to_device(lo + (hi - lo) * strength[rows], device)
            rows_d = to_device(rows, device)
            other = x.roll(1, 0)[rows_d]  # the previous sample's image (stale)
            if damaged is x:
                damaged = x.clone()
            damaged[rows_d] = EFFECTS[name](m, x[rows_d], s, device_gen, other)
        out[m] = damaged
    return out
