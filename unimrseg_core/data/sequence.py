"""Video of the procedural world: a robot camera moving smoothly through a scene, a new scene
every ``segment_s`` seconds.

``SequenceGenerator(size, seed, rate_hz).frame(k)`` -> :class:`Frame` (time, Sample in
sensor units). Within a segment the 3-D scene is fixed and the camera moves along a
smooth path: forward and back along the view axis over a few metres, with a gentle yaw
sway. The path keeps to the free corridor in front of and behind the camera, so the
camera never drives into an object nor stops within ``FRONT_CLEARANCE_M`` of one it
faces. Each segment has its own lighting (day, night, fog by default) and its own
sensor state (depth range, thermal column pattern); the noise of every frame comes from
a generator seeded by ``(seed, segment, frame)`` alone, so a frame is the same whichever
process renders it, in whichever order.
"""

from __future__ import annotations

import math
import multiprocessing as mp
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from unimrseg_core.data.conditions import validate_conditions
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.render import render
from unimrseg_core.data.rig import CameraRig, RigSample, render_rig
from unimrseg_core.data.saliency import saliency_mask
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.scene import Scene
from unimrseg_core.data.sensors import (
    depth_range_m,
    depth_sensor,
    rgb_camera,
    thermal_camera,
    thermal_column_offsets,
)
from unimrseg_core.modalities import CLASSES

__all__ = ["DEFAULT_CONDITIONS", "Frame", "Motion", "Pose", "Segment", "SequenceGenerator", "free_corridor"]

DEFAULT_CONDITIONS: Final[tuple[tuple[str, ...], ...]] = (("day",), ("night",), ("fog",))
"""Conditions of segments 0, 1, 2, then again from the start."""

CORRIDOR_HALF_WIDTH_M: Final = 0.6
"""Half the width the robot sweeps: no object may stand closer to the path than this."""
FRONT_CLEARANCE_M: Final = 2.0
"""The camera stops this far short of the first object in the corridor ahead."""
BACK_CLEARANCE_M: Final = 1.0
BACK_LIMIT_M: Final = -5.0
"""Furthest the camera backs up from the scene's camera position (objects start ~2.5 m ahead)."""
FORWARD_LIMIT_M: Final = 2.0
TRAVEL_M: Final = (2.5, 4.5)
"""Range of the forward/back travel per segment."""
Z_PERIOD_S: Final = (16.0, 24.0)
"""One forward-and-back cycle: at most pi * 4.5 / 16 = 0.9 m/s."""
YAW_AMPLITUDE_DEG: Final = (3.0, 7.0)
YAW_PERIOD_S: Final = (7.0, 12.0)
"""Sway: at most 2 pi * 7 / 7 = 6.3 deg/s."""

_THINGS = {c.id for c in CLASSES if c.is_thing}
_FRAME_STREAM: Final = 2  # SeedSequence word separating frame noise from segment draws
_MOTION_STREAM: Final = 1
_RIG_STREAM: Final = 3  # a rig's thermal camera has its own width: its column pattern is drawn apart


@dataclass(frozen=True)
class Pose:
    """Camera position on the ground plane and heading (see :class:`~unimrseg_core.data.camera.Camera`)."""

    x_m: float
    z_m: float
    yaw_rad: float


@dataclass(frozen=True)
class Motion:
    """One segment's path: ``z`` swings between ``z_lo_m`` and ``z_hi_m``, yaw sways about ``yaw0_rad``."""

    x_m: float
    z_lo_m: float
    z_hi_m: float
    z_period_s: float
    z_phase: float
    yaw0_rad: float
    yaw_amplitude_rad: float
    yaw_period_s: float
    yaw_phase: float

    def pose(self, tau_s: float) -> Pose:
        """The pose ``tau_s`` seconds into the segment (smooth: continuous speed and turn rate)."""
        swing = 0.5 * (1.0 - math.cos(2.0 * math.pi * tau_s / self.z_period_s + self.z_phase))
        z = self.z_lo_m + (self.z_hi_m - self.z_lo_m) * swing
        yaw = self.yaw0_rad + self.yaw_amplitude_rad * math.sin(
            2.0 * math.pi * tau_s / self.yaw_period_s + self.yaw_phase
        )
        return Pose(self.x_m, z, yaw)


@dataclass(frozen=True)
class Frame:
    """Frame ``index`` of a sequence: its time from the start and the images (aligned, or a rig's)."""

    index: int
    t_s: float
    sample: Sample | RigSample


def free_corridor(
    scene: Scene, x_m: float, half_width_m: float = CORRIDOR_HALF_WIDTH_M
) -> list[tuple[float, float]]:
    """The z intervals blocked for a camera driving along ``x = x_m``, merged and sorted.

    A part blocks where its footprint, widened by ``half_width_m``, covers ``x_m`` and it
    reaches the height band of the robot (ground up to just above the camera).
    """
    ground_y = scene.camera.ground_y
    blocked = []
    for part in scene.parts:
        lo, hi = part.primitive.bounds()
        if lo[0] - half_width_m <= x_m <= hi[0] + half_width_m and lo[1] < ground_y and hi[1] > -0.3:
            blocked.append((float(lo[2]), float(hi[2])))
    blocked.sort()
    merged: list[tuple[float, float]] = []
    for lo_z, hi_z in blocked:
        if merged and lo_z <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi_z))
        else:
            merged.append((lo_z, hi_z))
    return merged


def _path_range(blocked: list[tuple[float, float]], travel_m: float) -> tuple[float, float]:
    """``(z_lo, z_hi)`` inside the free gap nearest z = 0, within the limits, with clearances."""
    edges = [-math.inf, *(z for interval in blocked for z in interval), math.inf]
    best_distance, best = math.inf, None
    for gap_lo, gap_hi in zip(edges[0::2], edges[1::2], strict=True):
        lo = max(gap_lo + BACK_CLEARANCE_M, BACK_LIMIT_M)
        hi = min(gap_hi - FRONT_CLEARANCE_M, FORWARD_LIMIT_M)
        if lo > hi:
            continue
        distance = 0.0 if lo <= 0.0 <= hi else min(abs(lo), abs(hi))
        if distance < best_distance:
            best_distance, best = distance, (lo, hi)
    if best is None:  # boxed in (never seen): stand still where the scene put the camera
        return 0.0, 0.0
    lo, hi = best
    return max(lo, hi - travel_m), hi


@dataclass
class Segment:
    """What stays fixed over one segment: the scene, the camera path, the sensors' state."""

    scene: Scene
    motion: Motion
    depth_range_m: float
    column_offsets_k: np.ndarray


class SequenceGenerator:
    """Frames of a moving robot camera in the procedural world; frame ``k`` depends only on (seed, k)."""

    def __init__(
        self,
        size: tuple[int, int] = (240, 320),
        seed: int = 0,
        *,
        rate_hz: float = 10.0,
        segment_s: float = 20.0,
        conditions: Sequence[Sequence[str]] = DEFAULT_CONDITIONS,
        rig: CameraRig | None = None,
    ) -> None:
        """``rig``: render each sensor through its own camera (:mod:`.rig`); None: one shared pinhole."""
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        if not (math.isfinite(segment_s) and segment_s > 0):
            raise ValueError(f"segment_s must be > 0, got {segment_s}")
        if not conditions:
            raise ValueError("conditions needs at least one entry (one per segment, cycled)")
        self.generator = SceneGenerator(size, seed)
        self.size = self.generator.size
        self.seed = self.generator.seed
        self.rate_hz = float(rate_hz)
        self.segment_s = float(segment_s)
        self.conditions = tuple(validate_conditions(c) for c in conditions)
        self.rig = rig
        self._segments: dict[int, Segment] = {}

    def __getstate__(self) -> dict[str, Any]:  # worker processes rebuild their own segments
        return {**self.__dict__, "_segments": {}}

    # ------------------------------------------------------------------ timing

    def frame_time(self, index: int) -> float:
        """Seconds from the first frame."""
        return index / self.rate_hz

    def frame_count(self, duration_s: float) -> int:
        """Frames in ``duration_s`` seconds (frame times ``0 <= t < duration_s``)."""
        return max(0, math.ceil(duration_s * self.rate_hz - 1e-9))

    def segment_of(self, index: int) -> int:
        return math.floor(self.frame_time(index) / self.segment_s + 1e-9)

    # ------------------------------------------------------------------ segments

    def segment(self, number: int) -> Segment:
        """Scene, path and sensor state of segment ``number`` (cached)."""
        cached = self._segments.get(number)
        if cached is not None:
            return cached
        conditions = self.conditions[number % len(self.conditions)]
        scene = self.generator.scene(number, conditions)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, number, _MOTION_STREAM]))
        cam = scene.camera
        z_lo, z_hi = _path_range(free_corridor(scene, cam.x_m), float(rng.uniform(*TRAVEL_M)))
        motion = Motion(
            x_m=cam.x_m,
            z_lo_m=z_lo,
            z_hi_m=z_hi,
            z_period_s=float(rng.uniform(*Z_PERIOD_S)),
            z_phase=float(rng.uniform(0, 2 * math.pi)),
            yaw0_rad=cam.yaw_rad,
            yaw_amplitude_rad=math.radians(float(rng.uniform(*YAW_AMPLITUDE_DEG))),
            yaw_period_s=float(rng.uniform(*YAW_PERIOD_S)),
            yaw_phase=float(rng.uniform(0, 2 * math.pi)),
        )
        segment = Segment(scene, motion, depth_range_m(scene, rng), thermal_column_offsets(rng, cam.width))
        if len(self._segments) > 4:
            self._segments.clear()
        self._segments[number] = segment
        return segment

    def pose(self, index: int) -> Pose:
        number = self.segment_of(index)
        return self.segment(number).motion.pose(self.frame_time(index) - number * self.segment_s)

    def scene_at(self, index: int) -> Scene:
        """The segment's scene from frame ``index``'s pose (glare follows the sun as the camera turns)."""
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        seg = self.segment(self.segment_of(index))
        pose = self.pose(index)
        cam = seg.scene.camera
        camera = replace(cam, x_m=pose.x_m, z_m=pose.z_m, yaw_rad=pose.yaw_rad)
        lighting = seg.scene.lighting
        if lighting.glare is not None:  # the low sun is fixed in the world: it slides across the image
            u, v, radius = lighting.glare
            du = -cam.fx * math.tan(pose.yaw_rad - cam.yaw_rad) / cam.width
            lighting = replace(lighting, glare=(u + du, v, radius))
        return replace(seg.scene, camera=camera, lighting=lighting)

    # ------------------------------------------------------------------ frames

    def frame(self, index: int) -> Frame:
        """Frame ``index``: rgb / depth / thermal in sensor units, labels and saliency, meta with the pose."""
        number = self.segment_of(index)
        seg = self.segment(number)
        scene = self.scene_at(index)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, number, _FRAME_STREAM, index]))
        t_s = self.frame_time(index)
        pose = self.pose(index)
        meta = {
            "name": f"{index:06d}",
            "seed": self.seed,
            "frame": index,
            "t_s": t_s,
            "segment": number,
            "conditions": list(scene.conditions),
            "layout": scene.layout,
            "camera": scene.camera.intrinsics(),
            "pose": {"x_m": pose.x_m, "z_m": pose.z_m, "yaw_rad": pose.yaw_rad},
            "ambient_k": round(scene.ambient_k, 3),
        }
        if self.rig is not None:
            return Frame(index, t_s, self._rig_sample(self.rig, number, seg, scene, rng, meta))
        ideal = render(scene)
        sample = Sample(
            rgb=rgb_camera(scene, ideal, rng),
            depth=depth_sensor(scene, ideal, rng, max_range_m=seg.depth_range_m),
            thermal=thermal_camera(scene, ideal, rng, column_offsets_k=seg.column_offsets_k),
            label=ideal.gbuf.cls.copy(),
            saliency=saliency_mask(ideal.gbuf.inst, scene.instance_class, _THINGS),
            meta=meta,
        )
        return Frame(index, t_s, sample)

    def _rig_sample(
        self,
        rig: CameraRig,
        number: int,
        seg: Segment,
        scene: Scene,
        rng: np.random.Generator,
        meta: dict[str, Any],
    ) -> RigSample:
        """The frame through the rig's cameras; the thermal column pattern fits its own width."""
        width = rig.cameras(scene.camera)["thermal"].width
        columns = np.random.default_rng(np.random.SeedSequence([self.seed, number, _RIG_STREAM]))
        return render_rig(
            scene,
            rig,
            rng,
            depth_range_m=seg.depth_range_m,
            column_offsets_k=thermal_column_offsets(columns, width),
            meta=meta,
        )

    def frames(self, start: int, stop: int, *, workers: int = 1) -> Iterator[Frame]:
        """Frames ``start .. stop - 1`` in order; ``workers`` > 1 renders them in a process pool."""
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        indices = range(start, stop)
        if workers == 1 or len(indices) < 2:
            yield from map(self.frame, indices)
            return
        # Consecutive frames share a segment's scene; chunks keep them in one worker's cache.
        chunk = max(1, min(8, len(indices) // (4 * workers)))
        with mp.get_context("spawn").Pool(workers) as pool:
            yield from pool.imap(self.frame, indices, chunksize=chunk)
