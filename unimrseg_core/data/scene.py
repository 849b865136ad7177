"""Sampling a 3-D scene: layout, objects, materials, lighting and temperatures.

A :class:`Scene` is pure description (world coordinates, no pixels), so the same
scene can be rendered from any camera pose (stills now, a moving robot later).
The cues that make the modalities complementary are decided here; they are
listed in :mod:`unimrseg_core.data` (module docstring) and tested in
``test/core/data/test_world_cues.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from unimrseg_core.data.camera import Camera
from unimrseg_core.data.primitives import Box, Cone, Ellipsoid, Primitive
from unimrseg_core.modalities import class_id

__all__ = ["Ground", "Lighting", "Material", "Part", "Scene", "sample_scene"]

BACKGROUND, GROUND, SKY = class_id("background"), class_id("ground"), class_id("sky")
BUILDING, VEGETATION = class_id("building"), class_id("vegetation")
PERSON, VEHICLE, OBSTACLE = class_id("person"), class_id("vehicle"), class_id("obstacle")

LAYOUTS = ("street", "park", "plaza")


def _lin(srgb: tuple[int, int, int]) -> np.ndarray:
    return (np.asarray(srgb, dtype=np.float32) / 255.0) ** 2.2


# sRGB palettes; person clothing is deliberately wide so that colour alone never says "person"
SHIRTS = [
    (200, 40, 40),
    (30, 60, 140),
    (240, 240, 235),
    (30, 30, 32),
    (60, 120, 60),
    (230, 180, 40),
    (120, 70, 140),
    (90, 90, 95),
    (200, 120, 150),
    (70, 160, 190),
    (150, 100, 60),
    (180, 180, 170),
]
TROUSERS = [(25, 30, 45), (40, 50, 90), (60, 60, 62), (150, 130, 100), (20, 20, 22), (100, 80, 60)]
SKIN = [(240, 200, 170), (210, 160, 120), (170, 120, 80), (110, 75, 50), (80, 55, 40)]
HAIR = [(30, 25, 20), (80, 50, 30), (150, 120, 70), (20, 20, 20), (170, 170, 165)]
CAR_PAINT = [
    (200, 200, 205),
    (25, 25, 28),
    (150, 20, 25),
    (30, 50, 110),
    (120, 125, 130),
    (240, 240, 240),
    (40, 80, 50),
    (200, 170, 60),
    (90, 60, 40),
]
FACADES = [
    (180, 160, 130),
    (150, 70, 55),
    (120, 120, 118),
    (210, 205, 195),
    (200, 180, 120),
    (110, 95, 80),
    (160, 170, 175),
]
FOLIAGE = [(60, 100, 40), (40, 80, 35), (90, 120, 50), (70, 90, 40), (100, 110, 60)]


@dataclass
class Material:
    """Surface properties for the three sensors."""

    albedo: np.ndarray  # linear RGB in [0, 1]
    temperature_k: float  # surface temperature without sun
    solar_gain_k: float = 0.0  # extra kelvin when fully sunlit
    texture: float = 0.15  # albedo modulation amplitude
    tile: int = 0  # which noise tile textures it
    tex_scale: float = 40.0  # texels per metre
    depth_return: float = 1.0  # chance that the depth sensor gets a valid return
    emission: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.float32))
    # camouflage paint: in RGB the surface is shaded and textured as the lit ground it stands on
    ground_paint: bool = False


@dataclass
class Part:
    """One primitive of one object instance."""

    primitive: Primitive
    material: int
    class_id: int
    instance: int
    ragged: float = 0.0  # foliage: silhouette eaten by noise, see-through gaps
    pattern: str | None = None  # "facade": windows drawn from facade coordinates
    decal_on: int = -1  # >= 0: a picture painted on that instance (RGB only)
    casts_shadow: bool = True


@dataclass
class Ground:
    road_x: float  # road centre line
    road_half: float  # 0 = no road
    sidewalk: float
    road_mat: int
    marking_mat: int
    sidewalk_mat: int
    verge_mat: int
    puddle_mat: int

    def material_at(self, x: np.ndarray | float) -> np.ndarray:
        """Material under lateral position(s) x: road, then sidewalk, then verge (markings aside)."""
        off = np.abs(np.asarray(x, dtype=np.float32) - self.road_x)
        mat = np.full(off.shape, self.verge_mat, np.int32)
        mat[off < self.road_half + self.sidewalk] = self.sidewalk_mat
        mat[off < self.road_half] = self.road_mat
        return mat


@dataclass
class Lighting:
    sun_dir: np.ndarray  # unit vector towards the sun (Y down, so up is negative y)
    sun: float  # direct sun irradiance (0 at night, low in fog)
    ambient: float
    sky_zenith: np.ndarray  # linear RGB
    sky_horizon: np.ndarray
    haze: float  # RGB extinction per metre
    haze_color: np.ndarray
    exposure: float
    lamps: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (position, intensity)
    glare: tuple[float, float, float] | None = None  # (u, v, radius) in image fractions


@dataclass
class Scene:
    layout: str
    conditions: tuple[str, ...]
    camera: Camera
    materials: list[Material]
    parts: list[Part]
    ground: Ground
    lighting: Lighting
    ambient_k: float
    sky_k: float
    thermal_contrast: float  # 1 normal, << 1 in thermal crossover
    n_instances: int
    instance_class: dict[int, int]  # instance id -> class id of real objects (no decals)


class _Builder:
    """Accumulates materials and parts while a scene is sampled."""

    def __init__(self, rng: np.random.Generator, ambient_k: float, sunny: float) -> None:
        self.rng = rng
        self.ambient_k = ambient_k
        self.sunny = sunny  # scales solar gains (0 at night)
        self.materials: list[Material] = []
        self.parts: list[Part] = []
        self.instance_class: dict[int, int] = {}
        self.next_instance = 1

    def material(self, srgb: tuple[int, int, int], temp_k: float, *, jitter: float = 0.08, **kw) -> int:
        albedo = _lin(srgb) * self.rng.uniform(1 - jitter, 1 + jitter, 3).astype(np.float32)
        self.materials.append(Material(np.clip(albedo, 0, 1).astype(np.float32), float(temp_k), **kw))
        return len(self.materials) - 1

    def instance(self, cls: int, *, decal: bool = False) -> int:
        inst = self.next_instance
        self.next_instance += 1
        if not decal:
            self.instance_class[inst] = cls
        return inst

    def add(self, prim: Primitive, mat: int, cls: int, inst: int, **kw) -> None:
        self.parts.append(Part(prim, mat, cls, inst, **kw))

    def pick(self, palette: list[tuple[int, int, int]]) -> tuple[int, int, int]:
        return palette[int(self.rng.integers(len(palette)))]


# ------------------------------------------------------------------------ objects


def _person(b: _Builder, x: float, z: float, gy: float, *, decal_on: int = -1, scale: float = 1.0) -> None:
    """Ellipsoid person standing at (x, z): legs, torso, arms, head. Warm skin, warm-ish clothes."""
    rng = b.rng
    s = scale * rng.uniform(0.88, 1.08)
    cls = PERSON
    inst = b.instance(PERSON, decal=decal_on >= 0)
    body_k = b.ambient_k + 0.55 * (307.0 - b.ambient_k) + rng.normal(0, 0.6)
    skin_k = rng.uniform(305.5, 308.5)
    shirt = b.material(b.pick(SHIRTS), body_k, solar_gain_k=4 * b.sunny, texture=0.12, tile=1, tex_scale=60)
    legs = b.material(
        b.pick(TROUSERS), body_k - 1.0, solar_gain_k=4 * b.sunny, texture=0.1, tile=3, tex_scale=60
    )
    skin = b.material(b.pick(SKIN), skin_k, texture=0.05, tex_scale=80)
    hair = b.material(b.pick(HAIR), body_k - 2.0, texture=0.2, tile=3, tex_scale=120, depth_return=0.8)
    walk = rng.uniform(-0.12, 0.12) * s
    kw = {"decal_on": decal_on, "casts_shadow": decal_on < 0}
    for side in (-1, 1):
        b.add(
            Ellipsoid((x + side * 0.1 * s, gy - 0.45 * s, z + side * walk), (0.09 * s, 0.46 * s, 0.11 * s)),
            legs,
            cls,
            inst,
            **kw,
        )
        b.add(
            Ellipsoid(
                (x + side * 0.25 * s, gy - 1.13 * s, z - side * walk * 0.6), (0.06 * s, 0.33 * s, 0.07 * s)
            ),
            shirt,
            cls,
            inst,
            **kw,
        )
        b.add(
            Ellipsoid((x + side * 0.25 * s, gy - 0.78 * s, z - side * walk), (0.05 * s,) * 3),
            skin,
            cls,
            inst,
            **kw,
        )
    b.add(Ellipsoid((x, gy - 1.17 * s, z), (0.21 * s, 0.33 * s, 0.13 * s)), shirt, cls, inst, **kw)
    b.add(Ellipsoid((x, gy - 1.57 * s, z), (0.075 * s, 0.09 * s, 0.08 * s)), skin, cls, inst, **kw)
    b.add(Ellipsoid((x, gy - 1.64 * s, z + 0.01), (0.085 * s, 0.06 * s, 0.085 * s)), hair, cls, inst, **kw)


def _vehicle(
    b: _Builder,
    x: float,
    z: float,
    gy: float,
    *,
    along_z: bool = True,
    decal_on: int = -1,
    running: bool = False,
    kind: str = "car",
) -> None:
    """Car or van from boxes: wheels, body, hot hood if the engine runs, glass cabin, roof."""
    rng = b.rng
    cls = VEHICLE
    inst = b.instance(VEHICLE, decal=decal_on >= 0)
    length, width = (rng.uniform(3.9, 4.8), rng.uniform(1.7, 1.9)) if kind == "car" else (5.5, 2.0)
    body_h = 0.75 if kind == "car" else 1.9
    paint = b.pick(CAR_PAINT)
    dark_paint = sum(paint) < 150
    body = b.material(
        paint,
        b.ambient_k + 1,
        solar_gain_k=12 * b.sunny,
        texture=0.03,
        tex_scale=20,
        depth_return=0.7 if dark_paint else 0.97,
    )
    hood = b.material(
        paint,
        b.ambient_k + (rng.uniform(25, 45) if running else 4),
        solar_gain_k=12 * b.sunny,
        texture=0.03,
        tex_scale=20,
        depth_return=0.7 if dark_paint else 0.97,
    )
    glass = b.material((40, 50, 60), b.ambient_k - 6, texture=0.05, depth_return=0.25, jitter=0.2)
    tyre = b.material((25, 25, 25), b.ambient_k + (12 if running else 2), texture=0.05, depth_return=0.6)
    kw = {"decal_on": decal_on, "casts_shadow": decal_on < 0}

    def box(dx0: float, dx1: float, y0: float, y1: float, dz0: float, dz1: float, mat: int) -> None:
        # dx along the width, dz along the length of the car
        if along_z:
            lo, hi = (x + dx0, gy - y1, z + dz0), (x + dx1, gy - y0, z + dz1)
        else:
            lo, hi = (x + dz0, gy - y1, z + dx0), (x + dz1, gy - y0, z + dx1)
        b.add(Box(lo, hi), mat, cls, inst, **kw)

    hw, hl = width / 2, length / 2
    front = -1 if rng.random() < 0.5 else 1  # which end the engine is at
    hood_len = 1.1 if kind == "car" else 0.6
    for wz in (-hl + 0.75, hl - 0.75):
        box(-hw, -hw + 0.25, 0.0, 0.62, wz - 0.31, wz + 0.31, tyre)
        box(hw - 0.25, hw, 0.0, 0.62, wz - 0.31, wz + 0.31, tyre)
    body_z = (-hl, hl - hood_len) if front > 0 else (-hl + hood_len, hl)
    hood_z = (hl - hood_len, hl) if front > 0 else (-hl, -hl + hood_len)
    box(-hw, hw, 0.3, 0.3 + body_h, *body_z, body)
    box(-hw, hw, 0.3, 0.3 + body_h * 0.85, *hood_z, hood)
    if kind == "car":
        cab = (-hl + 0.9, hl - hood_len - 0.2) if front > 0 else (-hl + hood_len + 0.2, hl - 0.9)
        box(-hw + 0.08, hw - 0.08, 0.3 + body_h, 1.38, *cab, glass)
        box(-hw + 0.05, hw - 0.05, 1.38, 1.46, cab[0] + 0.1, cab[1] - 0.1, body)
    else:
        box(-hw + 0.05, hw - 0.05, 0.3 + body_h * 0.85, 0.3 + body_h * 0.85 + 0.6, *hood_z, glass)


def _tree(b: _Builder, x: float, z: float, gy: float) -> None:
    rng = b.rng
    inst = b.instance(VEGETATION)
    bark = b.material(
        (90, 70, 50), b.ambient_k - 1, solar_gain_k=3 * b.sunny, texture=0.3, tile=3, tex_scale=50
    )
    leaves = b.material(
        b.pick(FOLIAGE),
        b.ambient_k - rng.uniform(2.0, 4.0),
        solar_gain_k=1.5 * b.sunny,
        texture=0.35,
        tile=1,
        tex_scale=25,
        depth_return=0.9,
    )
    trunk_h = rng.uniform(1.8, 3.2)
    b.add(Box((x - 0.13, gy - trunk_h - 0.5, z - 0.13), (x + 0.13, gy, z + 0.13)), bark, VEGETATION, inst)
    crown_r = rng.uniform(1.2, 2.4)
    for _ in range(int(rng.integers(2, 5))):
        cx, cz = x + rng.normal(0, crown_r * 0.35), z + rng.normal(0, crown_r * 0.35)
        cy = gy - trunk_h - crown_r * rng.uniform(0.6, 1.0)
        r = crown_r * rng.uniform(0.7, 1.0)
        b.add(
            Ellipsoid((cx, cy, cz), (r, r * rng.uniform(0.8, 1.1), r)), leaves, VEGETATION, inst, ragged=0.55
        )


def _bush(b: _Builder, x: float, z: float, gy: float, length: float) -> None:
    inst = b.instance(VEGETATION)
    leaves = b.material(
        b.pick(FOLIAGE),
        b.ambient_k - b.rng.uniform(1.5, 3.0),
        solar_gain_k=1.5 * b.sunny,
        texture=0.35,
        tile=1,
        tex_scale=30,
    )
    h = b.rng.uniform(0.5, 1.1)
    b.add(Ellipsoid((x, gy - h * 0.45, z), (0.6, h * 0.7, length / 2)), leaves, VEGETATION, inst, ragged=0.4)


def _obstacle(b: _Builder, x: float, z: float, gy: float, ground: Ground) -> None:
    """Cone, crate, barrier, or a box painted like the ground (visible in depth, not in RGB)."""
    rng = b.rng
    inst = b.instance(OBSTACLE)
    kind = rng.choice(["cone", "crate", "barrier", "camouflage"], p=[0.35, 0.25, 0.2, 0.2])
    if kind == "cone":
        mat = b.material((235, 95, 20), b.ambient_k + 0.5, solar_gain_k=7 * b.sunny, texture=0.05)
        h = rng.uniform(0.45, 0.8)
        b.add(Cone(x, z, gy, h * 0.28, h), mat, OBSTACLE, inst)
        b.add(Box((x - h * 0.3, gy - 0.04, z - h * 0.3), (x + h * 0.3, gy, z + h * 0.3)), mat, OBSTACLE, inst)
    elif kind == "barrier":
        colour = (200, 40, 35) if rng.random() < 0.5 else (170, 170, 165)
        mat = b.material(colour, b.ambient_k, solar_gain_k=8 * b.sunny, texture=0.1, tex_scale=30)
        w = rng.uniform(1.5, 2.5)
        b.add(Box((x - w / 2, gy - 0.9, z - 0.25), (x + w / 2, gy, z + 0.25)), mat, OBSTACLE, inst)
    else:
        size = rng.uniform(0.4, 1.0, 3) * np.array([1.0, 0.8, 1.0])
        if kind == "crate":
            mat = b.material(
                (150, 110, 70),
                b.ambient_k - 0.5,
                solar_gain_k=5 * b.sunny,
                texture=0.25,
                tile=3,
                tex_scale=40,
            )
        else:  # painted like the ground it stands on; cooler than sun-baked asphalt
            ground_mat = b.materials[int(ground.material_at(x))]
            srgb = tuple(int(c) for c in np.clip((ground_mat.albedo ** (1 / 2.2)) * 255, 0, 255))
            mat = b.material(
                srgb,
                b.ambient_k - 1,
                solar_gain_k=4 * b.sunny,
                texture=ground_mat.texture,
                tile=ground_mat.tile,
                tex_scale=ground_mat.tex_scale,
                jitter=0.02,
                ground_paint=True,
            )
        b.add(
            Box((x - size[0] / 2, gy - size[1], z - size[2] / 2), (x + size[0] / 2, gy, z + size[2] / 2)),
            mat,
            OBSTACLE,
            inst,
        )


def _building(b: _Builder, lo: tuple[float, float, float], hi: tuple[float, float, float]) -> int:
    inst = b.instance(BUILDING)
    mat = b.material(
        b.pick(FACADES), b.ambient_k + 1, solar_gain_k=7 * b.sunny, texture=0.2, tile=0, tex_scale=30
    )
    b.add(Box(lo, hi), mat, BUILDING, inst, pattern="facade")
    return inst


def _billboard(b: _Builder, x: float, z: float, gy: float, facing_x: bool) -> tuple[int, tuple[float, ...]]:
    """A board on posts (background class); returns its instance and its front plane."""
    inst = b.instance(BACKGROUND)
    board = b.material((235, 235, 230), b.ambient_k + 1, solar_gain_k=5 * b.sunny, texture=0.05)
    post = b.material((80, 80, 85), b.ambient_k, solar_gain_k=6 * b.sunny, texture=0.05)
    w, h, bottom = b.rng.uniform(3, 5), b.rng.uniform(2, 3), b.rng.uniform(0.6, 1.2)
    if facing_x:
        b.add(
            Box((x - 0.05, gy - bottom - h, z - w / 2), (x + 0.05, gy - bottom, z + w / 2)),
            board,
            BACKGROUND,
            inst,
        )
    else:
        b.add(
            Box((x - w / 2, gy - bottom - h, z - 0.05), (x + w / 2, gy - bottom, z + 0.05)),
            board,
            BACKGROUND,
            inst,
        )
    for off in (-w / 3, w / 3):
        px, pz = (x, z + off) if facing_x else (x + off, z)
        b.add(Box((px - 0.06, gy - bottom, pz - 0.06), (px + 0.06, gy, pz + 0.06)), post, BACKGROUND, inst)
    return inst, (x, z, w, h, bottom)


def _pole(b: _Builder, x: float, z: float, gy: float) -> float:
    inst = b.instance(BACKGROUND)
    mat = b.material((90, 95, 100), b.ambient_k, solar_gain_k=8 * b.sunny, texture=0.05)
    h = b.rng.uniform(4.0, 6.0)
    b.add(Box((x - 0.07, gy - h, z - 0.07), (x + 0.07, gy, z + 0.07)), mat, BACKGROUND, inst)
    return h


# ------------------------------------------------------------------------ layouts


def _ground(b: _Builder, layout: str) -> Ground:
    rng = b.rng
    sun = b.sunny
    asphalt = b.material(
        (75, 75, 78), b.ambient_k + 2, solar_gain_k=16 * sun, texture=0.25, tile=0, tex_scale=40
    )
    marking = b.material(
        (230, 230, 220), b.ambient_k + 1, solar_gain_k=9 * sun, texture=0.1, tile=0, tex_scale=40
    )
    paving = b.material(
        (150, 145, 135), b.ambient_k + 1.5, solar_gain_k=10 * sun, texture=0.2, tile=0, tex_scale=20
    )
    grass = b.material(
        (85, 120, 50), b.ambient_k - 1.5, solar_gain_k=3 * sun, texture=0.35, tile=1, tex_scale=30
    )
    dirt = b.material(
        (140, 115, 85), b.ambient_k + 1, solar_gain_k=10 * sun, texture=0.3, tile=1, tex_scale=25
    )
    puddle = b.material((45, 50, 55), b.ambient_k - 2, texture=0.05, depth_return=0.05)
    if layout == "street":
        return Ground(
            0.0, rng.uniform(3.0, 5.0), rng.uniform(1.8, 3.0), asphalt, marking, paving, paving, puddle
        )
    if layout == "park":
        path = dirt if rng.random() < 0.5 else paving
        return Ground(rng.uniform(-2, 2), rng.uniform(1.0, 2.0), 0.0, path, path, path, grass, puddle)
    return Ground(0.0, 0.0, 0.0, paving, marking, paving, paving, puddle)


def _along(rng: np.random.Generator, z0: float, z1: float, gap: tuple[float, float]) -> list[float]:
    zs, z = [], z0 + rng.uniform(0, gap[1])
    while z < z1:
        zs.append(z)
        z += rng.uniform(*gap)
    return zs


def _populate(b: _Builder, layout: str, g: Ground, gy: float) -> list[tuple[int, str, tuple[float, ...]]]:
    """Place structure and objects; returns decal carriers (instance, kind, geometry)."""
    rng = b.rng
    carriers: list[tuple[int, str, tuple[float, ...]]] = []
    edge = g.road_half + g.sidewalk
    if layout == "street":
        for side in (-1, 1):
            if side == 1 and rng.random() < 0.2:
                continue
            z = rng.uniform(-12, -4)
            while z < 90:
                length, gap = rng.uniform(10, 28), rng.uniform(0, 7) if rng.random() < 0.5 else 0.0
                height, depth = rng.uniform(6, 22), rng.uniform(8, 14)
                x_face = side * (edge + rng.uniform(0, 0.4))
                lo = (x_face, gy - height, z) if side > 0 else (x_face - depth, gy - height, z)
                hi = (x_face + depth, gy, z + length) if side > 0 else (x_face, gy, z + length)
                inst = _building(b, lo, hi)
                carriers.append((inst, "wall_x", (x_face, z, z + length, side)))
                z += length + gap
            for tz in _along(rng, 3, 60, (7, 16)):
                if rng.random() < 0.6:
                    _tree(b, side * (g.road_half + g.sidewalk * 0.5), tz, gy)
            for pz in _along(rng, 5, 70, (15, 30)):
                _pole(b, side * (g.road_half + 0.3), pz, gy)
        for _ in range(int(rng.integers(1, 6))):  # parked along the kerb
            side = -1 if rng.random() < 0.5 else 1
            _vehicle(b, side * (g.road_half - 1.1), rng.uniform(4, 45), gy)
        for _ in range(int(rng.integers(0, 3))):  # driving in a lane
            _vehicle(b, rng.choice([-1, 1]) * g.road_half * 0.45, rng.uniform(8, 50), gy, running=True)
        far = (-60, 60)
    elif layout == "park":
        for _ in range(int(rng.integers(4, 12))):
            _tree(b, rng.uniform(-25, 25), rng.uniform(6, 60), gy)
        for _ in range(int(rng.integers(1, 5))):
            _bush(b, rng.uniform(-12, 12), rng.uniform(4, 30), gy, rng.uniform(1, 5))
        for _ in range(int(rng.integers(0, 3))):
            x0, z0 = rng.uniform(-30, 20), rng.uniform(30, 70)
            inst = _building(b, (x0, gy - rng.uniform(5, 15), z0), (x0 + rng.uniform(8, 20), gy, z0 + 10))
            carriers.append((inst, "wall_z", (x0, z0)))
        for _ in range(int(rng.integers(0, 3))):
            _vehicle(b, rng.uniform(-15, 15), rng.uniform(15, 40), gy, along_z=False)
        far = (-80, 80)
    else:  # plaza / car park
        for row_z in np.arange(rng.uniform(7, 10), 40, rng.uniform(6, 8)):
            for col_x in np.arange(-14, 14, 2.6):
                if rng.random() < 0.35:
                    _vehicle(
                        b,
                        col_x + rng.normal(0, 0.15),
                        row_z,
                        gy,
                        along_z=True,
                        kind="van" if rng.random() < 0.15 else "car",
                    )
        for fx in _along(rng, -40, 40, (12, 25)):
            z0 = rng.uniform(42, 60)
            inst = _building(b, (fx, gy - rng.uniform(6, 18), z0), (fx + rng.uniform(10, 20), gy, z0 + 12))
            carriers.append((inst, "wall_z", (fx, z0)))
        for px in _along(rng, -15, 15, (8, 14)):
            _pole(b, px, rng.uniform(5, 35), gy)
        far = (-80, 80)
    # skyline far beyond the depth sensor's range: only RGB and thermal see it
    for sx in _along(rng, far[0], far[1], (8, 20)):
        z0 = rng.uniform(95, 140)
        if rng.random() < 0.6:
            _building(b, (sx, gy - rng.uniform(8, 35), z0), (sx + rng.uniform(8, 20), gy, z0 + 10))
        else:
            inst = b.instance(VEGETATION)
            leaves = b.material(
                b.pick(FOLIAGE),
                b.ambient_k - 2,
                solar_gain_k=1.5 * b.sunny,
                texture=0.35,
                tile=1,
                tex_scale=10,
            )
            r = rng.uniform(4, 9)
            b.add(Ellipsoid((sx, gy - r * 0.8, z0), (r, r, r)), leaves, VEGETATION, inst, ragged=0.5)
    # billboards can carry decals too
    for _ in range(int(rng.integers(0, 3))):
        facing_x = layout == "street" and rng.random() < 0.5
        side = -1 if rng.random() < 0.5 else 1
        x = side * (g.road_half + 0.6) if facing_x else rng.uniform(-8, 8)
        inst, geom = _billboard(b, x, rng.uniform(6, 30), gy, facing_x)
        carriers.append((inst, "board_x" if facing_x else "board_z", (*geom, side)))
    # people on pavements and crossing, obstacles on the ground
    for _ in range(int(rng.integers(1, 9))):
        if layout == "street" and rng.random() < 0.7:
            x = rng.choice([-1, 1]) * rng.uniform(g.road_half + 0.3, edge - 0.3)
        else:
            x = rng.uniform(-max(edge, 6), max(edge, 6))
        _person(b, x, rng.uniform(2.5, 35), gy, scale=0.65 if rng.random() < 0.12 else 1.0)
    for _ in range(int(rng.integers(0, 7))):
        x = rng.uniform(-max(g.road_half, 4), max(g.road_half, 4))
        _obstacle(b, x, rng.uniform(2.5, 25), gy, g)
    return carriers


def _decals(b: _Builder, carriers: list[tuple[int, str, tuple[float, ...]]], gy: float) -> None:
    """Pictures of people and cars on walls and boards: right in RGB, flat in depth, cold in thermal."""
    rng = b.rng
    n = min(len(carriers), int(rng.choice([0, 1, 1, 2, 3])))
    for idx in rng.choice(len(carriers), size=n, replace=False):
        inst, kind, geom = carriers[int(idx)]
        person = rng.random() < 0.65
        if kind == "wall_x":  # facade parallel to the road, decal faces the road
            x_face, z0, z1, side = geom
            if z1 - z0 < 6:
                continue
            x, z, along = x_face - side * 0.5, rng.uniform(z0 + 2, z1 - 2), True
            base = gy - rng.uniform(0, 1.5)
        elif kind == "wall_z":  # facade facing the camera
            x0, z0 = geom
            x, z, along = x0 + rng.uniform(3, 6), z0 - 1.2, False
            base = gy - rng.uniform(0, 1.5)
        elif kind == "board_x":  # board facing the road
            x0, z, _w, _h, bottom, side = geom
            x, along, base = x0 - side * 0.35, True, gy - bottom
        else:  # board facing the camera
            x, z0, _w, _h, bottom, _side = geom
            z, along, base = z0 - 1.1, False, gy - bottom
        if person:
            _person(b, x, z, base, decal_on=inst)
        else:
            _vehicle(b, x, z, base, along_z=along, decal_on=inst)


# ----------------------------------------------------------------------- lighting


def _lighting(rng: np.random.Generator, lighting: str, cam: Camera, lamps: list[np.ndarray]) -> Lighting:
    elevation = math.radians(rng.uniform(25, 65))
    azimuth = rng.uniform(-math.pi, math.pi)
    glare = None
    if lighting == "glare":  # a low sun (or lamp) inside the field of view
        elevation = math.radians(rng.uniform(3, 15))
        azimuth = cam.yaw_rad + rng.uniform(-0.35, 0.35)
        glare = (
            float(rng.uniform(0.15, 0.85)),
            float(rng.uniform(0.05, 0.45)),
            float(rng.uniform(0.18, 0.35)),
        )
    sun_dir = np.array(
        [
            math.cos(elevation) * math.sin(azimuth),
            -math.sin(elevation),
            math.cos(elevation) * math.cos(azimuth),
        ],
        dtype=np.float32,
    )
    if lighting == "night":
        lamp_list = [(p, float(rng.uniform(2.0, 4.0))) for p in lamps]
        return Lighting(
            sun_dir,
            0.0,
            rng.uniform(0.012, 0.03),
            _lin((10, 14, 30)),
            _lin((25, 28, 45)),
            0.003,
            _lin((20, 22, 35)),
            rng.uniform(1.8, 2.6),
            lamp_list,
            None,
        )
    if lighting == "fog":
        grey = _lin((int(rng.integers(175, 215)),) * 3)
        return Lighting(
            sun_dir,
            rng.uniform(0.0, 0.3),
            rng.uniform(0.55, 0.75),
            grey,
            grey,
            rng.uniform(0.04, 0.12),
            grey,
            rng.uniform(1.1, 1.4),
            [],
            None,
        )
    return Lighting(
        sun_dir,
        rng.uniform(0.8, 1.1),
        rng.uniform(0.3, 0.45),
        _lin((70, 120, 200)),
        _lin((175, 200, 230)),
        rng.uniform(0.002, 0.006),
        _lin((190, 205, 225)),
        rng.uniform(0.9, 1.2),
        [],
        glare,
    )


# -------------------------------------------------------------------------- entry


def sample_scene(rng: np.random.Generator, conditions: tuple[str, ...], size: tuple[int, int]) -> Scene:
    """Sample a layout, a camera on a robot and everything in view, under ``conditions``."""
    lighting_name = conditions[0]
    layout = LAYOUTS[int(rng.choice(3, p=[0.5, 0.25, 0.25]))]
    height, width = size
    cam_h = rng.uniform(0.6, 1.8)  # from a small ground robot to a mast
    cam = Camera.from_fov(
        width,
        height,
        rng.uniform(60, 80),
        cam_h,
        pitch_rad=math.radians(rng.uniform(-2, 10)),
        yaw_rad=math.radians(rng.uniform(-12, 12)),
        x_m=rng.uniform(-2.0, 2.0),
    )
    gy = cam.ground_y
    if lighting_name == "night":
        ambient_k = rng.uniform(270, 285)
    elif "thermal_washout" in conditions:
        ambient_k = rng.uniform(300, 306)  # crossover: the world reaches body temperature
    else:
        ambient_k = rng.uniform(280, 300)
    sunny = {"day": 1.0, "glare": 1.0, "fog": 0.2, "night": 0.0}[lighting_name]
    b = _Builder(rng, ambient_k, sunny)
    g = _ground(b, layout)
    carriers = _populate(b, layout, g, gy)
    _decals(b, carriers, gy)
    lamps = [
        np.array([p.primitive.bounds()[0][0], p.primitive.bounds()[0][1], p.primitive.bounds()[0][2]])
        for p in b.parts
        if p.class_id == BACKGROUND
        and isinstance(p.primitive, Box)
        and p.primitive.bounds()[1][1] - p.primitive.bounds()[0][1] > 3.5
    ]
    if lighting_name == "night" and not lamps:
        lamps = [np.array([rng.uniform(-6, 6), gy - 5.0, rng.uniform(5, 20)]) for _ in range(2)]
    lighting = _lighting(rng, lighting_name, cam, lamps)
    sky_k = ambient_k - (
        rng.uniform(30, 50) if lighting_name in ("day", "glare", "night") else rng.uniform(5, 12)
    )
    contrast = rng.uniform(0.12, 0.25) if "thermal_washout" in conditions else 1.0
    return Scene(
        layout,
        conditions,
        cam,
        b.materials,
        b.parts,
        g,
        lighting,
        float(ambient_k),
        float(sky_k),
        float(contrast),
        b.next_instance,
        b.instance_class,
    )
