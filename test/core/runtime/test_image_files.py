"""``unimrseg infer``'s image files: depth scale, the shared 8-bit thermal range, grey stored as
colour, MFNet's 4-channel PNGs, and images the anchor would only resize; then the command itself
with its exit codes and messages.

Files are written with OpenCV into tmp_path in the layouts the real sources use.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from unimrseg_core.cli import main
from unimrseg_core.data.readers.options import load_options
from unimrseg_core.data.stored_units import THERMAL_8BIT_RANGE_K, StoredUnits
from unimrseg_core.runtime.image_files import (
    aspect_warnings,
    read_inputs,
    read_modality,
    thermal_mapping,
)

H, W = 48, 64


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def _tum_depth(seed: int = 0) -> np.ndarray:
    """A TUM RGB-D depth PNG's values: millimetres x 5 (5000 per metre), 0.8..2.0 m, some holes."""
    rng = np.random.default_rng(seed)
    depth = (rng.integers(800, 2000, (H, W)) * 5).astype(np.uint16)
    depth[:4] = 0
    return depth


def _mfnet_bgra() -> np.ndarray:
    """MFNet's image: B, G, R as decoded, and thermal in the 4th channel (a warm person)."""
    rng = np.random.default_rng(1)
    bgra = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    bgra[..., 3] = 60
    bgra[10:30, 20:30, 3] = 230
    return bgra


# ------------------------------------------------------------------ depth


def test_tum_depth_is_read_with_its_scale_and_flagged_without_it(tmp_path):
    raw = _tum_depth()
    path = _write(tmp_path / "depth" / "1305031102.160407.png", raw)
    as_mm, warnings = read_modality(path, "depth")
    assert as_mm[10, 10] == pytest.approx(raw[10, 10] / 1000.0)
    assert len(warnings) == 1
    assert "every depth value is a multiple of 5" in warnings[0]
    assert "pass --depth-scale 5000" in warnings[0]
    metres, warnings = read_modality(path, "depth", units=StoredUnits(depth_units_per_m=5000))
    assert warnings == []
    assert metres[10, 10] == pytest.approx(raw[10, 10] / 5000.0)
    assert metres[0, 0] == 0.0
    assert 0.8 <= float(np.median(metres[metres > 0])) <= 2.0


def test_depth_far_outside_a_cameras_range_is_flagged(tmp_path):
    rng = np.random.default_rng(2)
    metric = rng.integers(1200, 1800, (H, W)).astype(np.uint16)  # 1.2..1.8 m in millimetres
    metric[metric % 5 == 0] += 1  # no multiple-of-5 pattern
    path = _write(tmp_path / "mm.png", metric)
    assert read_modality(path, "depth")[1] == []
    _, warnings = read_modality(path, "depth", units=StoredUnits(depth_units_per_m=100))  # as cm
    assert len(warnings) == 1
    assert f"median depth {np.median(metric) / 100:.2f} m at 100 units per metre" in warnings[0]
    assert "outside what RGB-D cameras see" in warnings[0]
    assert f"{np.median(metric) / 1000:.2f} m at 1000" in warnings[0]


def test_8bit_depth_needs_its_polarity(tmp_path):
    grey = np.full((H, W), 200, np.uint8)
    grey[:, :8] = 20  # a near wall, stored dark
    path = _write(tmp_path / "sod_depth.png", grey)
    with pytest.raises(ValueError, match=r"8-bit depth is a relative visualisation .* --depth-polarity"):
        read_modality(path, "depth")
    metres, warnings = read_modality(path, "depth", units=StoredUnits(depth_polarity="near-dark"))
    assert metres[0, 0] < metres[0, 40]
    assert "read as relative" in warnings[0]


def test_float_depth_is_metres_whatever_the_scale(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, np.full((H, W), 2.5, np.float32))
    metres, warnings = read_modality(path, "depth", units=StoredUnits(depth_units_per_m=5000))
    assert metres[0, 0] == pytest.approx(2.5)
    assert "--depth-scale is for integer depth" in warnings[0]


# ------------------------------------------------------------------ thermal


def test_8bit_thermal_uses_the_readers_range(tmp_path):
    grey = np.tile(np.arange(W, dtype=np.uint8) * 4, (H, 1))
    grey[0, 0], grey[0, 1] = 0, 255
    path = _write(tmp_path / "t.png", grey)
    kelvin, _ = read_modality(path, "thermal")
    assert (kelvin[0, 0], kelvin[0, 1]) == pytest.approx(THERMAL_8BIT_RANGE_K)
    readers = load_options("rgbt_sod", ("thermal",), None).thermal.to_kelvin(grey, path)
    np.testing.assert_allclose(kelvin, readers, atol=1e-4)
    ranged, _ = read_modality(path, "thermal", units=StoredUnits(thermal_range_k=(250.0, 350.0)))
    assert (ranged[0, 0], ranged[0, 1]) == pytest.approx((250.0, 350.0))


def test_thermal_range_or_kelvin_per_count_for_16bit_counts(tmp_path):
    counts = np.full((H, W), 65535, np.uint16)
    counts[0, 0] = 0
    path = _write(tmp_path / "t16.png", counts)
    mapping = thermal_mapping(StoredUnits(thermal_range_k=(200.0, 400.0)))
    kelvin, _ = read_modality(path, "thermal", thermal=mapping)
    assert (kelvin[0, 0], kelvin[1, 1]) == pytest.approx((200.0, 400.0))
    assert read_modality(path, "thermal")[0][1, 1] == pytest.approx(655.35)  # 0.01 K per count
    with pytest.raises(ValueError, match="give it or --kelvin-per-count / --offset-kelvin, not both"):
        thermal_mapping(StoredUnits(thermal_range_k=(200.0, 400.0)), kelvin_per_count=0.04)


def test_a_3_channel_grey_thermal_jpeg_is_grey_and_a_palette_one_is_refused(tmp_path):
    grey = np.tile(np.linspace(0, 255, W).astype(np.uint8), (H, 1))
    jpeg = _write(tmp_path / "T" / "1.jpg", cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    kelvin, _ = read_modality(jpeg, "thermal")
    expected, _ = read_modality(_write(tmp_path / "g.png", grey), "thermal")
    low, high = THERMAL_8BIT_RANGE_K
    assert np.abs(kelvin - expected).max() <= 3 * (high - low) / 255  # JPEG's few levels
    palette = _write(tmp_path / "ironbow.png", cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO))
    with pytest.raises(ValueError, match="cannot be read as thermal: its 3 channels differ by up to"):
        read_modality(palette, "thermal")


# ------------------------------------------------------------------ MFNet and RGBA


def test_an_mfnet_png_as_rgb_is_refused_and_split_with_rgbt(tmp_path):
    path = _write(tmp_path / "images" / "00001D.png", _mfnet_bgra())
    with pytest.raises(ValueError, match=r"R, G, B \+ thermal in one PNG .* --rgbt"):
        read_modality(path, "rgb")
    inputs = read_inputs({}, rgbt=path)
    assert list(inputs.images) == ["rgb", "thermal"]
    assert inputs.files == {"rgb": str(path), "thermal": str(path)}
    np.testing.assert_array_equal(inputs.images["rgb"], _mfnet_bgra()[..., 2::-1])
    low, high = THERMAL_8BIT_RANGE_K
    assert inputs.images["thermal"][0, 0] == pytest.approx(low + 60 * (high - low) / 255, abs=1e-4)
    assert inputs.images["thermal"][15, 25] == pytest.approx(low + 230 * (high - low) / 255, abs=1e-4)
    assert inputs.warnings == []
    with pytest.raises(ValueError, match="--rgbt gives rgb and thermal already: drop --thermal"):
        read_inputs({"thermal": path}, rgbt=path)
    with pytest.raises(ValueError, match="--rgbt needs an 8-bit 4-channel image"):
        read_inputs({}, rgbt=_write(tmp_path / "rgb.png", _mfnet_bgra()[..., :3]))


def test_an_rgba_png_with_a_constant_alpha_is_colour(tmp_path):
    bgra = _mfnet_bgra()
    bgra[..., 3] = 255
    rgb, warnings = read_modality(_write(tmp_path / "rgba.png", bgra), "rgb")
    np.testing.assert_array_equal(rgb, bgra[..., 2::-1])
    assert warnings == []


# ------------------------------------------------------------------ aspect ratios


def test_another_aspect_ratio_than_the_anchor_is_warned_about(tmp_path):
    rgb = _write(tmp_path / "rgb.png", np.full((H, W, 3), 90, np.uint8))
    thermal = _write(tmp_path / "t.png", np.full((512, 640), 90, np.uint8))  # 5:4 against 4:3
    depth = _write(tmp_path / "d.png", (np.arange(96 * 128).reshape(96, 128) % 997 + 1000).astype(np.uint16))
    inputs = read_inputs({"thermal": thermal, "rgb": rgb, "depth": depth})
    assert list(inputs.images) == ["rgb", "depth", "thermal"]
    assert len(inputs.warnings) == 1  # depth: twice the size, same aspect
    assert inputs.warnings[0].startswith(
        "thermal 640x512 (aspect 1.250) differs from the anchor rgb 64x48 (1.333)"
    )
    assert "only resized onto rgb, not registered" in inputs.warnings[0]
    assert aspect_warnings({}) == []


# ------------------------------------------------------------------ the command


def test_cli_infer_reads_an_mfnet_png_and_explains_refusals(tmp_path, capsys):
    mfnet = _write(tmp_path / "00001D.png", _mfnet_bgra())
    out = tmp_path / "out"
    argv = ["infer", "--out", str(out), "--backend", "onnxruntime", "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--rgbt", str(mfnet)]) == 0
    summary = json.loads((out / "result.json").read_text())
    assert summary["used"] == "rgb+thermal"
    assert summary["inputs"] == {"rgb": str(mfnet), "thermal": str(mfnet)}
    assert summary["warnings"] == []
    capsys.readouterr()

    assert main([*argv, "--rgb", str(mfnet)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"Pass it as --rgbt {mfnet} to use both" in err

    thermal = _write(tmp_path / "t.png", np.full((512, 640), 90, np.uint8))
    assert main([*argv, "--rgbt", str(mfnet), "--depth-scale", "5000", "--thermal-range", "250:350"]) == 0
    assert json.loads((out / "result.json").read_text())["stored_units"]["thermal_range_k"] == [250.0, 350.0]
    capsys.readouterr()
    assert (
        main([*argv, "--depth", str(_write(tmp_path / "tum.png", _tum_depth())), "--thermal", str(thermal)])
        == 0
    )
    err = capsys.readouterr().err
    assert "unimrseg infer: warning: " in err
    assert "pass --depth-scale 5000" in err
    assert "thermal 640x512 (aspect 1.250) differs from the anchor depth 64x48" in err
    assert len(json.loads((out / "result.json").read_text())["warnings"]) == 2

    assert (
        main([*argv, "--thermal", str(thermal), "--thermal-range", "250:350", "--kelvin-per-count", "0.04"])
        == 2
    )
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([*argv, "--thermal", str(thermal), "--depth-scale", "0"])
    assert info.value.code == 2
    assert "--depth-scale is units per metre > 0" in capsys.readouterr().err
