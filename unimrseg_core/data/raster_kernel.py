"""The renderer's part pass compiled with numba: the same arithmetic as :mod:`.render`'s numpy pass.

:func:`rasterize_parts` intersects every (part, pixel) candidate of the parts' pixel boxes and
z-resolves them into the geometry buffer in one loop, with no candidate arrays. It reproduces the
numpy pass bit for bit: the same float32 operations in the same order (``ray_box``,
``ray_ellipsoid`` and the foliage gaps of :mod:`.render`), no fast-math (so no fused
multiply-adds), and the same winner where depths tie (the last candidate in the numpy pass's
order). ``test/core/data/test_raster_kernel.py`` compares the two on generated and random scenes.

Importing this module imports numba; :mod:`.render` imports it lazily and falls back to the numpy
pass where numba is missing. Compiled functions are cached on disk (``cache=True``), so a new
process (a DataLoader or pool worker) loads them instead of compiling again.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["rasterize_parts"]

_EPS = np.float32(1e-6)
_INF = np.float32(np.inf)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_GAP_SCALE = np.float32(9.0)  # texels per metre of the foliage noise (render._intersect)
_GAP_GAIN = np.float32(0.35)
_GAP_BIAS = np.float32(0.5)
_JIT = {"cache": True, "error_model": "numpy", "nogil": True}


@numba.njit(**_JIT)
def _boxes(
    origin: np.ndarray, dirs: np.ndarray, pixels: np.ndarray, lo: np.ndarray, hi: np.ndarray, out: tuple
) -> None:
    """``primitives.ray_box`` for the rays ``dirs[pixels]``: depth and normal into ``out``."""
    t_out, normal_out, face_normals = out
    for i in range(pixels.size):
        d = dirs[pixels[i]]
        t = _INF
        face = 0
        for axis in range(3):
            below = origin[axis] < lo[axis]
            if not (below or origin[axis] > hi[axis]):
                continue  # the faces of this axis turn away from the camera
            plane = lo[axis] if below else hi[axis]
            tf = (plane - origin[axis]) / d[axis]
            ok = tf > _EPS
            for other in range(3):
                if other != axis:
                    c = origin[other] + tf * d[other]
                    ok = ok and c >= lo[other] and c <= hi[other]
            if ok:
                t = tf
                face = 2 * axis + 1 if below else 2 * axis + 2
        t_out[i] = t
        normal_out[i, 0] = face_normals[face, 0]
        normal_out[i, 1] = face_normals[face, 1]
        normal_out[i, 2] = face_normals[face, 2]


@numba.njit(**_JIT)
def _ellipsoids(
    origin: np.ndarray,
    dirs: np.ndarray,
    pixels: np.ndarray,
    center: np.ndarray,
    radii: np.ndarray,
    ragged: float,
    noise: np.ndarray,
    out: tuple,
) -> None:
    """``primitives.ray_ellipsoid`` then ``render._intersect``'s foliage gaps for the rays
    ``dirs[pixels]``: depth and normal into ``out``."""
    t_out, normal_out = out
    r0, r1, r2 = radii[0], radii[1], radii[2]
    o0 = (origin[0] - center[0]) / r0
    o1 = (origin[1] - center[1]) / r1
    o2 = (origin[2] - center[2]) / r2
    c = (o0 * o0 + o1 * o1 + o2 * o2) - _ONE
    for i in range(pixels.size):
        d = dirs[pixels[i]]
        d0, d1, d2 = d[0] / r0, d[1] / r1, d[2] / r2
        a = d0 * d0 + d1 * d1 + d2 * d2
        b = d0 * o0 + d1 * o1 + d2 * o2
        disc = b * b - a * c
        sq = np.sqrt(max(disc, _ZERO))
        t = (-b - sq) / a
        hit = disc > _ZERO and t > _EPS
        if not hit:
            t = _INF
        th = t if hit else _ZERO
        n0 = (o0 + th * d0) / r0
        n1 = (o1 + th * d1) / r1
        n2 = (o2 + th * d2) / r2
        norm = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2) + _EPS
        normal_out[i, 0] = n0 / norm
        normal_out[i, 1] = n1 / norm
        normal_out[i, 2] = n2 / norm
        if ragged > _ZERO:  # foliage: noise eats the silhouette and opens gaps
            edge = min(max(disc / a, _ZERO), _ONE)
            tq = t if np.isfinite(t) else _ZERO
            q0 = origin[0] + tq * d[0]
            q1 = origin[1] + tq * d[1]
            q2 = origin[2] + tq * d[2]
            nz = noise[np.int32(q0 * _GAP_SCALE) & 255, np.int32((q1 + q2) * _GAP_SCALE) & 255]
            if nz * _GAP_GAIN + _GAP_BIAS <= ragged * (_ONE - np.sqrt(edge)):
                t = _INF
        t_out[i] = t


@numba.njit(**_JIT)
def rasterize_parts(
    origin: np.ndarray,
    dirs: np.ndarray,
    width: int,
    order: np.ndarray,
    boxes: np.ndarray,
    parts: tuple,
    attributes: tuple,
    cones: tuple,
    gbuf: tuple,
) -> None:
    """Draw every part into the flat geometry buffer ``gbuf``, the ground already in it: real parts
    z-tested against the ground and each other, then decals where their carrier is the visible
    surface (the nearest decal wins).

    ``origin`` (3,) and ``dirs`` (H*W, 3) float32: the camera's rays; ``order``: part indices in
    the numpy pass's candidate order (boxes, ellipsoids, cones); ``boxes`` (P, 4) int32 pixel boxes
    ``v0, v1, u0, u1`` (``v0 < 0``: not in view); ``parts``: ``(kind, lo, hi, center, radii,
    ragged, noise tile, face normals)``; ``attributes``: ``(decal_on, class, instance,
    material)``; ``cones``: ``(start, t, normal)``, every cone's candidates from
    ``primitives.ray_cone``, cone ``p``'s from ``start[p]``; ``gbuf``: ``(t, cls, inst, mat,
    normal, decal_mat, decal_normal)``, flat, updated in place.
    """
    kind, lo, hi, center, radii, ragged, noise, face_normals = parts
    decal_on, part_cls, part_inst, part_mat = attributes
    cone_start, cone_t, cone_normal = cones
    t_buf, cls_buf, inst_buf, mat_buf, normal_buf, decal_mat_buf, decal_normal_buf = gbuf
    ground = t_buf.copy()
    nearest_decal = np.full(t_buf.shape[0], _INF, np.float32)
    t_part = np.empty(t_buf.shape[0], np.float32)  # one part's candidates
    normal_part = np.empty((t_buf.shape[0], 3), np.float32)
    pixels = np.empty(t_buf.shape[0], np.int64)
    for stage in range(2):  # 0: real parts, 1: decals
        for p in order:
            v0, v1, u0, u1 = boxes[p, 0], boxes[p, 1], boxes[p, 2], boxes[p, 3]
            if v0 < 0 or (decal_on[p] >= 0) != (stage == 1):
                continue
            n = 0
            for v in range(v0, v1):
                for u in range(u0, u1):
                    pixels[n] = v * width + u
                    n += 1
            if kind[p] == 0:
                _boxes(origin, dirs, pixels[:n], lo[p], hi[p], (t_part, normal_part, face_normals))
            elif kind[p] == 1:
                _ellipsoids(
                    origin, dirs, pixels[:n], center[p], radii[p], ragged[p], noise, (t_part, normal_part)
                )
            else:
                t_part[:n] = cone_t[cone_start[p] : cone_start[p] + n]
                normal_part[:n] = cone_normal[cone_start[p] : cone_start[p] + n]
            for i in range(n):
                pix, t = pixels[i], t_part[i]
                if stage == 0:
                    if t < ground[pix] and t <= t_buf[pix]:
                        t_buf[pix] = t
                        cls_buf[pix] = part_cls[p]
                        inst_buf[pix] = part_inst[p]
                        mat_buf[pix] = part_mat[p]
                        normal_buf[pix, 0] = normal_part[i, 0]
                        normal_buf[pix, 1] = normal_part[i, 1]
                        normal_buf[pix, 2] = normal_part[i, 2]
                elif t < _INF and inst_buf[pix] == decal_on[p] and t <= nearest_decal[pix]:
                    nearest_decal[pix] = t
                    decal_mat_buf[pix] = part_mat[p]
                    decal_normal_buf[pix, 0] = normal_part[i, 0]
                    decal_normal_buf[pix, 1] = normal_part[i, 1]
                    decal_normal_buf[pix, 2] = normal_part[i, 2]
