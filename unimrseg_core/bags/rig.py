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

from unimrseg_core.data.camera import Camera
from unimrseg_core.registration import Intrinsics, Transform

__all__ = ["SensorCalibration", "intrinsics_of", "rig_calibration"]


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
