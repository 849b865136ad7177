"""Training from mixed sources: dataset folders in their readers' layouts, a labelled bag from
``bag make`` and the procedural world, each sample with its own modalities and ground truth; and
fine-tuning the shipped model onto a user's 5-class table, then exporting it.

The fixtures are written here, tiny (64x80), in each reader's exact layout.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from unimrseg_core.cli import main as unimrseg_main
from unimrseg_core.data.readers import DatasetError, load_class_table, load_classmap
from unimrseg_core.modalities import CLASSES, IGNORE_INDEX, MODALITIES, class_table_json
from unimrseg_core.model.checkpoint import SHIPPED, load_model, read_metadata
from unimrseg_core.train import losses, masking
from unimrseg_core.train.config import DataConfig, from_dict
from unimrseg_core.train.mixed import MixedPool, mixed_crops
from unimrseg_core.train.source_samples import open_source
from unimrseg_core.train.sources import parse_sources
from unimrseg_core.train.stages import STEPS
from unimrseg_core.train.trainer import Trainer

SIZE = (64, 80)
FIVE = """\
classes:
  - {name: ground, color: [128, 64, 128]}
  - {name: structure, color: [70, 70, 70]}
  - {name: person, color: [220, 20, 60], is_thing: true}
  - {name: vehicle, color: [0, 0, 142], is_thing: true}
  - {name: other, color: [250, 170, 30]}
"""
MFNET_TO_FIVE = """\
dataset: mfnet
source_classes: {0: unlabeled, 1: car, 2: person, 3: bike, 4: curve,
  5: car_stop, 6: guardrail, 7: color_cone, 8: bump}
mapping:
  unlabeled: ignore
  car: vehicle
  person: person
  bike: vehicle
  curve: ground
  car_stop: other
  guardrail: structure
  color_cone: other
  bump: ground
"""
# MFNet value -> (BGR colour, thermal grey) of a band: a learnable scene
BANDS = {6: ((90, 90, 90), 60), 2: ((40, 40, 200), 220), 4: ((120, 60, 120), 120), 1: ((140, 20, 10), 170)}


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BGR image, thermal grey and MFNet label values of one banded scene with a car."""
    h, w = SIZE
    label = np.zeros((h, w), np.uint8)
    top, bottom = rng.integers(14, 26), rng.integers(40, 52)
    label[:top], label[top:bottom], label[bottom:] = 6, 2, 4
    x = rng.integers(0, w - 20)
    label[bottom - 10 : bottom + 6, x : x + 20] = 1
    bgr = np.zeros((h, w, 3), np.uint8)
    grey = np.zeros((h, w), np.uint8)
    for value, (colour, heat) in BANDS.items():
        bgr[label == value] = colour
        grey[label == value] = heat
    noise = rng.integers(-12, 13, (h, w, 3))
    return np.clip(bgr + noise, 0, 255).astype(np.uint8), grey, label


def write_mfnet(root: Path, count: int = 8) -> Path:
    """MFNet's layout: images/ (4-channel B, G, R, thermal PNGs), labels/, train.txt."""
    rng = np.random.default_rng(3)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    names = [f"{i:05d}D" for i in range(count)]
    for name in names:
        bgr, grey, label = _scene(rng)
        cv2.imwrite(str(root / "images" / f"{name}.png"), np.dstack([bgr, grey]))
        cv2.imwrite(str(root / "labels" / f"{name}.png"), label)
    (root / "train.txt").write_text("\n".join(names) + "\n")
    return root


def write_rgbd_sod(root: Path, count: int = 4) -> Path:
    """NJUD's layout: RGB/, depth/ (8-bit), GT/ (binary), paired by stem."""
    rng = np.random.default_rng(4)
    for folder in ("RGB", "depth", "GT"):
        (root / folder).mkdir(parents=True)
    for i in range(count):
        bgr, grey, label = _scene(rng)
        cv2.imwrite(str(root / "RGB" / f"{i}.png"), bgr)
        cv2.imwrite(str(root / "depth" / f"{i}.png"), 255 - grey)
        cv2.imwrite(str(root / "GT" / f"{i}.png"), np.where(label == 2, 255, 0).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from unimrseg_core.bags.write import make_bag

    root = tmp_path_factory.mktemp("layouts")
    bag = root / "robot_bag"
    make_bag(bag, duration_s=0.6, rate_hz=5.0, size=SIZE, progress=False)
    return {"mfnet": write_mfnet(root / "MFNet"), "njud": write_rgbd_sod(root / "NJUD"), "bag": bag}


def _sources(layouts: dict[str, Path]) -> list[dict[str, Any]]:
    return [
        {
            "kind": "dataset",
            "name": "mfnet",
            "format": "mfnet",
            "root": str(layouts["mfnet"]),
            "split": "train",
        },
        {"kind": "dataset", "name": "njud", "format": "njud", "root": str(layouts["njud"])},
        {"kind": "bag", "name": "bag", "path": str(layouts["bag"])},
        {"kind": "procedural", "name": "world", "seed": 5, "scenes": 3},
    ]


EXPECTED = {  # source -> (modality mask, has_label, has_saliency)
    "mfnet": ([1, 0, 1], True, False),
    "njud": ([1, 1, 0], False, True),
    "bag": ([1, 1, 1], True, True),
    "world": ([1, 1, 1], True, True),
}


@pytest.fixture(scope="module")
def mixed(layouts: dict[str, Path]) -> MixedPool:
    opened = [open_source(s, SIZE, CLASSES) for s in parse_sources(_sources(layouts))]
    return MixedPool.build(opened, torch.device("cpu"))


def test_mixed_batches_carry_each_samples_modalities_and_ground_truth(mixed: MixedPool) -> None:
    cfg = DataConfig(size=SIZE, crop=(48, 64), seed=1)
    assert mixed.counts == [8, 4, 3, 3]
    assert mixed.presence() == {
        "mfnet": ["rgb", "thermal"],
        "njud": ["rgb", "depth"],
        "bag": ["rgb", "depth", "thermal"],
        "world": ["rgb", "depth", "thermal"],
    }
    offsets = np.cumsum([0, *mixed.counts])
    seen = set()
    for step in range(4):
        batch = next(mixed.batches(cfg, 16, 0, step, step + 1))
        crops = mixed_crops(cfg, 16, 0, step, 0, mixed.counts, mixed.weights)
        for i, scene in enumerate(crops.scene):
            name = mixed.names[int(np.searchsorted(offsets, scene, side="right")) - 1]
            seen.add(name)
            mask, has_label, has_saliency = EXPECTED[name]
            assert batch["modality_mask"][i].tolist() == mask, name
            assert bool(batch["has_label"][i]) is has_label, name
            assert bool(batch["has_saliency"][i]) is has_saliency, name
            for m, present in zip(MODALITIES, mask, strict=True):
                assert bool(batch[m][i].abs().sum() > 0) is bool(present), (name, m)  # absent: zeros
            assert bool((batch["label"][i] == IGNORE_INDEX).all()) is not has_label, name
            if has_label:
                assert batch["label"][i][batch["label"][i] != IGNORE_INDEX].max() < len(CLASSES)
    assert seen == set(EXPECTED)  # equal weights: every source drawn within 64 samples


def test_loss_terms_cover_only_what_each_sample_has(mixed: MixedPool) -> None:
    cfg = from_dict({"batch_size": 8, "data": {"size": list(SIZE), "crop": None}})
    data = DataConfig(size=SIZE, crop=None, seed=2)
    batch = next(mixed.batches(data, 8, 0, 0, 1))
    net = Trainer(
        from_dict({"device": "cpu", "data": {"size": list(SIZE), "crop": None}}), progress=False
    ).model
    gen = torch.Generator().manual_seed(0)
    for name in ("stage1", "stage2", "stage3", "supervised"):
        loss, parts = STEPS[name](net, batch, cfg, gen)
        assert torch.isfinite(loss), name
        assert all(torch.isfinite(v) for v in parts.values()), (name, parts)

    # a batch of one source only: the task it has no ground truth for is exactly 0
    only = {k: v[batch["has_label"] & ~batch["has_saliency"]] for k, v in batch.items()}  # mfnet rows
    if len(only["rgb"]) >= 2:
        _, parts = STEPS["stage2"](net, only, cfg, gen)
        assert float(parts["sal"]) == 0.0
        assert float(parts["seg"]) > 0.0


def test_reconstruction_ignores_the_channels_of_absent_modalities() -> None:
    rng = torch.Generator().manual_seed(1)
    inputs = {m: torch.rand(2, 3 if m == "rgb" else 1, 32, 32, generator=rng) for m in MODALITIES}
    target = torch.cat([inputs[m] for m in MODALITIES], 1)
    presence = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    pred = target.clone()
    garbage = pred.clone()
    garbage[0, 3] = torch.rand(32, 32, generator=rng)  # sample 0 has no depth
    garbage[1, 4] = torch.rand(32, 32, generator=rng)  # sample 1 has no thermal
    assert float(losses.reconstruction(garbage, inputs, 0.5, presence)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.reconstruction(garbage, inputs, 0.5)) > 0.01  # all present: the garbage counts


def test_saliency_and_segmentation_losses_skip_samples_without_that_truth() -> None:
    logits = torch.randn(2, 1, 16, 16)
    target = (torch.rand(2, 1, 16, 16) > 0.5).float()
    has = torch.tensor([True, False])
    flipped = target.clone()
    flipped[1] = 1 - flipped[1]
    assert losses.saliency(logits, target, has) == losses.saliency(logits, flipped, has)
    assert float(losses.saliency(logits, target, torch.tensor([False, False]))) == 0.0
    seg = torch.randn(2, 5, 16, 16, requires_grad=True)
    loss = losses.segmentation(seg, torch.full((2, 16, 16), IGNORE_INDEX), 1.0)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert seg.grad is not None
    assert not seg.grad.any()


def test_drawn_masks_stay_within_what_a_sample_has() -> None:
    gen = torch.Generator().manual_seed(0)
    presence = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]).repeat(
        50, 1
    )
    for drawn in (
        masking.keep_k_masks(200, 0.9, gen),
        masking.random_combinations(200, gen),
        masking.cycled_combinations(200, gen),
    ):
        kept = masking.within(drawn, presence)
        assert not (kept * (1 - presence)).any()  # never a modality the sample lacks
        assert (kept.sum(1) > 0).all()  # never empty
    full = torch.ones(200, 3)
    drawn = masking.cycled_combinations(200, gen)
    assert torch.equal(masking.within(drawn, full), drawn)  # the procedural world: unchanged


def test_a_class_map_naming_an_unknown_class_is_refused_with_file_and_line(
    tmp_path: Path, layouts: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "five.yaml").write_text(FIVE)
    five = load_class_table(tmp_path / "five.yaml")
    bad = tmp_path / "bad_map.yaml"
    bad.write_text(MFNET_TO_FIVE.replace("car: vehicle", "car: truck"))
    with pytest.raises(DatasetError, match=r"line 6: mapping\.car: unknown target class 'truck'") as err:
        load_classmap(bad, five)
    assert err.value.path == bad
    # and through `unimrseg train`: exit 2, one line naming the file and the line
    config = tmp_path / "train.yaml"
    source = {"kind": "dataset", "format": "mfnet", "root": str(layouts["mfnet"]), "classmap": str(bad)}
    config.write_text(
        __import__("yaml").safe_dump(
            {
                "classes": str(tmp_path / "five.yaml"),
                "out_dir": str(tmp_path / "run"),
                "data": {"sources": [source]},
            }
        )
    )
    assert unimrseg_main(["train", "--config", str(config), "--quiet"]) == 2
    err_text = capsys.readouterr().err
    assert f"{bad}: line 6: mapping.car: unknown target class 'truck'" in err_text
    # a class table entry that is not a class: the file and its line too
    (tmp_path / "bad_table.yaml").write_text(FIVE.replace("{name: other,", "{name: ignore,"))
    with pytest.raises(DatasetError, match=r"line 6: .*'ignore'"):
        load_class_table(tmp_path / "bad_table.yaml")


def test_a_20_step_fine_tune_onto_five_classes_learns_and_exports(
    tmp_path: Path, layouts: dict[str, Path]
) -> None:
    """rgb + thermal only (MFNet's layout), the shipped weights, a new 5-class head."""
    (tmp_path / "five.yaml").write_text(FIVE)
    (tmp_path / "map.yaml").write_text(MFNET_TO_FIVE)
    raw = {
        "out_dir": str(tmp_path / "run"),
        "device": "cpu",
        "init": str(SHIPPED),
        "classes": str(tmp_path / "five.yaml"),
        "batch_size": 4,
        "log_every": 1,
        "data": {
            "size": list(SIZE),
            "crop": None,
            "sources": [
                {
                    "kind": "dataset",
                    "format": "mfnet",
                    "root": str(layouts["mfnet"]),
                    "split": "train",
                    "classmap": str(tmp_path / "map.yaml"),
                    "holdout": 2,
                }
            ],
        },
        "stages": {"stage1": {"steps": 0}, "stage2": {"steps": 20, "lr": 2.0e-3}, "stage3": {"steps": 0}},
    }
    cfg = from_dict(raw)
    assert cfg.model.num_classes == 5
    trainer = Trainer(cfg, progress=False)
    assert trainer.init is not None
    assert trainer.init["new_class_head"]
    final = trainer.run()
    with (tmp_path / "run" / "metrics.csv").open() as f:
        loss = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(loss) == 20
    assert np.mean(loss[-5:]) < 0.8 * np.mean(loss[:5]), loss

    meta = read_metadata(final)
    five = load_class_table(tmp_path / "five.yaml")
    assert meta["classes"] == class_table_json(five)
    assert meta["training"]["sources"] == {"mfnet0": ["rgb", "thermal"]}
    # depth, which the data never has, keeps its branch exactly (weights and BatchNorm statistics)
    tuned, shipped = load_model(final)[0], load_model(SHIPPED)[0]
    assert tuned.cfg.encoder == shipped.cfg.encoder  # the shipped checkpoint's layout, from its JSON
    for (a, part), (b, _) in zip(tuned.branch_tensors("depth"), shipped.branch_tensors("depth"), strict=True):
        assert torch.equal(a[part], b[part])
    assert not all(
        torch.equal(a, b)
        for (a, _), (b, _) in zip(tuned.branch_tensors("rgb"), shipped.branch_tensors("rgb"), strict=True)
    )

    from unimrseg_core.runtime.backends import OnnxRuntimeBackend
    from unimrseg_core.runtime.export import export_onnx
    from unimrseg_core.runtime.segmenter import Segmenter

    onnx_path = tmp_path / "model.onnx"
    export_onnx(final, onnx_path, parity_scenes=1)
    segmenter = Segmenter(OnnxRuntimeBackend(onnx_path))
    assert segmenter.backend.metadata["classes"] == class_table_json(five)
    held_out = open_source(cfg.data.sources[0], SIZE, five).held_out()
    assert len(held_out) == 2
    result = segmenter.segment(rgb=held_out[0].rgb, thermal=held_out[0].thermal)
    assert result.class_ids.max() < 5
    assert result.used.name == "rgb+thermal"
