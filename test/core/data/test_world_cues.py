"""The cue table of ``unimrseg_core.data`` holds, measured on generated scenes.

Each test states one row of the table as numbers, with fixed seeds and enough pixels
that the margins below are wide (the measured values are noted next to each threshold,
at 96x128). Renderer internals (``Scene``, ``render``'s ``Ideal``/``GBuffer``) are used to
know which pixels are decals, camouflaged boxes or which instance; the measured values
come from the sensor images that a Sample carries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from unimrseg_core.data import SceneGenerator
from unimrseg_core.data.primitives import Box
from unimrseg_core.data.render import Ideal, render
from unimrseg_core.data.scene import Scene
from unimrseg_core.data.sensors import depth_sensor, rgb_camera, thermal_camera
from unimrseg_core.modalities import NUM_CLASSES, class_id

pytestmark = pytest.mark.slow

SIZE = (96, 128)
PERSON, OBSTACLE = class_id("person"), class_id("obstacle")
SKY, GROUND, BUILDING = class_id("sky"), class_id("ground"), class_id("building")
RING = np.ones((5, 5), np.uint8)


@dataclass
class Rendered:
    """A generated sample together with the scene and the ideal images it came from."""

    scene: Scene
    ideal: Ideal
    rgb: np.ndarray
    depth: np.ndarray
    thermal: np.ndarray


def rendered(gen: SceneGenerator, index: int, conditions: list[str], scene: Scene | None = None) -> Rendered:
    """What ``gen.sample(index, conditions)`` does, keeping the internals (checked below)."""
    rng = gen.rng(index)
    sc = gen.scene(index, conditions, rng)
    if scene is not None:  # an edited copy of that scene, rendered with the same random stream
        sc = scene
    ideal = render(sc)
    rgb = rgb_camera(sc, ideal, rng)
    depth = depth_sensor(sc, ideal, rng)
    return Rendered(sc, ideal, rgb, depth, thermal_camera(sc, ideal, rng))


def ring_around(mask: np.ndarray, width: int = 1) -> np.ndarray:
    return (cv2.dilate(mask.astype(np.uint8), RING, iterations=width) > 0) & ~mask


def test_rendered_helper_matches_sample():
    gen = SceneGenerator(SIZE, seed=11)
    r, s = rendered(gen, 4, ["day"]), gen.sample(4, ["day"])
    np.testing.assert_array_equal(r.rgb, s.rgb)
    np.testing.assert_array_equal(r.depth, s.depth)
    np.testing.assert_array_equal(r.thermal, s.thermal)
    np.testing.assert_array_equal(r.ideal.gbuf.cls, s.label)


# ------------------------------------------------------------------------------------ decals


def _decal_person_instances(scene: Scene) -> dict[int, list[int]]:
    """Decal (picture) persons: instance -> its materials."""
    out: dict[int, list[int]] = {}
    for p in scene.parts:
        if p.decal_on >= 0 and p.class_id == PERSON:
            out.setdefault(p.instance, []).append(p.material)
    return out


def _decal_in_view(scene: Scene, min_area: float) -> bool:
    """Cheap pre-filter: a decal person's projected bounding box covers ``min_area`` pixels."""
    cam = scene.camera
    for inst in _decal_person_instances(scene):
        corners = np.concatenate(
            [p.primitive.corners() for p in scene.parts if p.instance == inst and p.decal_on >= 0]
        )
        uv, z = cam.project(corners)
        if np.all(z > 0.3):
            u = np.clip([uv[:, 0].min(), uv[:, 0].max()], 0, cam.width)
            v = np.clip([uv[:, 1].min(), uv[:, 1].max()], 0, cam.height)
            if (u[1] - u[0]) * (v[1] - v[0]) >= min_area:
                return True
    return False


@dataclass
class Instance:
    rgb: np.ndarray  # N x 3 sensor RGB
    thermal_rel: float  # mean thermal minus the scene's ambient temperature
    vs_carrier: float  # mean thermal minus the carrier's (or, for people, the surroundings') thermal
    plane_rms: float  # metres, RMS distance of the visible 3-D points from their best plane


def _instance(r: Rendered, mask: np.ndarray, around: np.ndarray) -> Instance:
    g = r.ideal.gbuf
    pts = g.t[mask][:, None] * r.scene.camera.dirs[mask] + r.scene.camera.origin
    pts = pts - pts.mean(axis=0)
    rms = float(np.linalg.svd(pts, compute_uv=False)[-1] / np.sqrt(len(pts)))
    return Instance(
        rgb=r.rgb[mask].astype(np.float64),
        thermal_rel=float(r.thermal[mask].mean() - r.scene.ambient_k),
        vs_carrier=float(r.thermal[mask].mean() - r.thermal[around].mean()) if around.sum() >= 5 else np.nan,
        plane_rms=rms,
    )


@pytest.fixture(scope="module")
def people() -> tuple[list[Instance], list[Instance]]:
    """(decal persons, real persons), >= 20 visible pixels each, from day scenes that show decals."""
    gen = SceneGenerator(SIZE, seed=11)
    decals: list[Instance] = []
    real: list[Instance] = []
    for i in range(600):
        if not _decal_in_view(gen.scene(i, ["day"]), 30):
            continue
        r = rendered(gen, i, ["day"])
        g = r.ideal.gbuf
        for mats in _decal_person_instances(r.scene).values():
            mask = np.isin(g.decal_mat, mats)
            if mask.sum() >= 20:
                carrier = np.bincount(g.inst[mask]).argmax()
                around = ring_around(mask) & (g.inst == carrier) & (g.decal_mat < 0)
                decals.append(_instance(r, mask, around))
        for inst, cls in r.scene.instance_class.items():
            mask = g.inst == inst
            if cls == PERSON and mask.sum() >= 20:
                real.append(_instance(r, mask, ring_around(mask) & (g.cls != PERSON)))
    return decals, real


def test_enough_decals_and_people_measured(people):
    decals, real = people
    assert len(decals) >= 30  # measured 52
    assert len(real) >= 30  # measured 63


def test_decal_persons_look_like_persons_in_rgb(people):
    decals, real = people
    dec = np.array([d.rgb.mean(axis=0) for d in decals])  # per-instance mean colour
    per = np.array([p.rgb.mean(axis=0) for p in real])
    # per channel: means within 0.4 standard deviations, spreads within a factor 1.5
    # (measured: mean gaps 0.0-0.3 sd, spread ratios 1.0-1.1)
    pooled = np.sqrt((dec.var(axis=0) + per.var(axis=0)) / 2)
    assert np.all(np.abs(dec.mean(axis=0) - per.mean(axis=0)) < 0.4 * pooled)
    assert np.all((dec.std(axis=0) / per.std(axis=0) > 1 / 1.5) & (dec.std(axis=0) / per.std(axis=0) < 1.5))
    # pixel level: a colour histogram of decal pixels overlaps the real-person histogram
    # about as much as two halves of the real people overlap each other (measured 0.64 vs 0.66)
    bins = np.linspace(0, 256, 9)

    def hist(pixels: np.ndarray) -> np.ndarray:
        h, _ = np.histogramdd(pixels, bins=(bins, bins, bins))
        return h.ravel() / h.sum()

    dec_px = np.concatenate([d.rgb for d in decals])
    real_a = np.concatenate([p.rgb for p in real[0::2]])
    real_b = np.concatenate([p.rgb for p in real[1::2]])
    overlap_decal = np.minimum(hist(dec_px), hist(np.concatenate([real_a, real_b]))).sum()
    overlap_real = np.minimum(hist(real_a), hist(real_b)).sum()
    assert overlap_decal > 0.85 * overlap_real


def test_decal_persons_are_flat_in_depth(people):
    decals, real = people
    dec = np.array([d.plane_rms for d in decals])
    per = np.array([p.plane_rms for p in real])
    assert dec.max() < 0.005  # on the wall or board: planar (measured <= 1.6 mm)
    assert np.mean(per > 0.01) >= 0.95  # a body has relief (measured >= 19 mm)
    assert np.median(per) > 10 * max(np.median(dec), 1e-4)


def test_decal_persons_have_the_carriers_temperature(people):
    decals, real = people
    dec_rel = np.array([d.thermal_rel for d in decals])
    per_rel = np.array([p.thermal_rel for p in real])
    vs_carrier = np.array([d.vs_carrier for d in decals])
    vs_around = np.array([p.vs_carrier for p in real])
    vs_carrier, vs_around = vs_carrier[np.isfinite(vs_carrier)], vs_around[np.isfinite(vs_around)]
    assert len(vs_carrier) >= 20
    # the picture reads like the wall around it (measured |diff| <= 0.5 K)
    assert np.all(np.abs(vs_carrier) < 1.0)
    # a real person stands out of its surroundings (measured: median 7 K, min 1.1 K)
    assert np.median(vs_around) > 4.0
    assert np.mean(vs_around > 1.0) >= 0.9
    # and people are clearly warmer than pictures of people (measured medians 9.4 K vs 1.7 K)
    assert np.median(per_rel) - np.median(dec_rel) > 4.0
    assert np.mean(dec_rel) < np.percentile(per_rel, 10)


def test_decals_change_rgb_only():
    """By construction: the same scene without its decal parts differs in RGB at decal pixels only."""
    gen = SceneGenerator(SIZE, seed=11)
    checked = 0
    for i in range(200):
        scene = gen.scene(i, ["day"])
        if not _decal_in_view(scene, 30):
            continue
        with_decals = rendered(gen, i, ["day"])
        bare = dataclasses.replace(scene, parts=[p for p in scene.parts if p.decal_on < 0])
        without = rendered(gen, i, ["day"], scene=bare)
        decal = with_decals.ideal.gbuf.decal_mat >= 0
        if not decal.any():
            continue
        np.testing.assert_array_equal(with_decals.depth, without.depth)
        np.testing.assert_array_equal(with_decals.thermal, without.thermal)
        np.testing.assert_array_equal(with_decals.ideal.gbuf.cls, without.ideal.gbuf.cls)
        np.testing.assert_array_equal(with_decals.ideal.gbuf.inst, without.ideal.gbuf.inst)
        changed = np.any(with_decals.rgb != without.rgb, axis=2)
        assert changed.any()
        assert not np.any(changed & ~decal)
        # decals are painted on the surface that carries them, never on ground or sky
        assert not np.any(decal & np.isin(with_decals.ideal.gbuf.cls, [SKY, GROUND, PERSON]))
        checked += 1
        if checked == 6:
            break
    assert checked == 6


# ------------------------------------------------------------------------ camouflaged boxes


def _camouflaged(scene: Scene) -> list[int]:
    """Obstacle boxes painted like the ground."""
    return [
        p.instance
        for p in scene.parts
        if p.class_id == OBSTACLE
        and isinstance(p.primitive, Box)
        and scene.materials[p.material].ground_paint
    ]


@pytest.fixture(scope="module")
def obstacles() -> list[tuple[bool, float, float, float]]:
    """(camouflaged, RGB gap to ground around it, median relative gap to the ground-plane depth,
    median sensor-depth gap in metres), for obstacles with >= 12 pixels and a ground ring."""
    gen = SceneGenerator(SIZE, seed=3)
    out = []
    for i in range(120):
        r = rendered(gen, i, ["day"])
        g, cam = r.ideal.gbuf, r.scene.camera
        camo = set(_camouflaged(r.scene))
        with np.errstate(divide="ignore"):
            plane = np.where(cam.dirs[..., 1] > 1e-6, cam.ground_y / cam.dirs[..., 1], np.inf)
        for inst, cls in r.scene.instance_class.items():
            mask = g.inst == inst
            if cls != OBSTACLE or mask.sum() < 12:
                continue
            ground = ring_around(mask, 2) & (g.cls == GROUND)
            if ground.sum() < 10:
                continue
            rgb_gap = float(np.abs(r.rgb[mask].mean(axis=0) - r.rgb[ground].mean(axis=0)).max())
            far = plane[mask]
            rel = np.ones_like(far)  # above the horizon the ray never meets the ground plane
            finite = np.isfinite(far)
            rel[finite] = (far[finite] - g.t[mask][finite]) / far[finite]
            valid = mask & (r.depth > 0)
            sensed = float(np.median(plane[valid] - r.depth[valid])) if valid.sum() >= 5 else np.nan
            out.append((inst in camo, rgb_gap, float(np.median(rel)), sensed))
    return out


def test_camouflaged_boxes_stand_out_of_the_ground_in_depth(obstacles):
    camo = [o for o in obstacles if o[0]]
    assert len(camo) >= 12
    rel = np.array([o[2] for o in camo])
    # every box is clearly nearer than the ground plane behind it (measured min 0.13, median 0.21)
    assert np.all(rel > 0.05)
    assert np.median(rel) > 0.12
    # and the depth sensor sees it: nearer than the ground plane by far more than its noise
    sensed = np.array([o[3] for o in camo if np.isfinite(o[3])])
    assert len(sensed) >= 8
    assert np.all(sensed > 0.3)  # measured min 0.69 m


def test_camouflaged_boxes_match_the_ground_in_rgb(obstacles):
    camo = np.array([o[1] for o in obstacles if o[0]])
    other = np.array([o[1] for o in obstacles if not o[0]])
    assert len(camo) >= 12
    assert len(other) >= 12
    # "same colour and texture as the ground under it": within a few grey levels, and far
    # closer than any other obstacle
    assert np.median(camo) < 12.0
    assert np.median(camo) < 0.33 * np.median(other)


def test_camouflaged_boxes_copy_the_ground_they_stand_on():
    gen = SceneGenerator(SIZE, seed=3)
    wrong, total = [], 0
    for i in range(300):
        scene = gen.scene(i, ["day"])
        g = scene.ground
        for inst in _camouflaged(scene):
            box = next(p.primitive for p in scene.parts if p.instance == inst)
            under = int(g.material_at((box.lo[0] + box.hi[0]) / 2))
            mat = scene.materials[next(p.material for p in scene.parts if p.instance == inst)]
            total += 1
            ground = scene.materials[under]
            look = (mat.tile, mat.texture, mat.tex_scale)
            same_look = look == (ground.tile, ground.texture, ground.tex_scale)
            if not same_look or np.any(np.abs(ground.albedo / mat.albedo - 1) > 0.1):
                wrong.append((i, scene.layout))
    assert total >= 100
    assert wrong == []


# ------------------------------------------------------------------------------------ thermal


def _people_vs_surroundings(conditions: list[str], seed: int) -> np.ndarray:
    gen = SceneGenerator(SIZE, seed=seed)
    diffs = []
    for i in range(30):
        s = gen.sample(i, conditions)
        n, comp = cv2.connectedComponents((s.label == PERSON).astype(np.uint8))
        for k in range(1, n):
            mask = comp == k
            if mask.sum() >= 15:
                around = ring_around(mask) & (s.label != PERSON)
                diffs.append(s.thermal[mask].mean() - s.thermal[around].mean())
    return np.array(diffs)


def test_people_are_warmer_than_their_surroundings_at_night():
    diffs = _people_vs_surroundings(["night"], seed=21)
    assert len(diffs) >= 20
    assert np.all(diffs > 3.0)  # measured min 8.5 K
    assert np.median(diffs) > 10.0  # measured 16.9 K


def test_people_are_warmer_than_their_surroundings_by_day():
    diffs = _people_vs_surroundings(["day"], seed=21)
    assert len(diffs) >= 20
    assert np.mean(diffs > 0) >= 0.85  # measured 0.95: sun-baked asphalt can match a person
    assert np.median(diffs) > 4.0  # measured 8.2 K


@pytest.mark.parametrize("lighting", ["day", "night", "glare"])
def test_sky_is_much_colder_than_buildings(lighting):
    gen = SceneGenerator(SIZE, seed=21)
    gaps = []
    for i in range(20):
        s = gen.sample(i, [lighting])
        sky, building = s.label == SKY, s.label == BUILDING
        if sky.sum() >= 50 and building.sum() >= 50:
            gaps.append(np.median(s.thermal[building]) - np.median(s.thermal[sky]))
            # buildings sit near ambient ("facades near ambient")
            assert abs(np.median(s.thermal[building]) - s.meta["ambient_k"]) < 10.0
    assert len(gaps) >= 10
    assert min(gaps) > 20.0  # measured min 27 K (night) - 31 K (day)
    assert np.median(gaps) > 30.0


# --------------------------------------------------------------- each modality alone suffices


def _box(x: np.ndarray, k: int = 5) -> np.ndarray:
    return cv2.blur(x.astype(np.float32), (k, k))


def _local_std(x: np.ndarray, k: int = 5) -> np.ndarray:
    return np.sqrt(np.maximum(_box(x * x, k) - _box(x, k) ** 2, 0))


def features(sample, modality: str) -> np.ndarray:
    """A few per-pixel features of one modality only (no position, no other modality)."""
    if modality == "rgb":
        x = _box(sample.rgb.astype(np.float32) / 255.0, 3)
        lum = x.mean(axis=2) + 1e-3
        texture = _local_std(sample.rgb.astype(np.float32).mean(axis=2) / 255.0) / lum
        f = [lum, x[..., 0] / lum / 3, x[..., 2] / lum / 3, texture]
    elif modality == "depth":
        d = sample.depth
        scale = np.maximum(_box(d), 0.3)
        rise = _box(np.diff(d, axis=0, append=d[-1:]), 5) / scale  # ground: depth grows upwards
        f = [_box(d, 3), _box((d > 0).astype(np.float32)), rise, _local_std(d) / scale]
    else:
        t = sample.thermal - np.median(sample.thermal)  # relative: ambient varies between scenes
        f = [_box(t, 3), _local_std(t), _box(t, 15)]
    return np.stack(f, axis=-1).reshape(-1, len(f))


class BinnedBayes:
    """Quantile-binned lookup table, class-balanced: the simplest per-pixel classifier there is."""

    def __init__(self, x: np.ndarray, y: np.ndarray, bins: int = 8) -> None:
        qs = np.linspace(0, 1, bins + 1)[1:-1]
        self.edges = [np.unique(np.quantile(x[:, j], qs)) for j in range(x.shape[1])]
        self.bins = bins
        counts = np.zeros((bins ** x.shape[1], NUM_CLASSES))
        np.add.at(counts, (self._cell(x), y), 1)
        counts /= np.maximum(np.bincount(y, minlength=NUM_CLASSES), 1)  # balance the classes
        self.table = counts.argmax(axis=1)
        self.table[counts.sum(axis=1) == 0] = np.bincount(y).argmax()

    def _cell(self, x: np.ndarray) -> np.ndarray:
        idx = np.zeros(len(x), np.int64)
        for j, e in enumerate(self.edges):
            idx = idx * self.bins + np.searchsorted(e, x[:, j])
        return idx

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.table[self._cell(x)]


@pytest.fixture(scope="module")
def train_test():
    gen = SceneGenerator(SIZE, seed=5)  # sampled conditions: night, fog, glare, faults included
    return [gen.sample(i) for i in range(30)], [gen.sample(i) for i in range(100, 130)]


@pytest.mark.parametrize("modality", ["rgb", "depth", "thermal"])
def test_each_modality_alone_carries_most_of_the_scene(train_test, modality):
    train, test = train_test
    model = BinnedBayes(
        np.concatenate([features(s, modality) for s in train]),
        np.concatenate([s.label.ravel() for s in train]).astype(np.int64),
    )
    hits = np.zeros(NUM_CLASSES)
    totals = np.zeros(NUM_CLASSES)
    for s in test:
        y, p = s.label.ravel(), model.predict(features(s, modality))
        totals += np.bincount(y, minlength=NUM_CLASSES)
        hits += np.bincount(y[p == y], minlength=NUM_CLASSES)
    recall = hits / np.maximum(totals, 1)
    assert np.all(totals > 0)
    balanced = recall.mean()
    chance = 1 / NUM_CLASSES
    # held-out scenes, one modality, no position: measured 0.33 (rgb), 0.38 (depth), 0.50 (thermal)
    assert balanced > 2 * chance, f"{modality}: recall per class {np.round(recall, 2)}"
    assert np.sum(recall > 1.2 * chance) >= 5, f"{modality}: recall per class {np.round(recall, 2)}"
