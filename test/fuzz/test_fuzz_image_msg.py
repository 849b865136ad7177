"""Fuzzing image conversion: any Image-like message decodes to the documented array or is refused
with one of ``REASONS``; the values match an independent reading of the bytes (NaN and inf kept);
huge headers are refused before anything is allocated; encode then decode gives the values back."""

from __future__ import annotations

import array
import tracemalloc
from types import SimpleNamespace
from typing import Any

import cv2
import fuzzing
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from unimrseg_core.image_msg import (
    DEFAULT_THERMAL,
    ENCODINGS,
    MODALITY_ENCODINGS,
    REASONS,
    ImageMsgError,
    ThermalMapping,
    decode,
    encode,
    fill_msg,
)
from unimrseg_core.modalities import MODALITIES, SENSOR_FORMATS

pytestmark = pytest.mark.timeout(fuzzing.TIMEOUT_S)

ACCEPTED = [(m, e) for m in MODALITIES for e in MODALITY_ENCODINGS[m]]
PAIRS = [(m, e) for m, e in ACCEPTED if ENCODINGS[e].writable]
NEAR_MISSES = ["RGB8", "rgb8 ", " mono8", "16uc1", "32FC3", "bayer_rggb16", "YUV422", "8UC4", "", "rgb8\x00"]
BGR_ORDER = {"bgr8", "bgra8", "bgr16", "8UC3", "16UC3"}
# The lossy layouts have no short numpy oracle: OpenCV on an unpadded copy, as cv_bridge calls it.
OPENCV_ONLY = {
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}
UINT32 = 2**32


def _reason(exc: ImageMsgError) -> str:
    return exc.reason


def _decode(msg: object, modality: str, **kw: Any) -> tuple[np.ndarray | None, BaseException | None]:
    return fuzzing.attempt(lambda: decode(msg, modality, **kw), (ImageMsgError,), _reason)


def _check_refusal(error: BaseException) -> None:
    assert isinstance(error, ImageMsgError)
    assert error.reason in REASONS
    assert str(error).startswith(f"{error.reason}: ")
    assert len(str(error)) > len(error.reason) + 2


def _check_format(out: np.ndarray, modality: str, height: int, width: int) -> None:
    ndim, dtype = SENSOR_FORMATS[modality]
    assert (out.ndim, out.dtype) == (ndim, np.dtype(dtype))
    assert out.shape[:2] == (height, width)
    assert modality != "rgb" or out.shape[2] == 3
    assert out.flags.c_contiguous
    assert out.flags.writeable


# --------------------------------------------------------------------------- an independent oracle


def _reference(raw: bytes, modality: str, encoding: str, height: int, width: int, step: int, big: bool):
    """What the message means, read row by row with plain numpy (no strides; OpenCV only for Bayer/YUV)."""
    spec = ENCODINGS[encoding]
    dtype = spec.dtype.newbyteorder(">" if big else "<") if spec.dtype.itemsize > 1 else spec.dtype
    row_bytes = width * spec.bytes_per_pixel
    rows = [np.frombuffer(raw[r * step : r * step + row_bytes], dtype=dtype) for r in range(height)]
    values = np.stack(rows).reshape(height, width, spec.channels)
    if modality == "rgb":
        if encoding in OPENCV_ONLY:
            return cv2.cvtColor(
                np.ascontiguousarray(values.squeeze(2) if spec.channels == 1 else values),
                OPENCV_ONLY[encoding],
            )
        if spec.dtype == np.uint16:  # cv_bridge: v * 255 / 65535, rounded
            values = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
        if spec.channels == 1:
            return np.repeat(values, 3, axis=2).astype(np.uint8)
        return values[..., 2::-1] if encoding in BGR_ORDER else values[..., :3]
    out = values[..., 0].astype(np.float32)
    if encoding == "32FC1":
        return out
    if modality == "depth":
        return out / np.float32(1000.0)
    mapping = DEFAULT_THERMAL
    if encoding == "mono8":
        span = mapping.mono8_max_kelvin - mapping.mono8_min_kelvin
        return out * np.float32(span / 255.0) + np.float32(mapping.mono8_min_kelvin)
    return out * np.float32(mapping.kelvin_per_count) + np.float32(mapping.offset_kelvin)


_FLOATS = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
_SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 3.4e38])


@st.composite
def valid_messages(draw: st.DrawFn) -> tuple[str, SimpleNamespace, bytes]:
    """A consistent message of any supported pair: padding, byte order, NaN/inf floats, any container."""
    modality, encoding = draw(st.sampled_from(ACCEPTED))
    spec = ENCODINGS[encoding]
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    width += width % 2 if spec.even_width else 0
    big = draw(st.booleans())
    row_bytes = width * spec.bytes_per_pixel
    step = row_bytes + draw(st.sampled_from([0, 0, 1, 3, 8]))
    if spec.dtype == np.float32:
        values = draw(arrays(np.float32, (height, width), elements=st.one_of(_SPECIAL, _FLOATS)))
        rows = values.astype(">f4" if big else "<f4").view(np.uint8).reshape(height, row_bytes)
    else:
        rows = draw(arrays(np.uint8, (height, row_bytes)))
    padded = np.zeros((height, step), dtype=np.uint8)
    padded[:, :row_bytes] = rows
    padded[:, row_bytes:] = 0xAB  # padding must never leak into the values
    raw = padded.tobytes()
    if draw(st.booleans()):
        raw = raw[: step * (height - 1) + row_bytes]  # the last row's padding is optional
    container = draw(
        st.sampled_from([bytes, bytearray, memoryview, lambda b: array.array("B", b), "numpy", "numpy2d"])
    )
    if container == "numpy":
        data: object = np.frombuffer(raw, np.uint8)
    elif container == "numpy2d":
        data = np.frombuffer(raw, np.uint8).reshape(1, -1)
    else:
        data = container(raw)
    msg = SimpleNamespace(
        height=height, width=width, encoding=encoding, is_bigendian=int(big), step=step, data=data
    )
    return modality, msg, raw


@fuzzing.budget()
@given(case=valid_messages())
@fuzzing.counted
def test_valid_messages_decode_to_exactly_what_their_bytes_say(case) -> None:
    modality, msg, raw = case
    out, error = _decode(msg, modality)
    assert error is None, error
    _check_format(out, modality, msg.height, msg.width)
    expected = _reference(
        raw, modality, msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian)
    )
    np.testing.assert_array_equal(out, expected)  # NaN where NaN, inf where inf, bit for bit


# --------------------------------------------------------------------------- anything at all

_DIMS = st.one_of(
    st.integers(1, 12),
    st.just(0),
    st.integers(0, UINT32 - 1),
    st.sampled_from([4097, 2**16, 2**31, UINT32 - 1, UINT32, -1, 2**64]),
    st.sampled_from([True, 5.0, "7", None, np.int64(3), np.uint32(4)]),
)


_STRIDED = memoryview(bytes(range(6)))[::2]


def often(draw: st.DrawFn, usual: st.SearchStrategy[Any], *unusual: st.SearchStrategy[Any]) -> Any:
    """``usual`` 85% of the time, else one of ``unusual``: most messages get far enough to meet each check."""
    if draw(st.integers(0, 19)) < 17:
        return draw(usual)
    return draw(st.one_of(*unusual))


@st.composite
def any_messages(draw: st.DrawFn) -> tuple[str, SimpleNamespace, int]:
    """Fields of any value and type; data at most 16 KiB in every container a caller might pass."""
    modality = draw(st.sampled_from(MODALITIES))
    encoding = often(
        draw,
        st.sampled_from(MODALITY_ENCODINGS[modality]),
        st.sampled_from(sorted(ENCODINGS)),
        st.sampled_from(NEAR_MISSES),
        st.text(max_size=8),
        st.sampled_from([None, b"rgb8", 8]),
    )
    height, width = often(draw, st.integers(1, 12), _DIMS), often(draw, st.integers(1, 12), _DIMS)
    bpp = ENCODINGS[encoding].bytes_per_pixel if isinstance(encoding, str) and encoding in ENCODINGS else 1
    row = width * bpp if isinstance(width, int) and 0 <= width < 2**20 else 16
    step = often(draw, st.integers(row, row + 4), st.integers(0, row + 4), _DIMS)
    is_bigendian = often(
        draw, st.sampled_from([0, 1]), st.sampled_from([2, 255, 256, -1, True, None, 1.0, np.uint8(1)])
    )
    ok = type(step) is int and type(height) is int and 0 < height < 2**20 and 0 <= step < 2**20
    exact, unpadded = (step * height, step * (height - 1) + row) if ok else (64, 64)
    length = often(
        draw,
        st.sampled_from([exact, unpadded]),
        st.integers(exact - 3, exact + 3),
        st.integers(0, 64),
    )
    length = min(max(length, 0), 1 << 14)
    payload = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, 256, length, np.uint8)
    kind = often(
        draw,
        st.sampled_from(["bytes", "bytearray", "memoryview", "array", "numpy"]),
        st.sampled_from(["u16", "f64", "strided", "view2d", "odd"]),
    )
    data: object
    if kind == "bytes":
        data = payload.tobytes()
    elif kind == "bytearray":
        data = bytearray(payload.tobytes())
    elif kind == "memoryview":
        data = memoryview(payload.tobytes())
    elif kind == "array":
        data = array.array("B", payload.tobytes())
    elif kind == "numpy":
        data = payload
    elif kind == "u16":
        data = payload[: length // 2 * 2].view(np.uint16)
    elif kind == "f64":
        data = payload[: length // 8 * 8].view(np.float64)
    elif kind == "strided":
        data = payload[::2]  # not contiguous: copied, still bytes
    elif kind == "view2d":
        data = memoryview(payload)[::2]  # a strided memoryview
    else:
        data = draw(
            st.sampled_from([None, "text", [1, 2, 3], np.zeros(4, dtype=object), 3.5, np.zeros(2, "M8[s]")])
        )
    msg = SimpleNamespace(
        height=height, width=width, encoding=encoding, is_bigendian=is_bigendian, step=step, data=data
    )
    if draw(st.integers(0, 30)) == 0:
        delattr(msg, draw(st.sampled_from(["height", "width", "encoding", "is_bigendian", "step", "data"])))
    return modality, msg, length


@fuzzing.budget()
@given(case=any_messages(), max_pixels=st.one_of(st.just(4096 * 4096), st.integers(1, 2**70)))
@example(  # found by this property: a strided memoryview escaped as a BufferError
    case=(
        "rgb",
        SimpleNamespace(height=1, width=1, encoding="rgb8", is_bigendian=0, step=3, data=_STRIDED),
        3,
    ),
    max_pixels=1,
)
@fuzzing.counted
def test_any_message_is_decoded_or_refused_with_a_known_reason(case, max_pixels: int) -> None:
    modality, msg, length = case
    tracemalloc.start()
    try:
        out, error = _decode(msg, modality, max_pixels=max_pixels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 16 * length + (1 << 16)  # never more than the output (<= 4 bytes per input byte)
    if error is not None:
        _check_refusal(error)
        return
    assert 0 < msg.height * msg.width <= max_pixels
    assert msg.encoding in MODALITY_ENCODINGS[modality]
    _check_format(out, modality, msg.height, msg.width)


@fuzzing.budget()
@given(
    modality=st.sampled_from(MODALITIES),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    height=st.integers(2**12, UINT32 - 1),
    width=st.integers(2**12, UINT32 - 1),
    slack=st.integers(-8, 8),
    length=st.integers(0, 256),
    max_pixels=st.one_of(st.just(4096 * 4096), st.integers(2**24, 2**80)),
)
@fuzzing.counted
def test_huge_headers_are_refused_before_allocating(
    modality: str, encoding: str, height: int, width: int, slack: int, length: int, max_pixels: int
) -> None:
    step = min(max(width * ENCODINGS[encoding].bytes_per_pixel + slack, 0), UINT32 - 1)
    msg = SimpleNamespace(
        height=height, width=width, encoding=encoding, is_bigendian=0, step=step, data=bytes(length)
    )
    tracemalloc.start()
    try:
        out, error = _decode(msg, modality, max_pixels=max_pixels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out is None
    _check_refusal(error)
    assert peak < 1 << 16


# --------------------------------------------------------------------------- encode, then decode

_MAPPINGS = st.builds(
    ThermalMapping,
    kelvin_per_count=st.sampled_from([0.01, 0.04, 1.0, 1e-3]),
    offset_kelvin=st.sampled_from([0.0, 100.0, -50.0]),
    mono8_min_kelvin=st.sampled_from([260.0, 0.0]),
    mono8_max_kelvin=st.sampled_from([320.0, 400.0]),
)
_SENSOR_FLOATS = st.one_of(
    st.floats(-10.0, 700.0, width=32), st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 65.535, 65.536])
)


@st.composite
def sensor_arrays(draw: st.DrawFn) -> tuple[str, str, np.ndarray]:
    modality, encoding = draw(st.sampled_from(PAIRS))
    shape = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    if modality == "rgb":
        return modality, encoding, draw(arrays(np.uint8, (*shape, 3)))
    return modality, encoding, draw(arrays(np.float32, shape, elements=_SENSOR_FLOATS))


def _tolerance(modality: str, encoding: str, mapping: ThermalMapping) -> float:
    if encoding == "32FC1" or modality == "rgb":
        return 0.0
    if modality == "depth":
        return 0.0005 + 1e-4
    if encoding == "mono8":
        return (mapping.mono8_max_kelvin - mapping.mono8_min_kelvin) / 255 / 2 * 1.001
    return mapping.kelvin_per_count / 2 * 1.001 + 1e-4


def _expected_back(x: np.ndarray, modality: str, encoding: str, mapping: ThermalMapping) -> np.ndarray:
    """What an encoding can hold of ``x``: clipped to its range, invalid depth as 0."""
    if encoding == "32FC1" or modality == "rgb":
        return x
    x = x.astype(np.float64)
    if modality == "depth":
        bad = ~np.isfinite(x) | (x <= 0)
        return np.where(bad, 0.0, np.clip(x, 0.0, 65.535))
    if encoding == "mono8":
        low, high = mapping.mono8_min_kelvin, mapping.mono8_max_kelvin
    else:
        low, high = mapping.offset_kelvin, mapping.offset_kelvin + 65535 * mapping.kelvin_per_count
    return np.where(np.isnan(x), low, np.clip(x, low, high))


@fuzzing.budget()
@given(case=sensor_arrays(), mapping=_MAPPINGS, big=st.booleans(), container=st.sampled_from([0, 1, 2]))
@fuzzing.counted
def test_encode_then_decode_gives_the_values_back_within_units(
    case, mapping, big: bool, container: int
) -> None:
    modality, encoding, x = case
    fields, error = fuzzing.attempt(
        lambda: encode(x, encoding, modality=modality, thermal=mapping, bigendian=big), (ValueError,)
    )
    assert error is None, error
    current = (b"", array.array("B"), np.zeros(0, np.uint8))[container]
    filled = fill_msg(
        SimpleNamespace(data=current), x, encoding, modality=modality, thermal=mapping, bigendian=big
    )
    assert bytes(filled.data) == fields["data"]
    assert type(filled.data) is type(current)
    back = decode(SimpleNamespace(**fields), modality, thermal=mapping)
    _check_format(back, modality, *x.shape[:2])
    if modality == "rgb" and ENCODINGS[encoding].channels == 1:
        luma = x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        assert (back == back[..., :1]).all()
        assert np.abs(back[..., 0] - luma).max() <= 0.5 + 1e-3
        return
    want = _expected_back(x, modality, encoding, mapping)
    np.testing.assert_allclose(back, want, rtol=1e-6, atol=_tolerance(modality, encoding, mapping))


def _encode_why(exc: ValueError) -> str:
    """The kind of refusal, without the values that vary from example to example."""
    text = str(exc)
    for kind in (
        "unknown encoding",
        "unknown modality",
        "cannot be written as",
        "needs uint8",
        "must be uint8",
    ):
        if kind in text:
            return kind
    return "wrong array shape or dtype" if text.startswith("expected") else text


_ANY_ARRAYS = st.one_of(
    arrays(
        st.sampled_from(
            [np.uint8, np.uint16, np.int8, np.int32, np.float16, np.float64, np.bool_, np.complex64]
        ),
        array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    ),
    st.sampled_from([np.array(["a"]), np.zeros((2, 2), dtype=object), np.zeros((2, 2), "datetime64[s]")]),
)


@fuzzing.budget()
@given(
    x=_ANY_ARRAYS,
    encoding=st.one_of(st.sampled_from(sorted(ENCODINGS)), st.sampled_from(NEAR_MISSES)),
    modality=st.sampled_from([None, *MODALITIES, "ir"]),
)
@fuzzing.counted
def test_encode_of_any_array_is_a_decodable_message_or_a_value_error(x, encoding, modality) -> None:
    fields, error = fuzzing.attempt(
        lambda: encode(x, encoding, modality=modality), (ValueError,), _encode_why
    )
    if error is not None:
        assert str(error)
        return
    spec = ENCODINGS[encoding]
    assert fields["step"] == fields["width"] * spec.bytes_per_pixel
    assert len(fields["data"]) == fields["step"] * fields["height"]
    if fields["height"] and fields["width"]:
        reader = next(
            m
            for m in (modality, "thermal", "depth", "rgb")
            if m in MODALITY_ENCODINGS and encoding in MODALITY_ENCODINGS[m]
        )
        _check_format(decode(SimpleNamespace(**fields), reader), reader, fields["height"], fields["width"])
