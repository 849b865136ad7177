"""A camera's intrinsics as ``sensor_msgs/CameraInfo`` carries them: size, K, distortion.

Registration maps pixels between cameras, so a wrong calibration moves every pixel without
any other sign: :class:`Intrinsics` refuses what cannot be a camera (a zero or negative
focal length, NaN, a K or D of the wrong length, an empty image, an unknown distortion
model) with a :class:`CalibrationError` that names the field. Pixel coordinates follow
OpenCV and ROS: the centre of the top-left pixel is ``(0, 0)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np

__all__ = ["DISTORTION_MODELS", "CalibrationError", "Intrinsics", "same_aspect"]

DISTORTION_MODELS: Final[dict[str, tuple[int, ...]]] = {
    "": (0,),  # no distortion given
    "plumb_bob": (0, 5),  # k1 k2 p1 p2 k3 (OpenCV's 5-parameter model)
    "rational_polynomial": (0, 8),  # k1 k2 p1 p2 k3 k4 k5 k6
}
"""The CameraInfo ``distortion_model`` values read, with the lengths of D each allows."""


class CalibrationError(ValueError):
    """A calibration that cannot describe a camera; the message names the field and the value."""


@dataclass(frozen=True, eq=False)
class Intrinsics:
    """Image size, the 3x3 camera matrix ``k`` and the distortion coefficients ``d``."""

    width: int
    height: int
    k: np.ndarray
    d: np.ndarray
    distortion_model: str = "plumb_bob"

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise CalibrationError(f"{name} must be a positive integer, got {value!r}")
        k = _array("K", self.k, 9).reshape(3, 3)
        d = _array("D", self.d, None)
        if self.distortion_model not in DISTORTION_MODELS:
            raise CalibrationError(
                f"distortion_model {self.distortion_model!r} is not supported; "
                f"valid: {', '.join(repr(m) for m in DISTORTION_MODELS)}"
            )
        if d.size not in DISTORTION_MODELS[self.distortion_model]:
            raise CalibrationError(
                f"{self.distortion_model or 'no distortion model'} needs D of length "
                f"{' or '.join(map(str, DISTORTION_MODELS[self.distortion_model]))}, got {d.size}"
            )
        if not (k[0, 0] > 0 and k[1, 1] > 0):
            raise CalibrationError(f"K must have positive focal lengths, got fx={k[0, 0]:g}, fy={k[1, 1]:g}")
        if k[1, 0] != 0 or k[2, 0] != 0 or k[2, 1] != 0 or k[2, 2] != 1:
            raise CalibrationError(f"K must be [fx s cx; 0 fy cy; 0 0 1], got {k.tolist()}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "d", d if d.any() else np.zeros(0))
        k.setflags(write=False)
        self.d.setflags(write=False)

    # ------------------------------------------------------------------ construction

    @classmethod
    def pinhole(cls, width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> Intrinsics:
        """An undistorted camera from its four numbers."""
        return cls(width, height, np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], float), np.zeros(0), "")

    @classmethod
    def from_camera_info(cls, msg: Any) -> Intrinsics:
        """A ``sensor_msgs/CameraInfo`` (rclpy's or rosbags'), its binning applied.

        A region of interest other than the whole image is refused: the image would be a crop
        whose offset the registration would have to know, and none of the supported drivers sends one.
        """
        bx, by = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
        roi = msg.roi
        if int(roi.width) or int(roi.height) or int(roi.x_offset) or int(roi.y_offset):
            full = (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))
            if full != (0, 0, int(msg.width), int(msg.height)):
                raise CalibrationError(f"CameraInfo roi {full} (x, y, width, height) is not supported")
        info = cls(
            int(msg.width),
            int(msg.height),
            np.asarray(msg.k, float),
            np.asarray(msg.d, float),
            str(msg.distortion_model),
        )
        if bx == 1 and by == 1:
            return info
        return info.scaled(info.width // bx, info.height // by)

    def camera_info_fields(self) -> dict[str, Any]:
        """The CameraInfo fields (width, height, distortion_model, d, k, r, p) of this camera."""
        p = np.zeros((3, 4))
        p[:, :3] = self.k
        return {
            "width": self.width,
            "height": self.height,
            "distortion_model": self.distortion_model or "plumb_bob",
            "d": [float(v) for v in self.d] or [0.0] * 5,
            "k": [float(v) for v in self.k.ravel()],
            "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            "p": [float(v) for v in p.ravel()],
        }

    # ------------------------------------------------------------------ facts

    @property
    def fx(self) -> float:
        return float(self.k[0, 0])

    @property
    def fy(self) -> float:
        return float(self.k[1, 1])

    @property
    def cx(self) -> float:
        return float(self.k[0, 2])

    @property
    def cy(self) -> float:
        return float(self.k[1, 2])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width), as numpy shapes are."""
        return self.height, self.width

    @property
    def distorted(self) -> bool:
        return bool(self.d.size)

    @property
    def key(self) -> tuple[Any, ...]:
        """Hashable identity (what caches of pixel rays are keyed by)."""
        model = self.distortion_model if self.distorted else ""  # no coefficients: a pinhole, any name
        return (self.width, self.height, model, tuple(self.k.ravel()), tuple(self.d))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Intrinsics) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera seen at ``width`` x ``height`` (a resized image, binning).

        Exact for a resize that maps pixel centres as OpenCV's does: ``c' = (c + 0.5) * s - 0.5``
        (image_proc's resize scales ``c`` alone, half a pixel apart at s = 2). Distortion
        coefficients act on normalised coordinates, so they stay.
        """
        if (width, height) == (self.width, self.height):
            return self
        if width <= 0 or height <= 0:
            raise CalibrationError(f"cannot scale {self.width}x{self.height} to {width}x{height}")
        sx, sy = width / self.width, height / self.height
        k = self.k.copy()
        k[0, :] *= sx
        k[1, :] *= sy
        k[0, 2] = (self.cx + 0.5) * sx - 0.5
        k[1, 2] = (self.cy + 0.5) * sy - 0.5
        return Intrinsics(int(width), int(height), k, self.d.copy(), self.distortion_model)

    # ------------------------------------------------------------------ geometry

    def project(self, points: np.ndarray) -> np.ndarray:
        """``Nx3`` camera-frame points -> ``Nx2`` pixel coordinates (NaN where z <= 0)."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        z = points[:, 2]
        front = z > 1e-9
        uv = np.full((points.shape[0], 2), np.nan)
        if not front.any():
            return uv
        p = points[front]
        if self.distorted:
            projected, _ = cv2.projectPoints(p, np.zeros(3), np.zeros(3), self.k, self.d)
            uv[front] = projected.reshape(-1, 2)
        else:
            x, y = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
            uv[front, 0] = self.fx * x + self.k[0, 1] * y + self.cx
            uv[front, 1] = self.fy * y + self.cy
        return uv

    def rays(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates -> undistorted normalised coordinates ``(x/z, y/z)`` of their rays."""
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        if self.distorted:
            pts = np.stack([u.ravel(), v.ravel()], axis=1).reshape(-1, 1, 2)
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-10)
            xy = cv2.undistortPointsIter(pts, self.k, self.d, None, None, criteria).reshape(-1, 2)
            return xy[:, 0].reshape(u.shape), xy[:, 1].reshape(v.shape)
        y = (v - self.cy) / self.fy
        return (u - self.cx - self.k[0, 1] * y) / self.fx, y


def _array(name: str, value: Any, length: int | None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise CalibrationError(f"{name} must be numbers, got {value!r}") from None
    if length is not None and array.size != length:
        raise CalibrationError(f"{name} must have {length} numbers, got {array.size}")
    if not np.all(np.isfinite(array)):
        raise CalibrationError(f"{name} holds a non-finite number: {array.tolist()}")
    return array.copy()


def same_aspect(a: tuple[int, int], b: tuple[int, int], tolerance: float = 0.01) -> bool:
    """Two (height, width) sizes of one aspect ratio (a resize, binning), within ``tolerance``."""
    return math.isclose(a[1] / a[0], b[1] / b[0], rel_tol=tolerance)
