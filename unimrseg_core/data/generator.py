"""The seeded procedural world: ``SceneGenerator(size, seed).sample(i)`` -> :class:`Sample`.

Each sample's random stream comes from ``SeedSequence([seed, i])`` alone, so a
sample is the same whichever process, worker or order produces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from unimrseg_core.data.conditions import ConditionProbabilities, sample_conditions, validate_conditions
from unimrseg_core.data.render import render
from unimrseg_core.data.rig import CameraRig, RigSample, render_rig
from unimrseg_core.data.saliency import saliency_mask
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.scene import Scene, sample_scene
from unimrseg_core.data.sensors import depth_sensor, rgb_camera, thermal_camera
from unimrseg_core.modalities import CLASSES

__all__ = ["SceneGenerator"]

_THINGS = {c.id for c in CLASSES if c.is_thing}
MIN_SIZE = 16


class SceneGenerator:
    """Aligned RGB / depth / thermal / labels / saliency scenes of a procedural outdoor world."""

    def __init__(
        self,
        size: tuple[int, int] = (240, 320),
        seed: int = 0,
        probabilities: ConditionProbabilities | None = None,
    ) -> None:
        height, width = size
        if height < MIN_SIZE or width < MIN_SIZE:
            raise ValueError(f"size must be at least {MIN_SIZE}x{MIN_SIZE}, got {height}x{width}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.size = (int(height), int(width))
        self.seed = int(seed)
        self.probabilities = probabilities or ConditionProbabilities()

    def rng(self, index: int) -> np.random.Generator:
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(index)]))

    def scene(
        self, index: int, conditions: Sequence[str] | None = None, rng: np.random.Generator | None = None
    ) -> Scene:
        rng = rng or self.rng(index)
        chosen = (
            validate_conditions(conditions)
            if conditions is not None
            else sample_conditions(rng, self.probabilities)
        )
        return sample_scene(rng, chosen, self.size)

    def sample(self, index: int, conditions: Sequence[str] | None = None) -> Sample:
        """Scene ``index``; ``conditions`` forces e.g. ``["night", "depth_holes"]`` instead of sampling."""
        rng = self.rng(index)
        scene = self.scene(index, conditions, rng)
        ideal = render(scene)
        label = ideal.gbuf.cls.copy()
        return Sample(
            rgb=rgb_camera(scene, ideal, rng),
            depth=depth_sensor(scene, ideal, rng),
            thermal=thermal_camera(scene, ideal, rng),
            label=label,
            saliency=saliency_mask(ideal.gbuf.inst, scene.instance_class, _THINGS),
            meta=self._meta(index, scene),
        )

    def sample_rig(self, index: int, rig: CameraRig, conditions: Sequence[str] | None = None) -> RigSample:
        """Scene ``index`` seen by ``rig``: each sensor through its own camera (:mod:`.rig`).

        The scene is the one :meth:`sample` renders; the sensors' noise differs (other sizes).
        """
        rng = self.rng(index)
        scene = self.scene(index, conditions, rng)
        return render_rig(scene, rig, rng, meta=self._meta(index, scene))

    def _meta(self, index: int, scene: Scene) -> dict[str, Any]:
        """What a sample records of where it came from (the same for :meth:`sample` and a rig's)."""
        return {
            "name": f"{index:06d}",
            "seed": self.seed,
            "index": int(index),
            "conditions": list(scene.conditions),
            "layout": scene.layout,
            "camera": scene.camera.intrinsics(),
            "ambient_k": round(scene.ambient_k, 3),
        }
