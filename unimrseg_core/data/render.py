"""Ray-cast a :class:`Scene` into ideal (noise-free) images: RGB radiance, depth, temperature, labels.

One pass fills a geometry buffer (depth, class, instance, material, normal) with a
z-test per primitive inside its projected bounding box, nearest primitives first
so that hidden ones are culled cheaply; shading for each sensor then reads that
buffer in a few full-frame passes. Decals are painted into a separate albedo
layer so they change RGB only. Sensor noise and faults come after, in :mod:`.sensors`.

The part pass runs compiled (:mod:`.raster_kernel`, numba) where numba is installed, else in
numpy (``_parts_numpy``); the two draw the same bits (``test/core/data/test_raster_kernel.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from unimrseg_core.data.primitives import FACE_NORMALS, Cone, Ellipsoid, ray_box, ray_cone, ray_ellipsoid
from unimrseg_core.data.scene import BUILDING, GROUND, SKY, Material, Part, Scene
from unimrseg_core.data.textures import TILE, noise_tiles

__all__ = ["GBuffer", "Ideal", "rasterize", "render"]

_NEAR = 0.05
_FAR = 3000.0


@dataclass
class GBuffer:
    t: np.ndarray  # HxW camera depth in metres, inf where nothing (sky)
    cls: np.ndarray  # HxW uint8 class id
    inst: np.ndarray  # HxW int32 instance id (0 = ground/sky)
    mat: np.ndarray  # HxW int32 material index (-1 = sky)
    normal: np.ndarray  # HxWx3 float32
    decal_mat: np.ndarray  # HxW int32 material painted over RGB (-1 = none)
    decal_normal: np.ndarray  # HxWx3 float32
    shadow: np.ndarray  # HxW float32 in [0, 1], cast sun shadow on the ground


@dataclass
class Ideal:
    """Noise-free sensor images plus the buffer they came from."""

    radiance: np.ndarray  # HxWx3 linear RGB before exposure
    temperature: np.ndarray  # HxW kelvin at the sensor
    depth: np.ndarray  # HxW metres, inf = no surface
    window: np.ndarray  # HxW bool, facade glass
    gbuf: GBuffer


_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1])
_CORNER_SIDES = np.array([(x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)])  # Primitive.corners


def _project_parts(scene: Scene, corners: np.ndarray) -> list[tuple[int, int, int, int] | None]:
    """Pixel boxes (v0, v1, u0, u1) of every part's bounding box (``corners``: ``(N, 8, 3)``), in
    one projection.

    Boxes that reach behind the camera are clipped at the near plane first (their
    front corners plus the points where their edges cross it), so a facade beside
    the camera gets a tight pixel box instead of the whole frame.
    """
    cam = scene.camera
    n = len(corners)
    corners = cam.world_to_camera(corners.reshape(-1, 3)).reshape(n, 8, 3)
    c0, c1 = corners[:, _EDGES[:, 0]], corners[:, _EDGES[:, 1]]
    z0, z1 = c0[..., 2], c1[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (_NEAR - z0) / (z1 - z0)
    crossing = (z0 - _NEAR) * (z1 - _NEAR) < 0
    pts = np.concatenate([corners, c0 + frac[..., None] * (c1 - c0)], axis=1)
    ok = np.concatenate([corners[..., 2] > _NEAR, crossing], axis=1)
    z = np.maximum(pts[..., 2], _NEAR)
    u = np.where(ok, cam.cx + cam.fx * pts[..., 0] / z, np.nan)
    v = np.where(ok, cam.cy + cam.fy * pts[..., 1] / z, np.nan)
    visible = ok.any(axis=1)
    boxes: list[tuple[int, int, int, int] | None] = [None] * n
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan rows belong to invisible parts
        u_lo, u_hi = np.floor(np.nanmin(u, axis=1)), np.ceil(np.nanmax(u, axis=1)) + 1
        v_lo, v_hi = np.floor(np.nanmin(v, axis=1)), np.ceil(np.nanmax(v, axis=1)) + 1
    for i in np.flatnonzero(visible):
        u0, u1 = max(int(u_lo[i]), 0), min(int(u_hi[i]), cam.width)
        v0, v1 = max(int(v_lo[i]), 0), min(int(v_hi[i]), cam.height)
        if u0 < u1 and v0 < v1:
            boxes[i] = (v0, v1, u0, u1)
    return boxes


def _ground(scene: Scene, g: GBuffer) -> None:
    cam, gr = scene.camera, scene.ground
    dirs = cam.dirs
    dy = dirs[..., 1]
    with np.errstate(divide="ignore"):
        t = np.where(dy > 1e-6, cam.mount_height_m / dy, np.inf).astype(np.float32)
    t[t > _FAR] = np.inf
    hit = np.isfinite(t)
    tt = np.where(hit, t, 0)
    x = cam.x_m + tt * dirs[..., 0]
    mat = gr.material_at(x)
    if gr.road_half > 0 and gr.marking_mat != gr.road_mat:
        off = np.abs(x - gr.road_x)
        centre = np.flatnonzero(off < 0.08)  # the dashes' arithmetic on the centre line only
        pz = cam.z_m + tt.reshape(-1)[centre] * dirs.reshape(-1, 3)[centre, 2]
        dashed = np.zeros(off.shape, bool)
        dashed.reshape(-1)[centre] = np.mod(pz, 6.0) < 3.0
        kerb_line = np.abs(off - (gr.road_half - 0.25)) < 0.07
        mat[dashed | kerb_line] = gr.marking_mat
    mat[~hit] = -1
    g.t[:] = t
    g.mat[:] = mat
    g.cls[:] = np.where(hit, GROUND, SKY)
    g.normal[..., 1] = -1.0


def _shadows(scene: Scene, g: GBuffer, tab: _PartTable | None) -> None:
    """Project every caster's corners along the sun onto the ground; fill one hull per instance."""
    light = scene.lighting
    if tab is None or light.sun <= 0.05 or light.sun_dir[1] > -0.05:
        return
    casters = np.flatnonzero(tab.casts_shadow & (tab.decal_on < 0))
    if not casters.size:
        return
    cam = scene.camera
    s = light.sun_dir.astype(np.float64)
    c = tab.corners[casters].reshape(-1, 3)
    k = (c[:, 1] - cam.ground_y) / s[1]  # distance along -sun down to the ground (>= 0)
    uv, z = cam.project(c - k[:, None] * s[None, :])
    uv = np.round(uv).reshape(casters.size, 8, 2)
    z = z.reshape(casters.size, 8)
    mask = np.zeros((cam.height, cam.width), dtype=np.uint8)
    drawn = np.all(z > 0.3, axis=1) & np.all(np.abs(uv) < 1e5, axis=(1, 2))
    for hull in uv[drawn].astype(np.int32):
        cv2.fillConvexPoly(mask, cv2.convexHull(hull), 1)
    shadow = np.where(g.cls == GROUND, mask, 0).astype(np.float32)
    g.shadow[:] = cv2.blur(shadow, (3, 3))


def rasterize(scene: Scene) -> GBuffer:
    cam = scene.camera
    h, w = cam.height, cam.width
    g = GBuffer(
        t=np.empty((h, w), np.float32),
        cls=np.empty((h, w), np.uint8),
        inst=np.zeros((h, w), np.int32),
        mat=np.empty((h, w), np.int32),
        normal=np.zeros((h, w, 3), np.float32),
        decal_mat=np.full((h, w), -1, np.int32),
        decal_normal=np.zeros((h, w, 3), np.float32),
        shadow=np.zeros((h, w), np.float32),
    )
    _ground(scene, g)
    tab = _PartTable.of(scene.parts) if scene.parts else None
    if tab is not None:
        _parts(scene, g, tab)
    _shadows(scene, g, tab)
    return g


def _candidates(
    boxes: list[tuple[int, int, int, int] | None], order: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every (part, flat pixel) pair inside the parts' pixel boxes, parts in ``order``, no pixel loop."""
    valid = np.array([i for i in order if boxes[i] is not None], dtype=np.int32)
    if valid.size == 0:
        return valid, valid
    v0, v1, u0, u1 = np.array([boxes[i] for i in valid], dtype=np.int32).T
    wid = u1 - u0
    area = (v1 - v0) * wid
    part = np.repeat(valid, area)
    k = np.arange(int(area.sum()), dtype=np.int32) - np.repeat(np.cumsum(area) - area, area)
    wid_r = np.repeat(wid, area)
    pix = (np.repeat(v0, area) + k // wid_r) * width + np.repeat(u0, area) + k % wid_r
    return part, pix


def _nearest(zbuf: np.ndarray, pix: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Indices of the candidates nearer than ``zbuf`` and nearest among all candidates of their pixel."""
    best = zbuf.copy()
    np.minimum.at(best, pix, t)
    return np.flatnonzero((t == best[pix]) & (t < zbuf[pix]))


@dataclass
class _PartTable:
    """Per-part attributes as arrays, so candidates can gather them."""

    kind: np.ndarray  # 0 box, 1 ellipsoid, 2 cone
    lo: np.ndarray
    hi: np.ndarray
    material: np.ndarray
    cls: np.ndarray
    inst: np.ndarray
    ragged: np.ndarray
    decal_on: np.ndarray
    casts_shadow: np.ndarray

    @property
    def corners(self) -> np.ndarray:
        """``(N, 8, 3)``: every part's ``primitive.corners()``, in one gather."""
        bounds = np.stack([self.lo, self.hi], axis=1)
        return bounds[:, _CORNER_SIDES, np.arange(3)]

    @classmethod
    def of(cls, parts: list[Part]) -> _PartTable:
        bounds = [p.primitive.bounds() for p in parts]
        return cls(
            kind=np.array(
                [isinstance(p.primitive, Ellipsoid) + 2 * isinstance(p.primitive, Cone) for p in parts]
            ),
            lo=np.stack([b[0] for b in bounds]),
            hi=np.stack([b[1] for b in bounds]),
            material=np.array([p.material for p in parts], np.int32),
            cls=np.array([p.class_id for p in parts], np.uint8),
            inst=np.array([p.instance for p in parts], np.int32),
            ragged=np.array([p.ragged for p in parts], np.float32),
            decal_on=np.array([p.decal_on for p in parts], np.int32),
            casts_shadow=np.array([p.casts_shadow for p in parts], bool),
        )


def _intersect(
    scene: Scene, tab: _PartTable, part: np.ndarray, dirs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Hit depth and normal of each candidate; candidates arrive grouped by kind, then by part."""
    origin = scene.camera.origin
    kind = tab.kind[part]
    b_end, e_end = np.searchsorted(kind, [1, 2])
    t = np.empty(part.size, np.float32)
    normal = np.empty((part.size, 3), np.float32)
    pb = part[:b_end]
    t[:b_end], normal[:b_end] = ray_box(origin, dirs[:b_end], tab.lo[pb], tab.hi[pb])
    pe, de = part[b_end:e_end], dirs[b_end:e_end]
    te, ne, edge = ray_ellipsoid(origin, de, (tab.lo[pe] + tab.hi[pe]) / 2, (tab.hi[pe] - tab.lo[pe]) / 2)
    rough = np.flatnonzero(tab.ragged[pe] > 0)
    if rough.size:  # foliage: noise eats the silhouette and opens gaps
        q = origin + np.where(np.isfinite(te[rough]), te[rough], 0)[:, None] * de[rough]
        nz = noise_tiles()[1][
            (q[:, 0] * 9).astype(np.int32) & 255, ((q[:, 1] + q[:, 2]) * 9).astype(np.int32) & 255
        ]
        te[rough[(nz * 0.35 + 0.5) <= tab.ragged[pe[rough]] * (1.0 - np.sqrt(edge[rough]))]] = np.inf
    t[b_end:e_end], normal[b_end:e_end] = te, ne
    starts = [int(i) + e_end for i in np.flatnonzero(np.diff(part[e_end:], prepend=-1))]
    for a, z in zip(starts, [*starts[1:], part.size][: len(starts)], strict=True):
        t[a:z], normal[a:z] = ray_cone(origin, dirs[a:z], scene.parts[part[a]].primitive)
    return t, normal


def _parts(scene: Scene, g: GBuffer, tab: _PartTable) -> None:
    """Draw every part into ``g``: compiled (:mod:`.raster_kernel`) where numba is installed, else
    in numpy; both give the same bits."""
    boxes = _project_parts(scene, tab.corners)
    order = np.argsort(tab.kind, kind="stable")
    kernel = _compiled_kernel()
    if kernel is None:
        _parts_numpy(scene, g, tab, boxes, order)
    else:
        _parts_compiled(kernel, scene, g, tab, boxes, order)


@cache
def _compiled_kernel() -> Callable[..., None] | None:
    """:func:`.raster_kernel.rasterize_parts`, or None where numba is not installed."""
    try:
        from unimrseg_core.data.raster_kernel import rasterize_parts
    except ImportError:
        return None
    return rasterize_parts


def _parts_compiled(
    kernel: Callable[..., None],
    scene: Scene,
    g: GBuffer,
    tab: _PartTable,
    boxes: list[tuple[int, int, int, int] | None],
    order: np.ndarray,
) -> None:
    """The compiled part pass; cones (few pixels) are intersected here, by ``ray_cone`` as in numpy."""
    cam = scene.camera
    dirs = cam.dirs.reshape(-1, 3)
    box_table = np.full((len(boxes), 4), -1, np.int32)
    cone_start = np.zeros(len(boxes), np.int64)
    cone_t, cone_normal = [np.empty(0, np.float32)], [np.empty((0, 3), np.float32)]
    offset = 0
    for i, box in enumerate(boxes):
        if box is None:
            continue
        box_table[i] = box
        if tab.kind[i] == 2:
            v0, v1, u0, u1 = box
            pix = (np.arange(v0, v1)[:, None] * cam.width + np.arange(u0, u1)).reshape(-1)
            t, normal = ray_cone(cam.origin, dirs[pix], scene.parts[i].primitive)
            cone_start[i] = offset
            offset += pix.size
            cone_t.append(t)
            cone_normal.append(normal)
    kernel(
        cam.origin,
        dirs,
        cam.width,
        order,
        box_table,
        (
            tab.kind,
            tab.lo,
            tab.hi,
            (tab.lo + tab.hi) / 2,
            (tab.hi - tab.lo) / 2,
            tab.ragged,
            noise_tiles()[1],
            FACE_NORMALS,
        ),
        (tab.decal_on, tab.cls, tab.inst, tab.material),
        (cone_start, np.concatenate(cone_t), np.concatenate(cone_normal)),
        (
            g.t.reshape(-1),
            g.cls.reshape(-1),
            g.inst.reshape(-1),
            g.mat.reshape(-1),
            g.normal.reshape(-1, 3),
            g.decal_mat.reshape(-1),
            g.decal_normal.reshape(-1, 3),
        ),
    )


def _parts_numpy(
    scene: Scene,
    g: GBuffer,
    tab: _PartTable,
    boxes: list[tuple[int, int, int, int] | None],
    order: np.ndarray,
) -> None:
    """Intersect every candidate ray of every part in one batch per primitive kind, then z-resolve."""
    cam = scene.camera
    part, pix = _candidates(boxes, order, cam.width)
    if part.size == 0:
        return
    t, normal = _intersect(scene, tab, part, cam.dirs.reshape(-1, 3)[pix])
    hit = np.isfinite(t)
    is_decal = tab.decal_on[part] >= 0
    real = np.flatnonzero(hit & ~is_decal)
    t_flat = g.t.reshape(-1)
    won = real[_nearest(t_flat, pix[real], t[real])]
    wp, wpart = pix[won], part[won]
    t_flat[wp] = t[won]
    g.cls.reshape(-1)[wp] = tab.cls[wpart]
    g.inst.reshape(-1)[wp] = tab.inst[wpart]
    g.mat.reshape(-1)[wp] = tab.material[wpart]
    g.normal.reshape(-1, 3)[wp] = normal[won]
    # decals paint only where their carrier is the visible surface
    dec = np.flatnonzero(hit & is_decal)
    dec = dec[g.inst.reshape(-1)[pix[dec]] == tab.decal_on[part[dec]]]
    won = dec[_nearest(np.full(t_flat.shape, np.inf, np.float32), pix[dec], t[dec])]
    g.decal_mat.reshape(-1)[pix[won]] = tab.material[part[won]]
    g.decal_normal.reshape(-1, 3)[pix[won]] = normal[won]


def _windows(scene: Scene, g: GBuffer, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Facade windows (glass panes above the ground floor) and which are lit, from facade coordinates."""
    facades = np.zeros(scene.n_instances + 1, bool)
    for part in scene.parts:
        if part.pattern == "facade":
            facades[part.instance] = True
    on_facade = facades[g.inst] & (g.cls == BUILDING) & (np.abs(g.normal[..., 1]) < 0.5)
    if not on_facade.any():
        return on_facade, on_facade
    facade = np.flatnonzero(on_facade)  # the arithmetic below, on facade pixels only
    inst, normal, q = g.inst.reshape(-1)[facade], g.normal.reshape(-1, 3)[facade], p.reshape(-1, 3)[facade]
    phase = inst.astype(np.float32) * 0.37
    along = np.where(np.abs(normal[:, 0]) > 0.5, q[:, 2], q[:, 0]) / 3.2 + phase
    height = (scene.camera.ground_y - q[:, 1]) / 3.1
    col, row = np.floor(along), np.floor(height)
    fa, fh = along - col, height - row
    in_pane = (height > 0.8) & (fa > 0.25) & (fa < 0.75) & (fh > 0.3) & (fh < 0.8)
    col, row, inst = col[in_pane], row[in_pane], inst[in_pane]
    pane, lit = np.zeros_like(on_facade), np.zeros_like(on_facade)
    pane.reshape(-1)[facade[in_pane]] = True
    lit.reshape(-1)[facade[in_pane]] = (col * 7919 + row * 104729 + inst * 31) % 97 < 30
    return pane, lit


def _table(materials: list[Material]) -> dict[str, np.ndarray]:
    return {
        "albedo": np.stack([m.albedo for m in materials]).astype(np.float32),
        "temp": np.array([m.temperature_k for m in materials], np.float32),
        "gain": np.array([m.solar_gain_k for m in materials], np.float32),
        "texture": np.array([m.texture for m in materials], np.float32),
        "tile": np.array([m.tile for m in materials], np.int32),
        "scale": np.array([m.tex_scale for m in materials], np.float32),
        "offset": np.arange(len(materials), dtype=np.float32) * 37.0,
        "ground_paint": np.array([m.ground_paint for m in materials], bool),
    }


def _texture(tab: dict[str, np.ndarray], mat: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel noise at surface coordinates (a, b), so textures stick to surfaces in perspective."""
    scale, off = np.take(tab["scale"], mat), np.take(tab["offset"], mat)
    ia = (a * scale + off).astype(np.int32) & 255
    ib = (b * scale + 2 * off).astype(np.int32) & 255
    return np.take(noise_tiles().reshape(-1), (np.take(tab["tile"], mat) * TILE + ia) * TILE + ib)


def _dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``einsum("...i,...i->...", a, b)`` over a last axis of 3, summed in einsum's order, without
    numpy's slow inner loops of length 3."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _per_channel(out: np.ndarray, f: Callable[[int], np.ndarray]) -> np.ndarray:
    """``out[..., c] = f(c)`` for every channel: elementwise maths on ``HxWx3`` arrays one long
    strided plane at a time (the same operations, so the same bits, several times faster)."""
    for c in range(out.shape[-1]):
        out[..., c] = f(c)
    return out


def _surface_coords(p: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two coordinates in the plane of each pixel's surface (ground: x, z; walls: along, y)."""
    flat = np.abs(normal[..., 1]) > 0.6
    side = np.abs(normal[..., 0]) > np.abs(normal[..., 2])
    a = np.where(flat | ~side, p[..., 0], p[..., 2])
    b = np.where(flat, p[..., 2], p[..., 1])
    return a, b


def render(scene: Scene) -> Ideal:
    g = rasterize(scene)
    cam, light = scene.camera, scene.lighting
    tab = _table(scene.materials)
    sky = g.mat < 0
    mat = np.maximum(g.mat, 0)
    t0 = np.where(sky, np.float32(0), g.t)
    dirs = cam.dirs
    p = _per_channel(np.empty_like(dirs), lambda c: t0 * dirs[..., c] + cam.origin[c])
    ray_len = np.sqrt(_dot3(dirs, dirs))
    dist = t0 * ray_len
    window, window_lit = _windows(scene, g, p)
    # camouflage paint imitates the lit ground: shade and texture it as if it faced up
    shade_normal = g.normal
    painted = tab["ground_paint"][mat] & ~sky
    if painted.any():
        shade_normal = g.normal.copy()
        shade_normal[painted] = (0.0, -1.0, 0.0)
    a, b = _surface_coords(p, shade_normal)
    tex = _texture(tab, mat, a, b)
    lambert = shade_normal @ light.sun_dir
    np.maximum(lambert, 0, out=lambert)
    sunlit = light.sun * lambert * (1.0 - 0.85 * g.shadow)

    # ---- RGB radiance: albedo x (sun + sky ambient + lamps); decals replace albedo and normal
    decal = g.decal_mat >= 0
    rgb_mat, rgb_tex, rgb_sun, rgb_up = mat, tex, sunlit, shade_normal[..., 1]
    if decal.any():
        dm, dn = g.decal_mat[decal], g.decal_normal[decal]
        rgb_mat = mat.copy()
        rgb_mat[decal] = dm
        rgb_tex = tex.copy()
        rgb_tex[decal] = _texture(tab, dm, *(x[decal] for x in _surface_coords(p, g.decal_normal)))
        rgb_sun = sunlit.copy()
        rgb_sun[decal] = light.sun * np.maximum(dn @ light.sun_dir, 0) * (1.0 - 0.85 * g.shadow[decal])
        rgb_up = rgb_up.copy()
        rgb_up[decal] = dn[:, 1]
    irr = rgb_sun + light.ambient * (0.75 - 0.25 * rgb_up)
    for pos, power in light.lamps:
        to_lamp = pos.astype(np.float32) - p
        d2 = _dot3(to_lamp, to_lamp) + np.float32(1e-3)
        cos = _dot3(shade_normal, to_lamp) / np.sqrt(d2)
        irr += power * np.maximum(cos, 0) / (1.0 + d2 / 2.0)
    radiance = np.take(tab["albedo"], rgb_mat, axis=0)
    light_tex = irr * (1.0 + np.take(tab["texture"], rgb_mat) * rgb_tex)
    _per_channel(radiance, lambda c: radiance[..., c] * light_tex)
    radiance[window] = 0.03 + 0.25 * light.sky_horizon * max(light.ambient * 2, 0.02)
    if light.sun == 0:
        radiance[window_lit] = (0.9, 0.7, 0.35)
    transmit = np.exp(-light.haze * dist)
    haze_rgb = light.haze_color * (light.ambient + 0.3 * light.sun)
    _per_channel(radiance, lambda c: radiance[..., c] * transmit + haze_rgb[c] * (1 - transmit))
    elev = -dirs[..., 1] / ray_len
    if sky.any():
        e = elev[sky]
        grad = np.clip(e * 3.0, 0, 1)[:, None] ** 0.7
        sky_rgb = light.sky_horizon + (light.sky_zenith - light.sky_horizon) * grad
        if light.sun > 0.5:  # clouds on clear days
            inv = 1.0 / np.maximum(e, 0.05)
            d = dirs[sky]
            cloud = noise_tiles()[2][
                (d[:, 0] * inv * 30).astype(np.int32) & 255, (inv * 30).astype(np.int32) & 255
            ]
            sky_rgb = sky_rgb + np.clip(cloud - 0.6, 0, 1)[:, None] * 0.35
        radiance[sky] = sky_rgb * (1.0 if light.sun > 0 else 0.5)

    # ---- temperature: material + sun heating, cooler at grazing angles, cold sky, contrast
    temp = tab["temp"][mat] + tab["gain"][mat] * (sunlit / max(light.sun, 1e-6) * min(light.sun, 1.0))
    temp += 0.4 * tex
    temp[window] = scene.ambient_k - 5.0
    view_cos = np.abs(_dot3(g.normal, dirs)) / ray_len
    temp -= 2.0 * (1.0 - view_cos) ** 2
    tau = np.exp(-0.15 * light.haze * dist)
    temp = temp * tau + scene.ambient_k * (1 - tau)
    sky_t = scene.sky_k + (scene.ambient_k - scene.sky_k) * (1 - np.clip(elev * 4.0, 0, 1))
    temp = np.where(sky, sky_t, temp)
    temp = scene.ambient_k + (temp - scene.ambient_k) * scene.thermal_contrast

    depth = np.where(sky, np.float32(np.inf), g.t)
    return Ideal(
        radiance.astype(np.float32, copy=False), temp.astype(np.float32, copy=False), depth, window, g
    )
