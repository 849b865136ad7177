"""What a bag of this project holds: per topic, its message type, encoding and frame id.

The names come from the one topic table (:mod:`unimrseg_core.topics`): the cameras are
recorded under the segmentation node's input names, so a played bag feeds the node as it
is. Names are relative, so a player's namespace or remapping places them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from unimrseg_core import topics
from unimrseg_core.modalities import MODALITIES

__all__ = [
    "CAMERA_INFO_TYPE",
    "COMPRESSED_IMAGE_TYPE",
    "GROUND_TRUTH",
    "IMAGE_TYPE",
    "SENSORS",
    "STORAGE_NAMES",
    "STRING_TYPE",
    "TF_MESSAGE_TYPE",
    "ImageTopic",
]

IMAGE_TYPE: Final = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE: Final = "sensor_msgs/msg/CompressedImage"
"""A camera topic may hold either: robots often record only image_transport's ``compressed`` /
``compressedDepth`` topics (``rgb/image/compressed``), which the bag tools read as the camera."""
STRING_TYPE: Final = "std_msgs/msg/String"
CAMERA_INFO_TYPE: Final = "sensor_msgs/msg/CameraInfo"
"""``<modality>/camera_info`` beside each camera (a robot's bag, ``bag make --rig``)."""
TF_MESSAGE_TYPE: Final = "tf2_msgs/msg/TFMessage"
"""``/tf_static``: the cameras' mounting (read by rosbags' typestore; rclpy here has no tf2_msgs)."""


@dataclass(frozen=True)
class ImageTopic:
    """An image topic of the bag: name, encoding (REP 118 units) and the header's frame_id."""

    topic: str
    encoding: str
    frame_id: str
    what: str


SENSORS: Final[Mapping[str, ImageTopic]] = dict(
    zip(
        MODALITIES,  # keyed in the one modality order
        (
            ImageTopic(topics.INPUTS["rgb"], "rgb8", "rgb_camera_optical_frame", "colour image"),
            ImageTopic(
                topics.INPUTS["depth"],
                "16UC1",
                "depth_camera_optical_frame",
                "depth, millimetres, 0 = invalid",
            ),
            ImageTopic(
                topics.INPUTS["thermal"],
                "mono16",
                "thermal_camera_optical_frame",
                "thermal, raw counts of 0.01 K (30000 = 300 K)",
            ),
        ),
        strict=True,
    )
)
"""The camera topics, per modality (the simulated cameras share one optical centre and axes)."""

GROUND_TRUTH: Final[Mapping[str, ImageTopic]] = {
    "class_mask": ImageTopic(
        topics.GROUND_TRUTH_CLASS_MASK, "mono8", SENSORS["rgb"].frame_id, "class ids (255 = no ground truth)"
    ),
    "saliency": ImageTopic(
        topics.GROUND_TRUTH_SALIENCY, "mono8", SENSORS["rgb"].frame_id, "0 / 255 = salient"
    ),
}
"""Ground truth aligned with the rgb camera, one message per frame, never faulted."""

STORAGE_NAMES: Final = ("mcap", "sqlite3")
"""rosbag2 storage plugins the project writes (``bags.write.STORAGES``), the first the default; here,
without rosbags, so the ``bag`` command line parses where rosbags is not installed."""
