"""sensor_msgs/Image <-> arrays in sensor units, on plain objects (no rclpy): every encoding,
padding, byte order, unit conversions, and a precise error for every malformed message."""

from __future__ import annotations

import array
import sys
import tracemalloc
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from unimrseg_core.image_msg import (
    DEFAULT_THERMAL,
    ENCODINGS,
    MAX_PIXELS,
    MODALITY_ENCODINGS,
    REASONS,
    ImageMsgError,
    ThermalMapping,
    decode,
    encode,
    fill_msg,
)
from unimrseg_core.modalities import MODALITIES, NORMALIZATION, SENSOR_FORMATS

H, W = 5, 7
PAIRS = [(m, e) for m in MODALITIES for e in MODALITY_ENCODINGS[m] if ENCODINGS[e].writable]
"""The pairs ``encode`` writes; the lossy driver layouts (Bayer, YUV) are decode-only."""
COMPRESSED_REASONS = {"unknown_format", "bad_compressed"}  # test/core/test_compressed_msg.py reaches them


def msg(**fields: Any) -> SimpleNamespace:
    """A duck-typed Image: decode needs only the six fields."""
    base = {"height": H, "width": W, "encoding": "mono8", "is_bigendian": 0, "step": W, "data": bytes(H * W)}
    return SimpleNamespace(**{**base, **fields})


def sample(modality: str, encoding: str, rng: np.random.Generator) -> np.ndarray:
    """An array in sensor units that ``encoding`` represents exactly (so round trips compare equal)."""
    if modality == "rgb":
        if ENCODINGS[encoding].channels == 1:
            return np.repeat(rng.integers(0, 256, (H, W, 1), dtype=np.uint8), 3, axis=2)
        return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    if modality == "depth":
        mm = rng.integers(0, 65536, (H, W))
        mm[0, :3] = (0, 1, 65535)
        return (mm / 1000).astype(np.float32)  # float32 nearest each whole millimetre
    if encoding == "mono8":
        norm = NORMALIZATION["thermal"]
        return (norm.low + rng.integers(0, 256, (H, W)) * (norm.high - norm.low) / 255).astype(np.float32)
    counts = rng.integers(0, 65536, (H, W))
    return (counts * DEFAULT_THERMAL.kelvin_per_count).astype(np.float32)


def assert_format(out: np.ndarray, modality: str, shape: tuple[int, int], source: object = None) -> None:
    ndim, dtype = SENSOR_FORMATS[modality]
    assert out.ndim == ndim
    assert out.dtype == dtype
    assert out.shape[:2] == shape
    if modality == "rgb":
        assert out.shape[2] == 3
    assert out.flags.c_contiguous
    assert out.flags.writeable
    if isinstance(source, np.ndarray):
        assert not np.shares_memory(out, source)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------- table


def test_encoding_table_covers_every_modality_encoding() -> None:
    for modality, encodings in MODALITY_ENCODINGS.items():
        assert modality in MODALITIES
        assert set(encodings) <= set(ENCODINGS)
    bpp = {name: spec.bytes_per_pixel for name, spec in ENCODINGS.items()}
    assert bpp == {
        "rgb8": 3,
        "bgr8": 3,
        "rgba8": 4,
        "bgra8": 4,
        "mono8": 1,
        "mono16": 2,
        "16UC1": 2,
        "32FC1": 4,
        "rgb16": 6,
        "bgr16": 6,
        "8UC1": 1,
        "8UC3": 3,
        "16UC3": 6,
        "yuv422": 2,
        "yuv422_yuy2": 2,
        "bayer_rggb8": 1,
        "bayer_bggr8": 1,
        "bayer_gbrg8": 1,
        "bayer_grbg8": 1,
    }


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(("modality", "encoding"), PAIRS)
def test_round_trip_every_encoding(modality: str, encoding: str, rng: np.random.Generator) -> None:
    x = sample(modality, encoding, rng)
    fields = encode(x, encoding, modality=modality)
    assert fields["encoding"] == encoding
    assert (fields["height"], fields["width"]) == (H, W)
    assert fields["step"] == W * ENCODINGS[encoding].bytes_per_pixel
    assert len(fields["data"]) == fields["step"] * H
    out = decode(SimpleNamespace(**fields), modality)
    assert_format(out, modality, (H, W))
    if modality == "thermal" and encoding in ("mono16", "16UC1", "mono8"):
        np.testing.assert_allclose(out, x, rtol=0, atol=1e-3)
        # counts survive exactly: decoding then encoding again gives the same bytes
        assert encode(out, encoding, modality=modality)["data"] == fields["data"]
    else:
        np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("container", [bytes, bytearray, memoryview, "array", "numpy", "numpy_readonly"])
@pytest.mark.parametrize(
    ("modality", "encoding"), [("rgb", "bgr8"), ("depth", "16UC1"), ("thermal", "32FC1")]
)
def test_every_data_container_decodes_the_same(
    container: object, modality: str, encoding: str, rng: np.random.Generator
) -> None:
    fields = encode(sample(modality, encoding, rng), encoding, modality=modality)
    expected = decode(SimpleNamespace(**fields), modality)
    raw = fields["data"]
    data: object
    if container == "array":
        data = array.array("B", raw)
    elif container == "numpy":
        data = np.frombuffer(raw, dtype=np.uint8).copy()
    elif container == "numpy_readonly":
        data = np.frombuffer(raw, dtype=np.uint8)
    else:
        data = container(raw)  # type: ignore[operator]
    out = decode(SimpleNamespace(**{**fields, "data": data}), modality)
    np.testing.assert_array_equal(out, expected)
    assert_format(out, modality, (H, W), data)


def test_result_never_aliases_the_message_buffer(rng: np.random.Generator) -> None:
    x = sample("rgb", "rgb8", rng)
    data = np.frombuffer(encode(x, "rgb8")["data"], dtype=np.uint8).copy()
    out = decode(msg(encoding="rgb8", step=W * 3, data=data), "rgb")
    data[:] = 0
    np.testing.assert_array_equal(out, x)


# --------------------------------------------------------------------------- layout


def pad_rows(fields: dict[str, Any], pad: int, *, last_row: bool = True) -> dict[str, Any]:
    """The same image with ``pad`` garbage bytes after each row (and after the last if ``last_row``)."""
    row = fields["step"]
    rows = np.frombuffer(fields["data"], dtype=np.uint8).reshape(fields["height"], row)
    padded = np.full((fields["height"], row + pad), 0xA5, dtype=np.uint8)
    padded[:, :row] = rows
    data = padded.tobytes()
    if not last_row:
        data = data[:-pad] if pad else data
    return {**fields, "step": row + pad, "data": data}


@pytest.mark.parametrize("pad", [1, 3, 64])
@pytest.mark.parametrize(("modality", "encoding"), PAIRS)
def test_step_padding_is_skipped(modality: str, encoding: str, pad: int, rng: np.random.Generator) -> None:
    fields = encode(sample(modality, encoding, rng), encoding, modality=modality)
    expected = decode(SimpleNamespace(**fields), modality)
    for last_row in (True, False):
        padded = pad_rows(fields, pad, last_row=last_row)  # odd pads leave 16/32-bit pixels unaligned
        np.testing.assert_array_equal(decode(SimpleNamespace(**padded), modality), expected)


@pytest.mark.parametrize(("modality", "encoding"), PAIRS)
def test_big_endian_data(modality: str, encoding: str, rng: np.random.Generator) -> None:
    x = sample(modality, encoding, rng)
    little = encode(x, encoding, modality=modality)
    big = encode(x, encoding, modality=modality, bigendian=True)
    spec = ENCODINGS[encoding]
    if spec.dtype.itemsize == 1:
        assert big == little  # byte order means nothing for 8-bit data
        assert decode(SimpleNamespace(**{**little, "is_bigendian": 1}), modality).tobytes() == (
            decode(SimpleNamespace(**little), modality).tobytes()
        )
        return
    assert (little["is_bigendian"], big["is_bigendian"]) == (0, 1)
    swapped = np.frombuffer(little["data"], dtype=spec.dtype.newbyteorder("<")).byteswap().tobytes()
    assert big["data"] == swapped
    np.testing.assert_array_equal(
        decode(SimpleNamespace(**big), modality), decode(SimpleNamespace(**little), modality)
    )
    padded = pad_rows(big, 3)
    np.testing.assert_array_equal(
        decode(SimpleNamespace(**padded), modality), decode(SimpleNamespace(**big), modality)
    )


def test_native_order_of_this_machine_is_honoured() -> None:
    values = np.array([[1, 2, 258]], dtype=np.uint16)  # native order, flagged as such
    m = msg(
        encoding="16UC1",
        height=1,
        width=3,
        step=6,
        is_bigendian=int(sys.byteorder == "big"),
        data=values.tobytes(),
    )
    np.testing.assert_array_equal(decode(m, "depth"), np.array([[0.001, 0.002, 0.258]], dtype=np.float32))


# --------------------------------------------------------------------------- rgb


def test_rgb_channel_orders_alpha_and_mono() -> None:
    px = np.array([[[10, 20, 30]]], dtype=np.uint8)
    cases = {
        "rgb8": [10, 20, 30],
        "bgr8": [30, 20, 10],
        "rgba8": [10, 20, 30, 99],
        "bgra8": [30, 20, 10, 99],
        "mono8": [77],
    }
    for encoding, raw in cases.items():
        m = msg(encoding=encoding, height=1, width=1, step=len(raw), data=bytes(raw))
        expected = np.array([[[77, 77, 77]]], dtype=np.uint8) if encoding == "mono8" else px
        np.testing.assert_array_equal(decode(m, "rgb"), expected)


def test_rgb_mono16_rounds_like_cv_bridge() -> None:
    values = np.array([[0x12AB, 0xFF00, 0x00FF, 128, 129, 65535]], dtype="<u2")
    expected = np.rint(values.astype(np.float64) * 255 / 65535)  # cv_bridge: convertTo(CV_8U, 255 / 65535)
    np.testing.assert_array_equal(expected, [[19, 254, 1, 0, 1, 255]])
    for order, big in (("<u2", 0), (">u2", 1)):
        data = values.astype(order).tobytes()
        out = decode(msg(encoding="mono16", height=1, width=6, step=12, is_bigendian=big, data=data), "rgb")
        np.testing.assert_array_equal(out[0, :, 0], expected[0])
        np.testing.assert_array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize(("encoding", "bgr"), [("rgb16", False), ("bgr16", True), ("16UC3", True)])
@pytest.mark.parametrize("big", [False, True])
def test_rgb_16_bit_colour_rounds_to_8_bits(
    encoding: str, bgr: bool, big: bool, rng: np.random.Generator
) -> None:
    values = rng.integers(0, 65536, (H, W, 3)).astype(">u2" if big else "<u2")
    padded = pad_rows({"height": H, "step": W * 6, "data": values.tobytes()}, 3)
    m = msg(encoding=encoding, is_bigendian=int(big), step=padded["step"], data=padded["data"])
    expected = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(decode(m, "rgb"), expected[..., ::-1] if bgr else expected)


def test_opencv_type_names_read_as_cv_bridge_reads_them(rng: np.random.Generator) -> None:
    bgr = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    gray = bgr[..., 0].copy()
    np.testing.assert_array_equal(
        decode(msg(encoding="8UC3", step=W * 3, data=bgr.tobytes()), "rgb"), bgr[..., ::-1]
    )
    np.testing.assert_array_equal(
        decode(msg(encoding="8UC1", data=gray.tobytes()), "rgb"), np.repeat(gray[..., None], 3, axis=2)
    )


def _bt601(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Video-range BT.601 YUV -> RGB, written out (the conversion cv_bridge asks OpenCV for)."""
    c, d, e = 1.164 * (y - 16.0), u - 128.0, v - 128.0
    rgb = np.stack([c + 1.596 * e, c - 0.391 * d - 0.813 * e, c + 2.018 * d], axis=-1)
    return np.clip(np.rint(rgb), 0, 255)


@pytest.mark.parametrize(("encoding", "order"), [("yuv422", "UYVY"), ("yuv422_yuy2", "YUYV")])
def test_yuv422_matches_bt601(encoding: str, order: str, rng: np.random.Generator) -> None:
    width = 8
    y = rng.integers(16, 236, (H, width)).astype(np.uint8)
    u = rng.integers(16, 241, (H, width // 2)).astype(np.uint8)
    v = rng.integers(16, 241, (H, width // 2)).astype(np.uint8)
    packed = np.zeros((H, width // 2, 4), np.uint8)
    for i, name in enumerate(order):  # UYVY: U0 Y0 V0 Y1 per pixel pair
        first_y = order.index("Y")
        packed[..., i] = {"U": u, "V": v}[name] if name != "Y" else y[:, (i != first_y) :: 2]
    padded = pad_rows({"height": H, "step": width * 2, "data": packed.tobytes()}, 5)
    out = decode(msg(encoding=encoding, width=width, step=padded["step"], data=padded["data"]), "rgb")
    full_u, full_v = np.repeat(u, 2, axis=1), np.repeat(v, 2, axis=1)
    np.testing.assert_allclose(out, _bt601(y.astype(float), full_u, full_v), atol=2)
    code = cv2.COLOR_YUV2RGB_UYVY if order == "UYVY" else cv2.COLOR_YUV2RGB_YUYV
    np.testing.assert_array_equal(out, cv2.cvtColor(packed.reshape(H, width, 2), code))


def test_yuv422_odd_width_is_refused() -> None:
    with pytest.raises(ImageMsgError) as info:
        decode(msg(encoding="yuv422", step=W * 2, data=bytes(H * W * 2)), "rgb")
    assert info.value.reason == "odd_width"


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_demosaics_a_flat_colour_back(pattern: str) -> None:
    colour = {"r": 200, "g": 100, "b": 30}
    height, width = 8, 10
    mosaic = np.zeros((height, width), np.uint8)
    for i, channel in enumerate(pattern):  # the 2x2 tile, row by row
        mosaic[i // 2 :: 2, i % 2 :: 2] = colour[channel]
    padded = pad_rows({"height": height, "step": width, "data": mosaic.tobytes()}, 3)
    m = msg(
        encoding=f"bayer_{pattern}8", height=height, width=width, step=padded["step"], data=padded["data"]
    )
    out = decode(m, "rgb")
    assert out.shape == (height, width, 3)
    np.testing.assert_array_equal(
        out[2:-2, 2:-2], np.broadcast_to([200, 100, 30], (height - 4, width - 4, 3))
    )


def test_read_only_encodings_cannot_be_written() -> None:
    for encoding, spec in ENCODINGS.items():
        if not spec.writable:
            with pytest.raises(ValueError, match="cannot be written as"):
                encode(np.zeros((H, W, 3), np.uint8), encoding, modality="rgb")


def test_rgb_to_mono_encodes_luma() -> None:
    x = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 200, 200]]], dtype=np.uint8)
    gray = np.frombuffer(encode(x, "mono8", modality="rgb")["data"], dtype=np.uint8)
    np.testing.assert_array_equal(gray, [76, 150, 29, 200])
    counts = np.frombuffer(encode(x, "mono16", modality="rgb")["data"], dtype="<u2")
    np.testing.assert_array_equal(counts, gray.astype(np.uint16) * 257)


# --------------------------------------------------------------------------- depth


def test_depth_millimetres_to_metres() -> None:
    mm = np.array([[0, 1, 1234, 65535]], dtype="<u2")
    for encoding in ("16UC1", "mono16"):
        out = decode(msg(encoding=encoding, height=1, width=4, step=8, data=mm.tobytes()), "depth")
        np.testing.assert_array_equal(out, np.array([[0.0, 0.001, 1.234, 65.535]], dtype=np.float32))


def test_depth_metres_to_millimetres_rounds_clips_and_invalidates() -> None:
    m = np.array([[np.nan, np.inf, -np.inf, -1.0, 0.0, 0.0004, 0.0006, 1.2344, 1.2346, 65.535, 70.0]])
    mm = np.frombuffer(encode(m.astype(np.float32), "16UC1")["data"], dtype="<u2")
    np.testing.assert_array_equal(mm, [0, 0, 0, 0, 0, 0, 1, 1234, 1235, 65535, 65535])


def test_depth_float_passes_through_with_nan_and_inf() -> None:
    x = np.array([[np.nan, np.inf, -np.inf, 0.0, 2.5]], dtype=np.float32)
    for bigendian in (False, True):
        fields = encode(x, "32FC1", modality="depth", bigendian=bigendian)
        np.testing.assert_array_equal(decode(SimpleNamespace(**fields), "depth"), x)  # NaN == NaN here


# --------------------------------------------------------------------------- thermal


def test_thermal_counts_to_kelvin_default_tlinear() -> None:
    counts = np.array([[0, 27315, 30000, 65535]], dtype="<u2")
    for encoding in ("mono16", "16UC1"):
        out = decode(msg(encoding=encoding, height=1, width=4, step=8, data=counts.tobytes()), "thermal")
        np.testing.assert_allclose(out, [[0.0, 273.15, 300.0, 655.35]], rtol=1e-6)


def test_thermal_custom_mapping_both_ways() -> None:
    mapping = ThermalMapping(kelvin_per_count=0.04, offset_kelvin=100.0)
    counts = np.array([[0, 5000, 65535]], dtype="<u2")
    out = decode(
        msg(encoding="mono16", height=1, width=3, step=6, data=counts.tobytes()), "thermal", thermal=mapping
    )
    np.testing.assert_allclose(out, [[100.0, 300.0, 2721.4]], rtol=1e-6)
    kelvin = np.array([[np.nan, 50.0, 100.0, 300.0, 1e9, np.inf, -np.inf]], dtype=np.float32)
    raw = encode(kelvin, "mono16", modality="thermal", thermal=mapping)["data"]
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<u2"), [0, 0, 0, 5000, 65535, 65535, 0])


def test_thermal_mono8_spans_the_configured_range() -> None:
    data = bytes([0, 51, 255])
    out = decode(msg(encoding="mono8", height=1, width=3, step=3, data=data), "thermal")
    norm = NORMALIZATION["thermal"]
    np.testing.assert_allclose(out, [[norm.low, norm.low + 20.0, norm.high]], rtol=1e-6)
    mapping = ThermalMapping(mono8_min_kelvin=273.15, mono8_max_kelvin=373.15)
    out = decode(msg(encoding="mono8", height=1, width=3, step=3, data=data), "thermal", thermal=mapping)
    np.testing.assert_allclose(out, [[273.15, 293.15, 373.15]], rtol=1e-6)


def test_thermal_float_keeps_nan() -> None:
    x = np.array([[np.nan, 300.0, np.inf]], dtype=np.float32)
    out = decode(SimpleNamespace(**encode(x, "32FC1", modality="thermal")), "thermal")
    assert np.isnan(out[0, 0])
    assert out[0, 1] == 300.0
    assert np.isposinf(out[0, 2])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kelvin_per_count": 0.0},
        {"kelvin_per_count": -0.01},
        {"offset_kelvin": float("nan")},
        {"mono8_min_kelvin": 300.0, "mono8_max_kelvin": 300.0},
        {"mono8_max_kelvin": float("inf")},
    ],
)
def test_thermal_mapping_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="kelvin"):
        ThermalMapping(**kwargs)


# --------------------------------------------------------------------------- errors

MALFORMED: list[tuple[str, str, dict[str, Any], str]] = [
    # (reason, modality, fields, text the message must contain)
    ("unknown_encoding", "rgb", {"encoding": "yuv420"}, "encoding='yuv420'"),
    ("unknown_encoding", "rgb", {"encoding": ""}, "encoding=''"),
    ("unknown_encoding", "depth", {"encoding": "16uc1"}, "encoding='16uc1'"),
    ("wrong_encoding_for_modality", "depth", {"encoding": "rgb8", "step": W * 3}, "depth accepts"),
    ("wrong_encoding_for_modality", "rgb", {"encoding": "32FC1", "step": W * 4}, "rgb accepts"),
    ("wrong_encoding_for_modality", "thermal", {"encoding": "bgr8", "step": W * 3}, "thermal accepts"),
    ("zero_size", "rgb", {"height": 0, "data": b""}, "height=0"),
    ("zero_size", "rgb", {"width": 0, "step": 0, "data": b""}, "width=0"),
    ("bad_step", "depth", {"encoding": "16UC1", "step": 2 * W - 1}, f"step={2 * W - 1}"),
    ("bad_step", "rgb", {"step": 0}, "step=0"),
    ("short_data", "rgb", {"data": bytes(H * W - 1)}, f"len(data)={H * W - 1}"),
    ("short_data", "depth", {"encoding": "16UC1", "step": 2 * W, "data": bytes(H * W)}, "16UC1"),
    ("short_data", "rgb", {"data": b""}, "len(data)=0"),
    ("long_data", "rgb", {"data": bytes(H * W + 1)}, f"len(data)={H * W + 1}"),
    ("too_many_pixels", "rgb", {"height": 4097, "width": 4096, "step": 4096, "data": b"x"}, "height=4097"),
    ("too_many_pixels", "thermal", {"height": 2**32 - 1, "width": 2**32 - 1, "step": 2**32 - 1}, "pixels"),
    ("bad_field", "rgb", {"height": -1}, "height=-1"),
    ("bad_field", "rgb", {"width": 2**32}, "width=4294967296"),
    ("bad_field", "rgb", {"height": 5.0}, "height"),
    ("bad_field", "rgb", {"step": "7"}, "step"),
    ("bad_field", "rgb", {"is_bigendian": 256}, "is_bigendian=256"),
    ("bad_field", "rgb", {"encoding": None}, "encoding"),
    ("bad_field", "rgb", {"encoding": b"mono8"}, "encoding"),
    ("bad_data", "rgb", {"data": None}, "NoneType"),
    ("bad_data", "rgb", {"data": "x" * (H * W)}, "str"),
    ("bad_data", "rgb", {"data": list(range(H * W))}, "list"),
    ("bad_data", "rgb", {"data": np.zeros(H * W, dtype=object)}, "object"),
    ("odd_width", "rgb", {"encoding": "yuv422_yuy2", "step": 2 * W, "data": bytes(2 * H * W)}, "width=7"),
]


@pytest.mark.parametrize(("reason", "modality", "fields", "text"), MALFORMED)
def test_malformed_message_gives_its_reason(
    reason: str, modality: str, fields: dict[str, Any], text: str
) -> None:
    with pytest.raises(ImageMsgError) as info:
        decode(msg(**fields), modality)
    assert info.value.reason == reason
    assert reason in REASONS
    assert text in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_field_is_bad_field() -> None:
    m = msg()
    del m.step
    with pytest.raises(ImageMsgError) as info:
        decode(m, "rgb")
    assert info.value.reason == "bad_field"


def test_every_reason_is_reachable() -> None:
    assert {case[0] for case in MALFORMED} == set(REASONS) - COMPRESSED_REASONS


def test_max_pixels_is_configurable() -> None:
    m = msg(height=100, width=100, step=100, data=bytes(10_000))
    decode(m, "rgb")
    with pytest.raises(ImageMsgError) as info:
        decode(m, "rgb", max_pixels=9_999)
    assert info.value.reason == "too_many_pixels"
    assert MAX_PIXELS == 4096 * 4096


def test_huge_header_with_tiny_data_never_allocates() -> None:
    huge = msg(encoding="32FC1", height=2**32 - 1, width=2**32 - 1, step=2**32 - 1, data=bytes(16))
    tracemalloc.start()
    try:
        with pytest.raises(ImageMsgError) as info:
            decode(huge, "depth", max_pixels=2**70)  # past the pixel bound: only the data length stops it
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == "bad_step"  # 4 * (2**32 - 1) bytes per row cannot fit a uint32 step
    assert peak < 1 << 20
    tall = msg(encoding="mono8", height=2**32 - 1, width=1, step=1, data=bytes(16))
    with pytest.raises(ImageMsgError) as info:
        decode(tall, "rgb", max_pixels=2**70)
    assert info.value.reason == "short_data"


def test_unknown_modality_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="unknown modality 'ir'") as info:
        decode(msg(), "ir")
    assert not isinstance(info.value, ImageMsgError)


# --------------------------------------------------------------------------- encode


def test_encode_defaults_follow_the_outputs() -> None:
    mask = np.arange(H * W, dtype=np.uint8).reshape(H, W)
    fields = encode(mask, "mono8", header="hdr")
    assert fields["header"] == "hdr"
    assert fields["data"] == mask.tobytes()
    assert (fields["step"], fields["is_bigendian"]) == (W, 0)
    prob = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    assert encode(prob, "32FC1")["data"] == prob.astype("<f4").tobytes()
    assert "header" not in encode(prob, "32FC1")
    metres = np.full((H, W), 1.5, dtype=np.float32)
    assert set(np.frombuffer(encode(metres, "16UC1")["data"], dtype="<u2")) == {1500}
    kelvin = np.full((H, W), 300.0, dtype=np.float32)
    assert set(np.frombuffer(encode(kelvin, "mono16")["data"], dtype="<u2")) == {30000}
    colours = np.zeros((H, W, 3), dtype=np.uint8)
    colours[..., 0] = 200
    assert encode(colours, "bgr8")["data"][:3] == bytes([0, 0, 200])


def test_encode_writes_raw_uint16_unchanged() -> None:
    raw = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 1000
    for encoding in ("16UC1", "mono16"):
        assert encode(raw, encoding)["data"] == raw.astype("<u2").tobytes()
        assert encode(raw, encoding, bigendian=True)["data"] == raw.astype(">u2").tobytes()


@pytest.mark.parametrize(
    ("array_", "encoding", "modality", "match"),
    [
        (np.zeros((H, W), np.uint8), "yuv420", None, "unknown encoding"),
        (np.zeros((H, W, 3), np.uint8), "bayer_rggb8", "rgb", "cannot be written as"),
        (np.zeros((H, W), np.uint8), "rgb8", None, r"HxWx3 uint8"),
        (np.zeros((H, W, 3), np.float32), "rgb8", None, "uint8"),
        (np.zeros((H, W, 3), np.uint8), "mono8", None, "HxW uint8"),
        (np.zeros((H, W), np.uint16), "mono8", None, "0..255"),
        (np.zeros((H, W), np.int16), "mono8", None, "HxW uint8"),
        (np.zeros((H, W), np.float32), "mono8", None, "HxW uint8"),
        (np.zeros((H, W, 3), np.float32), "32FC1", None, "HxW"),
        (np.zeros((H, W), np.float32), "rgb8", "depth", "depth cannot be written as rgb8"),
        (np.zeros((H, W), np.float32), "16UC1", "ir", "unknown modality"),
        (np.zeros((H, W), np.complex64), "32FC1", "depth", "in sensor units"),
    ],
)
def test_encode_rejects_wrong_arrays(
    array_: np.ndarray, encoding: str, modality: str | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        encode(array_, encoding, modality=modality)


def test_encode_does_not_alias_the_input() -> None:
    x = np.zeros((H, W), dtype=np.uint8)
    fields = encode(x, "mono8")
    x[:] = 9
    assert fields["data"] == bytes(H * W)


def test_fill_msg_matches_the_type_of_data_it_finds(rng: np.random.Generator) -> None:
    x = sample("depth", "16UC1", rng)
    expected = encode(x, "16UC1")
    for current in (array.array("B"), np.zeros(0, dtype=np.uint8), b""):
        m = SimpleNamespace(data=current, header=None)
        assert fill_msg(m, x, "16UC1", header="h") is m
        assert type(m.data) is type(current)
        assert bytes(m.data) == expected["data"]
        assert m.header == "h"
        assert (m.height, m.width, m.step, m.encoding, m.is_bigendian) == (H, W, 2 * W, "16UC1", 0)
        np.testing.assert_array_equal(decode(m, "depth"), x)
    m = SimpleNamespace(data=np.zeros(0, dtype=np.uint8))
    rgb = sample("rgb", "rgb8", rng)
    fill_msg(m, rgb, "rgb8")
    assert not np.shares_memory(m.data, rgb)


def test_rosbags_messages_round_trip_through_cdr(rng: np.random.Generator) -> None:
    """The offline path: rosbags (de)serialises a message whose data is a numpy array."""
    typesys = pytest.importorskip("rosbags.typesys")
    store = typesys.get_typestore(typesys.Stores.ROS2_KILTED)
    Image = store.types["sensor_msgs/msg/Image"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    header = Header(stamp=Time(sec=1, nanosec=2), frame_id="cam")
    for modality, encoding in PAIRS:
        x = sample(modality, encoding, rng)
        fields = encode(x, encoding, modality=modality, bigendian=encoding == "32FC1")
        fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
        message = Image(header=header, **fields)
        raw = store.serialize_cdr(message, Image.__msgtype__)
        back = store.deserialize_cdr(raw, Image.__msgtype__)
        out = decode(back, modality)
        assert_format(out, modality, (H, W), back.data)
        np.testing.assert_array_equal(out, decode(SimpleNamespace(**fields), modality))
        filled = fill_msg(Image(header=header, **fields), x, encoding, modality=modality)
        store.serialize_cdr(filled, Image.__msgtype__)


# --------------------------------------------------------------------------- property

_CONTAINERS = (
    bytes,
    bytearray,
    memoryview,
    lambda b: array.array("B", b),
    lambda b: np.frombuffer(b, np.uint8),
)
_MAX_DATA = 1 << 15


def often(draw: st.DrawFn, usual: st.SearchStrategy[Any], *unusual: st.SearchStrategy[Any]) -> Any:
    """Draw from ``usual`` 70% of the time, else from one of ``unusual`` (shrinks towards ``usual``)."""
    if draw(st.integers(0, 9)) < 7:
        return draw(usual)
    return draw(st.one_of(*unusual))


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, SimpleNamespace, int]:
    """A modality and arbitrary Image fields, often consistent enough to decode; data at most 32 KiB."""
    modality = draw(st.sampled_from(MODALITIES))
    encoding = often(
        draw,
        st.sampled_from(MODALITY_ENCODINGS[modality]),
        st.sampled_from(sorted(ENCODINGS)),
        st.text(max_size=6),
    )
    bpp = ENCODINGS[encoding].bytes_per_pixel if encoding in ENCODINGS else 1
    dim = (
        st.integers(1, 12),
        st.just(0),
        st.integers(0, 2**32 - 1),
        st.sampled_from([4097, 2**31, 2**32 - 1, -1]),
    )
    height, width = often(draw, *dim), often(draw, *dim)
    row = width * bpp
    step = often(draw, st.integers(row, row + 5), st.integers(0, max(row + 5, 0)), st.integers(-1, 2**32))
    is_bigendian = often(draw, st.sampled_from([0, 1]), st.sampled_from([2, 255, 256, -1]))
    exact = step * height
    length = often(
        draw,
        st.sampled_from([exact, exact - step + row]),
        st.integers(exact - 2, exact + 2),
        st.integers(0, 64),
    )
    length = min(max(length, 0), _MAX_DATA)
    data = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, 256, length, dtype=np.uint8)
    fields = {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": is_bigendian,
        "step": step,
        "data": draw(st.sampled_from(_CONTAINERS))(data.tobytes()),
    }
    return modality, SimpleNamespace(**fields), length


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=messages())
def test_any_message_decodes_or_raises_image_msg_error(case: tuple[str, SimpleNamespace, int]) -> None:
    modality, m, length = case
    tracemalloc.start()
    try:
        reason = None
        try:
            out = decode(m, modality)
        except ImageMsgError as exc:
            out, reason = None, exc.reason
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # output is at most 4 bytes (float32) or 3 (RGB) per input byte, plus small change
    assert peak <= 16 * length + (1 << 16)
    assert (out is None) == (reason in REASONS)
    event(reason or "decoded")
    if out is not None:
        assert 0 < m.height * m.width <= MAX_PIXELS
        assert m.encoding in MODALITY_ENCODINGS[modality]
        assert_format(out, modality, (m.height, m.width), m.data)
