"""A bag's camera calibration, as the node would be given it: CameraInfo per camera, extrinsics.

Offline ``bag eval`` must register the cameras as ``unimrseg_node`` does, or its scores
would say nothing about the robot. The node takes each camera's CameraInfo from
``<modality>/camera_info`` and the mounting from its ``<modality>.extrinsic`` parameters;
a robot's bag holds the same facts as CameraInfo topics and one ``/tf_static``
(tf2_msgs/TFMessage). :func:`read_calibration` reads what the bag says before the replay:

- each camera's optical frame id: its CameraInfo's header, else its image's;
- the ``/tf_static`` tree (:class:`~unimrseg_core.registration.tf_tree.StaticTransforms`),
  and from it each camera's pose in the reference camera's frame (the first anchor, as the
  node's ``<modality>.extrinsic`` is relative to it);
- extrinsics given by the user (``bag eval --extrinsic depth="x y z qx qy qz qw"``, the
  node parameter's text) win over the bag's, for a bag without ``/tf_static``.

The CameraInfo messages themselves are replayed in record order through
:meth:`~unimrseg_core.pipeline.FramePipeline.receive_camera_info`, as the node receives
them, so one path registers live and offline. :class:`BagCalibration` says per modality
where its extrinsic came from or why there is none (the JSON's ``registration``), and gives
the extrinsics as node parameters for ``bag eval --live`` (the node cannot subscribe to
/tf_static: no tf2_msgs wheel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from unimrseg_core.bags.read import BagError, BagReader
from unimrseg_core.bags.topics import SENSORS
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.registration import CalibrationError, RegistrationConfig, Transform
from unimrseg_core.registration.tf_tree import StaticTransforms, frame_name
from unimrseg_core.topics import CAMERA_INFOS, TF_STATIC

__all__ = [
    "INFO_MODALITY",
    "TF_STATIC_TOPIC",
    "BagCalibration",
    "extrinsic_text",
    "parse_extrinsics",
    "read_calibration",
]

TF_STATIC_TOPIC: Final = TF_STATIC.lstrip("/")
"""``/tf_static`` as the bag reader names topics (without the leading slash)."""
INFO_MODALITY: Final[Mapping[str, str]] = {topic: m for m, topic in CAMERA_INFOS.items()}
"""CameraInfo topic -> its modality."""
_FROM_ARGUMENT: Final = "given (--extrinsic)"


def extrinsic_text(pose: Transform) -> str:
    """``"x y z qx qy qz qw"``: the node parameter's and ``--extrinsic``'s text of a pose."""
    # rounded at 1e-12 m: a computed pose's -4.7e-19 is a zero, and reads as one
    return " ".join(f"{round(float(v), 12) + 0.0:.9g}" for v in (*pose.translation, *pose.quaternion()))


def parse_extrinsics(items: list[str] | tuple[str, ...]) -> dict[str, Transform]:
    """``["depth=x y z qx qy qz qw", ...]`` -> ``{modality: pose}``; ValueError naming a bad item."""
    out: dict[str, Transform] = {}
    for item in items:
        modality, sep, text = item.partition("=")
        modality = modality.strip()
        if not sep or modality not in MODALITIES:
            raise ValueError(
                f"--extrinsic must be MODALITY='x y z qx qy qz qw' with MODALITY one of "
                f"{', '.join(MODALITIES)}, got {item!r}"
            )
        if modality in out:
            raise ValueError(f"--extrinsic {modality} is given twice")
        try:
            out[modality] = Transform.parse(text)
        except CalibrationError as exc:
            raise ValueError(f"--extrinsic {modality}: {exc}") from None
    return out


@dataclass(frozen=True)
class BagCalibration:
    """What a bag (and the user) says about its cameras' calibration."""

    reference: str
    """The camera the extrinsics are relative to (the first anchor: the node's reference)."""
    frames: dict[str, str]
    """Modality -> its optical frame id (CameraInfo header, else image header)."""
    camera_info: dict[str, int]
    """Modality -> CameraInfo messages the bag has for it (absent: none)."""
    extrinsics: dict[str, Transform]
    """Modality -> ``reference_from_modality`` (the reference itself excluded)."""
    sources: dict[str, str]
    """Modality -> where its extrinsic came from, or why there is none."""
    warnings: list[str] = field(default_factory=list)

    def config(self, *, enabled: bool = True) -> RegistrationConfig:
        """The registration the node would run with these extrinsics as its parameters."""
        return RegistrationConfig(enabled=enabled, reference=self.reference, extrinsics=self.extrinsics)

    def node_args(self) -> list[str]:
        """``-p <modality>.extrinsic:=...`` for the node: what /tf_static would have told it."""
        return [
            arg
            for m, pose in self.extrinsics.items()
            for arg in ("-p", f"{m}.extrinsic:={extrinsic_text(pose)}")
        ]

    def as_json(self) -> dict[str, Any]:
        """Per modality: frame id, CameraInfo count, extrinsic text and its source."""
        return {
            m: {
                "frame_id": self.frames.get(m),
                "camera_info_messages": self.camera_info.get(m, 0),
                "extrinsic": extrinsic_text(self.extrinsics[m]) if m in self.extrinsics else None,
                "extrinsic_source": self.sources.get(m),
            }
            for m in MODALITIES
            if m in self.frames or m in self.camera_info or m in self.sources
        }


def read_calibration(
    bag: BagReader, *, reference: str, given: Mapping[str, Transform] | None = None
) -> BagCalibration:
    """The bag's frame ids, CameraInfo counts and /tf_static, with ``given`` extrinsics first.

    Raises ValueError for a given extrinsic of the reference camera that is not the identity.
    A /tf_static that cannot be used (a non-unit quaternion) is a warning and no extrinsic.
    """
    given = dict(given or {})
    if reference in given:
        if not given[reference].is_identity(1e-9):
            raise ValueError(
                f"--extrinsic {reference}: {reference} is the reference camera (the first anchor): its "
                "pose is the identity; give the other cameras' relative to it"
            )
        del given[reference]
    cameras = {m: t.topic for m, t in SENSORS.items() if t.topic in bag.topics}
    infos = {m: t for m, t in CAMERA_INFOS.items() if t in bag.topics}
    frames = _frame_ids(bag, cameras, infos)
    warnings: list[str] = []
    tree = _tf_tree(bag, warnings)
    extrinsics: dict[str, Transform] = {}
    sources: dict[str, str] = {}
    for modality in MODALITIES:
        if modality not in cameras:
            continue
        if modality == reference:
            sources[modality] = "reference camera (identity)"
        elif modality in given:
            extrinsics[modality], sources[modality] = given[modality], _FROM_ARGUMENT
        else:
            pose, sources[modality] = _from_tree(tree, frames, reference, modality)
            if pose is not None:
                extrinsics[modality] = pose
    for modality in infos:
        info_frame, image_frame = frames.get(modality), frames.get(f"image:{modality}")
        if image_frame is not None and info_frame is not None and image_frame != info_frame:
            warnings.append(
                f"{modality}: CameraInfo frame {info_frame!r} differs from the image's {image_frame!r}; "
                "the CameraInfo's is used"
            )
    return BagCalibration(
        reference=reference,
        frames={m: f for m, f in frames.items() if not m.startswith("image:")},
        camera_info={m: bag.count(t) for m, t in infos.items()},
        extrinsics=extrinsics,
        sources=sources,
        warnings=warnings,
    )


def _frame_ids(bag: BagReader, cameras: Mapping[str, str], infos: Mapping[str, str]) -> dict[str, str]:
    """Modality -> frame id of its first CameraInfo, else of its first image; ``image:<m>`` keys
    hold the image's too (to warn when they differ). Reads only until every topic was seen once."""
    wanted = {t: m for m, t in cameras.items()} | {t: m for m, t in infos.items()}
    out: dict[str, str] = {}
    seen: set[str] = set()
    for message in bag.messages(list(wanted)):
        if message.topic in seen:
            continue
        seen.add(message.topic)
        modality = wanted[message.topic]
        frame = frame_name(message.msg.header.frame_id)
        if message.topic in INFO_MODALITY:
            out[modality] = frame
        else:
            out[f"image:{modality}"] = frame
            out.setdefault(modality, frame)
        if len(seen) == len(wanted):
            break
    return out


def _tf_tree(bag: BagReader, warnings: list[str]) -> StaticTransforms | None:
    """Every transform of the bag's /tf_static (None when it has none)."""
    if TF_STATIC_TOPIC not in bag.topics:
        return None
    tree = StaticTransforms()
    for message in bag.messages([TF_STATIC_TOPIC]):
        try:
            tree.add_message(message.msg)
        except CalibrationError as exc:
            warnings.append(f"{message.bag_topic} at {message.record_ns} ns: {exc}; not used")
        except AttributeError as exc:  # pragma: no cover - the reader checked the type
            raise BagError(bag.path, f"{message.bag_topic} is not a TFMessage: {exc}") from None
    return tree


def _from_tree(
    tree: StaticTransforms | None, frames: Mapping[str, str], reference: str, modality: str
) -> tuple[Transform | None, str]:
    """``reference_from_modality`` from /tf_static, and its source, or None and why not."""
    if tree is None:
        return None, f"none: the bag has no {TF_STATIC} (give --extrinsic {modality}='x y z qx qy qz qw')"
    if reference not in frames:
        return None, f"none: no frame id of the reference camera {reference} (no CameraInfo nor image)"
    try:
        pose = tree.lookup(frames[reference], frames[modality])
    except CalibrationError as exc:
        return None, f"none: {TF_STATIC}: {exc}"
    return pose, f"{TF_STATIC} ({frames[reference]} <- {frames[modality]})"
