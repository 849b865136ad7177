"""The compiled part pass (numba, ``raster_kernel``) draws the same bits as the numpy pass of ``render``.

Both run on generated scenes (every layout and lighting, odd sizes) and on random scenes that
stress what the z-test must agree on: overlapping parts, exact depth ties (duplicated parts),
decals on carriers, foliage gaps, cones, parts behind the camera and parts across the image edge.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from unimrseg_core.data import render
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.primitives import Box, Cone, Ellipsoid
from unimrseg_core.data.scene import Part, Scene

pytest.importorskip("numba")

FIELDS = tuple(f.name for f in dataclasses.fields(render.GBuffer))


def _both(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> tuple[render.GBuffer, render.GBuffer]:
    compiled = render.rasterize(scene)
    with monkeypatch.context() as m:
        m.setattr(render, "_compiled_kernel", lambda: None)
        reference = render.rasterize(scene)
    return reference, compiled


def _assert_same_bits(reference: render.GBuffer, compiled: render.GBuffer) -> None:
    for name in FIELDS:
        a, b = getattr(reference, name), getattr(compiled, name)
        assert a.dtype == b.dtype, name
        assert a.tobytes() == b.tobytes(), f"{name}: {np.count_nonzero(a != b)} pixels differ"


def test_the_compiled_pass_is_the_one_in_use():
    assert render._compiled_kernel() is not None


@pytest.mark.parametrize(("size", "seed"), [((96, 128), 1), ((61, 83), 2), ((240, 320), 3)])
def test_generated_scenes_rasterize_to_the_same_bits(size, seed, monkeypatch):
    gen = SceneGenerator(size, seed=seed)
    for i in range(12):
        _assert_same_bits(*_both(gen.scene(i), monkeypatch))


def _random_parts(rng: np.random.Generator, count: int) -> list[Part]:
    parts: list[Part] = []
    for i in range(count):
        x, y, z = rng.uniform(-8, 8), rng.uniform(-3, 2), rng.uniform(-4, 25)
        size = rng.uniform(0.05, 4.0, 3)
        kind = rng.integers(3)
        if kind == 0:
            prim = Box((x, y, z), (x + size[0], y + size[1], z + size[2]))
        elif kind == 1:
            prim = Ellipsoid((x, y, z), tuple(size / 2))
        else:
            prim = Cone(x, z, y + size[1], size[0] / 2, size[1])
        ragged = float(rng.uniform(0.2, 0.9)) if kind == 1 and rng.random() < 0.5 else 0.0
        decal_on = int(rng.integers(1, i + 1)) if i and rng.random() < 0.15 else -1
        part = Part(prim, int(rng.integers(4)), int(rng.integers(8)), i + 1, ragged=ragged, decal_on=decal_on)
        parts.append(part)
        if rng.random() < 0.2:  # the same surface twice: depths tie exactly, the later part wins
            parts.append(dataclasses.replace(part, material=int(rng.integers(4)), instance=i + 1000))
        if decal_on < 0 and kind == 0 and rng.random() < 0.3:  # a picture on this box's front
            lo, hi = np.asarray(prim.lo), np.asarray(prim.hi)
            front = Box((lo[0] + 0.1, lo[1] + 0.1, lo[2] - 0.01), (hi[0] - 0.1, hi[1] - 0.1, lo[2]))
            parts.append(Part(front, int(rng.integers(4)), 2, i + 2000, decal_on=i + 1))
    return parts


@pytest.mark.parametrize("seed", range(6))
def test_random_scenes_rasterize_to_the_same_bits(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    base = SceneGenerator((72, 96), seed=seed).scene(0, ["day"])
    scene = dataclasses.replace(base, parts=_random_parts(rng, 60))
    reference, compiled = _both(scene, monkeypatch)
    _assert_same_bits(reference, compiled)
    assert np.count_nonzero(reference.inst) > 0.1 * reference.inst.size  # the parts are in view
