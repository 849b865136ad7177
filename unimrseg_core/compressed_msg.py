"""sensor_msgs/CompressedImage -> numpy arrays in sensor units, as image_transport's plugins write them.

Robot bags and many live pipelines carry images through image_transport's ``compressed``
and ``compressedDepth`` plugins instead of raw Images. This module reads both without
ROS, with the same output contract and the same :class:`~unimrseg_core.image_msg.ImageMsgError`
reasons as :func:`unimrseg_core.image_msg.decode` (plus ``unknown_format`` and
``bad_compressed``). ``format`` is what the plugins write:

- compressed_image_transport: ``"<encoding>; jpeg compressed bgr8"`` (colour is stored
  BGR, as ``cv::imencode`` takes it), ``"<encoding>; png compressed "`` (mono and 16-bit
  kept as they are), or a bare ``"jpeg"`` / ``"png"`` from other publishers.
- compressed_depth_image_transport: ``"16UC1; compressedDepth png"``, ``"32FC1;
  compressedDepth png"``, or the older ``"32FC1; compressedDepth"`` / ``"32FC1"``. The
  data is a 12-byte ``ConfigHeader`` (int32 compression format, float32 ``depthParam[2]``,
  little-endian) followed by a 16-bit PNG. 16UC1 stores millimetres; 32FC1 stores
  quantised inverse depth ``q = trunc(A / z + B)`` with ``A, B = depthParam`` and
  ``q = 0`` for invalid, decoded here as ``z = A / (q - B)`` and 0 (this project's invalid
  depth) where ``q = 0``. The ``rvl`` codec is refused.

Image sizes are read from the PNG/JPEG header and checked against ``max_pixels`` before
anything is decompressed, so a forged header cannot exhaust memory.
"""

from __future__ import annotations

import struct
from typing import Final

import cv2
import numpy as np

from unimrseg_core.image_msg import (
    DEFAULT_THERMAL,
    ENCODINGS,
    MAX_PIXELS,
    MODALITY_ENCODINGS,
    ImageMsgError,
    ThermalMapping,
    data_bytes,
    decode_pixels,
    encode,
)

__all__ = ["CONFIG_HEADER", "CONTAINERS", "decode_compressed", "encode_compressed", "is_compressed"]

CONFIG_HEADER: Final = struct.Struct("<iff")
"""compressed_depth_image_transport's ConfigHeader: compression format enum, depthParam[2]."""

CONTAINERS: Final[tuple[str, ...]] = ("jpeg", "png")
"""Image containers read inside CompressedImage (compressed_image_transport's jpeg and png)."""

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers
_JPEG_NO_LENGTH: Final = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM


def is_compressed(msg: object) -> bool:
    """True for a CompressedImage (it has ``format`` and no ``encoding``): how callers dispatch."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def _parse_format(text: str) -> tuple[str | None, str, str | None, bool]:
    """``format`` -> (original encoding or None, container, stored colour order or None, compressedDepth)."""
    head, sep, tail = text.partition(";")
    head, words = head.strip(), tail.split()
    if not sep:
        if head.lower() in ("jpeg", "jpg", "png"):
            return None, "png" if head.lower() == "png" else "jpeg", None, False
        if head in ("16UC1", "32FC1"):  # compressed_depth_image_transport before the codec name
            return head, "png", None, True
    elif words[:1] == ["compressedDepth"]:
        codec = words[1] if len(words) > 1 else "png"
        if codec == "png":
            return head, "png", None, True
        raise ImageMsgError(
            "unknown_format", f"format={text!r}: compressedDepth {codec} is not supported (png is)"
        )
    elif len(words) >= 2 and words[0] in CONTAINERS and words[1] == "compressed":
        return head, words[0], words[2] if len(words) > 2 else None, False
    raise ImageMsgError(
        "unknown_format",
        f"format={text!r} is not an image_transport format; expected e.g. 'rgb8; jpeg compressed bgr8', "
        "'16UC1; png compressed', '16UC1; compressedDepth png', 'jpeg' or 'png'",
    )


def _jpeg_size(buf: bytes) -> tuple[int, int] | None:
    """(height, width) from the first start-of-frame segment, walking the marker segments."""
    i = 2
    while i + 9 <= len(buf):
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", buf, i + 5)
            return height, width
        elif marker in _JPEG_NO_LENGTH:
            i += 2
        else:
            i += 2 + struct.unpack_from(">H", buf, i + 2)[0]
    return None


def _image_size(buf: bytes, container: str) -> tuple[int, int]:
    """(height, width) from the container's header, without decompressing anything."""
    size: tuple[int, int] | None = None
    if container == "png" and buf[:8] == _PNG_SIGNATURE and buf[12:16] == b"IHDR" and len(buf) >= 24:
        width, height = struct.unpack_from(">II", buf, 16)
        size = (height, width)
    elif container == "jpeg" and buf[:2] == b"\xff\xd8":
        size = _jpeg_size(buf)
    if size is None:
        raise ImageMsgError(
            "bad_compressed", f"data ({len(buf)} bytes) does not start with a {container} header"
        )
    return size


def _decompress(buf: bytes, container: str, max_pixels: int) -> np.ndarray:
    height, width = _image_size(buf, container)
    if height == 0 or width == 0:
        raise ImageMsgError("zero_size", f"height={height} width={width}: the {container} image is empty")
    if height * width > max_pixels:
        raise ImageMsgError(
            "too_many_pixels", f"height={height} x width={width} = {height * width} pixels > max {max_pixels}"
        )
    pixels = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.shape[:2] != (height, width):
        raise ImageMsgError(
            "bad_compressed", f"the {height}x{width} {container} image in data does not decode"
        )
    return pixels


def _pixel_encoding(pixels: np.ndarray, original: str | None, order: str | None) -> str:
    """The Image encoding that describes what ``cv2.imdecode`` gave: the original one where it fits."""
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(pixels.dtype)
    spec = ENCODINGS.get(original or "")
    if channels == 1 and spec is not None and spec.channels == 1 and spec.dtype == pixels.dtype:
        return str(original)  # mono16 / 16UC1 / mono8 / a Bayer mosaic keep their meaning
    if bits is None or channels == 2:
        raise ImageMsgError("bad_compressed", f"decoded {pixels.dtype} x {channels} channels is not an image")
    if channels == 1:
        return f"mono{bits}"
    if channels == 4 and bits == 8:
        return "bgra8"
    if channels == 3:
        return f"rgb{bits}" if (order or "").startswith("rgb") else f"bgr{bits}"
    raise ImageMsgError("bad_compressed", f"decoded {bits}-bit x {channels} channels is not supported")


def _decode_depth_png(
    buf: bytes, original: str, modality: str, thermal: ThermalMapping, max_pixels: int
) -> np.ndarray:
    if original not in ("16UC1", "32FC1"):
        raise ImageMsgError("unknown_format", f"compressedDepth of {original!r}: only 16UC1 and 32FC1 exist")
    if len(buf) <= CONFIG_HEADER.size:
        raise ImageMsgError("bad_compressed", f"len(data)={len(buf)}: no room after the 12-byte ConfigHeader")
    _, quant_a, quant_b = CONFIG_HEADER.unpack_from(buf)
    pixels = _decompress(buf[CONFIG_HEADER.size :], "png", max_pixels)
    if pixels.dtype != np.uint16 or pixels.ndim != 2:
        raise ImageMsgError(
            "bad_compressed", f"compressedDepth holds {pixels.dtype} {pixels.shape}, not 16-bit mono"
        )
    if original == "16UC1":
        return decode_pixels(pixels, "16UC1", modality, thermal=thermal)
    if not (np.isfinite(quant_a) and np.isfinite(quant_b)):
        raise ImageMsgError("bad_compressed", f"depthParam=({quant_a}, {quant_b}) is not finite")
    q = pixels.astype(np.float32)
    valid = pixels != 0
    depth = np.zeros(q.shape, np.float32)
    np.divide(np.float32(quant_a), q - np.float32(quant_b), out=depth, where=valid)
    return decode_pixels(depth, "32FC1", modality, thermal=thermal)


def decode_compressed(
    msg: object,
    modality: str,
    *,
    thermal: ThermalMapping = DEFAULT_THERMAL,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """A CompressedImage -> a fresh C-contiguous array in ``modality``'s sensor units (as ``decode``).

    Raises :class:`ImageMsgError` for a format or payload that cannot be read, or an image
    that ``modality`` does not accept (``wrong_encoding_for_modality``: a jpeg as depth),
    ValueError for an unknown ``modality`` (a caller bug).
    """
    if modality not in MODALITY_ENCODINGS:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITY_ENCODINGS)}")
    text = getattr(msg, "format", None)
    if not isinstance(text, str):
        raise ImageMsgError("bad_field", f"format must be a str, got {type(text).__name__}")
    original, container, order, depth_codec = _parse_format(text)
    buf = data_bytes(getattr(msg, "data", None)).tobytes()
    if depth_codec:
        return _decode_depth_png(buf, str(original), modality, thermal, max_pixels)
    pixels = _decompress(buf, container, max_pixels)
    return decode_pixels(pixels, _pixel_encoding(pixels, original, order), modality, thermal=thermal)


def encode_compressed(
    array_: np.ndarray, modality: str, transport: str, *, thermal: ThermalMapping = DEFAULT_THERMAL
) -> tuple[str, bytes]:
    """An array in sensor units -> CompressedImage ``(format, data)`` as the plugins write it.

    For test publishers (``sensor_sim --transport``): rgb as ``compressed`` JPEG (BGR inside),
    depth and thermal as 16-bit PNG (millimetres, counts), ``compressedDepth`` with a zero
    ConfigHeader before a 16UC1 PNG. Raises ValueError for a pair it does not write.
    """
    if modality == "rgb" and transport == "compressed":
        _, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(array_), cv2.COLOR_RGB2BGR))
        return "rgb8; jpeg compressed bgr8", buf.tobytes()
    if modality in ("depth", "thermal") and transport in ("compressed", "compressedDepth"):
        encoding = "16UC1" if modality == "depth" or transport == "compressedDepth" else "mono16"
        fields = encode(array_, encoding, modality=modality, thermal=thermal)
        raw = np.frombuffer(fields["data"], "<u2").reshape(fields["height"], fields["width"])
        _, buf = cv2.imencode(".png", raw)
        if transport == "compressed":
            return f"{encoding}; png compressed ", buf.tobytes()
        return f"{encoding}; compressedDepth png", CONFIG_HEADER.pack(0, 0.0, 0.0) + buf.tobytes()
    raise ValueError(f"encode_compressed does not write {modality} as {transport!r}")
