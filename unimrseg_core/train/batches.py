"""Training batches from the procedural world.

Batch ``step`` of phase ``phase`` on rank ``rank`` is a pure function of
``(data seed, phase, step, rank)``: which scenes, where they are cropped and
whether they are flipped. So a resumed run sees exactly the batches it would
have seen, DDP ranks never see the same batch, and no sampler state is saved.

Two sources of scenes:

- ``cache``: a pool of ``scenes`` scenes is rendered once (in parallel) into
  ``cache_dir`` in the on-disk layout of ``data.disk`` and reused by every run
  with the same seed, size and world code. On a 2-core machine the renderer
  cannot keep up with training, and the baselines must see the same data.
- ``on_the_fly``: every batch renders fresh scenes (use with enough CPU workers,
  e.g. on a GPU machine).

Two ways to cut the cached pool into batches (``data.loader``): ``tensors`` decodes
the pool once and cuts batches by tensor ops on the training device (``train.pool``,
what feeds a GPU); ``dataloader`` decodes each batch's PNGs in DataLoader workers
(``StepBatches``; on the fly always). Both draw their crops with ``crops.step_crops``, so
they give the same batches.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from unimrseg_core.data.disk import GeneratedDataset, write_dataset
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.tensors import model_inputs, targets
from unimrseg_core.fingerprint import source_fingerprint
from unimrseg_core.train.config import DataConfig
from unimrseg_core.train.crops import Crops, step_crops
from unimrseg_core.train.pool import TensorPool

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]

_WORLD_SOURCES = Path(__file__).resolve().parent.parent / "data"


def world_fingerprint() -> str:
    """Hash of the world's source code: a cached pool from older code is not reused."""
    return source_fingerprint(_WORLD_SOURCES)


def pool_dir(cfg: DataConfig) -> Path:
    h, w = cfg.size
    return Path(cfg.cache_dir).expanduser() / f"seed{cfg.seed}-n{cfg.scenes}-{h}x{w}-{world_fingerprint()}"


def ensure_pool(cfg: DataConfig, progress: bool = True) -> Path:
    """Render the cached pool if it is not there yet (atomically: a torn pool is never used; under
    a lock: trainers started side by side, as scripts/train_models.sh does, render it once)."""
    root = pool_dir(cfg)
    if (root / "metadata.json").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with root.with_name(root.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (root / "metadata.json").is_file():  # rendered while this process waited
            return root
        tmp = root.with_name(root.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("rendering %d training scenes into %s", cfg.scenes, root)
        write_dataset(
            tmp, cfg.scenes, seed=cfg.seed, size=cfg.size, workers=max(cfg.workers, 1), progress=progress
        )
        tmp.rename(root)
    return root


def _cut(arrays: dict[str, np.ndarray], y: int, x: int, flip: bool, size: tuple[int, int]) -> Batch:
    """One sample's arrays cropped (and mirrored) as tensors; per-sample values (the mask, the
    0-d ``has_saliency``) pass unchanged."""
    ch, cw = size
    out = {}
    for key, a in arrays.items():
        if a.ndim >= 2:
            a = a[..., y : y + ch, x : x + cw]
            a = np.ascontiguousarray(a[..., ::-1] if flip else a)
        out[key] = torch.from_numpy(a)
    return out


class StepBatches(Dataset[Batch]):
    """Item ``step`` is the whole batch of that step (so DataLoader workers prefetch whole batches)."""

    def __init__(self, cfg: DataConfig, batch_size: int, phase: int, rank: int = 0, world: int = 1) -> None:
        self.cfg, self.batch_size, self.phase, self.rank, self.world = cfg, batch_size, phase, rank, world
        self.pool = GeneratedDataset(pool_dir(cfg)) if cfg.mode == "cache" else None
        self.generator = SceneGenerator(cfg.size, cfg.seed) if cfg.mode == "on_the_fly" else None

    def __len__(self) -> int:
        return 1 << 30

    def _sample(self, crops: Crops, step: int, i: int) -> Sample:
        if self.pool is not None and crops.scene is not None:
            return self.pool[int(crops.scene[i])]
        if self.generator is None:
            raise RuntimeError("StepBatches has neither a pool nor a generator")
        index = ((self.phase * 100_000_000 + step) * self.world + self.rank) * self.batch_size + i
        return self.generator.sample(index)

    def __getitem__(self, step: int) -> Batch:
        scenes = len(self.pool) if self.pool is not None else None
        crops = step_crops(self.cfg, self.batch_size, self.phase, step, self.rank, scenes)
        items = []
        for i in range(self.batch_size):
            sample = self._sample(crops, step, i)
            arrays = {**model_inputs(sample), **targets(sample)}
            items.append(_cut(arrays, int(crops.y[i]), int(crops.x[i]), bool(crops.flip[i]), crops.size))
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def pool_batches(
    pool: TensorPool, cfg: DataConfig, batch_size: int, phase: int, start: int, stop: int, rank: int = 0
) -> Iterator[Batch]:
    """The batches of steps ``start..stop-1`` cut from a decoded pool, on its device."""
    for step in range(start, stop):
        crops = step_crops(cfg, batch_size, phase, step, rank, len(pool))
        yield pool.batch(crops)


def batches(
    cfg: DataConfig,
    batch_size: int,
    phase: int,
    start: int,
    stop: int,
    rank: int = 0,
    world: int = 1,
    *,
    pool: TensorPool | None = None,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Batches for steps ``start..stop-1``: cut from ``pool`` when given, else prefetched by
    DataLoader worker processes (into pinned memory with ``pin_memory``, for a GPU)."""
    if pool is not None:
        yield from pool_batches(pool, cfg, batch_size, phase, start, stop, rank)
        return
    data = StepBatches(cfg, batch_size, phase, rank, world)
    workers = cfg.loader_workers if cfg.mode == "cache" else cfg.workers
    loader = DataLoader(
        data,
        batch_size=None,
        sampler=range(start, stop),
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        pin_memory=pin_memory,
    )
    yield from loader
