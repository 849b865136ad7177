"""The cached training pool decoded once into integer tensors; batches cut from it by tensor ops.

Why: on a GPU, DataLoader workers decoding PNGs and cropping with numpy set the pace
(about 330 samples/s on the H200 machine, 0.095 s per batch of 32). Here the pool's
PNGs are decoded once per run (threads: OpenCV releases the GIL) into

    rgb uint8 [N,3,H,W], depth uint16 [N,1,H,W] mm, thermal uint16 [N,1,H,W] cK,
    label uint8 [N,1,H,W], saliency uint8 [N,1,H,W] (0/1),

about 0.7 MB per 240x320 scene. They live on the training device when they fit its
budget, else in host memory. A batch is then one gather per array (scenes, crop rows
and columns, flips as index tensors), the normalisation of ``data.tensors``
(``data.tensor_ops.normalize_tensor``, the constants of ``modalities.NORMALIZATION``)
and the targets, all on the device: no decoding, no per-sample Python work. Host-held
pools gather on the CPU and copy the small integer crops through pinned memory.

The crops come from ``crops.step_crops``, the draws of the DataLoader path too, so
both give the same batches (up to float rounding).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import numpy as np
import torch

from unimrseg_core.data.disk import DEPTH_PER_METRE, THERMAL_PER_KELVIN, GeneratedDataset, read_scene
from unimrseg_core.data.tensor_ops import normalize_tensor
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.train.crops import Crops
from unimrseg_core.train.devices import to_device

__all__ = ["POOL_DTYPES", "SCENE_FLAGS", "TensorPool", "decode_pool"]

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]

POOL_DTYPES: Final[dict[str, np.dtype]] = {
    "rgb": np.dtype(np.uint8),
    "depth": np.dtype(np.uint16),
    "thermal": np.dtype(np.uint16),
    "label": np.dtype(np.uint8),
    "saliency": np.dtype(np.uint8),
}
"""Stored integer type of each array (as on disk, see ``data.disk``)."""

SCENE_FLAGS: Final[dict[str, tuple[int, ...]]] = {
    "presence": (len(MODALITIES),),  # uint8 [N, 3]: the modalities each scene has
    "has_label": (),  # uint8 [N]: 1 when the scene has semantic ground truth
    "has_saliency": (),  # uint8 [N]: 1 when it has saliency ground truth
}
"""Optional per-scene arrays of a pool mixed from sources (``train.mixed``); a pool without them is
the procedural world's: every scene has every modality and both kinds of ground truth."""

_UNITS: Final = {"depth": DEPTH_PER_METRE, "thermal": THERMAL_PER_KELVIN}  # stored units per sensor unit


def decode_pool(root: Path, threads: int | None = None) -> dict[str, np.ndarray]:
    """Every scene of the pool at ``root`` as ``[N, C, H, W]`` arrays of ``POOL_DTYPES``."""
    dataset = GeneratedDataset(root)
    n = len(dataset)
    h, w = dataset.metadata["size"]
    channels = {k: 3 if k == "rgb" else 1 for k in POOL_DTYPES}
    out = {k: np.empty((n, channels[k], h, w), dtype) for k, dtype in POOL_DTYPES.items()}

    def decode(i: int) -> None:
        for key, image in read_scene(dataset.root, dataset.scenes[i]["name"]).items():
            out[key][i] = image.transpose(2, 0, 1) if image.ndim == 3 else image

    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
        list(pool.map(decode, range(n)))
    return out


def _device_budget(device: torch.device, budget_gib: float | str) -> float:
    """Bytes of GPU memory the pool may take: ``auto`` is half of what is free now."""
    if budget_gib == "auto":
        free, _ = torch.cuda.mem_get_info(device)
        return free / 2
    return float(budget_gib) * 2**30


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    """numpy -> torch; uint16 is viewed as int16 (same bits), whose kernels exist on every device
    and every torch >= 2.11 (the unsigned ones are barebones); ``_widen`` reads it back."""
    if array.dtype == np.uint16:
        array = array.view(np.int16)
    return torch.from_numpy(array)


def _widen(stored: torch.Tensor) -> torch.Tensor:
    """An int16-viewed uint16 tensor as float32 of its unsigned values."""
    return stored.to(torch.int32).bitwise_and_(0xFFFF).float()


class TensorPool:
    """Integer arrays ``[N, C, H, W]`` (uint16 held as int16, see ``_as_tensor``) on ``storage``;
    batches are made on ``device``."""

    def __init__(self, arrays: dict[str, torch.Tensor], device: torch.device) -> None:
        if set(arrays) - set(SCENE_FLAGS) != set(POOL_DTYPES):
            raise ValueError(f"a pool needs the arrays {sorted(POOL_DTYPES)}, got {sorted(arrays)}")
        self.arrays = arrays
        self.storage = arrays["rgb"].device
        self.device = device

    @classmethod
    def load(cls, root: Path, device: torch.device, budget_gib: float | str = "auto") -> TensorPool:
        """Decode the pool at ``root`` and place it (see ``from_arrays``)."""
        return cls.from_arrays(decode_pool(root), device, budget_gib)

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], device: torch.device, budget_gib: float | str = "auto"
    ) -> TensorPool:
        """A pool of decoded arrays making batches on ``device``: held there too, unless it is a GPU
        whose budget (GiB, or ``auto``: half its free memory) the arrays exceed; then in host memory."""
        tensors = {k: _as_tensor(a) for k, a in arrays.items()}
        nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
        on_device = device.type != "cuda" or nbytes <= _device_budget(device, budget_gib)
        if on_device:
            tensors = {k: t.to(device) for k, t in tensors.items()}
        where = "device" if on_device else "host"
        log.info(
            "training pool: %d scenes, %.2f GiB in %s memory", len(tensors["rgb"]), nbytes / 2**30, where
        )
        return cls(tensors, device)

    def __len__(self) -> int:
        return len(self.arrays["rgb"])

    def batch(self, crops: Crops) -> Batch:
        """The samples of ``crops`` as the tensors of ``data.tensors.model_inputs`` and ``targets``,
        batched, on ``device``."""
        if crops.scene is None:
            raise ValueError("pool crops must name their scenes")
        plan = np.stack([crops.scene, crops.y, crops.x, crops.flip]).astype(np.int64)
        s, top, left, mirrored = to_device(torch.from_numpy(plan), self.storage)  # one small copy
        ch, cw = crops.size
        rows = top[:, None] + torch.arange(ch, device=self.storage)
        ahead = torch.arange(cw, device=self.storage)
        cols = left[:, None] + torch.where(mirrored[:, None] > 0, cw - 1 - ahead, ahead)
        raw = {k: _gather(a, s, rows, cols) for k, a in self.arrays.items() if k in POOL_DTYPES}
        raw |= {k: a[s] for k, a in self.arrays.items() if k in SCENE_FLAGS}
        if self.storage != self.device:
            raw = {k: to_device(t, self.device) for k, t in raw.items()}
        return _tensors(raw)


def _gather(array: torch.Tensor, scene: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``[B, C, ch, cw]`` crops of ``array [N, C, H, W]`` in one indexing op."""
    channels = torch.arange(array.shape[1], device=array.device)
    return array[
        scene[:, None, None, None],
        channels[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def _tensors(raw: Batch) -> Batch:
    """Integer crops -> the float inputs and targets of one batch (``data.tensors``' conventions)."""
    b = raw["rgb"].shape[0]
    device = raw["rgb"].device
    out = {m: normalize_tensor(m, _widen(raw[m]) / _UNITS[m] if m in _UNITS else raw[m]) for m in MODALITIES}
    if "presence" in raw:  # a mixed pool: each scene has its own modalities and ground truth
        out["modality_mask"] = raw["presence"].float()
        out["has_label"] = raw["has_label"].bool()
        out["has_saliency"] = raw["has_saliency"].bool()
    else:  # a generated scene has all three, and both kinds of ground truth
        out["modality_mask"] = torch.ones(b, len(MODALITIES), device=device)
        out["has_label"] = torch.ones(b, dtype=torch.bool, device=device)
        out["has_saliency"] = torch.ones(b, dtype=torch.bool, device=device)
    out["label"] = raw["label"][:, 0].long()
    out["saliency"] = raw["saliency"].float()
    return out
