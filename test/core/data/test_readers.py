"""Real-dataset readers: each public layout, written small in tmp_path, read back into Samples.

Every fixture follows the real layout (folder names, file types, split lists) and its
quirks: 4-channel MFNet PNGs, 3-channel grey thermal images, 8-bit SOD depth, 16-bit
NYUDv2 depth in millimetres, VT5000's Train/Test sub-roots.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from unimrseg_core.data.readers import (
    READERS,
    DatasetError,
    MFNetReader,
    NYUDv2Reader,
    RgbdSodReader,
    RgbtSodReader,
    load_classmap,
    open_dataset,
    read_header,
)
from unimrseg_core.data.readers.options import config_dir, load_options
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.stored_units import THERMAL_8BIT_RANGE_K
from unimrseg_core.modalities import IGNORE_INDEX, class_id

H, W = 24, 32
RED_BGR = (0, 0, 255)  # what cv2 needs to store a pure red pixel
BLUE_BGR = (255, 0, 0)
THERMAL_LOW, THERMAL_HIGH = THERMAL_8BIT_RANGE_K


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"cv2 could not write {path}")
    return path


def _rgb_bgr(height: int = H, width: int = W) -> np.ndarray:
    """Left half pure red, right half pure blue (as cv2 BGR)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = RED_BGR
    image[:, width // 2 :] = BLUE_BGR
    return image


def _ramp(height: int = H, width: int = W) -> np.ndarray:
    """8-bit image with known values: row 0 = 0, row 1 = 255, row 2 = 51, the rest 128."""
    image = np.full((height, width), 128, np.uint8)
    image[0], image[1], image[2] = 0, 255, 51
    return image


def _gt(height: int = H, width: int = W) -> np.ndarray:
    """Binary mask with a salient square and two anti-aliased edge values (200 -> 1, 100 -> 0)."""
    gt = np.zeros((height, width), np.uint8)
    gt[8:16, 8:16] = 255
    gt[8, 16] = 200
    gt[8, 17] = 100
    return gt


# ------------------------------------------------------------------ fixtures: layouts


def make_rgbd_sod(root: Path, names=("1", "2", "10"), folders=("RGB", "depth", "GT")) -> Path:
    """NJUD / NLPR style: RGB/*.jpg, depth/*.png (8-bit visualisation), GT/*.png."""
    rgb_dir, depth_dir, gt_dir = (root / f for f in folders)
    for name in names:
        _write(rgb_dir / f"{name}.jpg", _rgb_bgr())
        _write(depth_dir / f"{name}.png", _ramp())
        _write(gt_dir / f"{name}.png", _gt())
    return root


def make_vt5000(root: Path) -> Path:
    """VT5000 style: Train/ and Test/ sub-roots, each with RGB/, T/ (3-channel grey), GT/."""
    for split, names in (("Train", ("1", "2", "3")), ("Test", ("4", "5"))):
        for name in names:
            _write(root / split / "RGB" / f"{name}.png", _rgb_bgr())
            _write(root / split / "T" / f"{name}.png", cv2.cvtColor(_ramp(), cv2.COLOR_GRAY2BGR))
            _write(root / split / "GT" / f"{name}.png", _gt())
    return root


MFNET_SPLITS = {"train": ("00001D", "00002N"), "val": ("00003D",), "test": ("00004N",)}


def _mfnet_label() -> np.ndarray:
    """Label values 0..8 at row 0, columns 0..8; the rest 1 (car)."""
    label = np.ones((H, W), np.uint8)
    label[0, :9] = np.arange(9)
    return label


def make_mfnet(root: Path) -> Path:
    """MFNet: images/*.png 4-channel (R, G, B, thermal), labels/*.png, train/val/test.txt."""
    for names in MFNET_SPLITS.values():
        for name in names:
            bgra = np.zeros((H, W, 4), np.uint8)
            bgra[..., :3] = _rgb_bgr()
            bgra[..., 3] = _ramp()
            _write(root / "images" / f"{name}.png", bgra)
            _write(root / "labels" / f"{name}.png", _mfnet_label())
    for split, names in MFNET_SPLITS.items():
        (root / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    return root


NYU_TRAIN, NYU_TEST = ("0001", "0002", "0003"), ("0004",)


def _nyu_label() -> np.ndarray:
    label = np.full((H, W), 2, np.uint8)  # floor
    label[0, :5] = (0, 1, 2, 31, 40)  # void, wall, floor, person, otherprop
    return label


def make_nyudv2(root: Path, label_folder: str = "label40", list_suffix: str = "") -> Path:
    """NYUDv2: image/*.png, depth/*.png (16-bit mm), label40/*.png, train.txt / test.txt."""
    for name in NYU_TRAIN + NYU_TEST:
        _write(root / "image" / f"{name}.png", _rgb_bgr())
        depth = np.full((H, W), 2500, np.uint16)
        depth[0, 0], depth[0, 1] = 0, 1234
        _write(root / "depth" / f"{name}.png", depth)
        _write(root / label_folder / f"{name}.png", _nyu_label())
    (root / "train.txt").write_text("".join(f"{n}{list_suffix}\n" for n in NYU_TRAIN))
    (root / "test.txt").write_text("".join(f"{n}{list_suffix}\n" for n in NYU_TEST))
    return root


def _assert_red_left(sample: Sample, tolerance: int = 0) -> None:
    """Pure red stays red: RGB channel order, not BGR."""
    red = sample.rgb[H // 2, 2].astype(int)
    blue = sample.rgb[H // 2, W - 3].astype(int)
    assert abs(red[0] - 255) <= tolerance, red
    assert red[1] <= tolerance, red
    assert red[2] <= tolerance, red
    assert blue[2] >= 255 - tolerance, blue
    assert blue[0] <= tolerance, blue


# ------------------------------------------------------------------ the config files


def test_config_defaults_match_the_fixture_assumptions():
    """The kelvin / metre values below are computed from these defaults."""
    import yaml

    data = yaml.safe_load((config_dir() / "datasets.yaml").read_text())
    for kind in ("rgbt_sod", "mfnet"):
        assert "thermal" not in data[kind]  # the one shared range, THERMAL_8BIT_RANGE_K
        thermal = load_options(kind, READERS[kind].OPTION_SECTIONS, None).thermal
        assert (thermal.low_k, thermal.high_k) == THERMAL_8BIT_RANGE_K == (263.15, 323.15)
        assert not thermal.reads_16bit
    assert data["rgbd_sod"]["depth"]["bright"] == "near"
    assert (data["rgbd_sod"]["depth"]["near_m"], data["rgbd_sod"]["depth"]["far_m"]) == (0.5, 10.0)
    assert data["nyudv2"]["depth"]["scale_16bit"] == 0.001
    assert set(data) == set(READERS)


def test_shipped_class_maps_cover_every_source_class():
    mfnet = load_classmap(config_dir() / "classmap_mfnet.yaml")
    assert len(mfnet.source_classes) == 9
    assert mfnet.lut[:9].tolist() == [IGNORE_INDEX, 6, 5, 6, 1, 7, 0, 7, 1]
    nyu = load_classmap(config_dir() / "classmap_nyudv2.yaml")
    assert sorted(nyu.source_classes) == list(range(41))
    assert nyu.lut[0] == IGNORE_INDEX
    assert nyu.lut[1] == class_id("building")  # wall
    assert nyu.lut[2] == class_id("ground")  # floor
    assert nyu.lut[31] == class_id("person")
    assert nyu.lut[41] == IGNORE_INDEX  # unlisted


# ------------------------------------------------------------------ RGB-D SOD


def test_rgbd_sod_reads_samples_in_natural_order(tmp_path):
    reader = open_dataset("rgbd_sod", make_rgbd_sod(tmp_path))
    assert isinstance(reader, RgbdSodReader)
    assert len(reader) == 3
    assert [reader[i].meta["name"] for i in range(3)] == ["1", "2", "10"]
    sample = reader[0]
    assert sample.present == ("rgb", "depth")
    assert sample.thermal is None
    assert sample.label is None
    assert sample.rgb.dtype == np.uint8
    assert sample.rgb.shape == (H, W, 3)
    _assert_red_left(sample, tolerance=8)  # JPEG
    assert sample.meta["dataset"] == "rgbd_sod"
    assert sample.meta["files"]["depth"] == str(tmp_path / "depth" / "1.png")
    assert sample.meta["relative_units"] == ["depth"]


def test_rgbd_sod_depth_8bit_is_mapped_to_metres_near_bright(tmp_path):
    sample = open_dataset("rgbd_sod", make_rgbd_sod(tmp_path))[0]
    assert sample.depth.dtype == np.float32
    assert sample.depth[0, 0] == pytest.approx(10.0)  # raw 0 = far
    assert sample.depth[1, 0] == pytest.approx(0.5)  # raw 255 = near
    assert sample.depth[2, 0] == pytest.approx(10.0 - 0.2 * 9.5)  # raw 51


def test_rgbd_sod_depth_options_can_be_overridden(tmp_path):
    root = make_rgbd_sod(tmp_path / "data")
    sample = open_dataset("rgbd_sod", root, config={"depth": {"bright": "far", "zero_invalid": True}})[0]
    assert sample.depth[0, 0] == 0.0  # raw 0 = no return
    assert sample.depth[1, 0] == pytest.approx(10.0)
    assert sample.depth[2, 0] == pytest.approx(0.5 + 0.2 * 9.5)
    user = tmp_path / "my_set.yaml"
    user.write_text("depth:\n  near_m: 1.0\n  far_m: 2.0\n")
    sample = open_dataset("rgbd_sod", root, config=user)[0]
    assert sample.depth[0, 0] == pytest.approx(2.0)
    assert sample.depth[1, 0] == pytest.approx(1.0)


def test_rgbd_sod_16bit_depth_is_millimetres(tmp_path):
    root = make_rgbd_sod(tmp_path, names=("a",))
    depth = np.full((H, W), 1500, np.uint16)
    depth[0, 0] = 0
    _write(root / "depth" / "a.png", depth)
    sample = open_dataset("rgbd_sod", root)[0]
    assert sample.depth[5, 5] == pytest.approx(1.5)
    assert sample.depth[0, 0] == 0.0
    assert sample.meta["relative_units"] == []


def test_rgbd_sod_saliency_is_binarised(tmp_path):
    sample = open_dataset("rgbd_sod", make_rgbd_sod(tmp_path))[0]
    assert sample.saliency.dtype == np.uint8
    assert set(np.unique(sample.saliency).tolist()) == {0, 1}
    assert sample.saliency[10, 10] == 1
    assert sample.saliency[8, 16] == 1  # 200
    assert sample.saliency[8, 17] == 0  # 100
    assert int(sample.saliency.sum()) == 8 * 8 + 1


@pytest.mark.parametrize("folders", [("rgb", "Depth", "gt"), ("Image", "depth", "Mask")])
def test_rgbd_sod_folder_name_variants(tmp_path, folders):
    reader = open_dataset("rgbd_sod", make_rgbd_sod(tmp_path, folders=folders))
    assert len(reader) == 3
    assert reader[1].saliency is not None


def test_rgbd_sod_without_gt_folder_has_no_saliency(tmp_path):
    root = make_rgbd_sod(tmp_path)
    for path in (root / "GT").iterdir():
        path.unlink()
    (root / "GT").rmdir()
    sample = open_dataset("rgbd_sod", root)[0]
    assert sample.saliency is None
    assert sample.depth is not None


def test_rgbd_sod_missing_depth_folder_is_an_error(tmp_path):
    root = make_rgbd_sod(tmp_path, folders=("RGB", "disparity", "GT"))
    with pytest.raises(DatasetError, match="no depth folder"):
        open_dataset("rgbd_sod", root)


# ------------------------------------------------------------------ RGB-T SOD


def test_rgbt_sod_vt5000_splits(tmp_path):
    root = make_vt5000(tmp_path)
    train = open_dataset("rgbt_sod", root, split="train")
    test = open_dataset("rgbt_sod", root, split="Test")
    assert isinstance(train, RgbtSodReader)
    assert (len(train), len(test)) == (3, 2)
    assert [s.meta["name"] for s in test] == ["4", "5"]
    assert test[0].meta["split"] == "Test"
    with pytest.raises(DatasetError, match="split"):
        open_dataset("rgbt_sod", root)  # Train/ and Test/ but no split given
    with pytest.raises(DatasetError, match="'val' not found"):
        open_dataset("rgbt_sod", root, split="val")


def test_rgbt_sod_thermal_grey_3channel_to_kelvin(tmp_path):
    sample = open_dataset("rgbt_sod", make_vt5000(tmp_path), split="train")[0]
    assert sample.present == ("rgb", "thermal")
    assert sample.depth is None
    assert sample.label is None
    assert sample.thermal.dtype == np.float32
    assert sample.thermal.shape == (H, W)
    assert sample.thermal[0, 0] == pytest.approx(THERMAL_LOW)
    assert sample.thermal[1, 0] == pytest.approx(THERMAL_HIGH)
    assert sample.thermal[2, 0] == pytest.approx(
        THERMAL_LOW + 51 * (THERMAL_HIGH - THERMAL_LOW) / 255, abs=1e-4
    )
    _assert_red_left(sample)
    assert set(np.unique(sample.saliency).tolist()) == {0, 1}
    assert sample.meta["relative_units"] == ["thermal"]


def test_rgbt_sod_16bit_thermal_is_rejected_when_opened(tmp_path):
    root = make_vt5000(tmp_path)
    bad = _write(root / "Test" / "T" / "4.png", np.full((H, W), 3000, np.uint16))
    with pytest.raises(DatasetError, match="16-bit thermal needs its range: pass --thermal-range") as info:
        open_dataset("rgbt_sod", root, split="test")
    assert info.value.path == bad


# ------------------------------------------------------------------ MFNet


def test_mfnet_splits_and_channels(tmp_path):
    root = make_mfnet(tmp_path)
    reader = open_dataset("mfnet", root, split="train")
    assert isinstance(reader, MFNetReader)
    assert [len(open_dataset("mfnet", root, split=s)) for s in ("train", "val", "test")] == [2, 1, 1]
    assert len(open_dataset("mfnet", root)) == 4  # no split: every image
    sample = reader[1]
    assert sample.meta["name"] == "00002N"
    assert sample.present == ("rgb", "thermal")
    assert sample.depth is None
    assert sample.saliency is None
    assert sample.rgb.shape == (H, W, 3)
    _assert_red_left(sample)  # channels 2, 1, 0 of the BGRA decode
    assert sample.thermal.dtype == np.float32
    assert sample.thermal[0, 0] == pytest.approx(THERMAL_LOW)  # 4th channel, not blue or alpha-as-RGB
    assert sample.thermal[1, 0] == pytest.approx(THERMAL_HIGH)
    assert sample.thermal[5, 0] == pytest.approx(
        THERMAL_LOW + 128 * (THERMAL_HIGH - THERMAL_LOW) / 255, abs=1e-4
    )


def test_mfnet_fixture_png_really_is_r_g_b_thermal(tmp_path):
    """The fixture stores the file in MFNet's order (checked with Pillow, which reads RGBA)."""
    from PIL import Image

    root = make_mfnet(tmp_path)
    with Image.open(root / "images" / "00001D.png") as im:
        assert im.mode == "RGBA"
        assert im.getpixel((2, 1)) == (255, 0, 0, 255)
    assert read_header(root / "images" / "00001D.png").channels == 4


def test_mfnet_labels_are_remapped(tmp_path):
    label = open_dataset("mfnet", make_mfnet(tmp_path), split="val")[0].label
    assert label.dtype == np.uint8
    names = ["vehicle", "person", "vehicle", "ground", "obstacle", "background", "obstacle", "ground"]
    assert label[0, :9].tolist() == [IGNORE_INDEX, *(class_id(n) for n in names)]
    assert label[0, :9].tolist() == [255, 6, 5, 6, 1, 7, 0, 7, 1]
    assert label[5, 5] == class_id("vehicle")


def test_mfnet_three_channel_image_is_rejected(tmp_path):
    root = make_mfnet(tmp_path)
    bad = _write(root / "images" / "00003D.png", _rgb_bgr())
    with pytest.raises(DatasetError, match="4-channel") as info:
        open_dataset("mfnet", root, split="val")
    assert info.value.path == bad


def test_mfnet_label_value_outside_the_class_map_raises_naming_the_label(tmp_path):
    root = make_mfnet(tmp_path)
    label = _mfnet_label()
    label[3, 3] = 9
    bad = _write(root / "labels" / "00003D.png", label)
    reader = open_dataset("mfnet", root, split="val")  # found when the pixels are read
    with pytest.raises(DatasetError, match="label values 9") as info:
        reader[0]
    assert info.value.path == bad


# ------------------------------------------------------------------ NYUDv2


def test_nyudv2_reads_depth_metres_and_nyu40_labels(tmp_path):
    root = make_nyudv2(tmp_path)
    train = open_dataset("nyudv2", root, split="train")
    assert isinstance(train, NYUDv2Reader)
    assert len(train) == 3
    assert len(open_dataset("nyudv2", root, split="test")) == 1
    sample = train[2]
    assert sample.meta["name"] == "0003"
    assert sample.present == ("rgb", "depth")
    assert sample.thermal is None
    assert sample.saliency is None
    _assert_red_left(sample)
    assert sample.depth.dtype == np.float32
    assert sample.depth[0, 0] == 0.0
    assert sample.depth[0, 1] == pytest.approx(1.234)
    assert sample.depth[5, 5] == pytest.approx(2.5)
    assert sample.meta["relative_units"] == []
    names = ("building", "ground", "person", "background")  # wall, floor, person, otherprop
    assert sample.label[0, :5].tolist() == [IGNORE_INDEX, *(class_id(n) for n in names)]
    assert sample.label[10, 10] == class_id("ground")


def test_nyudv2_variants_labels_folder_and_suffixes_in_lists(tmp_path):
    root = make_nyudv2(tmp_path, label_folder="labels", list_suffix=".png")
    reader = open_dataset("nyudv2", root, split="train")
    assert len(reader) == 3
    assert reader[0].label[0, 3] == class_id("person")


def test_nyudv2_prefers_label40_over_other_label_sets(tmp_path):
    root = make_nyudv2(tmp_path)
    for name in NYU_TRAIN + NYU_TEST:
        _write(root / "label" / f"{name}.png", np.full((H, W), 77, np.uint8))  # would fail the class map
    sample = open_dataset("nyudv2", root, split="test")[0]
    assert sample.meta["files"]["label"].endswith("label40/0004.png")
    assert sample.label[0, 1] == class_id("building")


def test_nyudv2_palette_png_labels_keep_their_indices(tmp_path):
    from PIL import Image

    root = make_nyudv2(tmp_path)
    image = Image.fromarray(_nyu_label(), mode="L").convert("P")  # palette PNG
    palette = np.zeros((256, 3), np.uint8)
    palette[:, 0] = np.arange(256)[::-1]  # indices != grey values
    image.putpalette(palette.reshape(-1).tolist())
    image.save(root / "label40" / "0004.png")
    assert read_header(root / "label40" / "0004.png").palette
    sample = open_dataset("nyudv2", root, split="test")[0]
    assert sample.label[0, :5].tolist() == [IGNORE_INDEX, 3, 1, 5, 0]


# ------------------------------------------------------------------ failures


def test_missing_partner_raises_naming_the_file_or_is_skipped(tmp_path, caplog):
    root = make_rgbd_sod(tmp_path)
    (root / "depth" / "2.png").unlink()
    with pytest.raises(DatasetError, match="missing partner") as info:
        open_dataset("rgbd_sod", root)
    assert info.value.path == root / "RGB" / "2.jpg"
    assert "depth" in str(info.value)
    with caplog.at_level(logging.WARNING):
        reader = open_dataset("rgbd_sod", root, on_error="skip")
    assert len(reader) == 2
    assert [s.meta["name"] for s in reader] == ["1", "10"]
    assert len(reader.skipped) == 1
    assert reader.skipped[0][0] == str(root / "RGB" / "2.jpg")
    assert "missing partner" in reader.skipped[0][1]
    assert "2.jpg" in caplog.text


def test_missing_rgb_partner_is_found_from_the_other_folders(tmp_path):
    root = make_rgbd_sod(tmp_path)
    _write(root / "depth" / "11.png", _ramp())
    _write(root / "GT" / "11.png", _gt())
    with pytest.raises(DatasetError, match="no rgb file") as info:
        open_dataset("rgbd_sod", root)
    assert info.value.path == root / "depth" / "11.png"


def test_size_mismatch_raises_or_is_skipped(tmp_path):
    root = make_rgbd_sod(tmp_path)
    bad = _write(root / "depth" / "10.png", _ramp(H - 4, W - 2))
    with pytest.raises(DatasetError, match="differs") as info:
        open_dataset("rgbd_sod", root)
    assert info.value.path == bad
    reader = open_dataset("rgbd_sod", root, on_error="skip")
    assert len(reader) == 2
    assert reader.skipped == [(str(bad), reader.skipped[0][1])]
    assert "30x20" in reader.skipped[0][1]


def test_unreadable_image_raises_or_is_skipped(tmp_path):
    root = make_vt5000(tmp_path)
    bad = root / "Train" / "T" / "2.png"
    bad.write_bytes(b"this is not a png at all" * 10)
    with pytest.raises(DatasetError) as info:
        open_dataset("rgbt_sod", root, split="train")
    assert info.value.path == bad
    reader = open_dataset("rgbt_sod", root, split="train", on_error="skip")
    assert len(reader) == 2
    assert [p for p, _ in reader.skipped] == [str(bad)]


def test_empty_file_is_unreadable(tmp_path):
    root = make_rgbd_sod(tmp_path)
    (root / "GT" / "1.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="empty file"):
        open_dataset("rgbd_sod", root)


def test_truncated_image_behind_a_valid_header_raises_when_read(tmp_path):
    root = make_nyudv2(tmp_path)
    path = root / "depth" / "0004.png"
    path.write_bytes(path.read_bytes()[:60])  # signature and IHDR survive, pixels do not
    reader = open_dataset("nyudv2", root, split="test")
    assert len(reader) == 1
    with pytest.raises(DatasetError, match="unreadable") as info:
        reader[0]
    assert info.value.path == path


def test_split_list_naming_a_missing_file(tmp_path):
    root = make_mfnet(tmp_path)
    (root / "train.txt").write_text("00001D\n99999D\n00002N\n")
    with pytest.raises(DatasetError, match="line 2: '99999D'") as info:
        open_dataset("mfnet", root, split="train")
    assert info.value.path == root / "train.txt"
    reader = open_dataset("mfnet", root, split="train", on_error="skip")
    assert [s.meta["name"] for s in reader] == ["00001D", "00002N"]
    assert reader.skipped[0][0] == str(root / "train.txt")


def test_split_list_naming_an_image_without_label(tmp_path):
    root = make_mfnet(tmp_path)
    (root / "labels" / "00004N.png").unlink()
    with pytest.raises(DatasetError, match="missing partner") as info:
        open_dataset("mfnet", root, split="test")
    assert info.value.path == root / "images" / "00004N.png"
    with pytest.raises(DatasetError, match="no usable samples"):
        open_dataset("mfnet", root, split="test", on_error="skip")


def test_two_files_with_one_stem_are_not_guessed(tmp_path):
    root = make_rgbd_sod(tmp_path)
    _write(root / "RGB" / "1.png", _rgb_bgr())
    with pytest.raises(DatasetError, match="several files with stem '1'"):
        open_dataset("rgbd_sod", root)
    reader = open_dataset("rgbd_sod", root, on_error="skip")
    assert [s.meta["name"] for s in reader] == ["2", "10"]


def _classmap_text(**changes: str | None) -> str:
    targets = ["ignore", "vehicle", "person", "vehicle", "ground"]
    targets += ["obstacle", "background", "obstacle", "ground"]
    names = ["unlabeled", "car", "person", "bike", "curve", "car_stop", "guardrail", "color_cone", "bump"]
    mapping: dict[str, str | None] = dict(zip(names, targets, strict=True))
    mapping.update(changes)
    lines = ["source_classes:", *(f"  {i}: {n}" for i, n in enumerate(names)), "mapping:"]
    lines += [f"  {k}: {v}" for k, v in mapping.items() if v is not None]
    return "\n".join(lines) + "\n"


def test_custom_class_map_is_used(tmp_path):
    root = make_mfnet(tmp_path / "data")
    path = tmp_path / "classmap_mine.yaml"
    path.write_text(_classmap_text(guardrail="obstacle", unlabeled="background"))
    label = open_dataset("mfnet", root, split="val", config={"classmap": str(path)})[0].label
    assert label[0, 0] == class_id("background")
    assert label[0, 6] == class_id("obstacle")


@pytest.mark.parametrize(
    ("changes", "extra", "match"),
    [
        ({"car": "truck"}, "", r"mapping\.car: unknown target class 'truck'"),
        ({"bump": None}, "", r"mapping\.bump: source class 'bump' \(value 8\) has no target"),
        ({}, "  tram: vehicle\n", r"mapping\.tram: not a class of source_classes"),
        ({}, "colors: []\n", r"colors: unknown key"),
        ({}, "mapping: [unclosed\n", r"invalid YAML"),
    ],
)
def test_bad_class_map_names_the_file_and_key(tmp_path, changes, extra, match):
    root = make_mfnet(tmp_path / "data")
    path = tmp_path / "classmap_bad.yaml"
    path.write_text(_classmap_text(**changes) + extra)
    with pytest.raises(DatasetError, match=match) as info:
        open_dataset("mfnet", root, split="val", config={"classmap": str(path)})
    assert info.value.path == path


def test_bad_conversion_option_names_the_file_and_key(tmp_path):
    root = make_rgbd_sod(tmp_path / "data")
    user = tmp_path / "opts.yaml"
    user.write_text("depth:\n  brigth: far\n")
    with pytest.raises(DatasetError, match=r"depth\.brigth: unknown key") as info:
        open_dataset("rgbd_sod", root, config=user)
    assert info.value.path == user
    with pytest.raises(DatasetError, match=r"config\.thermal: unknown key"):
        open_dataset("rgbd_sod", root, config={"thermal": {"low_k": 1.0}})


def test_empty_or_missing_root_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        open_dataset("nyudv2", tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset("nyudv2", tmp_path / "nowhere")


def test_open_dataset_lists_valid_kinds_and_checks_on_error(tmp_path):
    with pytest.raises(KeyError, match="mfnet, nyudv2, rgbd_sod, rgbt_sod"):
        open_dataset("cityscapes", tmp_path)
    with pytest.raises(ValueError, match="on_error"):
        open_dataset("mfnet", make_mfnet(tmp_path), on_error="ignore")


def test_reader_is_a_sequence(tmp_path):
    reader = open_dataset("rgbd_sod", make_rgbd_sod(tmp_path))
    assert reader[-1].meta["name"] == "10"
    assert [s.meta["name"] for s in reader[1:]] == ["2", "10"]
    with pytest.raises(IndexError):
        reader[3]
    assert "3 samples" in repr(reader)


def test_read_header_matches_opencv_for_jpeg_and_png(tmp_path):
    jpg = _write(tmp_path / "a.jpg", _rgb_bgr(17, 29))
    png16 = _write(tmp_path / "b.png", np.zeros((13, 11), np.uint16))
    mislabelled = tmp_path / "c.png"
    mislabelled.write_bytes(jpg.read_bytes())  # a JPEG named .png, as found in the wild
    assert read_header(jpg).size == (17, 29)
    assert read_header(jpg).channels == 3
    assert (read_header(png16).size, read_header(png16).bit_depth) == ((13, 11), 16)
    assert read_header(mislabelled).size == (17, 29)
    bmp = _write(tmp_path / "d.bmp", _rgb_bgr(7, 9))
    assert read_header(bmp).size == (7, 9)
