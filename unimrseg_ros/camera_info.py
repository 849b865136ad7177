"""sensor_msgs/CameraInfo from the core's intrinsics: the masks' CameraInfo the node publishes.

rviz and downstream nodes (depth_image_proc, image_geometry) need a CameraInfo beside an
image to place it; the masks are in the anchor camera's pixels at the anchor image's
size, so theirs is the anchor's CameraInfo scaled to the mask size, with the mask's header.
"""

from __future__ import annotations

from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from unimrseg_core.registration import Intrinsics

__all__ = ["camera_info_message"]


def camera_info_message(intrinsics: Intrinsics, header: Header, size: tuple[int, int]) -> CameraInfo:
    """``intrinsics`` scaled to ``size`` (height, width), stamped and framed by ``header``."""
    fields = intrinsics.scaled(int(size[1]), int(size[0])).camera_info_fields()
    return CameraInfo(header=header, **fields)
