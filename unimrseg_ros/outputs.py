"""The node's output messages, built from a :class:`Segmentation` and the anchor image's header.

- ``segmentation/class_mask``: sensor_msgs/Image mono8, one class id per pixel.
- ``segmentation/colored_mask``: sensor_msgs/Image rgb8, the class colours.
- ``segmentation/overlay``: sensor_msgs/Image rgb8, the class colours blended on the anchor
  image (``runtime.overlay``).
- ``saliency/mask``: sensor_msgs/Image mono8, ``round(255 * probability)``.
- ``saliency/probability``: sensor_msgs/Image 32FC1, the probability in [0, 1].
- ``segmentation/labels``: std_msgs/String holding JSON (the class table), latched.

Why JSON in a String for the labels: the standard for it, vision_msgs/LabelInfo, is not
in the core interfaces (nor on PyPI), and a KeyValue list cannot carry colours and
flags without a private encoding. JSON keeps id, name, colour and "thing" together
and any language reads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import String

from unimrseg_core import topics
from unimrseg_core.image_msg import fill_msg
from unimrseg_core.modalities import CLASS_COLORS, IGNORE_INDEX, MODALITIES, colorize, model_classes
from unimrseg_core.runtime.overlay import overlay
from unimrseg_core.runtime.segmenter import Segmentation, saliency_mono8

__all__ = ["LABELS_FORMAT", "image_message", "labels_message", "saliency_mono8"]

LABELS_FORMAT = "unimrseg-labels/1"


def image_message(
    topic: str,
    segmentation: Segmentation,
    header: object,
    *,
    anchor: tuple[str, np.ndarray] | None = None,
    colors: np.ndarray = CLASS_COLORS,
) -> Image:
    """The Image for one output ``topic`` (a name from :mod:`unimrseg_core.topics`).

    ``anchor``: (modality, image in sensor units) of the frame's anchor, which the overlay needs;
    ``colors``: the model's class colours (``modalities.color_table`` of its class table).
    """
    if topic == topics.OVERLAY:
        if anchor is None:
            raise ValueError(f"{topic!r} needs the anchor image")
        blend = overlay(anchor[0], anchor[1], segmentation.class_ids, colors=colors)
        return fill_msg(Image(), blend, "rgb8", header=header)
    if topic == topics.CLASS_MASK:
        return fill_msg(Image(), segmentation.class_ids, "mono8", header=header)
    if topic == topics.COLORED_MASK:
        return fill_msg(Image(), colorize(segmentation.class_ids, colors), "rgb8", header=header)
    if topic == topics.SALIENCY_MASK:
        return fill_msg(Image(), segmentation.saliency_mono8, "mono8", header=header)
    if topic == topics.SALIENCY_PROBABILITY:
        return fill_msg(Image(), segmentation.saliency, "32FC1", header=header)
    raise ValueError(f"{topic!r} is not an image output")


def labels_message(model_metadata: Mapping[str, Any] | None = None) -> String:
    """The class table as JSON: what each class id in the masks means, and how to read the masks.
    The model's own table (a fine-tuned model's from its metadata), ours when it names none."""
    meta = dict(model_metadata or {})
    table = {
        "format": LABELS_FORMAT,
        "classes": [
            {"id": c.id, "name": c.name, "color": list(c.color), "is_thing": c.is_thing}
            for c in model_classes(meta)
        ],
        "ignore_index": IGNORE_INDEX,
        "modalities": list(MODALITIES),
        "topics": {
            topics.CLASS_MASK: "mono8: class id per pixel",
            topics.COLORED_MASK: "rgb8: class colour per pixel",
            topics.OVERLAY: "rgb8: class colours blended on the anchor image",
            topics.SALIENCY_MASK: "mono8: round(255 * saliency probability)",
            topics.SALIENCY_PROBABILITY: "32FC1: saliency probability in [0, 1]",
        },
        "model_sha256": meta.get("checkpoint_sha256") or meta.get("sha256"),
    }
    return String(data=json.dumps(table, sort_keys=True))
