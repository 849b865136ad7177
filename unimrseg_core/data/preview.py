"""Contact sheet of the procedural world: one row per condition, one column per modality and target."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from unimrseg_core.data.conditions import CONDITIONS
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.sample import Sample
from unimrseg_core.modalities import CLASSES, NORMALIZATION, colorize

__all__ = ["contact_sheet", "depth_to_rgb", "thermal_to_rgb", "write_contact_sheet"]

COLUMNS = ("RGB", "depth (0-20 m)", "thermal (auto range)", "labels", "saliency")
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def depth_to_rgb(depth: np.ndarray) -> np.ndarray:
    """Near = red, far = blue (turbo) over the model's depth range; invalid (0) = black."""
    norm = NORMALIZATION["depth"]
    x = np.clip((depth - norm.low) / (norm.high - norm.low), 0, 1)
    rgb = cv2.applyColorMap((255 - x * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1].copy()
    rgb[~(depth > 0)] = 0
    return rgb


def thermal_to_rgb(thermal: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Inferno over the 1st-99th percentile (a thermal camera's automatic gain), and that range."""
    lo, hi = (float(v) for v in np.percentile(thermal, [1, 99]))
    x = np.clip((thermal - lo) / max(hi - lo, 0.5), 0, 1)
    return cv2.applyColorMap((x * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1].copy(), (lo, hi)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour=(255, 255, 255)) -> None:
    cv2.putText(img, text, org, _FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, scale, colour, 1, cv2.LINE_AA)


def _row(sample: Sample) -> np.ndarray:
    h, _ = sample.size
    thermal, (lo, hi) = thermal_to_rgb(sample.thermal)
    tiles = [
        sample.rgb.copy(),
        depth_to_rgb(sample.depth),
        thermal,
        colorize(sample.label),
        np.repeat(sample.saliency[..., None] * 255, 3, axis=2),
    ]
    scale = h / 480
    _text(
        tiles[0],
        " + ".join(sample.meta["conditions"]) + f"  ({sample.meta['layout']})",
        (6, int(22 * scale) + 8),
        max(scale, 0.4),
    )
    _text(tiles[2], f"{lo:.0f}-{hi:.0f} K", (6, h - 8), max(scale, 0.4))
    sep = np.full((h, 4, 3), 255, np.uint8)
    return np.hstack([x for tile in tiles for x in (tile, sep)][:-1])


def _legend(width: int, height: int) -> np.ndarray:
    bar = np.full((height, width, 3), 255, np.uint8)
    step = width // len(CLASSES)
    for i, c in enumerate(CLASSES):
        x0 = i * step + 6
        cv2.rectangle(bar, (x0, height // 4), (x0 + height // 2, 3 * height // 4), c.color, -1)
        cv2.putText(
            bar,
            c.name,
            (x0 + height // 2 + 6, 2 * height // 3),
            _FONT,
            height / 60,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return bar


def contact_sheet(samples: Sequence[Sample]) -> np.ndarray:
    """RGB image: a header, one row per sample, a class legend."""
    rows = [_row(s) for s in samples]
    width = rows[0].shape[1]
    h, w = samples[0].size
    header = np.full((max(h // 8, 24), width, 3), 255, np.uint8)
    for i, name in enumerate(COLUMNS):
        cv2.putText(
            header,
            name,
            (i * (w + 4) + 6, header.shape[0] - 8),
            _FONT,
            header.shape[0] / 50,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    gap = np.full((4, width, 3), 255, np.uint8)
    body = [x for r in rows for x in (r, gap)]
    return np.vstack([header, *body, _legend(width, max(h // 8, 24))])


def write_contact_sheet(
    out: str | Path,
    *,
    seed: int = 0,
    size: tuple[int, int] = (240, 320),
    conditions: Sequence[str] = CONDITIONS,
    per_condition: int = 1,
) -> Path:
    """Render ``per_condition`` scenes for each condition (day lighting for sensor faults) to a PNG."""
    generator = SceneGenerator(size, seed)
    samples = [
        generator.sample(k * 1000 + j, [c]) for k, c in enumerate(conditions) for j in range(per_condition)
    ]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(contact_sheet(samples), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path
