"""Ray-cast geometry for the procedural world: axis-aligned boxes, ellipsoids, upright cones.

Each kind has one vectorised intersection, ``ray_box`` / ``ray_ellipsoid`` /
``ray_cone``: rays from one origin, directions ``(N, 3)``, and per-ray primitive
parameters (``(N, 3)``, or ``(3,)`` broadcast), returning the first hit ``t``
(inf on a miss) and the surface normal. The renderer batches all primitives of
one kind into a single call, which is what makes ~150 primitives cheap in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FACE_NORMALS", "Box", "Cone", "Ellipsoid", "Primitive", "ray_box", "ray_cone", "ray_ellipsoid"]

_EPS = np.float32(1e-6)


FACE_NORMALS = np.array(
    [[0, 0, 0], [-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], dtype=np.float32
)


def ray_box(
    origin: np.ndarray, dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned boxes seen from outside.

    At most three faces face the origin and their images do not overlap, so each
    needs one division and a range test on the other two axes. Works on planar
    (3, N) copies: column access of (N, 3) arrays is several times slower.
    """
    n = dirs.shape[0]
    d = np.ascontiguousarray(dirs.T)
    lo = np.ascontiguousarray(np.broadcast_to(lo, (n, 3)).T)
    hi = np.ascontiguousarray(np.broadcast_to(hi, (n, 3)).T)
    t = np.full(n, np.inf, dtype=np.float32)
    face = np.zeros(n, dtype=np.int8)  # index into FACE_NORMALS
    for axis in range(3):
        below = origin[axis] < lo[axis]
        plane = np.where(below, lo[axis], hi[axis])
        with np.errstate(divide="ignore", invalid="ignore"):  # axis-parallel rays: inf, and inf * 0
            tf = (plane - origin[axis]) / d[axis]
            ok = (below | (origin[axis] > hi[axis])) & (tf > _EPS)
            for other in range(3):
                if other != axis:
                    c = origin[other] + tf * d[other]
                    ok &= (c >= lo[other]) & (c <= hi[other])
        np.copyto(t, tf, where=ok)
        np.copyto(face, np.where(below, np.int8(2 * axis + 1), np.int8(2 * axis + 2)), where=ok)
    return t, FACE_NORMALS[face]


def ray_ellipsoid(
    origin: np.ndarray, dirs: np.ndarray, center: np.ndarray, radii: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axis-aligned ellipsoids; also returns ``edge``: 0 at the silhouette, 1 through the centre."""
    o = np.broadcast_to((origin - center) / radii, dirs.shape)
    d = dirs / radii
    a = np.einsum("ij,ij->i", d, d)
    b = np.einsum("ij,ij->i", d, o)
    c = np.einsum("ij,ij->i", o, o) - 1.0
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0))
    t = (-b - sq) / a
    hit = (disc > 0) & (t > _EPS)
    t = np.where(hit, t, np.inf).astype(np.float32)
    p = o + np.where(hit, t, 0)[:, None] * d  # hit point in unit-sphere space
    normal = p / radii
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + _EPS
    edge = np.clip(disc / a, 0, 1).astype(np.float32)
    return t, normal.astype(np.float32), edge


def ray_cone(origin: np.ndarray, dirs: np.ndarray, cone: Cone) -> tuple[np.ndarray, np.ndarray]:
    """One upright cone (Y down, apex above the base); solves the quadric, keeps the nearest root."""
    k2 = np.float32((cone.radius / cone.height) ** 2)
    apex_y = cone.base_y - cone.height
    ox, oy, oz = origin[0] - cone.base_x, origin[1] - apex_y, origin[2] - cone.base_z
    dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    a = dx * dx + dz * dz - k2 * dy * dy
    b = ox * dx + oz * dz - k2 * oy * dy
    c = np.float32(ox * ox + oz * oz - k2 * oy * oy)
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = np.stack([(-b - sq) / a, (-b + sq) / a])
    y = oy + roots * dy  # below the apex, above the base
    ok = (disc > 0) & (roots > _EPS) & (y >= 0) & (y <= cone.height)
    t = np.where(ok, roots, np.inf).min(axis=0).astype(np.float32)
    tt = np.where(np.isfinite(t), t, 0)
    normal = np.stack([ox + tt * dx, -k2 * (oy + tt * dy), oz + tt * dz], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + _EPS
    return t, normal.astype(np.float32)


class Primitive:
    """Base: world-space bounds; the renderer batches intersections by kind."""

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def corners(self) -> np.ndarray:
        lo, hi = self.bounds()
        return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


@dataclass(frozen=True)
class Box(Primitive):
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.lo, dtype=np.float32), np.asarray(self.hi, dtype=np.float32)


@dataclass(frozen=True)
class Ellipsoid(Primitive):
    center: tuple[float, float, float]
    radii: tuple[float, float, float]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(self.center, dtype=np.float32)
        r = np.asarray(self.radii, dtype=np.float32)
        return c - r, c + r


@dataclass(frozen=True)
class Cone(Primitive):
    """Upright cone standing on the plane ``y = base_y`` (Y points down), apex above."""

    base_x: float
    base_z: float
    base_y: float
    radius: float
    height: float

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([self.base_x - self.radius, self.base_y - self.height, self.base_z - self.radius])
        hi = np.array([self.base_x + self.radius, self.base_y, self.base_z + self.radius])
        return lo.astype(np.float32), hi.astype(np.float32)
