"""Image files -> sensor units for ``unimrseg infer``, through the same decoder as ROS messages.

A file's pixel layout is mapped onto the ``sensor_msgs/Image`` encoding it
corresponds to, and ``image_msg.decode`` does the rest, so a 16-bit depth PNG is
millimetres and a 16-bit thermal PNG is raw counts exactly as on the robot's
topics (the datasets ``unimrseg data generate`` writes use the same units).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from unimrseg_core.data.readers.images import read_image
from unimrseg_core.image_msg import DEFAULT_THERMAL, ImageMsgError, ThermalMapping, decode

__all__ = ["read_modality"]


def _encoding(image: np.ndarray, modality: str) -> str:
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype == np.uint8:
        return {1: "mono8", 3: "bgr8", 4: "bgra8"}.get(channels, f"{channels}-channel uint8")
    if image.dtype == np.uint16 and channels == 1:
        return "16UC1" if modality == "depth" else "mono16"
    if image.dtype == np.float32 and channels == 1:
        return "32FC1"
    return f"{channels}-channel {image.dtype}"


def read_modality(
    path: str | Path, modality: str, *, thermal: ThermalMapping = DEFAULT_THERMAL
) -> np.ndarray:
    """Read ``path`` (PNG/JPEG/TIFF via OpenCV, or ``.npy``) as ``modality`` in sensor units.

    Raises ValueError naming the file when it cannot be read or its layout does not
    suit the modality.
    """
    path = Path(path)
    loaded = np.load(path, allow_pickle=False) if path.suffix.lower() == ".npy" else read_image(path)
    image = np.ascontiguousarray(loaded)
    big = image.dtype.byteorder == ">" or (image.dtype.byteorder == "=" and sys.byteorder == "big")
    fields = SimpleNamespace(
        height=image.shape[0],
        width=image.shape[1] if image.ndim > 1 else 0,
        encoding=_encoding(image, modality),
        is_bigendian=int(big),
        step=image.strides[0] if image.ndim > 1 else 0,
        data=image.reshape(-1).view(np.uint8) if image.size else b"",
    )
    try:
        return decode(fields, modality, thermal=thermal)
    except ImageMsgError as exc:
        raise ValueError(f"{path}: cannot be read as {modality}: {exc}") from exc
