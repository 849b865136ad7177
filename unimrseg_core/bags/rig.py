"""The calibration of a rig of offset cameras (``data.rig``), as a robot's bag carries it.

A real robot's bag has a ``sensor_msgs/CameraInfo`` beside every camera and the cameras'
mounting in ``/tf_static``; :func:`rig_calibration` gives both for a rendered rig, in
the registration's types, so the bag writer, the simulated sensors and the tests read one
conversion: intrinsics from each :class:`~unimrseg_core.data.camera.Camera`, and each
camera's pose in the anchor's optical frame (the reference the node's extrinsic parameters
are relative to).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from unimrseg_core.bags.topics import CAMERA_INFO_TYPE, TF_MESSAGE_TYPE
from unimrseg_core.data.camera import Camera
from unimrseg_core.registration import Intrinsics, Transform

__all__ = [
    "CAMERA_INFO_TYPE",
    "TF_MESSAGE_TYPE",
    "SensorCalibration",
    "camera_info_msg",
    "intrinsics_of",
    "rig_calibration",
    "tf_static_msg",
]


@dataclass(frozen=True)
class SensorCalibration:
    """One camera of the rig: its intrinsics and ``anchor_from_sensor`` (identity for the anchor)."""

    intrinsics: Intrinsics
    anchor_from_sensor: Transform


def intrinsics_of(camera: Camera) -> Intrinsics:
    """The simulated camera's CameraInfo intrinsics (an ideal pinhole: no distortion)."""
    return Intrinsics.pinhole(camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy)


def rig_calibration(cameras: Mapping[str, Camera], anchor: str) -> dict[str, SensorCalibration]:
    """Every camera's exact calibration, the extrinsics relative to ``anchor``'s optical frame."""
    return {
        modality: SensorCalibration(intrinsics_of(camera), Transform(*camera.pose_in(cameras[anchor])))
        for modality, camera in cameras.items()
    }


def camera_info_msg(intrinsics: Intrinsics, header: Any) -> Any:
    """A rosbags ``sensor_msgs/CameraInfo`` of ``intrinsics`` with ``header``."""
    from unimrseg_core.bags.messages import typestore

    types = typestore().types
    fields = intrinsics.camera_info_fields()
    roi = types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    arrays = {k: np.asarray(fields[k], np.float64) for k in ("d", "k", "r", "p")}
    return types[CAMERA_INFO_TYPE](
        header=header,
        height=fields["height"],
        width=fields["width"],
        distortion_model=fields["distortion_model"],
        **arrays,
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def tf_static_msg(header_of: Any, transforms: Mapping[tuple[str, str], Transform]) -> Any:
    """A rosbags ``tf2_msgs/TFMessage``: one TransformStamped per ``(parent, child)``, each
    ``parent_from_child`` (``header_of(parent)`` stamps and names its header)."""
    from unimrseg_core.bags.messages import typestore

    types = typestore().types
    stamped = []
    for (parent, child), pose in transforms.items():
        x, y, z, w = pose.quaternion()
        transform = types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](*(float(v) for v in pose.translation)),
            rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        )
        stamped.append(
            types["geometry_msgs/msg/TransformStamped"](
                header=header_of(parent), child_frame_id=child, transform=transform
            )
        )
    return types[TF_MESSAGE_TYPE](transforms=stamped)
