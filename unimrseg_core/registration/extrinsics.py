"""A rigid transform between two camera frames, given as tf2 gives it: translation and quaternion.

``Transform(rotation, translation)`` maps points of a child frame into its parent frame,
``p_parent = R @ p_child + t``: the transform tf2 looks up as ``lookup_transform(parent,
child)`` and /tf_static publishes with ``header.frame_id = parent``, ``child_frame_id =
child``. Camera frames are optical frames (REP 103: z forward, x right, y down).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unimrseg_core.registration.intrinsics import CalibrationError

__all__ = ["Transform"]

_UNIT_TOLERANCE = 1e-3  # a quaternion further from unit length is a typo, not rounding


@dataclass(frozen=True, eq=False)
class Transform:
    """``p_parent = rotation @ p_child + translation`` (metres)."""

    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self) -> None:
        r = np.asarray(self.rotation, np.float64)
        t = np.asarray(self.translation, np.float64).ravel()
        if r.shape != (3, 3) or t.shape != (3,):
            raise CalibrationError(
                f"a transform needs a 3x3 rotation and 3 numbers, got {r.shape}, {t.shape}"
            )
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
            raise CalibrationError(f"transform holds a non-finite number: R={r.tolist()}, t={t.tolist()}")
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
            raise CalibrationError(f"not a rotation matrix: {r.tolist()}")
        r, t = r.copy(), t.copy()
        r.setflags(write=False)
        t.setflags(write=False)
        object.__setattr__(self, "rotation", r)
        object.__setattr__(self, "translation", t)

    @classmethod
    def identity(cls) -> Transform:
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_quaternion(cls, translation: Sequence[float], xyzw: Sequence[float]) -> Transform:
        """tf2's order: translation ``(x, y, z)``, rotation ``(x, y, z, w)`` (normalised if within 1e-3)."""
        q = np.asarray(xyzw, np.float64).ravel()
        if q.shape != (4,) or not np.all(np.isfinite(q)):
            raise CalibrationError(
                f"a rotation quaternion needs 4 finite numbers (x y z w), got {list(xyzw)}"
            )
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > _UNIT_TOLERANCE:
            raise CalibrationError(
                f"the rotation quaternion {q.tolist()} is not unit length (|q| = {norm:.6g})"
            )
        x, y, z, w = q / norm
        rotation = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
        return cls(rotation, np.asarray(translation, np.float64))

    @classmethod
    def parse(cls, text: str) -> Transform:
        """``"x y z qx qy qz qw"`` (static_transform_publisher's order), spaces or commas between."""
        words = text.replace(",", " ").split()
        try:
            numbers = [float(w) for w in words]
        except ValueError:
            raise CalibrationError(f"expected 7 numbers 'x y z qx qy qz qw', got {text!r}") from None
        if len(numbers) != 7:
            raise CalibrationError(f"expected 7 numbers 'x y z qx qy qz qw', got {len(numbers)}: {text!r}")
        return cls.from_quaternion(numbers[:3], numbers[3:])

    def quaternion(self) -> tuple[float, float, float, float]:
        """The rotation as ``(x, y, z, w)``, w >= 0."""
        r = self.rotation
        trace = r[0, 0] + r[1, 1] + r[2, 2]
        # Shepperd: divide by the largest of 4w^2, 4x^2, 4y^2, 4z^2, so no sign is lost near 180 deg
        diagonal = int(np.argmax([trace, r[0, 0], r[1, 1], r[2, 2]]))
        if diagonal == 0:
            s = 2.0 * np.sqrt(1.0 + trace)
            q = (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, s / 4
        elif diagonal == 1:
            s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
            q = s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s
        elif diagonal == 2:
            s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
            q = (r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s
        else:
            s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
            q = (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4, (r[1, 0] - r[0, 1]) / s
        sign = -1.0 if q[3] < 0 else 1.0
        x, y, z, w = (float(sign * c) for c in q)
        return x, y, z, w

    def inverse(self) -> Transform:
        return Transform(self.rotation.T, -self.rotation.T @ self.translation)

    def __matmul__(self, other: Transform) -> Transform:
        """``a @ b`` maps b's child frame into a's parent frame (b's parent must be a's child)."""
        return Transform(self.rotation @ other.rotation, self.rotation @ other.translation + self.translation)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """``Nx3`` points of the child frame -> the parent frame."""
        p = np.asarray(points, np.float64)
        r, t = self.rotation, self.translation
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        # per component: a (N, 3) @ (3, 3) matmul goes through BLAS and was 30x slower here
        return np.stack(
            [r[i, 0] * x + r[i, 1] * y + r[i, 2] * z + t[i] for i in range(3)],
            axis=-1,
        )

    def is_identity(self, tolerance: float = 1e-9) -> bool:
        return bool(
            np.allclose(self.rotation, np.eye(3), atol=tolerance)
            and np.allclose(self.translation, 0, atol=tolerance)
        )
