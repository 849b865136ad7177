"""Example scenes the runtime owns: inputs to check and calibrate what it builds, without data generation.

The runtime vets every graph it makes (ONNX parity with PyTorch, an engine's smoke test against
a reference backend) and calibrates INT8 TensorRT engines, so it needs inputs wherever it builds
one, a robot included. A robot carries no dataset, and the procedural world (``data.generator``)
is no part of a deployment, so these scenes are drawn here, from a seed, with numpy alone, at any
size: a ground plane in perspective under a sky without depth returns, and upright objects
standing on it, each one shape in every modality (its colour, the ground's range at its foot,
its own temperature), so the network's cross-modal fusion has edges to agree about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from unimrseg_core.data.sample import Sample
from unimrseg_core.data.tensors import model_inputs
from unimrseg_core.modalities import MODALITIES, NORMALIZATION

__all__ = ["CALIBRATION_SEED", "CHECK_SEED", "example_scenes"]

CALIBRATION_SEED: Final = 1_000_003
"""Scenes that calibrate INT8 engines."""
CHECK_SEED: Final = 2_000_003
"""Scenes of the parity checks and smoke tests: none of them is a calibration scene."""

CAMERA_HEIGHT_M: Final = 1.5
RANGE_M: Final = NORMALIZATION["depth"].high  # farther ground gives no return, like the sky


@dataclass(frozen=True)
class Kind:
    """What stands on the ground: size in metres, shape, colour and temperature ranges."""

    distance_m: tuple[float, float]  # from the camera
    height_m: tuple[float, float]
    width_m: tuple[float, float]
    round: bool  # an ellipse, else a box
    rgb: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # per channel
    kelvin: tuple[float, float]


ANY_COLOUR: Final = ((0, 256), (0, 256), (0, 256))
KINDS: Final = (
    Kind(
        distance_m=(3, 20),
        height_m=(1.5, 1.9),
        width_m=(0.4, 0.7),
        round=True,
        rgb=ANY_COLOUR,
        kelvin=(300, 307),
    ),
    Kind(
        distance_m=(5, 20),
        height_m=(1.3, 1.7),
        width_m=(1.8, 4.5),
        round=False,
        rgb=ANY_COLOUR,
        kelvin=(285, 320),
    ),
    Kind(
        distance_m=(7, 20),
        height_m=(1.0, 3.0),
        width_m=(1.0, 3.0),
        round=True,
        rgb=((20, 90), (80, 170), (10, 70)),
        kelvin=(275, 288),
    ),
    Kind(
        distance_m=(15, 30),
        height_m=(5, 12),
        width_m=(4, 12),
        round=False,
        rgb=((90, 140), (90, 140), (90, 140)),
        kelvin=(283, 295),
    ),
)
"""People, vehicles, vegetation, buildings (beyond the depth range, the far ones give no return)."""


def example_scenes(
    count: int, input_size: tuple[int, int], *, seed: int, first: int = 0
) -> dict[str, np.ndarray]:
    """Scenes ``first`` .. ``first + count - 1`` of ``seed`` as model inputs, every modality present.

    Images ``[count, C, H, W]`` float32 in [0, 1], ``modality_mask [count, 3]`` of ones; scene
    ``i`` is the same whatever ``count`` and ``first`` were asked with.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    inputs = [
        model_inputs(_scene(np.random.default_rng([seed, first + i]), input_size)) for i in range(count)
    ]
    return {key: np.stack([x[key] for x in inputs]) for key in (*MODALITIES, "modality_mask")}


def _scene(rng: np.random.Generator, size: tuple[int, int]) -> Sample:
    """One scene in sensor units: uint8 RGB, depth in metres (0 = no return), thermal in kelvin."""
    h, w = size
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    focal = float(w)  # a horizontal field of view of about 53 degrees
    horizon = rng.uniform(0.3, 0.55) * h
    below = rows - horizon
    depth = np.where(below > 0, CAMERA_HEIGHT_M * focal / np.maximum(below, 1e-3), 0.0)
    depth[depth > RANGE_M] = 0.0
    ground = rng.integers(60, 150, 3) if rng.random() < 0.6 else rng.integers((40, 100, 20), (90, 170, 70))
    sky = rng.integers((90, 130, 180), (180, 200, 250)) * (0.8 + 0.2 * rows[..., None] / h)
    rgb = np.where((below > 0)[..., None], ground, sky).astype(np.float32)
    ambient = rng.uniform(275, 300)
    thermal = np.where(below > 0, ambient + rng.uniform(-3, 8), ambient - rng.uniform(30, 50)).astype(
        np.float32
    )
    kinds = [KINDS[i] for i in rng.integers(len(KINDS), size=rng.integers(3, 8))]
    things = sorted(((rng.uniform(*k.distance_m), rng.uniform(0, w), k) for k in kinds), key=lambda t: -t[0])
    for distance, centre, kind in things:  # far first: the near ones cover them
        foot = horizon + CAMERA_HEIGHT_M * focal / distance
        height, width = (focal * rng.uniform(*r) / distance for r in (kind.height_m, kind.width_m))
        dy, dx = (foot - height / 2 - rows) / (height / 2), (cols - centre) / (width / 2)
        shape = dy**2 + dx**2 < 1 if kind.round else (abs(dy) < 1) & (abs(dx) < 1)
        rgb[shape] = [rng.integers(*r) for r in kind.rgb]
        depth[shape] = distance if distance <= RANGE_M else 0.0
        thermal[shape] = rng.uniform(*kind.kelvin)
    rgb += rng.normal(0, 4, rgb.shape)
    depth *= 1 + rng.normal(0, 0.01, depth.shape)
    thermal += rng.normal(0, 0.3, thermal.shape)
    return Sample(
        rgb=np.clip(rgb, 0, 255).astype(np.uint8),
        depth=depth.astype(np.float32),
        thermal=thermal.astype(np.float32),
    )
