"""sensor_msgs/Image <-> numpy arrays in sensor units, without ROS and without cv_bridge.

ROS 2 cv_bridge is not on PyPI, and the PyPI ``cv-bridge`` is a ROS 1 port that
rejects 16UC1, so the node and the offline bag tools share this numpy code. It
reads any object with the Image fields ``height, width, encoding, is_bigendian,
step, data``: rclpy messages (``data`` is an ``array.array``), rosbags messages
(``data`` is a numpy uint8 array), or plain bytes / memoryview data.

Decoded arrays are in the project's sensor units (``modalities.SENSOR_FORMATS``):

- ``rgb``: ``HxWx3`` uint8, RGB order.
- ``depth``: ``HxW`` float32 metres, 0 = invalid (REP 118: 16UC1/mono16 are millimetres).
- ``thermal``: ``HxW`` float32 kelvin, via :class:`ThermalMapping` for integer encodings.

NaN and inf in float inputs are kept: the health monitor counts them, normalisation
zeroes them later. Every malformed message raises :class:`ImageMsgError`, whose
``reason`` is a short code the node counts per reason; sizes are checked before
anything is allocated, so a forged ``width * height`` cannot exhaust memory.
"""

from __future__ import annotations

import array
import operator
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np

from unimrseg_core.modalities import MODALITIES, NORMALIZATION

__all__ = [
    "DEFAULT_THERMAL",
    "ENCODINGS",
    "MAX_PIXELS",
    "MODALITY_ENCODINGS",
    "REASONS",
    "EncodingSpec",
    "ImageMsgError",
    "ThermalMapping",
    "data_bytes",
    "decode",
    "decode_pixels",
    "encode",
    "fill_msg",
]

# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class EncodingSpec:
    """What one ``sensor_msgs/Image`` encoding holds: the only place these facts are written.

    ``channels`` are per pixel; 4:2:2 YUV stores two bytes per pixel (Y and one of U/V), so it
    is two uint8 channels and needs an even width. ``to_rgb`` is the OpenCV ``cvtColor`` code
    from the stored channels (after 16-bit values are scaled to 8 bits) to RGB, None when
    they already are RGB. ``writable`` is False for the lossy layouts (Bayer, YUV) that
    drivers publish but the project never writes.
    """

    dtype: np.dtype[Any]
    channels: int
    to_rgb: int | None = None
    even_width: bool = False
    writable: bool = True

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


_U8: Final = np.dtype(np.uint8)
_U16: Final = np.dtype(np.uint16)

ENCODINGS: Final[Mapping[str, EncodingSpec]] = {
    "rgb8": EncodingSpec(_U8, 3),
    "bgr8": EncodingSpec(_U8, 3, cv2.COLOR_BGR2RGB),
    "rgba8": EncodingSpec(_U8, 4, cv2.COLOR_RGBA2RGB),
    "bgra8": EncodingSpec(_U8, 4, cv2.COLOR_BGRA2RGB),
    "mono8": EncodingSpec(_U8, 1, cv2.COLOR_GRAY2RGB),
    "mono16": EncodingSpec(_U16, 1, cv2.COLOR_GRAY2RGB),
    "16UC1": EncodingSpec(_U16, 1),
    "32FC1": EncodingSpec(np.dtype(np.float32), 1),
    "rgb16": EncodingSpec(_U16, 3),
    "bgr16": EncodingSpec(_U16, 3, cv2.COLOR_BGR2RGB),
    # OpenCV-type names that drivers use for images, read as cv_bridge reads them.
    "8UC1": EncodingSpec(_U8, 1, cv2.COLOR_GRAY2RGB),
    "8UC3": EncodingSpec(_U8, 3, cv2.COLOR_BGR2RGB),
    "16UC3": EncodingSpec(_U16, 3, cv2.COLOR_BGR2RGB),
    # yuv422 is UYVY, yuv422_yuy2 is YUYV (image_encodings.hpp); BT.601 as cv_bridge converts them.
    "yuv422": EncodingSpec(_U8, 2, cv2.COLOR_YUV2RGB_UYVY, even_width=True, writable=False),
    "yuv422_yuy2": EncodingSpec(_U8, 2, cv2.COLOR_YUV2RGB_YUYV, even_width=True, writable=False),
    # OpenCV names a Bayer pattern by the second row's first two pixels: ROS rggb is OpenCV BG.
    "bayer_rggb8": EncodingSpec(_U8, 1, cv2.COLOR_BayerBG2RGB, writable=False),
    "bayer_bggr8": EncodingSpec(_U8, 1, cv2.COLOR_BayerRG2RGB, writable=False),
    "bayer_gbrg8": EncodingSpec(_U8, 1, cv2.COLOR_BayerGR2RGB, writable=False),
    "bayer_grbg8": EncodingSpec(_U8, 1, cv2.COLOR_BayerGB2RGB, writable=False),
}
"""The one table of supported encodings (names as in sensor_msgs/image_encodings.hpp)."""

MODALITY_ENCODINGS: Final[Mapping[str, tuple[str, ...]]] = dict(
    zip(
        MODALITIES,  # keyed in the one modality order
        (
            (
                *("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "rgb16", "bgr16"),
                *("8UC1", "8UC3", "16UC3", "yuv422", "yuv422_yuy2"),
                *("bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8"),
            ),  # rgb
            ("16UC1", "mono16", "32FC1"),  # depth
            ("mono16", "16UC1", "32FC1", "mono8"),  # thermal
        ),
        strict=True,
    )
)
"""Encodings each modality accepts on input (DESIGN.md "ROS interface")."""

REASONS: Final[tuple[str, ...]] = (
    "bad_field",
    "bad_data",
    "unknown_encoding",
    "wrong_encoding_for_modality",
    "zero_size",
    "too_many_pixels",
    "bad_step",
    "short_data",
    "long_data",
    "odd_width",
    "unknown_format",
    "bad_compressed",
)
"""Every :attr:`ImageMsgError.reason`, so a node can pre-create one counter per reason (the last
two only come from ``compressed_msg.decode_compressed``)."""

MAX_PIXELS: Final[int] = 4096 * 4096
"""Default upper bound on ``height * width``: larger headers are refused before allocating."""

_DEPTH_MM_PER_M: Final[float] = 1000.0
_UINT16_MAX: Final[int] = 65535
_LUMA: Final[np.ndarray] = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601


# --------------------------------------------------------------------------- errors


class ImageMsgError(ValueError):
    """A message that cannot be decoded; ``reason`` is one of :data:`REASONS`.

    A ValueError so callers that already catch bad input keep working; the code is kept
    apart from the text so the node can count and rate-limit per reason without parsing.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


# --------------------------------------------------------------------------- thermal


@dataclass(frozen=True)
class ThermalMapping:
    """How integer thermal images map to kelvin (and back, for encoding).

    16-bit (mono16/16UC1) raw counts: ``kelvin = counts * kelvin_per_count + offset_kelvin``.
    The default 0.01 K/count, offset 0 is the radiometric "TLinear" output of common
    LWIR cores (FLIR Lepton/Boson high-resolution mode), so 30000 counts = 300 K.
    mono8 is a display image: 0..255 is spread linearly over
    ``[mono8_min_kelvin, mono8_max_kelvin]``, by default the model's thermal
    normalisation range, so a mono8 stream normalises back onto its full 8 bits.
    """

    kelvin_per_count: float = 0.01
    offset_kelvin: float = 0.0
    mono8_min_kelvin: float = NORMALIZATION["thermal"].low
    mono8_max_kelvin: float = NORMALIZATION["thermal"].high

    def __post_init__(self) -> None:
        values = (self.kelvin_per_count, self.offset_kelvin, self.mono8_min_kelvin, self.mono8_max_kelvin)
        if not all(np.isfinite(values)):
            raise ValueError(f"ThermalMapping values must be finite, got {self}")
        if self.kelvin_per_count <= 0:
            raise ValueError(f"kelvin_per_count must be > 0, got {self.kelvin_per_count}")
        if self.mono8_max_kelvin <= self.mono8_min_kelvin:
            raise ValueError(
                f"mono8_max_kelvin ({self.mono8_max_kelvin}) must exceed mono8_min_kelvin "
                f"({self.mono8_min_kelvin})"
            )


DEFAULT_THERMAL: Final[ThermalMapping] = ThermalMapping()


# --------------------------------------------------------------------------- decode


def _field_uint(msg: object, name: str, limit: int = 1 << 32) -> int:
    """An unsigned message field as a Python int (ROS uint32 unless ``limit`` says otherwise)."""
    try:
        value = operator.index(getattr(msg, name))
    except (AttributeError, TypeError) as exc:
        raise ImageMsgError("bad_field", f"{name} must be an unsigned integer ({exc})") from None
    if not 0 <= value < limit:
        raise ImageMsgError("bad_field", f"{name}={value} is outside 0..{limit - 1}")
    return value


def data_bytes(data: object) -> np.ndarray:
    """A message's ``data`` as a flat uint8 view (no copy where the buffer allows it); any container."""
    kind = type(data).__name__
    if isinstance(data, np.ndarray):
        if data.dtype.hasobject:
            raise ImageMsgError("bad_data", f"data must hold bytes, got a numpy {data.dtype} array")
        data = np.ascontiguousarray(data)  # a no-op for the contiguous arrays rosbags gives
    try:
        view = memoryview(data)  # type: ignore[arg-type]
        if not view.c_contiguous:  # a strided view (memoryview(b)[::2]): its bytes in order, as for arrays
            view = memoryview(view.tobytes())
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        return np.frombuffer(view, dtype=np.uint8)
    except (TypeError, ValueError, BufferError) as exc:
        raise ImageMsgError("bad_data", f"data must be a bytes-like buffer, got {kind} ({exc})") from None


def _accepted(encoding: str, modality: str) -> EncodingSpec:
    """The spec of ``encoding`` if ``modality`` accepts it, else the reason why not."""
    spec = ENCODINGS.get(encoding)
    if spec is None:
        raise ImageMsgError(
            "unknown_encoding", f"encoding={encoding!r} is not supported; known: {', '.join(ENCODINGS)}"
        )
    if encoding not in MODALITY_ENCODINGS[modality]:
        raise ImageMsgError(
            "wrong_encoding_for_modality",
            f"encoding={encoding!r} is not a {modality} encoding; "
            f"{modality} accepts: {', '.join(MODALITY_ENCODINGS[modality])}",
        )
    return spec


def _pixels(msg: object, modality: str, max_pixels: int) -> tuple[str, np.ndarray, bool]:
    """Validate the header fields against ``data`` and return ``(encoding, rows, big_endian)``.

    ``rows`` is an ``H x W*bytes_per_pixel`` uint8 view of the buffer with stride
    ``step``: padding is skipped without copying, nothing is allocated yet.
    """
    encoding = getattr(msg, "encoding", None)
    if not isinstance(encoding, str):
        raise ImageMsgError("bad_field", f"encoding must be a str, got {type(encoding).__name__}")
    spec = _accepted(encoding, modality)
    height = _field_uint(msg, "height")
    width = _field_uint(msg, "width")
    step = _field_uint(msg, "step")
    big_endian = _field_uint(msg, "is_bigendian", 256) != 0
    if height == 0 or width == 0:
        raise ImageMsgError("zero_size", f"height={height} width={width}: the image is empty")
    if height * width > max_pixels:
        raise ImageMsgError(
            "too_many_pixels", f"height={height} x width={width} = {height * width} pixels > max {max_pixels}"
        )
    if spec.even_width and width % 2:
        raise ImageMsgError("odd_width", f"width={width} is odd; {encoding} packs pixels in pairs")
    row_bytes = width * spec.bytes_per_pixel
    if step < row_bytes:
        raise ImageMsgError(
            "bad_step", f"step={step} < width={width} x {spec.bytes_per_pixel} bytes/pixel ({encoding})"
        )
    buf = data_bytes(getattr(msg, "data", None))
    # The last row needs no padding after it; more than height * step bytes is a header/data mismatch.
    needed = step * (height - 1) + row_bytes
    if buf.size < needed:
        raise ImageMsgError(
            "short_data",
            f"len(data)={buf.size} < {needed} for height={height} step={step} width={width} ({encoding})",
        )
    if buf.size > step * height:
        raise ImageMsgError(
            "long_data", f"len(data)={buf.size} > step={step} x height={height} = {step * height}"
        )
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row_bytes), strides=(step, 1), writeable=False)
    return encoding, rows, big_endian


def _values(rows: np.ndarray, encoding: str, big_endian: bool) -> np.ndarray:
    """Rows of bytes -> ``HxW`` or ``HxWxC`` view in the encoding's dtype and byte order (no copy)."""
    spec = ENCODINGS[encoding]
    dtype = spec.dtype
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if big_endian else "<")
    values = rows.view(dtype)
    return values if spec.channels == 1 else values.reshape(rows.shape[0], -1, spec.channels)


def _decode_rgb(rows: np.ndarray, encoding: str, big_endian: bool) -> np.ndarray:
    # OpenCV's conversions read the strided rows directly and are ~50x faster than numpy
    # fancy strides (0.04 ms vs 2.8 ms for 480x640 bgr8).
    spec = ENCODINGS[encoding]
    pixels = _values(rows, encoding, big_endian)
    if spec.dtype == _U16:  # v * 255 / 65535 rounded, as cv_bridge's convertTo; never a tie
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if spec.to_rgb is None:
        return np.array(pixels, order="C")
    return cv2.cvtColor(pixels, spec.to_rgb)


def _decode_depth(rows: np.ndarray, encoding: str, big_endian: bool) -> np.ndarray:
    values = _values(rows, encoding, big_endian)
    out = values.astype(np.float32)  # always a fresh, native, C-contiguous array
    if encoding != "32FC1":
        out /= np.float32(_DEPTH_MM_PER_M)  # division: 1234 mm -> the float32 nearest 1.234 m
    return out


def _decode_thermal(rows: np.ndarray, encoding: str, big_endian: bool, mapping: ThermalMapping) -> np.ndarray:
    values = _values(rows, encoding, big_endian)
    out = values.astype(np.float32)
    if encoding == "mono8":
        span = mapping.mono8_max_kelvin - mapping.mono8_min_kelvin
        out *= np.float32(span / 255.0)
        out += np.float32(mapping.mono8_min_kelvin)
    elif encoding != "32FC1":
        out *= np.float32(mapping.kelvin_per_count)
        out += np.float32(mapping.offset_kelvin)
    return out


def decode(
    msg: object,
    modality: str,
    *,
    thermal: ThermalMapping = DEFAULT_THERMAL,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """An Image message -> a fresh C-contiguous array in ``modality``'s sensor units.

    Row ``step`` padding is skipped and ``is_bigendian`` honoured for 16-bit and float
    encodings. The result never aliases the message buffer. Raises :class:`ImageMsgError`
    for any malformed message, ValueError for an unknown ``modality`` (a caller bug).
    """
    _check_modality(modality)
    encoding, rows, big_endian = _pixels(msg, modality, max_pixels)
    return _convert(rows, encoding, big_endian, modality, thermal)


def decode_pixels(
    pixels: np.ndarray, encoding: str, modality: str, *, thermal: ThermalMapping = DEFAULT_THERMAL
) -> np.ndarray:
    """Pixels already laid out as ``encoding`` (``HxW`` or ``HxWxC``, native byte order) -> sensor units.

    For codecs that decompress to pixels (``compressed_msg``): the same conversions and
    the same refusals as :func:`decode`, without a message around them.
    """
    _check_modality(modality)
    spec = _accepted(encoding, modality)
    if pixels.dtype != spec.dtype or pixels.shape[2:] != (() if spec.channels == 1 else (spec.channels,)):
        raise ValueError(
            f"{encoding} needs {spec.dtype} x {spec.channels} channel(s), got {pixels.dtype} {pixels.shape}"
        )
    if spec.even_width and pixels.shape[1] % 2:
        raise ImageMsgError("odd_width", f"width={pixels.shape[1]} is odd; {encoding} packs pixels in pairs")
    rows = np.ascontiguousarray(pixels).view(np.uint8).reshape(pixels.shape[0], -1)
    return _convert(rows, encoding, sys.byteorder == "big", modality, thermal)


def _check_modality(modality: str) -> None:
    if modality not in MODALITY_ENCODINGS:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")


def _convert(
    rows: np.ndarray, encoding: str, big_endian: bool, modality: str, thermal: ThermalMapping
) -> np.ndarray:
    if modality == "rgb":
        return _decode_rgb(rows, encoding, big_endian)
    if modality == "depth":
        return _decode_depth(rows, encoding, big_endian)
    return _decode_thermal(rows, encoding, big_endian, thermal)


# --------------------------------------------------------------------------- encode

# What an array means when ``encode`` is given no modality: the outputs the node publishes.
_DEFAULT_MODALITY: Final[Mapping[str, str | None]] = {
    "mono8": None,  # class ids / saliency 0..255, written as is
    "32FC1": None,  # probability, written as is
    "rgb8": "rgb",
    "bgr8": "rgb",
    "rgba8": "rgb",
    "bgra8": "rgb",
    "16UC1": "depth",  # metres -> millimetres
    "mono16": "thermal",  # kelvin -> counts
    "8UC1": None,
    "8UC3": "rgb",
    "rgb16": "rgb",
    "bgr16": "rgb",
    "16UC3": "rgb",
}


def _require(array_: np.ndarray, ndim: int, kinds: str, what: str) -> None:
    """Raise ValueError unless ``ndim`` dims (3 channels if 3-D) and a dtype kind in ``kinds``."""
    ok = array_.ndim == ndim and (ndim == 2 or array_.shape[2] == 3) and array_.dtype.kind in kinds
    if not ok:
        raise ValueError(f"expected {what}, got shape {array_.shape} dtype {array_.dtype}")


def _to_uint(
    x: np.ndarray, dtype: type, scale: float, offset: float = 0.0, *, zero_nonpositive: bool
) -> np.ndarray:
    """``round((x - offset) * scale)`` clipped to ``dtype``; NaN (and inf or <= 0 if asked) -> 0."""
    y = (np.asarray(x, dtype=np.float64) - offset) * scale
    bad = ~np.isfinite(y) if zero_nonpositive else np.isnan(y)
    if zero_nonpositive:
        bad |= y <= 0
    np.rint(y, out=y)
    np.clip(y, 0, np.iinfo(dtype).max, out=y)
    y[bad] = 0
    return y.astype(dtype)


def _encode_values(
    array_: np.ndarray, encoding: str, modality: str | None, mapping: ThermalMapping
) -> np.ndarray:
    """The array to be written, in the encoding's dtype and channel layout (native byte order)."""
    spec = ENCODINGS[encoding]
    if spec.dtype == np.uint16 and array_.dtype == np.uint16:
        _require(
            array_, 2 if spec.channels == 1 else 3, "u", f"{'HxW' if spec.channels == 1 else 'HxWx3'} uint16"
        )
        return array_  # already raw millimetres / counts / 16-bit colour
    if modality is None:
        if spec.dtype == np.uint8:
            _require(array_, 2, "u", "HxW uint8")
            if array_.dtype != np.uint8:
                raise ValueError(f"{encoding} needs uint8 values (0..255), got {array_.dtype}")
            return array_
        _require(array_, 2, "fiu", "HxW numeric")
        return array_.astype(np.float32, copy=False)
    if modality == "rgb":
        _require(array_, 3, "u", "HxWx3 uint8 RGB")
        if array_.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8, got {array_.dtype}")
        if spec.channels == 1:
            out = _to_uint(array_ @ _LUMA, np.uint8, 1.0, zero_nonpositive=False)
        else:
            ordered = array_[..., ::-1] if spec.to_rgb in (cv2.COLOR_BGR2RGB, cv2.COLOR_BGRA2RGB) else array_
            out = np.full((*array_.shape[:2], spec.channels), 255, dtype=np.uint8)
            out[..., :3] = ordered
        # 8 -> 16 bits by v * 257, the exact inverse of decode's v * 255 / 65535
        return out.astype(np.uint16) * np.uint16(257) if spec.dtype == _U16 else out
    _require(array_, 2, "fiu", f"HxW {modality} in sensor units")
    if encoding == "32FC1":
        return array_.astype(np.float32, copy=False)
    if modality == "depth":
        return _to_uint(array_, np.uint16, _DEPTH_MM_PER_M, zero_nonpositive=True)
    if encoding == "mono8":
        span = mapping.mono8_max_kelvin - mapping.mono8_min_kelvin
        return _to_uint(array_, np.uint8, 255.0 / span, mapping.mono8_min_kelvin, zero_nonpositive=False)
    return _to_uint(
        array_, np.uint16, 1.0 / mapping.kelvin_per_count, mapping.offset_kelvin, zero_nonpositive=False
    )


def _encoded(
    array_: np.ndarray, encoding: str, modality: str | None, thermal: ThermalMapping, bigendian: bool
) -> tuple[dict[str, Any], np.ndarray]:
    """Image fields without ``data``, and the C-contiguous array whose bytes are ``data``."""
    spec = ENCODINGS.get(encoding)
    if spec is None:
        raise ValueError(f"unknown encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
    if not spec.writable:
        raise ValueError(
            f"{modality or 'an array'} cannot be written as {encoding}: it is decode-only (lossy)"
        )
    if modality is None:
        modality = _DEFAULT_MODALITY[encoding]
    elif modality not in MODALITY_ENCODINGS:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
    elif encoding not in MODALITY_ENCODINGS[modality]:
        raise ValueError(f"{modality} cannot be written as {encoding}; use {MODALITY_ENCODINGS[modality]}")
    values = _encode_values(np.asarray(array_), encoding, modality, thermal)
    if spec.dtype.itemsize > 1:
        values = values.astype(spec.dtype.newbyteorder(">" if bigendian else "<"), copy=False)
    values = np.ascontiguousarray(values)
    height, width = values.shape[:2]
    fields = {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": int(bigendian and spec.dtype.itemsize > 1),
        "step": width * spec.bytes_per_pixel,
    }
    return fields, values


def encode(
    array_: np.ndarray,
    encoding: str,
    *,
    modality: str | None = None,
    thermal: ThermalMapping = DEFAULT_THERMAL,
    header: object | None = None,
    bigendian: bool = False,
) -> dict[str, Any]:
    """An array -> the Image fields as a dict (``data`` is ``bytes``, ``step`` unpadded).

    With ``modality`` the array is in that modality's sensor units and the conversion is
    the inverse of :func:`decode` (rgb to mono8/mono16 takes BT.601 luma). Without it,
    the encoding says what the array is: mono8 uint8 as is (class ids, saliency),
    rgb8/bgr8/rgba8/bgra8 RGB uint8, 32FC1 as is (probability, depth metres), 16UC1
    depth metres -> mm (rounded, clipped to 0..65535; NaN, inf and <= 0 -> 0 = invalid),
    mono16 thermal kelvin -> counts (inverse of ``thermal``, clipped; NaN -> 0). A uint16
    array given for a 16-bit encoding is already raw and written unchanged. Multi-byte
    values are little-endian unless ``bigendian``. ``header`` is included when given.
    Raises ValueError for an unknown encoding or an array of the wrong shape or dtype.
    """
    fields, values = _encoded(array_, encoding, modality, thermal, bigendian)
    fields["data"] = values.tobytes()
    if header is not None:
        fields["header"] = header
    return fields


def fill_msg(
    msg: Any,
    array_: np.ndarray,
    encoding: str,
    *,
    modality: str | None = None,
    thermal: ThermalMapping = DEFAULT_THERMAL,
    header: object | None = None,
    bigendian: bool = False,
) -> Any:
    """Like :func:`encode`, but set the fields on ``msg`` (rclpy or rosbags Image) and return it.

    ``data`` gets the type the message already holds: an ``array.array('B')`` for rclpy
    (the one type its setter takes without a per-element check when
    ``ROS_PYTHON_CHECK_FIELDS=1``), a uint8 numpy array for rosbags (its serializer
    needs one), bytes otherwise.
    """
    fields, values = _encoded(array_, encoding, modality, thermal, bigendian)
    current = getattr(msg, "data", None)
    data: object
    if isinstance(current, array.array):
        data = array.array("B")
        data.frombytes(memoryview(values).cast("B"))
    elif isinstance(current, np.ndarray):
        data = values.reshape(-1).view(np.uint8).copy()
    else:
        data = values.tobytes()
    for name, value in fields.items():
        setattr(msg, name, value)
    msg.data = data
    if header is not None:
        msg.header = header
    return msg
