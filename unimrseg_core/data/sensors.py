"""Sensor models: turn ideal images into what a real RGB, depth and thermal camera deliver.

- RGB: exposure, filmic tone curve, glare bloom, sRGB gamma, shot and read noise
  (much stronger at night), 8-bit quantisation.
- Depth (stereo/ToF-like): limited range (cut by fog), noise growing with z^2,
  no return on glass/dark/specular surfaces (blobby, worse with ``depth_holes``),
  invalid pixels at depth discontinuities, millimetre quantisation; 0 = invalid.
- Thermal (LWIR microbolometer): optical blur, NETD noise, column fixed-pattern
  noise, vignetting; 0.01 K quantisation.
"""

from __future__ import annotations

import cv2
import numpy as np

from unimrseg_core.data.render import Ideal
from unimrseg_core.data.scene import GROUND, Scene
from unimrseg_core.data.textures import gaussian_noise

__all__ = ["depth_range_m", "depth_sensor", "rgb_camera", "thermal_camera", "thermal_column_offsets"]


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Uniform-ish [0, 1] random field with blobs about ``cell`` pixels wide."""
    h, w = shape
    small = rng.random((max(h // cell, 2) + 1, max(w // cell, 2) + 1)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


_LUT_MAX = 8.0
_LUT = (1.0 - np.exp(-1.6 * np.linspace(0, _LUT_MAX, 4096, dtype=np.float32))) ** (1 / 2.2)


def _tone_curve(x: np.ndarray) -> np.ndarray:
    """Filmic shoulder (highlights saturate gently) then sRGB-like gamma, through a lookup table."""
    idx = (np.clip(x, 0, _LUT_MAX) * (4095 / _LUT_MAX)).astype(np.int32)
    return np.take(_LUT, idx)


def rgb_camera(scene: Scene, ideal: Ideal, rng: np.random.Generator) -> np.ndarray:
    light = scene.lighting
    h, w = ideal.depth.shape
    x = ideal.radiance * light.exposure
    if light.glare is not None:
        gu, gv, gr = light.glare
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - gu * w) ** 2 + (yy - gv * h) ** 2) / (gr * w) ** 2
        bloom = 6.0 * np.exp(-r2 * 2.0) + 0.6 * np.exp(-r2 * 0.25)
        streak = (
            1.5 * np.exp(-(((yy - gv * h) / (0.015 * h + 1)) ** 2)) * np.exp(-np.abs(xx - gu * w) / (0.6 * w))
        )
        x = x + ((bloom + streak)[..., None] * np.array([1.0, 0.95, 0.8], np.float32))
    srgb = _tone_curve(x)
    night = light.sun == 0
    read, shot = (0.045, 0.05) if night else (0.006, 0.012)
    noise = gaussian_noise(rng, (h, w, 3))
    srgb += noise * (read + shot * np.sqrt(srgb))
    if night:  # chroma noise of a high-gain sensor
        srgb += gaussian_noise(rng, (h, w, 1)) * 0.02
    return np.clip(srgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def depth_range_m(scene: Scene, rng: np.random.Generator) -> float:
    """The depth sensor's maximum range for this scene (cut by fog)."""
    return float(rng.uniform(6.0, 12.0) if scene.conditions[0] == "fog" else rng.uniform(18.0, 25.0))


def thermal_column_offsets(rng: np.random.Generator, width: int) -> np.ndarray:
    """Column fixed-pattern noise of the microbolometer (kelvin, ``1 x W``)."""
    return rng.normal(0, 0.08, (1, width)).astype(np.float32)


def depth_sensor(
    scene: Scene, ideal: Ideal, rng: np.random.Generator, *, max_range_m: float | None = None
) -> np.ndarray:
    """Depth in metres, 0 = invalid. ``max_range_m`` fixes the range (a video keeps one sensor);
    by default it is drawn from ``rng`` (:func:`depth_range_m`)."""
    g = ideal.gbuf
    h, w = ideal.depth.shape
    fog = scene.conditions[0] == "fog"
    holes = "depth_holes" in scene.conditions
    max_range = depth_range_m(scene, rng) if max_range_m is None else max_range_m
    z = ideal.depth
    valid = np.isfinite(z) & (z >= 0.3) & (z <= max_range)
    zf = np.where(valid, z, 0).astype(np.float32)
    sigma = (0.004 + (0.003 if fog else 0.0015) * zf * zf).astype(np.float32)
    zf = zf + gaussian_noise(rng, (h, w)) * sigma

    # returns: glass, dark paint, hair and puddles fail in blobs rather than salt-and-pepper
    mat = np.where(g.mat >= 0, g.mat, 0)
    ret = np.array([m.depth_return for m in scene.materials], np.float32)[mat]
    ret[ideal.window] = 0.2
    field = _smooth_field(rng, (h, w), 6)
    if holes:
        ret = ret**4
        ret[ideal.window] = 0.0
        blobs = _smooth_field(rng, (h, w), 24) > 0.82
        puddles = (g.cls == GROUND) & (_smooth_field(rng, (h, w), 16) > 0.78)
        valid &= ~blobs & ~puddles
    valid &= field < ret

    # stereo/ToF edge artefacts: pixels across a depth jump read nothing
    zc = np.where(np.isfinite(z), z, 1e3)
    jump = np.zeros((h, w), bool)
    jump[:, 1:] |= np.abs(np.diff(zc, axis=1)) > 0.08 * np.minimum(zc[:, 1:], zc[:, :-1]) + 0.05
    jump[1:, :] |= np.abs(np.diff(zc, axis=0)) > 0.08 * np.minimum(zc[1:, :], zc[:-1, :]) + 0.05
    valid &= ~(jump & (rng.random((h, w)) < 0.7))
    out = np.where(valid, np.round(zf * 1000.0) / 1000.0, 0.0).astype(np.float32)
    out[out < 0.3] = 0.0
    return out


def thermal_camera(
    scene: Scene, ideal: Ideal, rng: np.random.Generator, *, column_offsets_k: np.ndarray | None = None
) -> np.ndarray:
    """Temperature in kelvin at 0.01 K. ``column_offsets_k`` fixes the column pattern (a video
    keeps one sensor); by default it is drawn from ``rng`` (:func:`thermal_column_offsets`)."""
    h, w = ideal.temperature.shape
    sigma = 0.7 * w / 320.0  # microbolometer optics are softer than the RGB camera's
    t = cv2.GaussianBlur(ideal.temperature, (0, 0), sigma)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    t = t - 0.4 * r2  # vignetting (lens housing)
    fpn = thermal_column_offsets(rng, w) if column_offsets_k is None else column_offsets_k
    t = t + fpn  # column fixed-pattern noise
    t = t + gaussian_noise(rng, (h, w)) * 0.05  # NETD ~50 mK
    return (np.round(t * 100.0) / 100.0).astype(np.float32)
