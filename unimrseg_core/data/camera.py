"""One pinhole camera shared by all three simulated sensors, so their pixels align.

World frame: X right, Y down (gravity), Z forward; the ground is the plane
``Y = ground_y`` and the camera's optical centre sits at ``(x, y, z)`` (``y`` is 0 for the
scene's own camera; a sensor mounted above or below it has its own, see :mod:`.rig`). The camera
is turned by ``yaw`` about Y and pitched down by ``pitch`` about its X axis.
For a pixel, the ray ``t * dir`` (t >= 0) has camera-frame depth exactly ``t``
(the camera-frame ray is ``[(u-cx)/fx, (v-cy)/fy, 1]``), which is what a depth
camera reports (REP 118: distance along the optical axis, not along the ray).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Camera"]


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    mount_height_m: float  # optical centre above the ground
    pitch_rad: float = 0.0  # positive looks down
    yaw_rad: float = 0.0  # positive turns right
    x_m: float = 0.0
    z_m: float = 0.0
    y_m: float = 0.0  # optical centre's world Y (down): another sensor of the rig, above (<0) or below
    _dirs: np.ndarray = field(init=False, repr=False, compare=False)

    @classmethod
    def from_fov(
        cls, width: int, height: int, hfov_deg: float, mount_height_m: float, **pose: float
    ) -> Camera:
        fx = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width, height, fx, fx, (width - 1) / 2.0, (height - 1) / 2.0, mount_height_m, **pose)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.height}x{self.width}")
        u = (np.arange(self.width, dtype=np.float32) - self.cx) / self.fx
        v = (np.arange(self.height, dtype=np.float32) - self.cy) / self.fy
        rx, ry = np.meshgrid(u, v)
        dirs = np.empty((self.height, self.width, 3), dtype=np.float32)
        dirs[..., 0], dirs[..., 1], dirs[..., 2] = self.camera_to_world_dir(rx, ry, np.ones_like(rx))
        object.__setattr__(self, "_dirs", dirs)

    @property
    def ground_y(self) -> float:
        """The ground plane's world Y: the camera's own Y plus its height above the ground."""
        return self.mount_height_m + self.y_m

    @property
    def origin(self) -> np.ndarray:
        return np.array([self.x_m, self.y_m, self.z_m], dtype=np.float32)

    @property
    def dirs(self) -> np.ndarray:
        """``HxWx3`` world-frame ray directions scaled so camera-frame depth equals t."""
        return self._dirs

    def camera_to_world_dir(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        cyw, syw = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        # pitch about the camera X axis (down is +Y), then yaw about world Y
        y1 = y * cp + z * sp
        z1 = -y * sp + z * cp
        return x * cyw + z1 * syw, y1, -x * syw + z1 * cyw

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """``Nx3`` world points -> ``Nx3`` camera-frame points (z = depth)."""
        p = np.asarray(points, dtype=np.float64) - np.array([self.x_m, self.y_m, self.z_m])
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        cyw, syw = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        x1 = p[:, 0] * cyw - p[:, 2] * syw
        z1 = p[:, 0] * syw + p[:, 2] * cyw
        y = p[:, 1] * cp - z1 * sp
        z = p[:, 1] * sp + z1 * cp
        return np.stack([x1, y, z], axis=1)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points -> (``Nx2`` pixel coordinates (u, v), ``N`` depths)."""
        c = self.world_to_camera(points)
        z = c[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([self.cx + self.fx * c[:, 0] / z, self.cy + self.fy * c[:, 1] / z], axis=1)
        return uv, z

    def intrinsics(self) -> dict[str, float]:
        """JSON-ready intrinsics and mounting (what a sensor's CameraInfo would carry)."""
        return {
            "width": self.width,
            "height": self.height,
            "fx": round(self.fx, 6),
            "fy": round(self.fy, 6),
            "cx": round(self.cx, 6),
            "cy": round(self.cy, 6),
            "mount_height_m": round(self.mount_height_m, 6),
            "pitch_deg": round(math.degrees(self.pitch_rad), 6),
            "yaw_deg": round(math.degrees(self.yaw_rad), 6),
            "x_m": round(self.x_m, 6),
            "z_m": round(self.z_m, 6),
            **({"y_m": round(self.y_m, 6)} if self.y_m else {}),
        }

    def world_from_camera(self) -> tuple[np.ndarray, np.ndarray]:
        """``(R, t)`` with ``p_world = R @ p_camera + t`` (camera frame: x right, y down, z forward)."""
        basis = np.eye(3)
        rotation = np.stack(self.camera_to_world_dir(basis[0], basis[1], basis[2]), axis=0)
        return rotation.astype(np.float64), np.array([self.x_m, self.y_m, self.z_m], dtype=np.float64)

    def pose_in(self, other: Camera) -> tuple[np.ndarray, np.ndarray]:
        """``(R, t)`` with ``p_other = R @ p_self + t``: this camera's pose in ``other``'s optical frame
        (what /tf_static says with ``other`` the parent and this camera the child)."""
        r_self, t_self = self.world_from_camera()
        r_other, t_other = other.world_from_camera()
        return r_other.T @ r_self, r_other.T @ (t_self - t_other)
