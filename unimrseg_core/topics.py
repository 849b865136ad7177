"""Every topic and node name: the one table the nodes, bags, launch file, tests and benchmarks read.

It lives in the core because the core's bag tools need the names too and the core never
imports the ROS package; the ROS layer imports it from here. Names are relative (no
leading slash), so a node namespace and remapping place them; only /diagnostics is
absolute, as the diagnostics aggregator expects it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from unimrseg_core.modalities import MODALITIES

__all__ = [
    "CAMERA_INFOS",
    "CLASS_MASK",
    "COLORED_MASK",
    "DIAGNOSTICS",
    "FAULTS_ACTIVE",
    "FAULT_EVENTS",
    "FAULT_TIMELINE",
    "GROUND_TRUTH_CLASS_MASK",
    "GROUND_TRUTH_SALIENCY",
    "INJECTOR_INPUTS",
    "INJECTOR_NODE_NAME",
    "INPUTS",
    "LABELS",
    "MASK_CAMERA_INFO",
    "NODE_NAME",
    "OVERLAY",
    "SALIENCY_MASK",
    "SALIENCY_PROBABILITY",
    "STATUS",
    "TF_STATIC",
    "TRANSPORTS",
    "input_topic",
]

# ---------------------------------------------------------------------------- the segmentation node

NODE_NAME: Final = "unimrseg_node"
"""The node's default name (also the executable's and the params file's key)."""

INPUTS: Final[Mapping[str, str]] = {m: f"{m}/image" for m in MODALITIES}
"""sensor_msgs/Image input per modality: ``rgb/image``, ``depth/image``, ``thermal/image``; the
cameras of a bag are recorded under the same names."""

TRANSPORTS: Final[Mapping[str, tuple[str, ...]]] = {
    m: ("raw", "compressed") if m == "rgb" else ("raw", "compressed", "compressedDepth") for m in MODALITIES
}
"""image_transport transports each modality can arrive by: raw is sensor_msgs/Image, the others
sensor_msgs/CompressedImage (compressedDepth only holds 16-bit or float single-channel images)."""


def input_topic(modality: str, transport: str = "raw") -> str:
    """The input topic of ``modality`` by ``transport``, named as image_transport names it.

    ``rgb/image`` for raw, ``rgb/image/compressed``, ``depth/image/compressedDepth``. Raises
    ValueError for a transport the modality does not have.
    """
    if transport not in TRANSPORTS[modality]:
        raise ValueError(
            f"{modality} has no transport {transport!r}; valid: {', '.join(TRANSPORTS[modality])}"
        )
    return INPUTS[modality] if transport == "raw" else f"{INPUTS[modality]}/{transport}"


CAMERA_INFOS: Final[Mapping[str, str]] = {m: f"{m}/camera_info" for m in MODALITIES}
"""sensor_msgs/CameraInfo per modality, beside its image as image_transport's CameraSubscriber
expects: ``rgb/camera_info`` (whatever the image's transport)."""
TF_STATIC: Final = "/tf_static"
"""tf2_msgs/TFMessage: the cameras' mounting in a bag (the node takes extrinsics from parameters:
the pinned ROS wheels have no tf2_msgs)."""

CLASS_MASK: Final = "segmentation/class_mask"
COLORED_MASK: Final = "segmentation/colored_mask"
OVERLAY: Final = "segmentation/overlay"
"""sensor_msgs/Image rgb8: the class colours blended on the anchor image (only while subscribed)."""
SALIENCY_MASK: Final = "saliency/mask"
SALIENCY_PROBABILITY: Final = "saliency/probability"
LABELS: Final = "segmentation/labels"
STATUS: Final = "segmentation/status"
MASK_CAMERA_INFO: Final = "segmentation/camera_info"
"""sensor_msgs/CameraInfo of the masks: the anchor camera's, scaled to the mask size, the mask's header."""
DIAGNOSTICS: Final = "/diagnostics"

# ---------------------------------------------------------------------------- the fault injector

INJECTOR_NODE_NAME: Final = "unimrseg_fault_injector"
"""The fault injector's default name (and executable)."""
INJECTOR_INPUTS: Final[Mapping[str, str]] = {m: f"in/{m}/image" for m in MODALITIES}
"""The fault injector's camera inputs; it republishes each on ``INPUTS[m]``, the node's input."""
FAULTS_ACTIVE: Final = "faults/active"
"""std_msgs/String (JSON), latched: the injector's active faults, on every change and periodically."""

# ---------------------------------------------------------------------------- bags

GROUND_TRUTH_CLASS_MASK: Final = "ground_truth/class_mask"
"""sensor_msgs/Image mono8: class ids aligned with the rgb camera, one per frame."""
GROUND_TRUTH_SALIENCY: Final = "ground_truth/saliency"
"""sensor_msgs/Image mono8: 0 / 255 = salient, aligned with the rgb camera."""
FAULT_TIMELINE: Final = "faults/timeline"
"""std_msgs/String: the whole fault schedule as YAML (``FaultSchedule.to_yaml``), once at the start."""
FAULT_EVENTS: Final = "faults/events"
"""std_msgs/String: a YAML mapping per fault start or end (t_s, event, index, modality, kind), then."""
