"""Procedural texture bank: fractal value noise tiles, made once, sampled by world coordinates.

Made from a fixed seed at first use, so every process (and every DataLoader worker)
sees the same tiles and the generator stays reproducible.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

__all__ = ["TILE", "gaussian_noise", "noise_tiles", "sample_noise"]

TILE = 256
_MASK = TILE - 1
_TEXTURE_SEED = 20251123


@lru_cache(maxsize=1)
def noise_tiles() -> np.ndarray:
    """``4 x TILE x TILE`` float32 tiles of fractal noise, zero mean, unit-ish amplitude.

    Tile 0: fine grain (asphalt, concrete); 1: medium blotches (dirt, foliage);
    2: coarse (large stains, cloud, fog density); 3: fine, anisotropic (wood/bark, streaks).
    """
    rng = np.random.default_rng(_TEXTURE_SEED)
    tiles = np.zeros((4, TILE, TILE), dtype=np.float32)
    octaves = {0: (4, 8, 32, 128), 1: (4, 8, 16, 32), 2: (2, 4, 8, 16), 3: (8, 64, 128)}
    for k, cells_list in octaves.items():
        acc = np.zeros((TILE, TILE), dtype=np.float32)
        for level, cells in enumerate(cells_list):
            grid = rng.standard_normal((cells, cells)).astype(np.float32)
            # wrap so the tile repeats without seams
            grid = np.pad(grid, 1, mode="wrap")
            up = cv2.resize(grid, (TILE + 2 * TILE // cells,) * 2, interpolation=cv2.INTER_CUBIC)
            off = TILE // cells
            acc += up[off : off + TILE, off : off + TILE] * (0.6**level)
        if k == 3:
            acc = cv2.GaussianBlur(acc, (1, 9), 0)
        acc -= acc.mean()
        acc /= acc.std() + 1e-6
        tiles[k] = acc
    tiles.flags.writeable = False
    return tiles


def sample_noise(tile: int, a: np.ndarray, b: np.ndarray, scale: float, offset: float = 0.0) -> np.ndarray:
    """Noise at continuous coordinates ``(a, b)`` (e.g. metres on a surface) times ``scale`` texels/unit."""
    ia = (a * scale + offset).astype(np.int32) & _MASK
    ib = (b * scale + 2.0 * offset).astype(np.int32) & _MASK
    return noise_tiles()[tile][ia, ib]


_BANK_H, _BANK_W = 1024, 2048  # wide enough for 480x640x3 rows


@lru_cache(maxsize=1)
def _gaussian_bank() -> np.ndarray:
    bank = np.random.default_rng(_TEXTURE_SEED + 1).standard_normal((_BANK_H, _BANK_W), dtype=np.float32)
    bank.flags.writeable = False
    return bank


def gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal noise of ``shape`` (``HxW`` or ``HxWxC``), cheaply.

    A random window of a fixed bank of normals, flipped at random: about 10x
    cheaper than drawing fresh normals, and still decided by ``rng`` alone.
    Shapes larger than the bank fall back to fresh draws.
    """
    h = shape[0]
    w = int(np.prod(shape[1:]))
    if h > _BANK_H or w > _BANK_W:
        return rng.standard_normal(shape, dtype=np.float32)
    y, x, flip = rng.integers(0, _BANK_H - h + 1), rng.integers(0, _BANK_W - w + 1), rng.integers(0, 4)
    window = _gaussian_bank()[y : y + h, x : x + w]
    window = window[::-1] if flip & 1 else window
    window = window[:, ::-1] if flip & 2 else window
    return window.reshape(shape)
