"""Stored units (depth polarity and scale, thermal range): the flags, their checks, and what the
readers make of them; plus the files a dataset folder holds that the readers used to pass over in
silence (Netpbm images, other suffixes) and why a dataset without ground truth has none.

Fixtures are written in each reader's layout into tmp_path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest

from unimrseg_core.data.readers import DatasetError, open_dataset, read_header, read_image
from unimrseg_core.data.stored_units import (
    THERMAL_8BIT_RANGE_K,
    StoredUnits,
    add_arguments,
)

H, W = 24, 32
NEAR = (slice(8, 16), slice(8, 20))  # the salient object, nearer than the background


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"cv2 could not write {path}")
    return path


def _gt() -> np.ndarray:
    gt = np.zeros((H, W), np.uint8)
    gt[NEAR] = 255
    return gt


def _near_dark_depth() -> np.ndarray:
    """A real RGB-D SOD depth map stored near-is-dark: the object 40, the background 220."""
    depth = np.full((H, W), 220, np.uint8)
    depth[NEAR] = 40
    return depth


def make_rgbd_sod(root: Path, depth: np.ndarray, *, gt: bool = True, depth_suffix: str = ".png") -> Path:
    """NJUD / NLPR layout: RGB/*.jpg, depth/*, GT/*.png."""
    for name in ("1", "2"):
        _write(root / "RGB" / f"{name}.jpg", np.full((H, W, 3), 90, np.uint8))
        _write(root / "depth" / f"{name}{depth_suffix}", depth)
        if gt:
            _write(root / "GT" / f"{name}.png", _gt())
    return root


def make_rgbt_sod(root: Path, thermal: np.ndarray) -> Path:
    """VT821 layout: RGB/, T/, GT/."""
    for name in ("1", "2"):
        _write(root / "RGB" / f"{name}.png", np.full((H, W, 3), 90, np.uint8))
        _write(root / "T" / f"{name}.png", thermal)
        _write(root / "GT" / f"{name}.png", _gt())
    return root


def _parse(argv: list[str]) -> StoredUnits:
    parser = argparse.ArgumentParser(prog="test", exit_on_error=False)
    add_arguments(parser, applies_to="--data")
    return StoredUnits.from_args(parser.parse_args(argv))


# ------------------------------------------------------------------ the options


def test_flags_parse_into_stored_units_and_reader_config():
    units = _parse(["--depth-polarity", "near-dark", "--depth-scale", "5000", "--thermal-range", "250:350"])
    assert units == StoredUnits(
        depth_polarity="near-dark", depth_units_per_m=5000.0, thermal_range_k=(250.0, 350.0)
    )
    assert units.given == ["--depth-polarity", "--depth-scale", "--thermal-range"]
    config = units.reader_config()
    assert config["depth"] == {"bright": "far", "scale_16bit": 1 / 5000}
    assert config["thermal"] == {"low_k": 250.0, "high_k": 350.0, "low_k_16bit": 250.0, "high_k_16bit": 350.0}
    assert _parse([]).reader_config() == {}
    assert _parse([]).given == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--depth-polarity", "up"], "invalid choice"),
        (["--depth-scale", "0"], "units per metre > 0"),
        (["--depth-scale", "nan"], "units per metre > 0"),
        (["--depth-scale", "mm"], "units per metre > 0"),
        (["--thermal-range", "300"], "LOW:HIGH"),
        (["--thermal-range", "330:300"], "0 < LOW < HIGH"),
        (["--thermal-range", "0:300"], "0 < LOW < HIGH"),
        (["--thermal-range", "1.2.3:300"], "no two numbers"),
    ],
)
def test_bad_flag_values_are_refused_with_the_flag_named(argv, message):
    with pytest.raises(argparse.ArgumentError, match=message):
        _parse(argv)


def test_the_dataclass_checks_values_given_in_code():
    with pytest.raises(ValueError, match="--depth-polarity"):
        StoredUnits(depth_polarity="bright")
    with pytest.raises(ValueError, match="--depth-scale"):
        StoredUnits(depth_units_per_m=-1.0)
    with pytest.raises(ValueError, match="--thermal-range"):
        StoredUnits(thermal_range_k=(300.0, 300.0))


# ------------------------------------------------------------------ what readers make of them


def test_near_dark_sod_depth_is_read_right_with_the_polarity_given(tmp_path):
    root = make_rgbd_sod(tmp_path, _near_dark_depth())
    wrong = open_dataset("rgbd_sod", root)[0]  # the default, near-bright, inverts it
    assert wrong.depth[NEAR].mean() > wrong.depth[0, 0]
    config = StoredUnits(depth_polarity="near-dark").reader_config()
    sample = open_dataset("rgbd_sod", root, config=config)[0]
    assert sample.depth[NEAR].max() < sample.depth[0, 0]  # the salient object is nearer
    assert sample.depth[10, 10] == pytest.approx(0.5 + 40 / 255 * 9.5)
    assert sample.depth[0, 0] == pytest.approx(0.5 + 220 / 255 * 9.5)


def test_depth_scale_applies_to_16bit_depth(tmp_path):
    tum = np.full((H, W), 7500, np.uint16)  # 1.5 m at 5000 units per metre
    root = make_rgbd_sod(tmp_path, tum)
    assert open_dataset("rgbd_sod", root)[0].depth[3, 3] == pytest.approx(7.5)  # mm: 5 x too far
    config = StoredUnits(depth_units_per_m=5000).reader_config()
    assert open_dataset("rgbd_sod", root, config=config)[0].depth[3, 3] == pytest.approx(1.5)


def test_thermal_range_maps_8bit_and_opens_16bit_thermal(tmp_path):
    grey = np.zeros((H, W), np.uint8)
    grey[0] = 255
    sample = open_dataset("rgbt_sod", make_rgbt_sod(tmp_path / "a", grey))[0]
    assert (sample.thermal[1, 1], sample.thermal[0, 0]) == pytest.approx(THERMAL_8BIT_RANGE_K)
    config = StoredUnits(thermal_range_k=(250.0, 350.0)).reader_config()
    sample = open_dataset("rgbt_sod", make_rgbt_sod(tmp_path / "a", grey), config=config)[0]
    assert (sample.thermal[1, 1], sample.thermal[0, 0]) == pytest.approx((250.0, 350.0))

    counts = np.full((H, W), 32768, np.uint16)
    root = make_rgbt_sod(tmp_path / "b", counts)
    with pytest.raises(DatasetError, match="16-bit thermal needs its range"):
        open_dataset("rgbt_sod", root)
    sample = open_dataset("rgbt_sod", root, config=config)[0]
    assert sample.thermal[0, 0] == pytest.approx(250.0 + 32768 / 65535 * 100.0)


def test_thermal_16bit_range_keys_go_together(tmp_path):
    root = make_rgbt_sod(tmp_path, np.zeros((H, W), np.uint8))
    with pytest.raises(DatasetError, match="low_k_16bit and high_k_16bit go together"):
        open_dataset("rgbt_sod", root, config={"thermal": {"low_k_16bit": 200.0}})


# ------------------------------------------------------------------ files and ground truth


@pytest.mark.parametrize("case", ["pgm 8-bit depth", "pgm 16-bit depth", "ppm rgb"])
def test_netpbm_files_are_read(tmp_path, case):
    root = make_rgbd_sod(tmp_path, _near_dark_depth())
    folder, old, image = {
        "pgm 8-bit depth": ("depth", ".png", _near_dark_depth()),
        "pgm 16-bit depth": ("depth", ".png", np.full((H, W), 1500, np.uint16)),
        "ppm rgb": ("RGB", ".jpg", np.full((H, W, 3), 90, np.uint8)),
    }[case]
    for name in ("1", "2"):
        (root / folder / f"{name}{old}").unlink()
        _write(root / folder / f"{name}.{case[:3]}", image)
    reader = open_dataset("rgbd_sod", root, config=StoredUnits(depth_polarity="near-dark").reader_config())
    assert len(reader) == 2
    assert reader.ignored == []
    for path in reader.scenes[0].files.values():  # the cheap header agrees with the decoder
        header, decoded = read_header(path), read_image(path)
        assert header.size == decoded.shape[:2]
        assert header.bit_depth == 8 * decoded.dtype.itemsize
        assert header.channels == (1 if decoded.ndim == 2 else decoded.shape[2])
    sample = reader[0]
    if case == "ppm rgb":
        assert sample.rgb[0, 0].tolist() == [90, 90, 90]
    elif image.dtype == np.uint16:
        assert sample.depth[0, 0] == pytest.approx(1.5)
    else:
        assert sample.depth[NEAR].max() < sample.depth[0, 0]


def test_a_netpbm_header_with_comments_is_parsed_and_a_broken_one_refused(tmp_path):
    path = tmp_path / "a.pgm"
    path.write_bytes(b"P5\n# made by hand\n3 2\n# maxval next\n255\n" + bytes(range(6)))
    header = read_header(path)
    assert (header.height, header.width, header.channels, header.bit_depth) == (2, 3, 1, 8)
    assert read_image(path).tolist() == [[0, 1, 2], [3, 4, 5]]
    chatty = tmp_path / "c.pgm"  # comments past the first KiB: decoded once instead
    chatty.write_bytes(b"P5\n" + b"# a long comment\n" * 100 + b"3 2\n255\n" + bytes(range(6)))
    assert read_header(chatty).size == (2, 3)
    broken = tmp_path / "b.ppm"
    broken.write_bytes(b"P6\n3\n")
    with pytest.raises(DatasetError, match="corrupt P6 header"):
        read_header(broken)


def test_files_with_other_suffixes_are_listed_with_the_reason(tmp_path):
    root = make_rgbd_sod(tmp_path, _near_dark_depth())
    (root / "depth" / "notes.txt").write_text("depth from a Kinect")
    reader = open_dataset("rgbd_sod", root)
    assert len(reader) == 2
    assert len(reader.ignored) == 1
    path, why = reader.ignored[0]
    assert path == str(root / "depth" / "notes.txt")
    assert "suffix '.txt' is not an image format the readers read" in why


def test_a_folder_of_unread_suffixes_says_so_instead_of_only_no_usable_samples(tmp_path):
    root = make_rgbd_sod(tmp_path, _near_dark_depth())
    for name in ("1", "2"):  # depth saved in a format the readers do not read
        (root / "depth" / f"{name}.png").rename(root / "depth" / f"{name}.exr")
    with pytest.raises(
        DatasetError, match=r"no depth file .*1\.\* for this rgb file \(1\.exr is there, but its suffix"
    ):
        open_dataset("rgbd_sod", root)
    with pytest.raises(
        DatasetError, match=r"no usable samples \(2 skipped; .*; 2 ignored; first: .*1\.exr: suffix '\.exr'"
    ):
        open_dataset("rgbd_sod", root, on_error="skip")


def test_a_dataset_without_ground_truth_says_where_it_looked(tmp_path):
    root = make_rgbd_sod(tmp_path, _near_dark_depth(), gt=False)
    reader = open_dataset("rgbd_sod", root)
    assert reader[0].saliency is None
    reasons = reader.missing_truth()
    assert reasons["label"] == "the rgbd_sod layout has no label ground truth"
    assert reasons["saliency"].startswith(
        f"no gt folder in {root} (looked for gt/, mask/, masks/, groundtruth/"
    )
    with_gt = open_dataset("rgbd_sod", make_rgbd_sod(tmp_path / "b", _near_dark_depth()))
    assert set(with_gt.missing_truth()) == {"label"}
