"""Evaluation: metric values on hand-made arrays, the robustness protocols, the result layout,
an oracle network that proves the wiring end to end, plots, and the ``eval`` command on the
procedural split and on a VT5000-style folder.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from unimrseg_core.data.conditions import CONDITIONS
from unimrseg_core.data.readers import READERS
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.tensors import model_inputs
from unimrseg_core.eval.cli import add_parser
from unimrseg_core.eval.evaluate import evaluate, usable_combinations
from unimrseg_core.eval.formats import DATASET_FORMATS
from unimrseg_core.eval.metrics import SALIENCY_KEYS, SaliencyMeter, SegmentationMeter
from unimrseg_core.eval.plots import write_plots
from unimrseg_core.eval.protocols import (
    NOISE_LEVELS,
    RMM_RATIOS,
    drop,
    gaussian_noise,
    random_missing,
    salt_pepper,
)
from unimrseg_core.eval.sources import CONDITION_CYCLE, default_split, held_out_split, resize_sample
from unimrseg_core.modalities import (
    CLASS_NAMES,
    COMBINATIONS,
    IGNORE_INDEX,
    MODALITIES,
    MODALITY_CHANNELS,
    NUM_CLASSES,
    class_id,
    combination,
)
from unimrseg_core.model import ModelConfig, UniMRSegNet
from unimrseg_core.model.checkpoint import save_model

SIZE = (64, 96)  # model input size of the tiny checkpoint (multiples of 16)
ROW_KEYS = {"combination", "miou", "per_class_iou", *SALIENCY_KEYS, "scenes"}
SUMMARY_KEYS = {
    "complete_combination",
    "complete_miou",
    "mean_miou",
    "std_miou",
    "min_miou",
    "complete_s_measure",
    "mean_s_measure",
}


def _tiny_net() -> UniMRSegNet:
    torch.manual_seed(0)
    return UniMRSegNet(ModelConfig(widths=(8, 8, 8, 8), depths=(0, 0, 0, 0), decoder_width=8))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(_tiny_net(), tmp_path_factory.mktemp("ck") / "tiny.pt", input_size=SIZE)


def _cli(argv: list[str]) -> int:
    """The ``eval`` subcommand as ``unimrseg_core.cli`` wires it: parse, then call ``func``."""
    parser = argparse.ArgumentParser(prog="unimrseg")
    add_parser(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(["eval", *argv])
    return args.func(args)


def _numbers(value: Any) -> list[Any]:
    """Every leaf of a JSON-like structure that is a number or None."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _numbers(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _numbers(v)]
    return [value] if value is None or isinstance(value, (int, float)) else []


# ------------------------------------------------------------------------ metrics


def test_perfect_segmentation_has_miou_one_and_absent_classes_none():
    meter = SegmentationMeter()
    label = torch.tensor([[[0, 1, 1], [5, 5, IGNORE_INDEX]]])
    pred = label.clone()
    pred[0, 1, 2] = 7  # an ignored pixel: never scored, so class 7 does not "occur"
    meter.update(pred, label)
    iou = meter.per_class_iou()
    assert [iou[c] for c in (0, 1, 5)] == [1.0, 1.0, 1.0]
    assert [iou[c] for c in (2, 3, 4, 6, 7)] == [None] * 5
    assert meter.miou() == 1.0


def test_known_iou_on_a_small_case():
    meter = SegmentationMeter()
    # class 0: tp 1, union 2 -> 0.5; class 1: tp 1, union 3 -> 1/3; class 2 predicted, never true -> 0
    meter.update(torch.tensor([[0, 0, 1, 2]]), torch.tensor([[0, 1, 1, 1]]))
    meter.update(torch.tensor([[1]]), torch.tensor([[IGNORE_INDEX]]))
    iou = meter.per_class_iou()
    assert iou[:3] == pytest.approx([0.5, 1 / 3, 0.0])
    assert iou[3:] == [None] * (NUM_CLASSES - 3)
    assert meter.miou() == pytest.approx((0.5 + 1 / 3 + 0.0) / 3)


def test_meters_without_data_report_none():
    seg = SegmentationMeter()
    seg.update(torch.tensor([[1, 2]]), torch.tensor([[IGNORE_INDEX, IGNORE_INDEX]]))
    assert seg.miou() is None
    assert seg.per_class_iou() == [None] * NUM_CLASSES
    assert SaliencyMeter().results() == dict.fromkeys(SALIENCY_KEYS)


def test_perfect_saliency_scores():
    gt = np.zeros((32, 48), np.uint8)
    gt[8:20, 10:30] = 255
    meter = SaliencyMeter()
    meter.update(gt.copy(), gt)
    out = meter.results()
    assert out["s_measure"] == pytest.approx(1.0, abs=1e-6)
    assert out["max_f"] == pytest.approx(1.0, abs=1e-3)
    assert out["e_measure"] > 0.99
    assert out["mae"] == 0.0


def test_empty_saliency_ground_truth_follows_the_sod_conventions():
    """Nothing salient and nothing predicted: S, E and MAE are perfect, F is 0 (no precision/recall)."""
    meter = SaliencyMeter()
    meter.update(np.zeros((32, 48), np.uint8), np.zeros((32, 48), np.uint8))
    assert meter.results() == {
        "s_measure": 1.0,
        "max_f": 0.0,
        "e_measure": pytest.approx(1.0, abs=0.01),
        "mae": 0.0,
    }


def test_wrong_saliency_scores_low_and_cheap_meter_reports_only_s_measure():
    gt = np.zeros((32, 48), np.uint8)
    gt[8:20, 10:30] = 255
    full, cheap = SaliencyMeter(), SaliencyMeter(full=False)
    for meter in (full, cheap):
        meter.update(255 - gt, gt)
    assert full.results()["s_measure"] < 0.2
    assert full.results()["mae"] == 1.0
    assert cheap.results()["s_measure"] == full.results()["s_measure"]
    assert [cheap.results()[k] for k in ("max_f", "e_measure", "mae")] == [None] * 3


# ---------------------------------------------------------------------- protocols


def _ones(height: int = 64, width: int = 96, batch: int | None = None) -> dict[str, np.ndarray]:
    lead = () if batch is None else (batch,)
    out = {m: np.ones((*lead, 3 if m == "rgb" else 1, height, width), np.float32) for m in MODALITIES}
    out["modality_mask"] = np.ones((*lead, 3), np.float32)
    return out


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("ratio", RMM_RATIOS)
def test_random_missing_zeroes_the_ratio_of_patches_per_modality(ratio):
    inputs = _ones()
    out = random_missing(inputs, ratio, _rng())
    for m in MODALITIES:
        lost = out[m] == 0
        assert lost.mean() == pytest.approx(ratio)  # 24 cells, whole 16x16 patches, exact
        assert (lost == lost[:1]).all()  # a patch is lost in every channel
        cells = lost[0].reshape(4, 16, 6, 16)
        assert (cells.all(axis=(1, 3)) == cells.any(axis=(1, 3))).all()  # whole patches only
    assert not np.array_equal(out["rgb"][0], out["depth"][0])  # independent per modality
    np.testing.assert_array_equal(out["modality_mask"], inputs["modality_mask"])
    assert (inputs["rgb"] == 1).all()  # the argument is left alone


def test_random_missing_on_odd_sizes_and_batches():
    out = random_missing(_ones(100, 130, batch=3), 0.5, _rng())  # 7 x 9 cells, the last ones cropped
    for m in MODALITIES:
        assert out[m].shape == (3, MODALITY_CHANNELS[m], 100, 130)
        corners = out[m][:, 0, ::16, ::16] == 0  # one pixel per cell
        assert corners.shape == (3, 7, 9)
        assert corners.sum(axis=(1, 2)).tolist() == [round(0.5 * 63)] * 3
        whole = np.repeat(np.repeat(corners, 16, axis=1), 16, axis=2)[:, :100, :130]
        np.testing.assert_array_equal(out[m][:, 0] == 0, whole)
    assert not np.array_equal(out["thermal"][0], out["thermal"][1])


def test_protocols_are_deterministic_per_seed():
    inputs = model_inputs(held_out_split((32, 48), 1)[0])
    for damage in (
        lambda rng: random_missing(inputs, 0.5, rng),
        lambda rng: gaussian_noise(inputs, "depth", 0.1, rng),
        lambda rng: salt_pepper(inputs, "rgb", 0.1, rng),
    ):
        a, b, c = damage(_rng(3)), damage(_rng(3)), damage(_rng(4))
        for m in MODALITIES:
            np.testing.assert_array_equal(a[m], b[m])
        assert any(not np.array_equal(a[m], c[m]) for m in MODALITIES)


@pytest.mark.parametrize("noise", ["gaussian", "salt_pepper"])
def test_noise_touches_only_the_chosen_modality(noise):
    inputs = {k: v * 0.5 for k, v in _ones().items()}
    fn = gaussian_noise if noise == "gaussian" else salt_pepper
    for target in MODALITIES:
        out = fn(inputs, target, NOISE_LEVELS[noise], _rng())
        for m in MODALITIES:
            changed = out[m] != inputs[m]
            if m == target:
                assert 0.05 < changed.mean() <= 1.0
                assert out[m].min() >= 0.0
                assert out[m].max() <= 1.0
                assert out[m].dtype == np.float32
            else:
                assert not changed.any()
        np.testing.assert_array_equal(out["modality_mask"], inputs["modality_mask"])


def test_salt_pepper_hits_the_amount_of_pixels_with_zeros_and_ones():
    inputs = {k: v * 0.5 for k, v in _ones(128, 128).items()}
    out = salt_pepper(inputs, "rgb", 0.2, _rng())["rgb"]
    hit = out[0] != 0.5
    assert hit.mean() == pytest.approx(0.2, abs=0.01)
    assert (out[:, hit] == out[:1, hit]).all()  # whole pixels, all channels alike
    assert set(np.unique(out[0][hit]).tolist()) == {0.0, 1.0}


def test_drop_keeps_one_combination():
    inputs = _ones(batch=2)
    out = drop(inputs, combination("rgb+thermal"))
    assert (out["rgb"] == 1).all()
    assert (out["thermal"] == 1).all()
    assert (out["depth"] == 0).all()
    np.testing.assert_array_equal(out["modality_mask"], [[1, 0, 1], [1, 0, 1]])
    assert (inputs["depth"] == 1).all()


# ----------------------------------------------------------------- the test split


def test_held_out_split_cycles_its_conditions():
    split = held_out_split((32, 48), 9)
    assert len(split) == 9
    assert {*(c for mix in CONDITION_CYCLE for c in mix)} == set(CONDITIONS)
    for i in (0, 4, 5, 6, 7):
        assert split[i].meta["conditions"] == list(CONDITION_CYCLE[i % 7])
    np.testing.assert_array_equal(split[-1].rgb, split[8].rgb)
    assert split.info["scenes"] == 9
    with pytest.raises(IndexError):
        split[9]


def test_usable_combinations_follow_the_modalities():
    assert [c.name for c in usable_combinations(("rgb", "thermal"))] == ["rgb", "thermal", "rgb+thermal"]
    assert usable_combinations(MODALITIES) == list(COMBINATIONS)


def test_resize_keeps_dtypes_and_does_not_blend_depth_holes():
    rng = _rng()
    depth = rng.uniform(1, 5, (30, 44)).astype(np.float32)
    depth[5:15, 5:15] = 0.0
    label = rng.integers(0, 4, (30, 44)).astype(np.uint8)
    sample = Sample(rgb=np.zeros((30, 44, 3), np.uint8), depth=depth, label=label, meta={"name": "x"})
    out = resize_sample(sample, SIZE)
    assert out.size == SIZE
    assert out.depth.dtype == np.float32
    assert out.label.dtype == np.uint8
    assert set(np.unique(out.depth)) <= set(np.unique(depth))  # nearest: no invented depths
    assert set(np.unique(out.label)) <= set(np.unique(label))
    assert out.meta == {"name": "x"}


def test_formats_map_to_readers():
    assert set(DATASET_FORMATS.values()) == set(READERS)


# ------------------------------------------------------------- an oracle network


class Oracle(nn.Module):
    """Reads the class from the red channel (class x 30) and calls person pixels salient.

    It sees only RGB, so every combination with RGB must score perfectly and every
    combination without it must fail: that checks masking, argmax, scaling and metrics.
    """

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, rgb, depth, thermal, modality_mask):
        cls = (rgb[:, 0] * 255 / 30).round().long().clamp(0, NUM_CLASSES - 1)
        logits = nn.functional.one_hot(cls, NUM_CLASSES).permute(0, 3, 1, 2).float()
        return logits, (cls == class_id("person")).float()[:, None]


def _oracle_sample(index: int) -> Sample:
    label = np.full((32, 48), class_id("ground"), np.uint8)
    label[:8] = class_id("sky")
    label[8:14] = class_id("building")
    label[18 + index % 3 : 28, 10:22] = class_id("person")
    label[0, :] = IGNORE_INDEX
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 0] = np.where(label == IGNORE_INDEX, 0, label * 30)
    return Sample(
        rgb=rgb,
        depth=np.full((32, 48), 5.0, np.float32),
        thermal=np.full((32, 48), 300.0, np.float32),
        label=label,
        saliency=(label == class_id("person")).astype(np.uint8),
        meta={"name": str(index), "conditions": list(CONDITION_CYCLE[index % 7])},
    )


@pytest.fixture(scope="module")
def oracle_result() -> dict[str, Any]:
    samples = [_oracle_sample(i) for i in range(7)]
    return evaluate(Oracle(), samples, protocol_scenes=5, batch_size=3, progress=False)


def test_oracle_is_perfect_exactly_when_rgb_is_present(oracle_result):
    for row in oracle_result["combinations"]:
        if "rgb" in combination(row["combination"]):
            assert row["miou"] == 1.0, row
            assert row["s_measure"] == pytest.approx(1.0, abs=1e-4)
            assert row["mae"] == 0.0
            assert row["per_class_iou"]["background"] is None  # only on ignored pixels
            assert row["per_class_iou"]["person"] == 1.0
        else:
            assert row["miou"] == 0.0, row
            assert row["s_measure"] < 0.6
        assert row["scenes"] == 7
    assert list(oracle_result["conditions"]) == list(CONDITIONS)
    for by_combination in oracle_result["conditions"].values():
        assert by_combination == {c.name: 1.0 if "rgb" in c else 0.0 for c in COMBINATIONS}


def test_oracle_protocols(oracle_result):
    protocols = oracle_result["protocols"]
    assert protocols["scenes"] == 5
    assert protocols["clean"] == {"miou": 1.0, "s_measure": pytest.approx(1.0, abs=1e-4)}
    rmm = [row["miou"] for row in protocols["rmm"]]
    assert [row["ratio"] for row in protocols["rmm"]] == list(RMM_RATIOS)
    assert 1.0 > rmm[0] > rmm[1] > rmm[2]  # more RGB patches lost, more errors
    for row in protocols["nm"]:
        if row["modality"] == "rgb":
            assert row["miou"] < 1.0, row
        else:
            assert row["miou"] == 1.0, row  # the oracle never looks at depth or thermal
    emm = {row["combination"]: row for row in protocols["emm"]}
    assert emm["depth"]["miou_drop"] == 1.0
    assert emm["rgb+depth"]["miou_drop"] == 0.0


def test_results_do_not_depend_on_the_batch_size(oracle_result):
    samples = [_oracle_sample(i) for i in range(7)]
    again = evaluate(Oracle(), samples, protocol_scenes=5, batch_size=5, progress=False)
    for key in ("combinations", "conditions", "protocols", "summary"):
        assert again[key] == oracle_result[key]


def test_evaluate_refuses_combinations_the_data_lacks():
    sample = _oracle_sample(0)
    sample.depth = None
    with pytest.raises(ValueError, match="cannot evaluate depth"):
        evaluate(Oracle(), [sample], combinations=["rgb", "depth"], progress=False)


# ------------------------------------------------------ a real network, full layout


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    split = held_out_split(SIZE, 7)
    return evaluate(_tiny_net(), split, protocol_scenes=2, batch_size=4, progress=False, data=split.info)


def test_result_layout(result):
    assert [row["combination"] for row in result["combinations"]] == [c.name for c in COMBINATIONS]
    for row in result["combinations"]:
        assert set(row) == ROW_KEYS
        assert list(row["per_class_iou"]) == list(CLASS_NAMES)
        assert row["miou"] is not None
        assert row["s_measure"] is not None
        assert row["scenes"] == 7
    assert list(result["conditions"]) == list(CONDITIONS)  # 7 scenes: one of each mix
    assert all(set(v) == {c.name for c in COMBINATIONS} for v in result["conditions"].values())
    protocols = result["protocols"]
    assert {"emm", "rmm", "nm", "clean", "scenes", "note"} <= set(protocols)
    assert len(protocols["emm"]) == 7
    assert len(protocols["rmm"]) == len(RMM_RATIOS)
    assert {(r["modality"], r["noise"]) for r in protocols["nm"]} == {
        (m, n) for m in MODALITIES for n in NOISE_LEVELS
    }
    assert set(result["summary"]) == SUMMARY_KEYS
    assert result["summary"]["complete_combination"] == "rgb+depth+thermal"
    assert result["data"]["source"] == "procedural"
    assert result["data"]["scenes"] == 7
    assert result["seconds"] > 0
    numbers = _numbers(result)
    assert all(v is None or math.isfinite(v) for v in numbers)
    json.loads(json.dumps(result, allow_nan=False))


def test_without_protocols_there_is_no_protocol_section():
    out = evaluate(Oracle(), [_oracle_sample(0)], protocols=False, progress=False)
    assert out["protocols"] is None
    assert [row["miou"] for row in out["combinations"]] == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0]


def test_plots_are_written(result, tmp_path):
    paths = write_plots(result, tmp_path / "plots")
    assert [p.name for p in paths] == ["combinations.png", "conditions.png"]
    for path in paths:
        image = cv2.imread(str(path))
        assert image is not None
        assert image.shape[0] > 100
        assert image.shape[1] > 100


# ------------------------------------------------------------------------ the CLI


def test_cli_missing_checkpoint_exits_2(tmp_path, capsys):
    assert _cli(["--checkpoint", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no such checkpoint" in err
    assert "Traceback" not in err


def test_cli_data_needs_format(tmp_path, capsys):
    assert _cli(["--data", str(tmp_path)]) == 2
    assert "--format" in capsys.readouterr().err


def test_cli_procedural_writes_json_and_plots(checkpoint, tmp_path, capsys):
    out = tmp_path / "out.json"
    argv = ["--checkpoint", str(checkpoint), "--scenes", "2", "--protocol-scenes", "1", "--quiet"]
    assert _cli([*argv, "--json", str(out), "--plots", str(tmp_path / "p")]) == 0
    result = json.loads(out.read_text())
    assert len(result["combinations"]) == 7
    assert result["protocols"]["scenes"] == 1
    assert result["data"]["checkpoint"] == str(checkpoint)
    assert (tmp_path / "p" / "combinations.png").is_file()
    assert (tmp_path / "p" / "conditions.png").is_file()
    assert "rgb+depth+thermal" in capsys.readouterr().out


def _make_vt5000(root: Path) -> Path:
    """VT5000 layout: Train/ and Test/ with RGB/*.jpg, T/*.jpg (3-channel grey), GT/*.png; 40x56."""
    rng = _rng(1)
    for split, names in (("Train", ("1",)), ("Test", ("2", "3"))):
        for name in names:
            for folder, image in (
                ("RGB", rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)),
                ("T", cv2.cvtColor(rng.integers(0, 256, (40, 56), dtype=np.uint8), cv2.COLOR_GRAY2BGR)),
            ):
                (root / split / folder).mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(root / split / folder / f"{name}.jpg"), image)
            gt = np.zeros((40, 56), np.uint8)
            gt[10:30, 15:40] = 255
            (root / split / "GT").mkdir(exist_ok=True)
            assert cv2.imwrite(str(root / split / "GT" / f"{name}.png"), gt)
    return root


def test_cli_on_a_vt5000_folder(checkpoint, tmp_path):
    root = _make_vt5000(tmp_path / "VT5000")
    assert default_split(root) == "test"
    out = tmp_path / "vt.json"
    argv = ["--checkpoint", str(checkpoint), "--data", str(root), "--format", "vt5000", "--quiet"]
    assert _cli([*argv, "--json", str(out), "--plots", str(tmp_path / "p")]) == 0
    result = json.loads(out.read_text())
    assert [row["combination"] for row in result["combinations"]] == ["rgb", "thermal", "rgb+thermal"]
    for row in result["combinations"]:
        assert row["miou"] is None
        assert set(row["per_class_iou"].values()) == {None}
        assert 0.0 <= row["s_measure"] <= 1.0
        assert row["scenes"] == 2
    assert result["conditions"] == {}
    assert {row["modality"] for row in result["protocols"]["nm"]} == {"rgb", "thermal"}
    assert result["summary"]["complete_combination"] == "rgb+thermal"
    assert result["summary"]["complete_miou"] is None
    assert result["data"]["source"] == "vt5000"
    assert result["data"]["split"] == "test"
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["combinations.png"]


def test_cli_bad_dataset_exits_2(checkpoint, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["--checkpoint", str(checkpoint), "--data", str(tmp_path / "empty"), "--format", "njud"]
    assert _cli(argv) == 2
    assert "empty" in capsys.readouterr().err
