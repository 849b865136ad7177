"""Every topic name the node uses: the one place the launch file, README, tests and benchmark read.

Names are relative (no leading slash), so a node namespace and remapping place them;
only /diagnostics is absolute, as the diagnostics aggregator expects it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from unimrseg_core.modalities import MODALITIES

__all__ = [
    "CLASS_MASK",
    "COLORED_MASK",
    "DIAGNOSTICS",
    "FAULTS_ACTIVE",
    "INJECTOR_INPUTS",
    "INJECTOR_NODE_NAME",
    "INPUTS",
    "LABELS",
    "NODE_NAME",
    "SALIENCY_MASK",
    "SALIENCY_PROBABILITY",
    "STATUS",
]

NODE_NAME: Final = "unimrseg_node"
"""The node's default name (also the executable's and the params file's key)."""

INPUTS: Final[Mapping[str, str]] = {m: f"{m}/image" for m in MODALITIES}
"""sensor_msgs/Image input per modality: ``rgb/image``, ``depth/image``, ``thermal/image``."""

CLASS_MASK: Final = "segmentation/class_mask"
COLORED_MASK: Final = "segmentation/colored_mask"
SALIENCY_MASK: Final = "saliency/mask"
SALIENCY_PROBABILITY: Final = "saliency/probability"
LABELS: Final = "segmentation/labels"
STATUS: Final = "segmentation/status"
DIAGNOSTICS: Final = "/diagnostics"

INJECTOR_NODE_NAME: Final = "unimrseg_fault_injector"
"""The fault injector's default name (and executable)."""
INJECTOR_INPUTS: Final[Mapping[str, str]] = {m: f"in/{m}/image" for m in MODALITIES}
"""The fault injector's camera inputs; it republishes each on ``INPUTS[m]``, the node's input."""
FAULTS_ACTIVE: Final = "faults/active"
"""std_msgs/String (JSON), latched: the injector's active faults, on every change and periodically."""
