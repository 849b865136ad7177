"""Bring one camera's image into another camera's pixels: depth by z-buffered reprojection,
other images by sampling where a depth map (or an assumed plane) says each target pixel's
surface lies.

- :func:`register_depth` is depth_image_proc's ``register``: every valid depth pixel is
  back-projected with the depth camera's intrinsics, moved into the target camera's frame
  and projected with its intrinsics; where several land on one pixel the nearest surface
  wins (z-buffer) and pixels nothing lands on stay 0 (invalid, REP 118). With
  ``fill_upsampling_holes`` (as depth_image_proc's parameter) each depth pixel covers the
  target pixels its footprint spans, so a lower-resolution depth camera leaves no grid of holes.
- :func:`sampling_maps` gives, for every target pixel with a depth, where the same surface
  point lies in the source camera; :func:`remap` samples the source image there. With a
  constant depth it is the homography of the plane at that distance, exact with lens
  distortion too (:func:`plane_homography` is the same plane as a 3x3, for undistorted cameras).

Vectorised numpy and OpenCV; no per-pixel Python loops.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from unimrseg_core.registration.extrinsics import Transform
from unimrseg_core.registration.intrinsics import CalibrationError, Intrinsics

__all__ = [
    "MAX_FOOTPRINT_PX",
    "pixel_rays",
    "plane_homography",
    "project_depth",
    "register_depth",
    "remap",
    "sampling_maps",
]

MAX_FOOTPRINT_PX = 8
"""Largest side of the target pixel box one depth pixel fills (a surface right at the target camera)."""


@lru_cache(maxsize=16)
def _rays(camera: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    x, y = camera.rays(u, v)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def pixel_rays(camera: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """``HxW`` undistorted normalised ray coordinates (x/z, y/z) of every pixel (cached per camera)."""
    return _rays(camera)


def _check_size(image: np.ndarray, camera: Intrinsics, what: str) -> None:
    if image.shape[:2] != camera.size:
        raise CalibrationError(
            f"{what} is {image.shape[0]}x{image.shape[1]}, its intrinsics are for "
            f"{camera.height}x{camera.width} (scale them first: Intrinsics.scaled)"
        )


def project_depth(
    depth: np.ndarray, source: Intrinsics, target: Intrinsics, target_from_source: Transform
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where each valid depth pixel's surface point lands in ``target``.

    Returns ``(rows, cols, uv, z_target, z_source)`` for the valid source pixels in front of
    the target camera: their source pixel, target pixel coordinates (``Nx2``, not rounded) and depths.
    """
    _check_size(depth, source, "depth")
    z = np.asarray(depth, np.float32)
    rows, cols = np.nonzero(np.isfinite(z) & (z > 0))
    zs = z[rows, cols].astype(np.float64)
    rx, ry = pixel_rays(source)
    moved = target_from_source.apply(np.stack([rx[rows, cols] * zs, ry[rows, cols] * zs, zs], axis=1))
    uv = target.project(moved)
    keep = np.isfinite(uv[:, 0]) & (moved[:, 2] > 0)
    return rows[keep], cols[keep], uv[keep], moved[keep, 2], zs[keep]


def register_depth(
    depth: np.ndarray,
    source: Intrinsics,
    target: Intrinsics,
    target_from_source: Transform,
    *,
    fill_upsampling_holes: bool = False,
) -> np.ndarray:
    """``depth`` (metres, 0 = invalid, in ``source``'s pixels) seen from ``target``: ``HxW`` float32."""
    _, _, uv, zt, zs = project_depth(depth, source, target, target_from_source)
    if fill_upsampling_holes:
        # half the footprint of a source pixel at depth zs, seen at depth zt by the target camera
        half_u = 0.5 * (target.fx / source.fx) * zs / zt
        half_v = 0.5 * (target.fy / source.fy) * zs / zt
    else:
        half_u = half_v = np.zeros_like(zt)
    u0 = np.rint(uv[:, 0] - half_u).astype(np.int64)
    u1 = np.maximum(np.rint(uv[:, 0] + half_u).astype(np.int64), u0)
    v0 = np.rint(uv[:, 1] - half_v).astype(np.int64)
    v1 = np.maximum(np.rint(uv[:, 1] + half_v).astype(np.int64), v0)
    u1 = np.minimum(u1, u0 + MAX_FOOTPRINT_PX - 1)
    v1 = np.minimum(v1, v0 + MAX_FOOTPRINT_PX - 1)
    flat, depths = _boxes(u0, u1, v0, v1, zt, target.width, target.height)
    zbuf = np.full(target.height * target.width, np.inf)
    np.minimum.at(zbuf, flat, depths)
    zbuf[~np.isfinite(zbuf)] = 0.0
    return zbuf.reshape(target.size).astype(np.float32)


def _boxes(
    u0: np.ndarray, u1: np.ndarray, v0: np.ndarray, v1: np.ndarray, z: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every (flat pixel index, depth) of the inclusive boxes ``[u0, u1] x [v0, v1]`` inside the image."""
    wide, tall = u1 - u0 + 1, v1 - v0 + 1
    area = wide * tall
    k = np.arange(int(area.sum())) - np.repeat(np.cumsum(area) - area, area)
    wide_r = np.repeat(wide, area)
    u = np.repeat(u0, area) + k % wide_r
    v = np.repeat(v0, area) + k // wide_r
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    return (v * width + u)[inside], np.repeat(z, area)[inside]


def sampling_maps(
    target_depth: np.ndarray | float,
    target: Intrinsics,
    source: Intrinsics,
    source_from_target: Transform,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each ``target`` pixel's surface lies in ``source``: ``(map_x, map_y, valid)`` (``HxW``).

    ``target_depth`` is a depth map in ``target``'s pixels (metres, 0 = unknown) or one
    distance for every pixel (a plane facing the target camera). ``valid`` is False where
    the depth is unknown or the point lies behind the source camera; there the maps are -1.
    """
    rx, ry = pixel_rays(target)
    if np.isscalar(target_depth):
        z = np.full(target.size, float(target_depth))
    else:
        _check_size(np.asarray(target_depth), target, "the target depth")
        z = np.asarray(target_depth, np.float64)
    known = np.isfinite(z) & (z > 0)
    zk = np.where(known, z, 1.0)
    points = np.stack([rx * zk, ry * zk, zk], axis=-1).reshape(-1, 3)
    uv = source.project(source_from_target.apply(points)).reshape(*target.size, 2)
    valid = known & np.isfinite(uv[..., 0])
    map_x = np.where(valid, uv[..., 0], -1.0).astype(np.float32)
    map_y = np.where(valid, uv[..., 1], -1.0).astype(np.float32)
    return map_x, map_y, valid


def remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, *, nearest: bool = False) -> np.ndarray:
    """Sample ``image`` at the maps (bilinear, or nearest); outside the image the border pixel repeats,
    so a modality's edge never reads as black (rgb) or 0 K (thermal)."""
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)


def plane_homography(
    source: Intrinsics, target: Intrinsics, target_from_source: Transform, distance_m: float
) -> np.ndarray:
    """The 3x3 that maps ``source`` pixels to ``target`` pixels for the plane ``z = distance_m`` of
    the target frame (ignores distortion: for undistorted cameras, or as a starting guess).

    For a target point ``X`` on the plane (``n . X = d``, ``n = (0, 0, 1)``), the source sees
    ``R' X + t'`` with ``(R', t')`` = source_from_target, i.e. ``(R' + t' n^T / d) X``.
    """
    if not (np.isfinite(distance_m) and distance_m > 0):
        raise CalibrationError(f"the plane distance must be > 0 m, got {distance_m!r}")
    inv = target_from_source.inverse()
    n = np.array([0.0, 0.0, 1.0])
    source_from_target_plane = inv.rotation + np.outer(inv.translation, n) / distance_m
    h = target.k @ np.linalg.inv(source_from_target_plane) @ np.linalg.inv(source.k)
    return h / h[2, 2]
