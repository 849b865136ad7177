"""CompressedImage -> arrays in sensor units: fixtures laid out with OpenCV exactly as image_transport's
compressed and compressedDepth plugins write them, round trips within each codec's loss, and a
precise reason for every message that cannot be read."""

from __future__ import annotations

import struct
import tracemalloc
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from unimrseg_core.compressed_msg import decode_compressed, encode_compressed, is_compressed
from unimrseg_core.image_msg import REASONS, ImageMsgError

H, W = 24, 32
INV_DEPTH = 0  # compression_common.h: the format enum the plugin writes into ConfigHeader


def smooth_rgb() -> np.ndarray:
    """A gradient image: JPEG keeps it within a few levels, so the round trip has a tight bound."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([x * 255 // (W - 1), y * 255 // (H - 1), (x + y) * 255 // (H + W - 2)], -1).astype(
        np.uint8
    )


def depth_m(rng: np.random.Generator) -> np.ndarray:
    z = rng.uniform(0.3, 9.5, (H, W)).astype(np.float32)
    z[0, :4] = (np.nan, 0.0, 12.0, 10.0)  # invalid, and past the plugin's depth_max
    return z


def compressed(fmt: str, data: bytes) -> SimpleNamespace:
    return SimpleNamespace(format=fmt, data=data)


def imencode(ext: str, image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def config_header(a: float = 0.0, b: float = 0.0) -> bytes:
    """ConfigHeader as the plugin memcpys it: int32 format, float32 depthParam[2] (little-endian)."""
    return struct.pack("<iff", INV_DEPTH, a, b)


def quantise_inverse_depth(
    z: np.ndarray, depth_max: float = 10.0, z0: float = 100.0
) -> tuple[np.ndarray, float, float]:
    """compressed_depth_image_transport's 32FC1 encoding: q = trunc(A / z + B) below depth_max, else 0."""
    a = np.float32(z0 * (z0 + 1.0))
    b = np.float32(1.0 - a / np.float32(depth_max))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(z < depth_max, a / z + b, 0.0)
    q = np.where(np.isfinite(q), q, 0.0)  # NaN compares false: 0; the plugin never sees z = 0 in practice
    return np.trunc(q).astype(np.uint16), float(a), float(b)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(17)


# --------------------------------------------------------------------------- compressed


@pytest.mark.parametrize("fmt", ["rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8", "jpeg"])
def test_jpeg_colour_is_read_as_rgb_within_jpeg_loss(fmt: str) -> None:
    rgb = smooth_rgb()
    data = imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = decode_compressed(compressed(fmt, data), "rgb")
    assert out.shape == (H, W, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous
    expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(out, expected)
    assert np.abs(out.astype(int) - rgb).mean() < 3


def test_png_colour_and_mono_are_lossless(rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    data = imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(
        decode_compressed(compressed("rgb8; png compressed bgr8", data), "rgb"), rgb
    )
    gray = rng.integers(0, 256, (H, W), dtype=np.uint8)
    out = decode_compressed(compressed("mono8; png compressed ", imencode(".png", gray)), "rgb")
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))
    rgb16 = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16)
    out = decode_compressed(
        compressed("rgb16; png compressed bgr16", imencode(".png", rgb16[..., ::-1])), "rgb"
    )
    np.testing.assert_array_equal(out, np.rint(rgb16 * 255.0 / 65535).astype(np.uint8))


def test_png_16uc1_depth_and_mono16_thermal_keep_their_units(rng: np.random.Generator) -> None:
    mm = rng.integers(0, 65536, (H, W), dtype=np.uint16)
    data = imencode(".png", mm)
    depth = decode_compressed(compressed("16UC1; png compressed ", data), "depth")
    np.testing.assert_array_equal(depth, mm / np.float32(1000.0))
    thermal = decode_compressed(compressed("mono16; png compressed ", data), "thermal")
    np.testing.assert_allclose(thermal, mm * 0.01, rtol=1e-6)


# --------------------------------------------------------------------------- compressedDepth


@pytest.mark.parametrize("fmt", ["16UC1; compressedDepth png", "16UC1; compressedDepth", "16UC1"])
def test_compressed_depth_16uc1_is_lossless_millimetres(fmt: str, rng: np.random.Generator) -> None:
    mm = rng.integers(0, 10001, (H, W), dtype=np.uint16)
    data = config_header() + imencode(".png", mm)
    out = decode_compressed(compressed(fmt, data), "depth")
    assert out.dtype == np.float32
    assert out.shape == (H, W)
    np.testing.assert_array_equal(out, mm / np.float32(1000.0))


@pytest.mark.parametrize("fmt", ["32FC1; compressedDepth png", "32FC1; compressedDepth", "32FC1"])
def test_compressed_depth_32fc1_inverse_depth_within_one_quantum(fmt: str, rng: np.random.Generator) -> None:
    z = depth_m(rng)
    q, a, b = quantise_inverse_depth(z)
    out = decode_compressed(compressed(fmt, config_header(a, b) + imencode(".png", q)), "depth")
    assert out.dtype == np.float32
    assert out.shape == (H, W)
    invalid = q == 0
    assert invalid[0, :4].all()  # NaN, 0, and depths at or past depth_max
    np.testing.assert_array_equal(out[invalid], 0.0)  # the project's invalid depth, not NaN
    good = ~invalid
    quantum = z[good].astype(np.float64) ** 2 / a  # one step of inverse depth, in metres
    assert (np.abs(out[good] - z[good]) <= quantum * 1.01 + 1e-6).all()


# --------------------------------------------------------------------------- refusals


def _reason(msg: SimpleNamespace, modality: str = "rgb") -> str:
    with pytest.raises(ImageMsgError) as info:
        decode_compressed(msg, modality)
    assert info.value.reason in REASONS
    assert str(info.value).startswith(f"{info.value.reason}: ")
    return info.value.reason


def test_every_unreadable_message_has_its_reason(rng: np.random.Generator) -> None:
    jpeg = imencode(".jpg", smooth_rgb())
    png16 = imencode(".png", rng.integers(0, 65536, (H, W), dtype=np.uint16))
    assert _reason(compressed("rgb8; h264", jpeg)) == "unknown_format"
    assert _reason(compressed("theora", jpeg)) == "unknown_format"
    assert (
        _reason(compressed("32FC1; compressedDepth rvl", config_header() + png16), "depth")
        == "unknown_format"
    )
    assert _reason(compressed("rgb8; jpeg compressed bgr8", b"not a jpeg")) == "bad_compressed"
    assert _reason(compressed("rgb8; jpeg compressed bgr8", jpeg[: len(jpeg) // 3])) == "bad_compressed"
    assert _reason(compressed("16UC1; compressedDepth png", config_header()), "depth") == "bad_compressed"
    assert _reason(compressed("16UC1; compressedDepth png", png16), "depth") == "bad_compressed"  # no header
    assert _reason(compressed("rgb8; jpeg compressed bgr8", jpeg), "depth") == "wrong_encoding_for_modality"
    assert _reason(compressed("16UC1; png compressed ", png16), "rgb") == "wrong_encoding_for_modality"
    assert _reason(SimpleNamespace(format=None, data=jpeg)) == "bad_field"
    assert _reason(compressed("jpeg", None)) == "bad_data"  # type: ignore[arg-type]


def test_forged_png_size_is_refused_before_decompressing() -> None:
    png = bytearray(imencode(".png", np.zeros((H, W), np.uint8)))
    png[16:24] = struct.pack(">II", 60000, 60000)  # IHDR width, height
    tracemalloc.start()
    try:
        assert _reason(compressed("mono8; png compressed ", bytes(png))) == "too_many_pixels"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    with pytest.raises(ImageMsgError, match="too_many_pixels"):
        decode_compressed(compressed("jpeg", imencode(".jpg", smooth_rgb())), "rgb", max_pixels=H * W - 1)


def test_unknown_modality_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="unknown modality") as info:
        decode_compressed(compressed("jpeg", b""), "ir")
    assert not isinstance(info.value, ImageMsgError)


def test_dispatch_tells_compressed_from_raw_images() -> None:
    assert is_compressed(compressed("jpeg", b""))
    assert not is_compressed(SimpleNamespace(encoding="rgb8", data=b""))


@pytest.mark.parametrize(
    ("modality", "transport"),
    [("rgb", "compressed"), ("depth", "compressed"), ("depth", "compressedDepth"), ("thermal", "compressed")],
)
def test_the_test_publishers_encoder_round_trips(
    modality: str, transport: str, rng: np.random.Generator
) -> None:
    x = smooth_rgb() if modality == "rgb" else (rng.integers(0, 65536, (H, W)) / 1000).astype(np.float32)
    if modality == "thermal":
        x = (rng.integers(0, 65536, (H, W)) * 0.01).astype(np.float32)
    fmt, data = encode_compressed(x, modality, transport)
    out = decode_compressed(compressed(fmt, data), modality)
    if modality == "rgb":
        assert np.abs(out.astype(int) - x).mean() < 3  # JPEG's loss
    else:
        np.testing.assert_allclose(out, x, atol=1e-3)  # 16-bit PNG: lossless in mm / counts
