"""Training: config schema, input masking, losses, step batches, every phase through the CLI, resume, DDP."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from torch.nn import functional as F  # noqa: N812

from unimrseg_core.cli import main
from unimrseg_core.data.disk import GeneratedDataset
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.modalities import IGNORE_INDEX, MODALITIES, MODALITY_CHANNELS
from unimrseg_core.model import ModelConfig, UniMRSegNet
from unimrseg_core.model.checkpoint import load_model
from unimrseg_core.train import batches as batches_module
from unimrseg_core.train import losses, masking
from unimrseg_core.train.batches import StepBatches, batches, ensure_pool, pool_dir
from unimrseg_core.train.config import DataConfig, StageConfig, TrainConfig, from_dict, load
from unimrseg_core.train.trainer import LOG_COLUMNS, Trainer

REPO_ROOT = Path(__file__).resolve().parents[3]
TINY_MODEL = {"widths": [8, 8, 8, 8], "depths": [0, 0, 0, 0], "decoder_width": 8, "attention_dim": 4}
STEPS = 2  # per stage
PHASE_PARTS = {  # loss columns each phase fills in metrics.csv
    "stage1": {"recon"},
    "stage2": {"seg", "sal", "contrastive"},
    "stage3": {"seg", "sal", "pred_cons", "feat_cons"},
    "supervised": {"seg", "sal"},
}
ALL_PARTS = set().union(*PHASE_PARTS.values())


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- config


def test_shipped_config_loads_and_lists_every_option() -> None:
    """config/train.yaml validates and names every option of the schema (nothing hidden in code)."""
    path = REPO_ROOT / "config" / "train.yaml"
    cfg = load(path)
    assert cfg.method == "unimrseg"
    assert [name for name, _ in cfg.phases()] == ["stage1", "stage2", "stage3"]
    assert cfg.data.seed != TEST_SEED
    raw = yaml.safe_load(path.read_text())
    schema = cfg.to_dict()
    assert set(raw) == set(schema)
    for section in ("model", "data", "losses", "stages"):
        assert set(raw[section]) == set(schema[section]) - ({"num_classes"} if section == "model" else set())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"bogus": 1}, "unknown option 'bogus'"),
        ({"data": {"bogus": 1}}, r"unknown option\(s\) in data"),
        ({"losses": {"bogus": 1}}, r"unknown option\(s\) in losses"),
        ({"model": {"bogus": 1}}, r"unknown model option\(s\)"),
        ({"stages": {"stage1": {"bogus": 1}}}, r"unknown option\(s\) in stages.stage1"),
        ({"stages": {"stage4": {"steps": 1}}}, "stages must name exactly"),
        ({"data": {"size": [64, 96], "crop": [80, 64]}}, "larger than"),
        ({"data": {"size": [64, 96], "crop": [48, 60]}}, "multiples of 16"),
        ({"data": {"size": [70, 96], "crop": None}}, "multiples of 16"),
        ({"data": {"seed": TEST_SEED}}, "held-out test split"),
        ({"method": "magic"}, "method must be one of"),
        ({"device": "tpu"}, "device must be"),
        ({"data": {"mode": "stream"}}, "data.mode"),
        ({"data": {"loader": "magic"}}, "data.loader must be one of"),
        ({"data": {"pool_device_gib": -1}}, "pool_device_gib"),
        ({"data": {"pool_device_gib": "lots"}}, "pool_device_gib"),
        ({"stages": {s: {"steps": 0} for s in ("stage1", "stage2", "stage3")}}, "no training steps"),
        ({"stages": {"stage1": {"lr": 0}}}, "lr > 0"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"losses": {"patch_ratio": 1.0}}, "patch_ratio"),
    ],
)
def test_invalid_config_is_refused_with_a_clear_message(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_dict(raw)


def test_unreadable_config_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load(listing)


def test_partial_stage_override_keeps_other_defaults(tmp_path: Path) -> None:
    """Overriding one field of one stage keeps that stage's other field and the other stages."""
    path = tmp_path / "t.yaml"
    path.write_text("stages:\n  stage1: {steps: 5}\n")
    cfg = load(path, {"method": "modality-dropout"})
    defaults = TrainConfig().stages
    assert cfg.stages["stage1"] == StageConfig(5, defaults["stage1"].lr)
    assert cfg.stages["stage2"] == defaults["stage2"]
    assert cfg.stages["stage3"] == defaults["stage3"]
    assert cfg.method == "modality-dropout"
    total = 5 + defaults["stage2"].steps + defaults["stage3"].steps
    assert cfg.phases() == [("supervised", StageConfig(total, defaults["stage2"].lr))]


def test_zero_step_stage_is_skipped() -> None:
    cfg = from_dict({"stages": {"stage1": {"steps": 0}}})
    assert [name for name, _ in cfg.phases()] == ["stage2", "stage3"]


# --------------------------------------------------------------------------- masking


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("drop_prob", [0.0, 0.5, 1.0])
def test_keep_k_masks_distribution(drop_prob: float) -> None:
    """Rows are never empty; a dropped row keeps k ~ U{1..3}, so all three survive with
    probability (1 - p) + p / 3; which modality is kept is uniform."""
    n = 6000
    mask = masking.keep_k_masks(n, drop_prob, _gen())
    assert mask.shape == (n, len(MODALITIES))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    kept = mask.sum(1)
    assert (kept >= 1).all()
    p_all = (1 - drop_prob) + drop_prob / 3
    assert abs((kept == 3).float().mean().item() - p_all) < 0.03
    if drop_prob > 0:
        for k in (1, 2):
            assert abs((kept == k).float().mean().item() - drop_prob / 3) < 0.03
        singles = mask[kept == 1].mean(0)  # each modality equally often the survivor
        assert (singles - 1 / 3).abs().max() < 0.05


def test_random_combinations_cover_all_seven_uniformly() -> None:
    mask = masking.random_combinations(7000, _gen())
    assert (mask.sum(1) >= 1).all()
    _, counts = torch.unique(mask, dim=0, return_counts=True)
    assert len(counts) == 7
    assert (counts.float() / 7000 - 1 / 7).abs().max() < 0.02


def test_patch_masks_ratio_alignment_and_shuffling() -> None:
    """~ratio of cells masked, in every modality alike (shuffled masks share one distribution),
    constant on patch x patch cells, independent across modalities."""
    b, h, w, patch, ratio = 400, 64, 96, 16, 0.25
    keep = masking.patch_masks(b, h, w, ratio, patch, _gen())
    assert keep.shape == (b, len(MODALITIES), h, w)
    assert set(keep.unique().tolist()) <= {0.0, 1.0}
    cells = keep.reshape(b, 3, h // patch, patch, w // patch, patch)
    assert torch.equal(cells.amin((3, 5)), cells.amax((3, 5)))  # patch-aligned
    masked = 1.0 - cells[:, :, :, 0, :, 0]
    per_modality = masked.mean((0, 2, 3))
    assert (per_modality - ratio).abs().max() < 0.02
    per_sample = masked.mean((2, 3))  # B, M: each modality's per-sample masked fraction, same histogram
    hist = torch.stack([torch.histc(per_sample[:, m], bins=6, min=0, max=1) for m in range(3)]) / b
    assert (hist - hist.mean(0)).abs().max() < 0.08
    both = (masked[:, 0] * masked[:, 1]).mean().item()  # masks of two modalities overlap by chance only
    assert abs(both - ratio**2) < 0.02


def test_patch_masks_crop_to_sizes_that_are_not_patch_multiples() -> None:
    keep = masking.patch_masks(2, 40, 50, 0.5, 16, _gen())
    assert keep.shape == (2, 3, 40, 50)
    assert torch.equal(keep[:, :, 32:, 48:].amin((2, 3)), keep[:, :, 32:, 48:].amax((2, 3)))


def _images(batch: int = 4, h: int = 32, w: int = 48, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = _gen(seed)
    out = {m: torch.rand(batch, MODALITY_CHANNELS[m], h, w, generator=gen) + 0.1 for m in MODALITIES}
    out["modality_mask"] = torch.ones(batch, 3)
    return out


def test_hybrid_shuffled_masking() -> None:
    """Dropped modalities are all zero (and marked absent); kept ones lose whole patches only."""
    inputs = _images(batch=64)
    out = masking.hybrid_shuffled_masking(inputs, 0.5, 0.3, 16, _gen())
    mask = out["modality_mask"]
    assert (mask.sum(1) >= 1).all()
    assert (mask.sum(1) < 3).any()
    holes = 0
    for i, m in enumerate(MODALITIES):
        absent = mask[:, i] == 0
        assert (out[m][absent] == 0).all()
        zero = (out[m][~absent] == 0).all(1)  # B', H, W pixels zeroed in every channel
        cells = zero.reshape(-1, 2, 16, 3, 16)
        assert torch.equal(cells.amin((2, 4)), cells.amax((2, 4)))
        kept = ~zero.unsqueeze(1).expand_as(out[m][~absent])
        assert torch.equal(out[m][~absent][kept], inputs[m][~absent][kept])
        holes += int(zero.sum())
    assert holes > 0


def test_masking_is_deterministic_per_generator_seed() -> None:
    inputs = _images(batch=16)
    a = masking.hybrid_shuffled_masking(inputs, 0.5, 0.3, 16, _gen(7))
    b = masking.hybrid_shuffled_masking(inputs, 0.5, 0.3, 16, _gen(7))
    c = masking.hybrid_shuffled_masking(inputs, 0.5, 0.3, 16, _gen(8))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.equal(masking.keep_k_masks(50, 0.5, _gen(3)), masking.keep_k_masks(50, 0.5, _gen(3)))
    assert torch.equal(
        masking.patch_masks(3, 32, 32, 0.2, 16, _gen(3)), masking.patch_masks(3, 32, 32, 0.2, 16, _gen(3))
    )


# --------------------------------------------------------------------------- losses


def test_nt_xent_hand_computed_2x2() -> None:
    """z1 = z2 = I (2x2), temperature t: each row sees 1/t for its positive and 0 for the two
    negatives, so the loss is log(2 + e^(1/t)) - 1/t; scaling the embeddings changes nothing."""
    eye = torch.eye(2)
    for t in (1.0, 0.5):
        expected = math.log(2 + math.exp(1 / t)) - 1 / t
        assert losses.nt_xent(eye, eye, t).item() == pytest.approx(expected, rel=1e-6)
        assert losses.nt_xent(3 * eye, 0.5 * eye, t).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_prefers_aligned_pairs() -> None:
    gen = _gen()
    z1 = torch.randn(16, 32, generator=gen)
    z2 = z1 + 0.1 * torch.randn(16, 32, generator=gen)
    shuffled = z2[torch.roll(torch.arange(16), 1)]
    aligned_loss = losses.nt_xent(z1, z2, 0.5)
    assert aligned_loss < losses.nt_xent(z1, shuffled, 0.5)
    assert aligned_loss < math.log(2 * 16 - 1)  # better than chance


def test_segmentation_ignores_ignore_index_pixels() -> None:
    """Logits at IGNORE_INDEX pixels do not change the loss (CE or Dice)."""
    gen = _gen()
    logits = torch.randn(2, 8, 6, 5, generator=gen)
    label = torch.randint(0, 8, (2, 6, 5), generator=gen)
    label[:, :2] = IGNORE_INDEX
    other = logits.clone()
    other[:, :, :2] = torch.randn(2, 8, 2, 5, generator=gen) * 100.0
    for dice in (0.0, 1.0):
        a, b = losses.segmentation(logits, label, dice), losses.segmentation(other, label, dice)
        assert torch.isfinite(a)
        assert a.item() == pytest.approx(b.item(), rel=1e-6)
    good = F.one_hot(label.clamp(max=7), 8).permute(0, 3, 1, 2).float() * 50.0
    assert losses.segmentation(good, label, 1.0).item() < 1e-3  # confident and right: ~0
    assert losses.segmentation(logits, label, 1.0) > losses.segmentation(good, label, 1.0)


def test_saliency_loss_is_zero_for_a_confident_perfect_prediction() -> None:
    target = (torch.rand(2, 1, 8, 8, generator=_gen()) > 0.5).float()
    perfect = (target * 2 - 1) * 30.0
    assert losses.saliency(perfect, target).item() == pytest.approx(0.0, abs=1e-4)
    assert losses.saliency(-perfect, target).item() > 1.0


def test_reconstruction_is_zero_for_a_perfect_reconstruction() -> None:
    inputs = _images(batch=2)
    target = torch.cat([inputs[m] for m in MODALITIES], 1).clamp(0, 1)
    inputs = dict(zip(MODALITIES, target.split([3, 1, 1], 1), strict=True))
    for ssim in (0.0, 0.5):
        assert losses.reconstruction(target, inputs, ssim).item() == pytest.approx(0.0, abs=1e-5)
        assert losses.reconstruction(1.0 - target, inputs, ssim).item() > 0.1


def test_prediction_consistency() -> None:
    """KL part is 0 when student == teacher (what remains is the saliency BCE to its own
    probability, ~0 when it is confident); a different student costs more."""
    gen = _gen()
    seg = torch.randn(2, 8, 4, 4, generator=gen)
    sal = torch.randn(2, 1, 4, 4, generator=gen)
    same = losses.prediction_consistency(seg, sal, seg, sal)
    own_bce = F.binary_cross_entropy_with_logits(sal, torch.sigmoid(sal))
    assert same.item() == pytest.approx(own_bce.item(), abs=1e-6)
    confident = torch.sign(sal) * 30.0
    assert losses.prediction_consistency(seg, confident, seg, confident).item() == pytest.approx(0, abs=1e-5)
    assert losses.prediction_consistency(-seg, sal, seg, sal) > same + 0.1


def test_feature_consistency() -> None:
    feats = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
    assert losses.feature_consistency(feats, [f.clone() for f in feats]).item() == 0.0
    shifted = [feats[0] + 1.0, feats[1]]  # level MSEs 1 and 0 -> mean 0.5
    assert losses.feature_consistency(shifted, feats).item() == pytest.approx(0.5, rel=1e-6)


# --------------------------------------------------------------------------- batches


def _data_config(cache_dir: Path, **over: Any) -> DataConfig:
    kw: dict[str, Any] = {
        "size": (64, 96),
        "crop": (48, 64),
        "scenes": 6,
        "cache_dir": str(cache_dir),
        "workers": 1,
        "loader_workers": 0,
    }
    return DataConfig(**(kw | over))


@pytest.fixture(scope="module")
def pool_cfg(tmp_path_factory: pytest.TempPathFactory) -> DataConfig:
    """A rendered 6-scene pool at 64x96."""
    cfg = _data_config(tmp_path_factory.mktemp("pool"))
    ensure_pool(cfg, progress=False)
    return cfg


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_step_batches_are_a_pure_function_of_seed_phase_step_rank(pool_cfg: DataConfig) -> None:
    data = StepBatches(pool_cfg, 4, phase=0, rank=0, world=2)
    first = data[3]
    assert _equal(first, data[3])
    assert _equal(first, StepBatches(pool_cfg, 4, phase=0, rank=0, world=2)[3])
    assert not _equal(first, StepBatches(pool_cfg, 4, phase=0, rank=1, world=2)[3])
    assert not _equal(first, data[4])
    assert not _equal(first, StepBatches(pool_cfg, 4, phase=1, rank=0, world=2)[3])
    other_seed = _data_config(Path(pool_cfg.cache_dir), seed=2)
    ensure_pool(other_seed, progress=False)
    assert not _equal(first, StepBatches(other_seed, 4, phase=0, rank=0, world=2)[3])


def test_step_batch_shapes_follow_crop(pool_cfg: DataConfig) -> None:
    batch = StepBatches(pool_cfg, 4, phase=0)[0]
    h, w = pool_cfg.crop
    assert batch["rgb"].shape == (4, 3, h, w)
    assert batch["depth"].shape == batch["thermal"].shape == batch["saliency"].shape == (4, 1, h, w)
    assert batch["label"].shape == (4, h, w)
    assert batch["label"].dtype == torch.int64
    assert batch["modality_mask"].shape == (4, 3)
    for k in ("rgb", "depth", "thermal", "saliency", "modality_mask"):
        assert batch[k].dtype == torch.float32
        assert batch[k].min() >= 0
        assert batch[k].max() <= 1
    full = StepBatches(_data_config(Path(pool_cfg.cache_dir), crop=None), 2, phase=0)[0]
    assert full["rgb"].shape == (2, 3, *pool_cfg.size)


def test_batches_iterator_matches_step_batches(pool_cfg: DataConfig) -> None:
    """A resumed loader (start > 0) yields exactly the batches of those steps."""
    got = list(batches(pool_cfg, 2, 1, 2, 4, rank=1, world=2))
    data = StepBatches(pool_cfg, 2, 1, rank=1, world=2)
    assert len(got) == 2
    assert _equal(got[0], data[2])
    assert _equal(got[1], data[3])


def test_on_the_fly_batches_are_pure_too(tmp_path: Path) -> None:
    cfg = _data_config(tmp_path, mode="on_the_fly", crop=(32, 32))
    data = StepBatches(cfg, 2, phase=0, rank=0, world=2)
    assert _equal(data[1], StepBatches(cfg, 2, phase=0, rank=0, world=2)[1])
    assert not _equal(data[1], StepBatches(cfg, 2, phase=0, rank=1, world=2)[1])
    assert data[1]["rgb"].shape == (2, 3, 32, 32)
    assert not list(tmp_path.iterdir())  # nothing cached


def test_ensure_pool_reuses_an_existing_pool(pool_cfg: DataConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    root = pool_dir(pool_cfg)
    meta = root / "metadata.json"
    before = meta.stat().st_mtime_ns

    def render(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the pool was rendered again")

    monkeypatch.setattr(batches_module, "write_dataset", render)
    assert ensure_pool(pool_cfg, progress=False) == root
    assert meta.stat().st_mtime_ns == before
    assert len(GeneratedDataset(root)) == pool_cfg.scenes


def test_ensure_pool_ignores_a_partial_leftover(tmp_path: Path) -> None:
    """A torn render (``.partial``) is never used as a pool: it is discarded and rendered again."""
    cfg = _data_config(tmp_path, scenes=2)
    root = pool_dir(cfg)
    partial = root.with_name(root.name + ".partial")
    partial.mkdir(parents=True)
    (partial / "metadata.json").write_text("{torn")
    (partial / "junk").write_text("x")
    assert ensure_pool(cfg, progress=False) == root
    assert not partial.exists()
    assert not (root / "junk").exists()
    assert len(GeneratedDataset(root)) == 2
    assert json.loads((root / "metadata.json").read_text())["seed"] == cfg.seed


# --------------------------------------------------------------------------- training through the CLI


def _tiny(out_dir: Path, cache_dir: Path, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "seed": 0,
        "out_dir": str(out_dir),
        "device": "cpu",
        "batch_size": 4,
        "log_every": 1,
        "checkpoint_every": 1,
        "model": dict(TINY_MODEL),
        "data": {
            "size": [64, 96],
            "crop": [48, 64],
            "scenes": 8,
            "cache_dir": str(cache_dir),
            "workers": 1,
            "loader_workers": 0,
        },
        "stages": {s: {"steps": STEPS} for s in ("stage1", "stage2", "stage3")},
    }
    return cfg | over


def _write(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def _train(config: Path, *extra: str) -> int:
    return main(["train", "--config", str(config), "--quiet", *extra])


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "metrics.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == LOG_COLUMNS
        return list(reader)


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str) -> list[str]:
    keys = [k for k in a if k.startswith(prefix)]
    assert keys, prefix
    return [k for k in keys if not torch.equal(a[k], b[k])]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenes")


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, Path]:
    """(config, out_dir) of a complete 3-stage run of the tiny config, 2 steps per stage."""
    root = tmp_path_factory.mktemp("full")
    config = _write(root / "tiny.yaml", _tiny(root / "run", cache_dir))
    assert _train(config) == 0
    return config, root / "run"


def test_full_run_outputs_and_metrics(full_run: tuple[Path, Path]) -> None:
    """Exit 0, every output file, one metrics row per step with that phase's finite losses."""
    _, out = full_run
    for name in ("model.pt", "model.json", "state.pt", "curves.png", "metrics.csv"):
        assert (out / name).is_file(), name
    for stage in ("stage1", "stage2", "stage3"):
        assert (out / f"phase_{stage}.pt").is_file()
    rows = _rows(out)
    assert [(r["phase"], int(r["step"])) for r in rows] == [
        (s, i) for s in ("stage1", "stage2", "stage3") for i in range(1, STEPS + 1)
    ]
    for r in rows:
        filled = {k for k in ALL_PARTS if r[k] != ""}
        assert filled == PHASE_PARTS[r["phase"]], r
        for key in ("loss", "lr", *filled):
            assert math.isfinite(float(r[key])), (key, r)
        assert float(r["lr"]) > 0
    net, meta = load_model(out / "model.pt")
    assert net.cfg == ModelConfig.from_dict(TINY_MODEL)
    assert meta["input_size"] == [64, 96]
    training = meta["training"]
    assert training["method"] == "unimrseg"
    assert training["world_size"] == 1
    assert training["ranks_identical"] is True
    assert training["data_seed"] == 1


def test_every_stage_changes_weights_and_stage3_freezes_the_encoder(full_run: tuple[Path, Path]) -> None:
    """Stages 1 and 2 train the encoder; stage 3 leaves encoders and fusion (weights and BatchNorm
    statistics) bit-identical while the adapters and the decoder change."""
    _, out = full_run
    torch.manual_seed(0)  # the trainer's initialisation (config seed 0)
    init = UniMRSegNet(ModelConfig.from_dict(TINY_MODEL)).state_dict()
    s1, s2, s3 = (_state(out / f"phase_{s}.pt") for s in ("stage1", "stage2", "stage3"))
    assert init.keys() == s1.keys() == s2.keys() == s3.keys()
    assert _changed(init, s1, "encoder.")
    assert _changed(init, s1, "decoder.recon.")
    assert _changed(s1, s2, "encoder.")
    assert _changed(s1, s2, "fusions.")
    assert _changed(s1, s2, "decoder.seg.")
    assert any(k.endswith("running_mean") for k in s2 if k.startswith("encoder."))
    assert _changed(s2, s3, "encoder.") == []
    assert _changed(s2, s3, "fusions.") == []
    assert _changed(s2, s3, "adapters.")
    assert _changed(s2, s3, "decoder.seg.")
    assert [k for k in _changed(s2, s3, "decoder.") if k.endswith("running_mean")]
    final = _state(out / "model.pt")
    assert all(torch.equal(final[k], s3[k]) for k in s3)


def test_rerun_of_a_finished_run_trains_nothing(full_run: tuple[Path, Path]) -> None:
    config, out = full_run
    rows = (out / "metrics.csv").read_text()
    phases = {p: p.stat().st_mtime_ns for p in out.glob("phase_*.pt")}
    assert _train(config) == 0
    assert (out / "metrics.csv").read_text() == rows
    assert {p: p.stat().st_mtime_ns for p in out.glob("phase_*.pt")} == phases
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["completed"] == ["stage1", "stage2", "stage3"]
    assert state["phase"] is None


def test_another_config_in_the_same_out_dir_is_refused(
    full_run: tuple[Path, Path], cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = full_run
    config = _write(tmp_path / "other.yaml", _tiny(out, cache_dir, seed=1))
    capsys.readouterr()
    assert _train(config) == 2
    assert "different configuration" in capsys.readouterr().err


def test_stage3_before_stages_1_and_2_is_refused(
    cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write(tmp_path / "tiny.yaml", _tiny(tmp_path / "run", cache_dir))
    capsys.readouterr()
    assert _train(config, "--stage", "stage3") == 2
    err = capsys.readouterr().err
    assert "--stage stage3 needs ['stage1', 'stage2'] first" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "phase_stage3.pt").exists()
    assert not (tmp_path / "run" / "model.pt").exists()


def _interrupt_after_stage1_step1(config: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Train ``config`` until the resume point after stage 1's first step, then stop (Ctrl-C)."""
    save_state = Trainer._save_state

    def interrupting(self: Trainer, optimizer: torch.optim.Optimizer | None) -> None:
        save_state(self, optimizer)
        if self.state["phase"] == "stage1" and self.state["step"] == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_save_state", interrupting)
        assert _train(config) == 130
    state = torch.load(out / "state.pt", weights_only=True)
    assert (state["completed"], state["phase"], state["step"]) == ([], "stage1", 1)
    assert state["optimizer"] is not None


def test_interrupted_run_resumes_to_the_same_model(
    full_run: tuple[Path, Path], cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after stage 1's first step, resumed with ``--stage stage1``, then the full run
    continues with stages 2 and 3: same metrics rows and bit-identical final weights as the
    uninterrupted run (batches and damage are functions of the step, the optimiser is restored)."""
    out = tmp_path / "run"
    config = _write(tmp_path / "tiny.yaml", _tiny(out, cache_dir))
    _interrupt_after_stage1_step1(config, out, monkeypatch)

    assert _train(config, "--stage", "stage1") == 0
    assert (out / "phase_stage1.pt").is_file()
    assert not (out / "phase_stage2.pt").exists()
    assert not (out / "model.pt").exists()

    assert _train(config) == 0
    _, reference = full_run
    mine, theirs = _rows(out), _rows(reference)
    assert [(r["phase"], r["step"]) for r in mine] == [(r["phase"], r["step"]) for r in theirs]
    assert [r["loss"] for r in mine] == [r["loss"] for r in theirs]
    final, expected = _state(out / "model.pt"), _state(reference / "model.pt")
    assert final.keys() == expected.keys()
    assert all(torch.equal(final[k], expected[k]) for k in expected)


def test_a_run_resumes_with_another_input_pipeline(
    full_run: tuple[Path, Path], cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted with the tensor pool, resumed with the DataLoader path (how batches are made is
    not part of a run's identity): stage 1 ends bit-identical to the uninterrupted run's."""
    out = tmp_path / "run"
    raw = _tiny(out, cache_dir)
    _interrupt_after_stage1_step1(_write(tmp_path / "tiny.yaml", raw), out, monkeypatch)
    raw["data"] = raw["data"] | {"loader": "dataloader", "workers": 2}
    assert _train(_write(tmp_path / "other.yaml", raw), "--stage", "stage1") == 0
    _, reference = full_run
    final, expected = _state(out / "phase_stage1.pt"), _state(reference / "phase_stage1.pt")
    assert all(torch.equal(final[k], expected[k]) for k in expected)


def test_the_dataloader_path_trains_the_same_model(full_run: tuple[Path, Path], tmp_path: Path) -> None:
    """``data.loader: dataloader`` (workers decoding PNGs) instead of the default tensor pool: the
    same batches, so on the CPU the same losses and bit-identical weights."""
    config, reference = full_run
    raw = yaml.safe_load(config.read_text())
    raw["data"]["loader"] = "dataloader"
    out = tmp_path / "run"
    assert _train(_write(tmp_path / "dl.yaml", raw | {"out_dir": str(out)})) == 0
    assert [r["loss"] for r in _rows(out)] == [r["loss"] for r in _rows(reference)]
    final, expected = _state(out / "model.pt"), _state(reference / "model.pt")
    assert all(torch.equal(final[k], expected[k]) for k in expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["unimrseg", "complete-only", "modality-dropout"])
def test_training_on_cuda(method: str, full_run: tuple[Path, Path], tmp_path: Path) -> None:
    """``--device cuda``: every phase trains on the GPU, batches cut from the pool there; finite
    losses; UniMRSeg's first loss is the CPU run's up to TF32 rounding (same batch, same damage)."""
    config, reference = full_run
    out = tmp_path / method
    assert _train(config, "--method", method, "--device", "cuda", "--out-dir", str(out)) == 0
    rows = _rows(out)
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    if method == "unimrseg":
        assert float(rows[0]["loss"]) == pytest.approx(float(_rows(reference)[0]["loss"]), rel=1e-2)
    _, meta = load_model(out / "model.pt")
    assert meta["training"]["config"]["device"] == "cuda"


@pytest.mark.parametrize("method", ["complete-only", "modality-dropout"])
def test_baselines_train_one_supervised_phase(
    method: str, full_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A baseline runs one ``supervised`` phase with the stages' summed steps."""
    config, _ = full_run
    out = tmp_path / method
    assert _train(config, "--method", method, "--out-dir", str(out)) == 0
    rows = _rows(out)
    assert [(r["phase"], int(r["step"])) for r in rows] == [
        ("supervised", i) for i in range(1, 3 * STEPS + 1)
    ]
    for r in rows:
        assert {k for k in ALL_PARTS if r[k] != ""} == PHASE_PARTS["supervised"]
        assert math.isfinite(float(r["loss"]))
    assert (out / "phase_supervised.pt").is_file()
    _, meta = load_model(out / "model.pt")
    assert meta["training"]["method"] == method
    capsys.readouterr()
    assert _train(config, "--method", method, "--out-dir", str(tmp_path / "x"), "--stage", "stage1") == 2
    assert "not part of method" in capsys.readouterr().err


# --------------------------------------------------------------------------- DDP


@pytest.mark.slow
def test_ddp_two_processes(cache_dir: Path, tmp_path: Path) -> None:
    """torchrun with 2 gloo processes: exit 0, one log, model.pt whose ranks ended bit-identical."""
    out = tmp_path / "run"
    config = _write(tmp_path / "tiny.yaml", _tiny(out, cache_dir))
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "unimrseg_core.cli"]
    proc = subprocess.run(
        [*cmd, "train", "--config", str(config), "--quiet"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = json.loads((out / "model.json").read_text())
    assert meta["training"]["world_size"] == 2
    assert meta["training"]["ranks_identical"] is True
    rows = _rows(out)  # written by rank 0 only
    assert len(rows) == 3 * STEPS
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    load_model(out / "model.pt")
