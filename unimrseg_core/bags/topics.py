"""What a bag of this project holds: topics, message types, encodings and frame ids, in one place.

The sensor topic names are the segmentation node's input names
(``unimrseg_ros/topics.py`` ``INPUTS``: ``rgb/image``, ``depth/image``,
``thermal/image``), defined here because the core never imports the ROS package;
``test/core/test_bag_make.py`` checks that the two agree. Names are relative, so a
player's namespace or remapping places them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from unimrseg_core.modalities import MODALITIES

__all__ = [
    "FAULT_EVENTS",
    "FAULT_TIMELINE",
    "GROUND_TRUTH",
    "IMAGE_TYPE",
    "SENSORS",
    "STORAGE_NAMES",
    "STRING_TYPE",
    "ImageTopic",
]

IMAGE_TYPE: Final = "sensor_msgs/msg/Image"
STRING_TYPE: Final = "std_msgs/msg/String"


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
            ImageTopic("rgb/image", "rgb8", "rgb_camera_optical_frame", "colour image"),
            ImageTopic(
                "depth/image", "16UC1", "depth_camera_optical_frame", "depth, millimetres, 0 = invalid"
            ),
            ImageTopic(
                "thermal/image",
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
        "ground_truth/class_mask", "mono8", SENSORS["rgb"].frame_id, "class ids (255 = no ground truth)"
    ),
    "saliency": ImageTopic("ground_truth/saliency", "mono8", SENSORS["rgb"].frame_id, "0 / 255 = salient"),
}
"""Ground truth aligned with the rgb camera, one message per frame, never faulted."""

FAULT_TIMELINE: Final = "faults/timeline"
"""std_msgs/String: the whole fault schedule as YAML (``FaultSchedule.to_yaml``), once at the start."""
FAULT_EVENTS: Final = "faults/events"
"""std_msgs/String: a YAML mapping per fault start or end (t_s, event, index, modality, kind), then."""

STORAGE_NAMES: Final = ("mcap", "sqlite3")
"""rosbag2 storage plugins the project writes (``bags.write.STORAGES``), the first the default; here,
without rosbags, so the ``bag`` command line parses where rosbags is not installed."""
