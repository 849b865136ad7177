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
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from unimrseg_core.data.disk import GeneratedDataset, write_dataset
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.tensors import model_inputs, targets
from unimrseg_core.fingerprint import source_fingerprint
from unimrseg_core.train.config import DataConfig

log = logging.getLogger(__name__)

_WORLD_SOURCES = Path(__file__).resolve().parent.parent / "data"


def world_fingerprint() -> str:
    """Hash of the world's source code: a cached pool from older code is not reused."""
    return source_fingerprint(_WORLD_SOURCES)


def pool_dir(cfg: DataConfig) -> Path:
    h, w = cfg.size
    return Path(cfg.cache_dir).expanduser() / f"seed{cfg.seed}-n{cfg.scenes}-{h}x{w}-{world_fingerprint()}"


def ensure_pool(cfg: DataConfig, progress: bool = True) -> Path:
    """Render the cached pool if it is not there yet (atomically: a torn pool is never used)."""
    root = pool_dir(cfg)
    if (root / "metadata.json").is_file():
        return root
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("rendering %d training scenes into %s", cfg.scenes, root)
    write_dataset(
        tmp, cfg.scenes, seed=cfg.seed, size=cfg.size, workers=max(cfg.workers, 1), progress=progress
    )
    tmp.rename(root)
    return root


class StepBatches(Dataset[dict[str, torch.Tensor]]):
    """Item ``step`` is the whole batch of that step (so DataLoader workers prefetch whole batches)."""

    def __init__(self, cfg: DataConfig, batch_size: int, phase: int, rank: int = 0, world: int = 1) -> None:
        self.cfg, self.batch_size, self.phase, self.rank, self.world = cfg, batch_size, phase, rank, world
        self.pool = GeneratedDataset(pool_dir(cfg)) if cfg.mode == "cache" else None
        self.generator = SceneGenerator(cfg.size, cfg.seed) if cfg.mode == "on_the_fly" else None

    def __len__(self) -> int:
        return 1 << 30

    def _sample(self, rng: np.random.Generator, step: int, i: int):
        if self.pool is not None:
            return self.pool[int(rng.integers(len(self.pool)))]
        assert self.generator is not None
        index = ((self.phase * 100_000_000 + step) * self.world + self.rank) * self.batch_size + i
        return self.generator.sample(index)

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, self.phase, step, self.rank])
        items = []
        for i in range(self.batch_size):
            sample = self._sample(rng, step, i)
            arrays = {**model_inputs(sample), **targets(sample)}
            h, w = sample.size
            ch, cw = self.cfg.crop or (h, w)
            y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
            flip = bool(rng.random() < 0.5)
            out = {}
            for key, a in arrays.items():
                if a.ndim >= 2:
                    a = a[..., y : y + ch, x : x + cw]
                    if flip:
                        a = a[..., ::-1]
                out[key] = torch.from_numpy(np.ascontiguousarray(a))
            items.append(out)
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def batches(
    cfg: DataConfig, batch_size: int, phase: int, start: int, stop: int, rank: int = 0, world: int = 1
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches for steps ``start..stop-1``, prefetched by worker processes."""
    data = StepBatches(cfg, batch_size, phase, rank, world)
    workers = cfg.loader_workers if cfg.mode == "cache" else cfg.workers
    loader = DataLoader(
        data,
        batch_size=None,
        sampler=range(start, stop),
        num_workers=workers,
        prefetch_factor=2 if workers else None,
    )
    yield from loader
