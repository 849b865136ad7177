"""An option of the procedural world: each sensor seen through its own camera, as on a real robot.

By default the three simulated sensors share one pinhole, so their pixels align. A
:class:`CameraRig` gives every sensor but the anchor its own :class:`Mount`: resolution,
field of view and mounting (an offset in the anchor's optical frame and a small yaw and
pitch). :func:`render_rig` renders the scene once per camera and applies each sensor
model to its own render; ground truth (labels, saliency) is the anchor camera's, and the
noise-free depth and class ids of every camera come along for registration tests. The
scene's sampling and the default path are untouched: a generator without a rig gives
exactly the samples it gave before (the held-out split stays comparable).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from unimrseg_core.data.camera import Camera
from unimrseg_core.data.render import Ideal, render
from unimrseg_core.data.saliency import saliency_mask
from unimrseg_core.data.scene import Scene
from unimrseg_core.data.sensors import depth_sensor, rgb_camera, thermal_camera
from unimrseg_core.modalities import CLASSES, MODALITIES

__all__ = ["DEMO_RIG", "CameraRig", "Mount", "RigSample", "render_rig"]

_THINGS = {c.id for c in CLASSES if c.is_thing}


@dataclass(frozen=True)
class Mount:
    """One sensor relative to the anchor camera."""

    scale: float = 1.0
    """Its resolution as a fraction of the anchor's (both sides, rounded)."""
    hfov_deg: float | None = None
    """Horizontal field of view; None: the anchor's."""
    offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Optical centre in the anchor's optical frame: x right, y down, z forward."""
    yaw_deg: float = 0.0
    """Turned right of the anchor's heading (with the world's pitch-then-yaw cameras and no roll,
    the exact relative rotation then depends a little on the anchor's pitch: ``pose_in`` gives it;
    a rig that must keep one extrinsic for every scene uses pitch only)."""
    pitch_deg: float = 0.0
    """Looks further down than the anchor (a fixed relative rotation about the anchor's x axis)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and 0.05 <= self.scale <= 4.0):
            raise ValueError(f"scale must be in [0.05, 4], got {self.scale}")
        if self.hfov_deg is not None and not 10.0 <= self.hfov_deg <= 150.0:
            raise ValueError(f"hfov_deg must be in [10, 150], got {self.hfov_deg}")
        if len(self.offset_m) != 3 or not all(math.isfinite(v) and abs(v) <= 1.0 for v in self.offset_m):
            raise ValueError(f"offset_m must be 3 numbers within 1 m, got {self.offset_m}")

    def camera(self, anchor: Camera) -> Camera:
        """This sensor's camera, for the anchor camera's pose."""
        width = max(8, round(anchor.width * self.scale))
        height = max(8, round(anchor.height * self.scale))
        if self.hfov_deg is None:
            fx = anchor.fx * width / anchor.width
        else:
            fx = 0.5 * width / math.tan(math.radians(self.hfov_deg) / 2.0)
        rotation, _ = anchor.world_from_camera()
        dx, dy, dz = rotation @ np.asarray(self.offset_m, np.float64)
        return Camera(
            width,
            height,
            fx,
            fx,
            (width - 1) / 2.0,
            (height - 1) / 2.0,
            anchor.mount_height_m - float(dy),
            pitch_rad=anchor.pitch_rad + math.radians(self.pitch_deg),
            yaw_rad=anchor.yaw_rad + math.radians(self.yaw_deg),
            x_m=anchor.x_m + float(dx),
            z_m=anchor.z_m + float(dz),
            y_m=anchor.y_m + float(dy),
        )


@dataclass(frozen=True)
class CameraRig:
    """Which modality is the anchor (the scene's camera; ground truth is its) and the others' mounts."""

    anchor: str = "rgb"
    mounts: Mapping[str, Mount] = field(default_factory=dict)
    """A modality without a mount shares the anchor's camera."""

    def __post_init__(self) -> None:
        if self.anchor not in MODALITIES:
            raise ValueError(f"anchor must be one of {', '.join(MODALITIES)}, got {self.anchor!r}")
        unknown = [m for m in self.mounts if m not in MODALITIES or m == self.anchor]
        if unknown:
            raise ValueError(f"mounts: {unknown!r} is not a modality other than the anchor {self.anchor}")

    def cameras(self, anchor: Camera) -> dict[str, Camera]:
        """Every modality's camera, in MODALITIES order."""
        return {m: self.mounts[m].camera(anchor) if m in self.mounts else anchor for m in MODALITIES}

    def to_json(self) -> dict[str, Any]:
        return {
            "anchor": self.anchor,
            "mounts": {
                m: {
                    "scale": mount.scale,
                    "hfov_deg": mount.hfov_deg,
                    "offset_m": list(mount.offset_m),
                    "yaw_deg": mount.yaw_deg,
                    "pitch_deg": mount.pitch_deg,
                }
                for m, mount in self.mounts.items()
            },
        }


DEMO_RIG: Final = CameraRig(
    "rgb",
    {
        # a stereo/ToF depth module beside the colour camera, a little wider and coarser
        "depth": Mount(scale=0.75, hfov_deg=75.0, offset_m=(-0.05, 0.0, 0.0)),
        # a 160x120-class microbolometer above it, narrower, tilted down a little
        "thermal": Mount(scale=0.5, hfov_deg=57.0, offset_m=(0.04, -0.06, 0.01), pitch_deg=1.5),
    },
)
"""A rig like a real robot's front sensor head (``bag make --rig``, ``sensor_sim --rig``, the tests):
one extrinsic per camera for every scene, as a bolted-on rig has."""


@dataclass
class RigSample:
    """One scene seen by a rig: each sensor's image at its own resolution, ground truth for the anchor.

    ``rgb`` / ``depth`` / ``thermal`` read ``images`` (what the bag writer reads of a Sample).
    ``truth_depth`` and ``truth_label`` are every camera's noise-free depth (metres, inf = no
    surface) and class ids: what registration is measured against.
    """

    images: dict[str, np.ndarray]
    cameras: dict[str, Camera]
    anchor: str
    label: np.ndarray
    saliency: np.ndarray
    truth_depth: dict[str, np.ndarray]
    truth_label: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def rgb(self) -> np.ndarray | None:
        return self.images.get("rgb")

    @property
    def depth(self) -> np.ndarray | None:
        return self.images.get("depth")

    @property
    def thermal(self) -> np.ndarray | None:
        return self.images.get("thermal")

    def pose_in_anchor(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """``(R, t)``: ``p_anchor = R @ p_modality + t`` (the exact extrinsic)."""
        return self.cameras[modality].pose_in(self.cameras[self.anchor])


def render_rig(
    scene: Scene,
    rig: CameraRig,
    rng: np.random.Generator,
    *,
    depth_range_m: float | None = None,
    column_offsets_k: np.ndarray | None = None,
    meta: Mapping[str, Any] | None = None,
) -> RigSample:
    """Render ``scene`` (its camera is the anchor's) through every camera of ``rig``, then the sensors.

    Noise is drawn from ``rng`` in MODALITIES order; ``column_offsets_k`` must match the
    thermal camera's width.
    """
    cameras = rig.cameras(scene.camera)
    ideals: dict[Camera, Ideal] = {}
    for camera in dict.fromkeys(cameras.values()):
        ideals[camera] = render(scene if camera is scene.camera else replace(scene, camera=camera))
    seen = {m: (replace(scene, camera=cameras[m]), ideals[cameras[m]]) for m in MODALITIES}
    images = dict(  # noqa: C408 (keywords: a literal of the three names restates modalities.MODALITIES)
        rgb=rgb_camera(*seen["rgb"], rng),
        depth=depth_sensor(*seen["depth"], rng, max_range_m=depth_range_m),
        thermal=thermal_camera(*seen["thermal"], rng, column_offsets_k=column_offsets_k),
    )
    anchor_ideal = ideals[scene.camera]
    return RigSample(
        images=images,
        cameras=cameras,
        anchor=rig.anchor,
        label=anchor_ideal.gbuf.cls.copy(),
        saliency=saliency_mask(anchor_ideal.gbuf.inst, scene.instance_class, _THINGS),
        truth_depth={m: ideals[cameras[m]].depth for m in MODALITIES},
        truth_label={m: ideals[cameras[m]].gbuf.cls for m in MODALITIES},
        meta={
            **(meta or {}),
            "rig": rig.to_json(),
            "cameras": {m: c.intrinsics() for m, c in cameras.items()},
        },
    )
