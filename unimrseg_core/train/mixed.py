"""Batches mixed from the sources of ``data.sources``: one tensor pool, a source drawn per sample.

Every source's training samples (``source_samples.OpenedSource.training``, at ``data.size``) are
encoded once into the integer arrays of ``pool.POOL_DTYPES`` and concatenated into one
``TensorPool``, with the per-scene flags of ``pool.SCENE_FLAGS``: which modalities the scene has
(``presence``: an RGB-T dataset has no depth, a bag may miss a camera), and which ground truth
(``has_label``, ``has_saliency``: a SOD set has no semantic labels, MFNet no saliency). Absent
images are zeros, as the I/O contract says; the flags, not the zeros, reach the losses.

Batch ``step`` draws, per sample, a source with probability proportional to its ``weight``,
then one of its scenes, a crop and a mirror: a pure function of ``(data seed, phase, step,
rank)``, as ``crops.step_crops`` is for the procedural pool, so a resumed run replays its data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from unimrseg_core.data.disk import DEPTH_PER_METRE, THERMAL_PER_KELVIN
from unimrseg_core.data.sample import Sample
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.train.config import DataConfig
from unimrseg_core.train.crops import Crops
from unimrseg_core.train.pool import POOL_DTYPES, TensorPool
from unimrseg_core.train.source_samples import OpenedSource

__all__ = ["MixedPool", "encode_sample", "mixed_crops"]

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


def encode_sample(sample: Sample) -> dict[str, np.ndarray]:
    """One sample as the pool's integer arrays (``[C, H, W]``, zeros where absent) and its flags."""
    h, w = sample.size
    out = {k: np.zeros((3 if k == "rgb" else 1, h, w), dtype) for k, dtype in POOL_DTYPES.items()}
    if sample.rgb is not None:
        out["rgb"] = np.ascontiguousarray(sample.rgb.transpose(2, 0, 1))
    if sample.depth is not None:
        depth = np.nan_to_num(sample.depth, nan=0.0, posinf=0.0, neginf=0.0) * DEPTH_PER_METRE
        out["depth"][0] = np.clip(np.rint(depth), 0, 65535)
    if sample.thermal is not None:
        thermal = np.nan_to_num(sample.thermal, nan=0.0, posinf=0.0, neginf=0.0) * THERMAL_PER_KELVIN
        out["thermal"][0] = np.clip(np.rint(thermal), 0, 65535)
    out["label"][0] = sample.label if sample.label is not None else 255
    if sample.saliency is not None:
        out["saliency"][0] = sample.saliency > 0
    out["presence"] = sample.modality_mask.astype(np.uint8)
    out["has_label"] = np.array(sample.label is not None, np.uint8)
    out["has_saliency"] = np.array(sample.saliency is not None, np.uint8)
    return out


def mixed_crops(
    cfg: DataConfig,
    batch_size: int,
    phase: int,
    step: int,
    rank: int,
    counts: Sequence[int],
    weights: Sequence[float],
) -> Crops:
    """Batch ``step``'s draws: per sample a source (by weight), one of its scenes (as an index into
    the concatenated pool), the crop's corner and the mirror."""
    rng = np.random.default_rng([cfg.seed, phase, step, rank, 1])  # 1: not the procedural draws
    h, w = cfg.size
    ch, cw = cfg.crop or (h, w)
    p = np.asarray(weights, np.float64) / float(np.sum(weights))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    draws = np.empty((batch_size, 4), np.int64)
    for i in range(batch_size):
        source = int(rng.choice(len(counts), p=p))
        scene = int(offsets[source] + rng.integers(counts[source]))
        draws[i] = scene, rng.integers(h - ch + 1), rng.integers(w - cw + 1), rng.random() < 0.5
    scene, y, x, flip = draws.T
    return Crops(scene, y, x, flip.astype(bool), (ch, cw))


class MixedPool:
    """The training samples of every source in one ``TensorPool``, and how to draw from it."""

    def __init__(
        self, pool: TensorPool, names: Sequence[str], counts: Sequence[int], weights: Sequence[float]
    ):
        self.pool, self.names, self.counts, self.weights = pool, list(names), list(counts), list(weights)

    @classmethod
    def build(
        cls,
        sources: Sequence[OpenedSource],
        device: torch.device,
        budget_gib: float | str = "auto",
        threads: int = 2,
    ) -> MixedPool:
        """Read and encode every source's training samples (``threads`` at a time) into one pool."""
        encoded: list[dict[str, np.ndarray]] = []
        for source in sources:
            samples = source.training()
            with ThreadPoolExecutor(max(1, threads)) as run:
                encoded += list(run.map(lambda i, s=samples: encode_sample(s[i]), range(len(samples))))
            log.info("source %s: %d training samples (%s)", source.config.name, len(samples), source.info)
        arrays = {k: np.stack([e[k] for e in encoded]) for k in encoded[0]}
        pool = TensorPool.from_arrays(arrays, device, budget_gib)
        return cls(
            pool,
            [s.config.name for s in sources],
            [s.train_count for s in sources],
            [s.config.weight for s in sources],
        )

    def batches(
        self, cfg: DataConfig, batch_size: int, phase: int, start: int, stop: int, rank: int = 0
    ) -> Iterator[Batch]:
        """The batches of steps ``start..stop-1``, on the pool's device."""
        for step in range(start, stop):
            yield self.pool.batch(mixed_crops(cfg, batch_size, phase, step, rank, self.counts, self.weights))

    def presence(self) -> dict[str, list[str]]:
        """Source -> the modalities its samples have (for the log and the checkpoint's metadata)."""
        flags = self.pool.arrays["presence"].cpu().numpy()
        out, first = {}, 0
        for name, count in zip(self.names, self.counts, strict=True):
            seen = flags[first : first + count].any(axis=0)
            out[name] = [m for m, present in zip(MODALITIES, seen, strict=True) if present]
            first += count
        return out
