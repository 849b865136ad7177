"""``unimrseg eval --data`` with a dataset's stored units (depth polarity and scale, thermal
range), and what it says about scores it cannot give ("-") and files it did not read.

Datasets are written in the readers' layouts into tmp_path; the model is a tiny real
checkpoint run by eager PyTorch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from unimrseg_core.eval.cli import add_parser
from unimrseg_core.eval.sources import load_real
from unimrseg_core.model import ModelConfig, UniMRSegNet
from unimrseg_core.model.checkpoint import save_model

SIZE = (32, 48)  # model input size of the tiny checkpoint
H, W = 40, 56
NEAR = (slice(10, 30), slice(15, 40))  # the salient object


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = UniMRSegNet(ModelConfig(widths=(8, 8, 8, 8), depths=(0, 0, 0, 0), decoder_width=8))
    return save_model(net, tmp_path_factory.mktemp("ck") / "tiny.pt", input_size=SIZE)


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def make_njud(root: Path, *, gt: bool) -> Path:
    """NJUD layout, depth stored near-is-dark (the object 30, the background 200)."""
    for name in ("1", "2"):
        _write(root / "RGB" / f"{name}.jpg", np.full((H, W, 3), 120, np.uint8))
        depth = np.full((H, W), 200, np.uint8)
        depth[NEAR] = 30
        _write(root / "depth" / f"{name}.png", depth)
        if gt:
            mask = np.zeros((H, W), np.uint8)
            mask[NEAR] = 255
            _write(root / "GT" / f"{name}.png", mask)
    return root


def make_vt821(root: Path) -> Path:
    for name in ("1", "2"):
        _write(root / "RGB" / f"{name}.jpg", np.full((H, W, 3), 120, np.uint8))
        _write(root / "T" / f"{name}.jpg", np.full((H, W, 3), 80, np.uint8))
    return root


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="unimrseg")
    add_parser(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(["eval", *argv])
    return args.func(args)


def _eval_argv(checkpoint: Path, root: Path, fmt: str) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--backend", "torch", "--data", str(root), "--format", fmt]


def test_near_dark_depth_is_read_right_when_the_polarity_is_given(tmp_path):
    from unimrseg_core.data.stored_units import StoredUnits

    root = make_njud(tmp_path / "NJUD", gt=True)
    default = load_real("njud", root, SIZE)[0].depth
    given = load_real("njud", root, SIZE, units=StoredUnits(depth_polarity="near-dark"))[0].depth
    centre, corner = (16, 24), (0, 0)  # inside the object and background, at the model size
    assert default[centre] > default[corner]  # read as near-bright: the object looks far
    assert given[centre] < given[corner]


def test_eval_without_ground_truth_says_why_scores_are_missing(checkpoint, tmp_path, capsys):
    root = make_njud(tmp_path / "NJUD", gt=False)
    (root / "depth" / "readme.txt").write_text("depth of a structured-light sensor")
    out = tmp_path / "r.json"
    argv = [*_eval_argv(checkpoint, root, "njud"), "--depth-polarity", "near-dark", "--depth-scale", "5000"]
    assert _cli([*argv, "--no-protocols", "--quiet", "--json", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "mIoU: - because the rgbd_sod layout has no label ground truth" in stdout
    assert f"S-measure, max F, mean E, MAE: - because no gt folder in {root} (looked for gt/, mask/" in stdout
    assert (
        f"ignored 1 file(s) in the dataset's folders: {root / 'depth' / 'readme.txt'}: suffix '.txt'"
        in stdout
    )
    data = json.loads(out.read_text())["data"]
    assert data["stored_units"] == {
        "depth_polarity": "near-dark",
        "depth_units_per_m": 5000.0,
        "thermal_range_k": None,
    }
    assert data["options"]["depth"]["bright"] == "far"
    assert data["options"]["depth"]["scale_16bit"] == pytest.approx(1 / 5000)
    assert set(data["unscored"]) == {"mIoU", "S-measure, max F, mean E, MAE"}
    assert len(data["ignored"]) == 1
    rows = json.loads(out.read_text())["combinations"]
    assert {row["s_measure"] for row in rows} == {None}


def test_eval_with_ground_truth_names_only_what_the_layout_lacks(checkpoint, tmp_path, capsys):
    root = make_njud(tmp_path / "NJUD", gt=True)
    assert _cli([*_eval_argv(checkpoint, root, "njud"), "--no-protocols", "--quiet"]) == 0
    stdout = capsys.readouterr().out
    assert "mIoU: - because" in stdout
    assert "S-measure, max F, mean E, MAE: -" not in stdout
    assert "ignored" not in stdout


@pytest.mark.parametrize(
    ("fmt", "flags", "message"),
    [
        ("vt821", ["--depth-polarity", "near-dark"], "--depth-polarity: vt821 has no depth"),
        ("vt821", ["--depth-scale", "5000"], "--depth-scale: vt821 has no depth"),
        ("njud", ["--thermal-range", "250:350"], "--thermal-range: njud has no thermal"),
    ],
)
def test_a_flag_for_a_modality_the_dataset_lacks_exits_2(checkpoint, tmp_path, capsys, fmt, flags, message):
    root = make_vt821(tmp_path / "VT821") if fmt == "vt821" else make_njud(tmp_path / "NJUD", gt=True)
    assert _cli([*_eval_argv(checkpoint, root, fmt), *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"unimrseg eval: error: {message}\n"


def test_stored_units_without_data_exit_2(capsys):
    assert _cli(["--thermal-range", "250:350", "--depth-scale", "5000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unimrseg eval: error: --depth-scale, --thermal-range: for --data only")


def test_a_bad_flag_value_is_a_parse_error(capsys):
    with pytest.raises(SystemExit) as info:
        _cli(["--thermal-range", "320:260"])
    assert info.value.code == 2
    assert "--thermal-range needs 0 < LOW < HIGH kelvin, got 320:260" in capsys.readouterr().err
