"""Which modality is brought into the anchor camera how, and doing it for one frame.

A robot's cameras have their own intrinsics, resolutions and mountings; the model wants
every image in the anchor camera's pixels. :class:`Registrar` keeps what is known (each
modality's CameraInfo as it arrives; extrinsics and homographies from the configuration,
each relative to one ``reference`` camera, usually the first anchor) and
:meth:`Registrar.plan` decides, for a frame's anchor and images, how each modality gets
there (:data:`METHODS`):

- ``anchor``: the anchor itself, untouched;
- ``reprojected``: depth, z-buffered into the anchor (``reproject.register_depth``);
- ``via_depth``: rgb / thermal sampled where the frame's depth (registered, or the anchor's
  own) puts each anchor pixel's surface; pixels without depth use the plane below;
- ``homography``: a calibrated 3x3 (configuration), or the plane ``registration_plane_m``
  in front of the anchor computed from both calibrations (no depth in the frame);
- ``resized``: nothing is known; the image goes to the model as it is (the model's resize).
  The :class:`Outcome` says why, so /diagnostics and the bag tools can tell the user.

The plan is an immutable snapshot: :meth:`RegistrationPlan.apply` is pure and may run on
another thread (the node's inference thread) while new CameraInfo arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import cv2
import numpy as np

from unimrseg_core.modalities import MODALITIES, NEAREST_RESIZE
from unimrseg_core.registration.extrinsics import Transform
from unimrseg_core.registration.intrinsics import CalibrationError, Intrinsics, same_aspect
from unimrseg_core.registration.reproject import register_depth, remap, sampling_maps

__all__ = [
    "DEFAULT_PLANE_M",
    "METHODS",
    "Outcome",
    "Registrar",
    "RegistrationConfig",
    "RegistrationPlan",
]

METHODS: Final = ("anchor", "reprojected", "via_depth", "homography", "resized")
DEFAULT_PLANE_M: Final = 5.0
"""Distance of the plane assumed where no depth is known (metres)."""
_DEPTH: Final = "depth"


@dataclass(frozen=True)
class Outcome:
    """How a modality reached the anchor camera in one frame, and why that way."""

    method: str
    reason: str = ""
    anchor: str = ""
    """The camera it was brought into (set by :meth:`Registrar.plan`)."""

    @property
    def registered(self) -> bool:
        return self.method != "resized"

    @property
    def text(self) -> str:
        """One line for /diagnostics and logs: ``"via_depth into rgb (...)"``, ``"resized: ..."``."""
        if self.method == "anchor":
            return "anchor: the other images are brought into this camera"
        if self.method == "resized":
            return f"resized: {self.reason}"
        return f"{self.method} into {self.anchor}" + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class RegistrationConfig:
    """What the configuration (node parameters, a bag's /tf_static) says about the cameras.

    ``extrinsics[m]``: ``reference_from_m``, the pose of m's optical frame in the reference
    camera's (the reference's own is the identity). ``homographies[m]``: 3x3 mapping m's
    pixels to the reference camera's pixels (at the CameraInfo sizes, or the image sizes
    when there is no CameraInfo). ``enabled`` False: every image is only resized.
    """

    enabled: bool = True
    reference: str = MODALITIES[0]
    extrinsics: Mapping[str, Transform] = field(default_factory=dict)
    homographies: Mapping[str, np.ndarray] = field(default_factory=dict)
    plane_m: float = DEFAULT_PLANE_M
    fill_upsampling_holes: bool = True

    def __post_init__(self) -> None:
        if self.reference not in MODALITIES:
            raise CalibrationError(f"reference {self.reference!r} is not one of {', '.join(MODALITIES)}")
        for name, table in (("extrinsics", self.extrinsics), ("homographies", self.homographies)):
            unknown = [m for m in table if m not in MODALITIES]
            if unknown:
                raise CalibrationError(f"{name}: unknown modality {unknown!r}")
        checked = {m: _homography(m, h) for m, h in self.homographies.items()}
        object.__setattr__(self, "homographies", checked)
        if not (np.isfinite(self.plane_m) and self.plane_m > 0):
            raise CalibrationError(f"plane distance must be > 0 m, got {self.plane_m!r}")

    def pose(self, modality: str) -> Transform | None:
        """``reference_from_modality`` (identity for the reference), or None when not given."""
        if modality == self.reference:
            return Transform.identity()
        return self.extrinsics.get(modality)

    def homography(self, modality: str) -> np.ndarray | None:
        """``modality`` pixels -> reference pixels (identity for the reference), or None."""
        if modality == self.reference:
            return np.eye(3)
        return self.homographies.get(modality)


def _homography(modality: str, value: Any) -> np.ndarray:
    h = np.asarray(value, np.float64)
    if h.size != 9 or not np.all(np.isfinite(h)):
        raise CalibrationError(f"{modality} homography needs 9 finite numbers, got {np.ravel(h).tolist()}")
    h = h.reshape(3, 3)
    if abs(np.linalg.det(h)) < 1e-12:
        raise CalibrationError(f"{modality} homography is singular: {h.tolist()}")
    return h / h[2, 2] if h[2, 2] else h


@dataclass(frozen=True)
class _Step:
    """One modality's way into the anchor, with what it needs."""

    outcome: Outcome
    source: Intrinsics | None = None  # the modality's intrinsics at its image size
    anchor_from_source: Transform | None = None
    homography: np.ndarray | None = None  # source pixels -> anchor pixels (image sizes)


@dataclass(frozen=True)
class RegistrationPlan:
    """How each modality of one frame reaches its anchor; :meth:`apply` does it."""

    anchor: str
    anchor_size: tuple[int, int]
    anchor_intrinsics: Intrinsics | None
    """The anchor's intrinsics at its image size (the masks' CameraInfo), None without CameraInfo."""
    steps: Mapping[str, _Step]
    plane_m: float = DEFAULT_PLANE_M
    fill_upsampling_holes: bool = True

    @property
    def outcomes(self) -> dict[str, Outcome]:
        return {m: s.outcome for m, s in self.steps.items()}

    def apply(self, images: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The frame's images in the anchor's pixels (resized ones as they came), MODALITIES order."""
        out = dict(images)
        anchor_depth = self._anchor_depth(images)
        if anchor_depth is not None and self.anchor != _DEPTH and _DEPTH in images:
            out[_DEPTH] = anchor_depth
        for modality, step in self.steps.items():
            if modality == _DEPTH or modality not in images:
                continue
            method = step.outcome.method
            if method == "via_depth" and anchor_depth is not None:
                out[modality] = self._via_depth(images[modality], step, anchor_depth)
            elif method in ("via_depth", "homography"):
                out[modality] = self._by_homography(
                    images[modality], step, nearest=modality in NEAREST_RESIZE
                )
        return {m: out[m] for m in MODALITIES if m in out}

    def _anchor_depth(self, images: Mapping[str, np.ndarray]) -> np.ndarray | None:
        if _DEPTH not in images:
            return None
        if self.anchor == _DEPTH:
            return images[_DEPTH]
        step = self.steps.get(_DEPTH)
        if step is None or step.outcome.method != "reprojected" or self.anchor_intrinsics is None:
            return None
        return register_depth(
            images[_DEPTH],
            step.source,  # type: ignore[arg-type]
            self.anchor_intrinsics,
            step.anchor_from_source,  # type: ignore[arg-type]
            fill_upsampling_holes=self.fill_upsampling_holes,
        )

    def _via_depth(self, image: np.ndarray, step: _Step, depth: np.ndarray) -> np.ndarray:
        target, source = self.anchor_intrinsics, step.source
        source_from_anchor = step.anchor_from_source.inverse()  # type: ignore[union-attr]
        map_x, map_y, valid = sampling_maps(depth, target, source, source_from_anchor)  # type: ignore[arg-type]
        plane_x, plane_y, _ = _plane_maps(target, source, source_from_anchor, self.plane_m)  # type: ignore[arg-type]
        return remap(image, np.where(valid, map_x, plane_x), np.where(valid, map_y, plane_y))

    def _by_homography(self, image: np.ndarray, step: _Step, *, nearest: bool) -> np.ndarray:
        h, w = self.anchor_size
        if step.homography is not None:
            flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
            return cv2.warpPerspective(
                image, step.homography, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE
            )
        source_from_anchor = step.anchor_from_source.inverse()  # type: ignore[union-attr]
        map_x, map_y, _ = _plane_maps(self.anchor_intrinsics, step.source, source_from_anchor, self.plane_m)  # type: ignore[arg-type]
        return remap(image, map_x, map_y, nearest=nearest)


_PLANE_CACHE: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _plane_maps(
    target: Intrinsics, source: Intrinsics, source_from_target: Transform, plane_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The maps of the plane ``z = plane_m`` (constant per calibration: cached, a few entries)."""
    key = (
        target.key,
        source.key,
        source_from_target.rotation.tobytes(),
        source_from_target.translation.tobytes(),
        plane_m,
    )
    maps = _PLANE_CACHE.get(key)
    if maps is None:
        maps = sampling_maps(plane_m, target, source, source_from_target)
        if len(_PLANE_CACHE) >= 8:
            _PLANE_CACHE.clear()
        _PLANE_CACHE[key] = maps
    return maps


class Registrar:
    """The cameras' calibration as it is known now, and the plan for a frame.

    Not thread-safe (the pipeline's caller serialises calls); plans are immutable snapshots.
    """

    def __init__(
        self, config: RegistrationConfig | None = None, *, info_topics: Mapping[str, str] | None = None
    ) -> None:
        """``info_topics``: where each modality's CameraInfo comes from, for the reasons' text."""
        self.config = config or RegistrationConfig()
        self._source = {m: f"CameraInfo for {m}" for m in MODALITIES}
        self._source.update({m: f"CameraInfo for {m} on {topic}" for m, topic in (info_topics or {}).items()})
        self._intrinsics: dict[str, Intrinsics] = {}
        self._refused: dict[str, str] = {}
        self.last: dict[str, Outcome] = {}
        """The outcome of each modality in the latest plan (what /diagnostics shows)."""

    def camera_info(self, modality: str, msg: Any) -> Intrinsics:
        """Take a CameraInfo of ``modality``; a bad one raises CalibrationError and is forgotten with
        the calibration before it (stale intrinsics must not be used), its reason kept for the outcome."""
        try:
            intrinsics = Intrinsics.from_camera_info(msg)
        except CalibrationError as exc:
            self._intrinsics.pop(modality, None)
            self._refused[modality] = f"{self._source[modality]} refused: {exc}"
            raise
        except Exception as exc:  # not a CameraInfo at all
            self._intrinsics.pop(modality, None)
            reason = f"{type(exc).__name__}: {exc}"
            self._refused[modality] = f"{self._source[modality]} refused: {reason}"
            raise CalibrationError(reason) from exc
        self._intrinsics[modality] = intrinsics
        self._refused.pop(modality, None)
        return intrinsics

    def set_intrinsics(self, modality: str, intrinsics: Intrinsics) -> None:
        """Calibration known otherwise (a file, a bag's first CameraInfo)."""
        self._intrinsics[modality] = intrinsics
        self._refused.pop(modality, None)

    def intrinsics(self, modality: str) -> Intrinsics | None:
        return self._intrinsics.get(modality)

    def plan(self, anchor: str, sizes: Mapping[str, tuple[int, int]]) -> RegistrationPlan:
        """How each modality of ``sizes`` (image (height, width) per modality) reaches ``anchor``."""
        anchor_size = tuple(sizes[anchor])[:2]
        anchor_intrinsics, anchor_problem = self._at_size(anchor, anchor_size)
        steps: dict[str, _Step] = {}
        no_depth = "" if anchor == _DEPTH else "no depth in the frame"
        if _DEPTH in sizes and anchor != _DEPTH:
            steps[_DEPTH] = self._depth_step(anchor, sizes[_DEPTH], anchor_problem)
            no_depth = "" if steps[_DEPTH].outcome.registered else "depth not registered"
        for modality in sizes:
            if modality == anchor:
                steps[modality] = _Step(Outcome("anchor"))
            elif modality != _DEPTH:
                steps[modality] = self._image_step(
                    modality, anchor, sizes[modality], anchor_size, anchor_problem, no_depth
                )
        steps = {
            m: replace(steps[m], outcome=replace(steps[m].outcome, anchor=anchor))
            for m in MODALITIES
            if m in steps
        }
        self.last.update({m: s.outcome for m, s in steps.items()})
        return RegistrationPlan(
            anchor,
            (int(anchor_size[0]), int(anchor_size[1])),
            anchor_intrinsics,
            steps,
            self.config.plane_m,
            self.config.fill_upsampling_holes,
        )

    # ------------------------------------------------------------------ decisions

    def _at_size(self, modality: str, size: tuple[int, ...]) -> tuple[Intrinsics | None, str]:
        """``modality``'s intrinsics scaled to its image, or None and why not."""
        intrinsics = self._intrinsics.get(modality)
        if intrinsics is None:
            return None, self._refused.get(modality, f"no {self._source[modality]}")
        h, w = int(size[0]), int(size[1])
        if not same_aspect((h, w), intrinsics.size):
            return None, (
                f"the {modality} image is {h}x{w}, its CameraInfo {intrinsics.height}x{intrinsics.width} "
                "(another aspect ratio: not the same camera mode)"
            )
        return intrinsics.scaled(w, h), ""

    def _relative(self, modality: str, anchor: str) -> tuple[Transform | None, str]:
        """``anchor_from_modality`` from both poses in the reference frame, or None and why not."""
        missing = [m for m in (modality, anchor) if self.config.pose(m) is None]
        if missing:
            return None, f"no extrinsic for {' and '.join(missing)} relative to {self.config.reference}"
        return self.config.pose(anchor).inverse() @ self.config.pose(modality), ""  # type: ignore[union-attr]

    def _depth_step(self, anchor: str, size: tuple[int, int], anchor_problem: str) -> _Step:
        if not self.config.enabled:
            return _Step(Outcome("resized", "registration is off"))
        source, problem = self._at_size(_DEPTH, size)
        transform, missing = self._relative(_DEPTH, anchor)
        reason = problem or anchor_problem or missing
        if reason:
            return _Step(Outcome("resized", reason))
        return _Step(Outcome("reprojected"), source, transform)

    def _image_step(
        self,
        modality: str,
        anchor: str,
        size: tuple[int, int],
        anchor_size: tuple[int, ...],
        anchor_problem: str,
        no_depth: str,
    ) -> _Step:
        """Via depth when the frame has depth in the anchor's pixels (``no_depth`` empty), else a
        homography: the configured one, or the plane's from both calibrations."""
        if not self.config.enabled:
            return _Step(Outcome("resized", "registration is off"))
        source, problem = self._at_size(modality, size)
        transform, missing = self._relative(modality, anchor)
        calibrated = not (problem or anchor_problem or missing)
        if calibrated and not no_depth:
            return _Step(
                Outcome("via_depth", f"holes: plane at {self.config.plane_m:g} m"), source, transform
            )
        homography = self._homography(modality, anchor, size, anchor_size)
        if homography is not None:
            return _Step(Outcome("homography", "calibrated 3x3"), homography=homography)
        if calibrated:
            return _Step(
                Outcome("homography", f"plane at {self.config.plane_m:g} m: {no_depth}"), source, transform
            )
        return _Step(Outcome("resized", problem or anchor_problem or missing))

    def _homography(
        self, modality: str, anchor: str, size: tuple[int, int], anchor_size: tuple[int, ...]
    ) -> np.ndarray | None:
        """The configured ``anchor <- modality`` pixel homography at the images' sizes, or None."""
        to_reference, anchor_to_reference = self.config.homography(modality), self.config.homography(anchor)
        if to_reference is None or anchor_to_reference is None:
            return None  # (both cannot be the reference's identity: modality != anchor)
        h = np.linalg.inv(anchor_to_reference) @ to_reference
        # the homographies are for the CameraInfo sizes, or the images' own without CameraInfo
        return (
            _scale(anchor_size, self._intrinsics.get(anchor))
            @ h
            @ np.linalg.inv(_scale(size, self._intrinsics.get(modality)))
        )


def _scale(size: tuple[int, ...], calibrated: Intrinsics | None) -> np.ndarray:
    """Pixels of the calibrated size -> pixels of the image (pixel centres as OpenCV resizes)."""
    if calibrated is None:
        return np.eye(3)
    sy, sx = size[0] / calibrated.height, size[1] / calibrated.width
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
