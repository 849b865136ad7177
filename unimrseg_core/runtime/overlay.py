"""The overlay image: class colours blended on the anchor camera's image, for people looking at it.

Why a separate output: the colour mask alone hides what the camera saw, and rviz's Image
display shows one image per panel. The node publishes this on ``segmentation/overlay``
only while someone subscribes (it costs a blend per frame); it is computed here, without
ROS, so the blend is tested once and the node only publishes it.

The anchor may be any camera: rgb is shown as it is, depth and thermal as grey over the
model's own range (``modalities.normalize``: 0-20 m, 240-340 K), so what the overlay shows
is what the network was given. Pixels without a class (``IGNORE_INDEX``) keep the image.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from unimrseg_core.modalities import CLASS_COLORS, IGNORE_INDEX, MODALITIES, colorize, normalize

__all__ = ["DEFAULT_ALPHA", "anchor_rgb", "overlay"]

DEFAULT_ALPHA: Final = 0.5
"""Weight of the class colour in the blend (0: the image only, 1: the colour mask only)."""


def anchor_rgb(modality: str, image: np.ndarray) -> np.ndarray:
    """``modality``'s image in sensor units -> HxWx3 uint8 RGB to draw on (depth/thermal as grey)."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
    if modality == "rgb":
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"rgb image must be HxWx3 uint8, got {image.dtype} {image.shape}")
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"{modality} image must be HxW (or HxWx1), got {image.shape}")
    grey = normalize(modality, image)
    grey8 = np.rint(grey * np.float32(255.0)).astype(np.uint8)
    return np.repeat(grey8[..., None], 3, axis=2)


def overlay(
    modality: str,
    image: np.ndarray,
    class_ids: np.ndarray,
    *,
    alpha: float = DEFAULT_ALPHA,
    colors: np.ndarray = CLASS_COLORS,
) -> np.ndarray:
    """HxWx3 uint8 RGB: ``round((1 - alpha) * image + alpha * colour)`` where a pixel has a class.

    ``image``: the anchor's image in sensor units (``Frame.anchor_image``); ``class_ids``:
    the class mask at its size (what ``Segmenter.segment_frame`` returns); ``colors``: the
    model's ``modalities.color_table``. Raises ValueError for sizes that differ or an
    ``alpha`` outside [0, 1].
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    base = anchor_rgb(modality, image)
    if class_ids.shape != base.shape[:2]:
        raise ValueError(
            f"class mask {class_ids.shape} is not the size of the {modality} image {base.shape[:2]}"
        )
    blended = base.astype(np.float32) * np.float32(1.0 - alpha) + colorize(class_ids, colors).astype(
        np.float32
    ) * np.float32(alpha)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    void = class_ids == IGNORE_INDEX
    out[void] = base[void]
    return out
