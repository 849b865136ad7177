"""The network's contract: I/O, mask semantics, fusion, adapter, budget, checkpoints, export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from unimrseg_core.modalities import COMBINATIONS, MODALITIES, MODALITY_CHANNELS, NUM_CLASSES
from unimrseg_core.model import ModelConfig, UniMRSegNet
from unimrseg_core.model.adapter import ReverseAttentionAdapter
from unimrseg_core.model.checkpoint import (
    CheckpointError,
    load_model,
    metadata_path,
    save_model,
    sha256_file,
)
from unimrseg_core.model.fusion import StageFusion, masked_logits
from unimrseg_core.model.network import INPUT_NAMES, OUTPUT_NAMES, check_input_size

MAX_PARAMS = 5_000_000  # the budget
MAX_MACS = 3.0e9  # at 240x320
SMALL = (32, 48)  # small multiple of 16: fast on 2 CPU cores


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _randomize_batchnorm(net: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine terms, so eval-mode outputs are not degenerate."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)


LAYOUTS = {
    "default": {},
    "shared, attention from stage 1": {"encoder": "shared", "attention_from_stage": 1},
    "separate": {"encoder": "separate"},
}
"""Every encoder layout, and a fusion without attention at the first stage: each must keep the contract."""


@pytest.fixture(scope="module", params=list(LAYOUTS))
def net(request: pytest.FixtureRequest) -> UniMRSegNet:
    """A network of each layout, randomly initialised, in eval mode."""
    torch.manual_seed(0)
    model = UniMRSegNet(ModelConfig.from_dict(LAYOUTS[request.param]))
    _randomize_batchnorm(model)
    return model.eval()


def _inputs(batch: int, height: int, width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {m: torch.rand(batch, MODALITY_CHANNELS[m], height, width, generator=gen) for m in MODALITIES}
    out["modality_mask"] = torch.ones(batch, len(MODALITIES))
    return out


def _run(model: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model(*(inputs[k] for k in INPUT_NAMES))


def _all_combinations_batch(height: int, width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seven rows, row i has combination COMBINATIONS[i]; absent images are zeros (the convention)."""
    inputs = _inputs(len(COMBINATIONS), height, width, seed)
    mask = torch.stack([torch.from_numpy(c.mask) for c in COMBINATIONS])
    inputs["modality_mask"] = mask
    for i, m in enumerate(MODALITIES):
        inputs[m] = inputs[m] * mask[:, i].reshape(-1, 1, 1, 1)
    return inputs


# --------------------------------------------------------------------------- I/O contract


def test_io_names() -> None:
    """Input and output names are the ONNX contract of DESIGN.md, in its order."""
    assert INPUT_NAMES == ("rgb", "depth", "thermal", "modality_mask")
    assert OUTPUT_NAMES == ("seg_logits", "saliency")


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(("height", "width"), [(64, 96), (240, 320)])
def test_output_shapes_dtypes_and_saliency_range(
    net: UniMRSegNet, batch: int, height: int, width: int
) -> None:
    """seg_logits [B,C,H,W] and saliency [B,1,H,W] float32, saliency a probability in [0, 1]."""
    inputs = _inputs(batch, height, width)
    inputs["modality_mask"][0, 1] = 0.0  # a mixed mask is valid input too
    inputs["depth"][0] = 0.0
    seg, sal = _run(net, inputs)
    assert seg.shape == (batch, NUM_CLASSES, height, width)
    assert sal.shape == (batch, 1, height, width)
    assert seg.dtype == sal.dtype == torch.float32
    assert torch.isfinite(seg).all()
    assert sal.min() >= 0.0
    assert sal.max() <= 1.0


@pytest.mark.parametrize(("height", "width"), [(63, 96), (64, 100), (8, 96), (0, 96), (64, -16)])
def test_check_input_size_refuses_non_multiples_of_16(height: int, width: int) -> None:
    """H and W must be positive multiples of 16; the message says so."""
    with pytest.raises(ValueError, match="multiples of 16"):
        check_input_size(height, width)


def test_check_input_size_accepts_multiples_of_16() -> None:
    for h, w in ((16, 16), (64, 96), (240, 320), (480, 640)):
        check_input_size(h, w)


# --------------------------------------------------------------------------- mask semantics


@pytest.mark.parametrize("fill", ["random", "large", "inf", "nan"])
def test_absent_inputs_cannot_change_outputs(net: UniMRSegNet, fill: str) -> None:
    """For all 7 combinations, whatever the absent images hold, both outputs are bit-identical."""
    h, w = SMALL
    inputs = _all_combinations_batch(h, w)
    seg, sal = _run(net, inputs)
    mask = inputs["modality_mask"]
    gen = torch.Generator().manual_seed(1)
    damaged = dict(inputs)
    for i, m in enumerate(MODALITIES):
        absent = (mask[:, i] == 0).reshape(-1, 1, 1, 1)
        junk = {
            "random": torch.rand(inputs[m].shape, generator=gen) * 10.0 - 5.0,
            "large": torch.full_like(inputs[m], 1.0e30),
            "inf": torch.full_like(inputs[m], float("inf")),
            "nan": torch.full_like(inputs[m], float("nan")),
        }[fill]
        damaged[m] = torch.where(absent, junk, inputs[m])
    seg2, sal2 = _run(net, damaged)
    assert torch.equal(seg, seg2)
    assert torch.equal(sal, sal2)


@pytest.mark.parametrize("modality", MODALITIES)
def test_present_modality_changes_outputs(net: UniMRSegNet, modality: str) -> None:
    """Changing a present modality's image changes both outputs of every row where it is present."""
    h, w = SMALL
    inputs = _all_combinations_batch(h, w)
    seg, sal = _run(net, inputs)
    i = MODALITIES.index(modality)
    present = inputs["modality_mask"][:, i] > 0.5
    changed = dict(inputs)
    changed[modality] = torch.where(present.reshape(-1, 1, 1, 1), 1.0 - inputs[modality], inputs[modality])
    seg2, sal2 = _run(net, changed)
    for row in range(len(COMBINATIONS)):
        if present[row]:
            assert not torch.equal(seg[row], seg2[row]), COMBINATIONS[row].name
            assert not torch.equal(sal[row], sal2[row]), COMBINATIONS[row].name
        else:  # a row without this modality does not see the change at all
            assert torch.equal(seg[row], seg2[row])
            assert torch.equal(sal[row], sal2[row])


def test_mask_not_zeros_tells_the_network() -> None:
    """A present modality whose image happens to be all zeros is not treated as absent."""
    torch.manual_seed(0)
    model = UniMRSegNet(ModelConfig(widths=(8, 8, 8, 8), depths=(0, 0, 0, 0))).eval()
    _randomize_batchnorm(model)
    inputs = _inputs(1, *SMALL)
    inputs["thermal"].zero_()
    seg_present, _ = _run(model, inputs)
    inputs["modality_mask"] = torch.tensor([[1.0, 1.0, 0.0]])
    seg_absent, _ = _run(model, inputs)
    assert not torch.equal(seg_present, seg_absent)


def test_rows_are_independent(net: UniMRSegNet) -> None:
    """Row i's outputs do not depend on the other rows (their images or masks) in a mixed batch."""
    h, w = SMALL
    inputs = _all_combinations_batch(h, w)
    seg, sal = _run(net, inputs)
    # same batch size, every other row replaced (images and masks): row 3 is bit-identical
    other = _all_combinations_batch(h, w, seed=5)
    other["modality_mask"] = other["modality_mask"].flip(0)
    for k in INPUT_NAMES:
        other[k][3] = inputs[k][3]
    seg2, sal2 = _run(net, other)
    assert torch.equal(seg2[3], seg[3])
    assert torch.equal(sal2[3], sal[3])
    assert not torch.equal(seg2[0], seg[0])
    # row alone: equal up to float rounding (a different batch size may take another kernel path)
    for row in range(len(COMBINATIONS)):
        alone = {k: v[row : row + 1] for k, v in inputs.items()}
        seg1, sal1 = _run(net, alone)
        torch.testing.assert_close(seg1[0], seg[row], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(sal1[0], sal[row], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- fusion


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_masked_softmax_gives_absent_modalities_exactly_zero_weight(dtype: torch.dtype) -> None:
    """masked_logits + softmax: weight exactly 0 on absent entries, the present ones sum to 1, no NaN."""
    gen = torch.Generator().manual_seed(0)
    masks = torch.stack([torch.from_numpy(c.mask) for c in COMBINATIONS])  # B=7, M=3
    logits = (torch.randn(7, 3, 5, 4, generator=gen) * 30.0).to(dtype)  # B, M, H, W
    try:
        weights = torch.softmax(masked_logits(logits, masks.to(dtype)[:, :, None, None], 1), dim=1)
    except RuntimeError as exc:  # pragma: no cover - depends on the CPU build
        pytest.skip(f"softmax in {dtype} unsupported on this CPU: {exc}")
    assert weights.dtype == dtype
    assert torch.isfinite(weights).all()
    absent = (masks == 0)[:, :, None, None].expand_as(weights)
    assert (weights[absent] == 0).all()
    torch.testing.assert_close(weights.float().sum(1), torch.ones(7, 5, 4), rtol=0, atol=1e-2)


def test_fusion_never_attends_to_absent_modalities(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every softmax inside a fusion stage puts exactly 0 on absent modalities, and what absent
    branches hold (their features) cannot change the present branches or the fused map."""
    torch.manual_seed(0)
    fusion = StageFusion(8, 4).eval()
    gen = torch.Generator().manual_seed(0)
    mask = torch.stack([torch.from_numpy(c.mask) for c in COMBINATIONS])
    feats = [torch.randn(7, 8, 4, 6, generator=gen) for _ in MODALITIES]

    recorded: list[tuple[torch.Tensor, int]] = []
    softmax = torch.softmax

    def spy(x: torch.Tensor, dim: int, *args, **kwargs) -> torch.Tensor:
        out = softmax(x, dim, *args, **kwargs)
        recorded.append((out, dim))
        return out

    monkeypatch.setattr(torch, "softmax", spy)
    with torch.no_grad():
        out_feats, fused = fusion(torch.stack(feats, 1), mask)
    monkeypatch.undo()
    assert len(recorded) == 2  # the attention's and the weighting's
    for weights, dim in recorded:
        per_modality = weights.movedim(dim, 1)  # B, M, ...
        assert per_modality.shape[:2] == mask.shape
        assert (per_modality[mask == 0] == 0).all()

    changed = [
        torch.where((mask[:, i] == 0).reshape(-1, 1, 1, 1), f * 50.0 + 3.0, f) for i, f in enumerate(feats)
    ]
    with torch.no_grad():
        out_feats2, fused2 = fusion(torch.stack(changed, 1), mask)
    assert torch.equal(fused, fused2)
    for i, (a, b) in enumerate(zip(out_feats.unbind(1), out_feats2.unbind(1), strict=True)):
        assert torch.equal(a, b)
        assert (a[mask[:, i] == 0] == 0).all()  # absent branches come out zero


# --------------------------------------------------------------------------- adapter


def test_adapter_is_identity_without_correction() -> None:
    """With the correction conv's weights and bias at zero, the adapter returns its input."""
    adapter = ReverseAttentionAdapter(6).eval()
    with torch.no_grad():
        adapter.correct[-1].weight.zero_()
        adapter.correct[-1].bias.zero_()
    x = torch.randn(2, 6, 5, 7)
    with torch.no_grad():
        assert torch.equal(adapter(x), x)


def test_adapter_reverse_attention_formula() -> None:
    """out = x + correct((1 - sigmoid(mean_c x)) * x): regions the features already light up
    (high channel mean) get almost nothing, low ones the full correction."""
    adapter = ReverseAttentionAdapter(2)
    adapter.correct = nn.Identity()  # expose (1 - a) * x
    x = torch.tensor([[1.0, 20.0, -20.0, 4.0], [-1.0, 20.0, -20.0, 0.0]]).reshape(1, 2, 1, 4)
    a = torch.sigmoid(torch.tensor([0.0, 20.0, -20.0, 2.0]))
    expected = x + (1.0 - a).reshape(1, 1, 1, 4) * x
    out = adapter(x)
    torch.testing.assert_close(out, expected)
    # by hand: mean 0 -> a = 1/2 -> 1.5 x; mean 20 -> a ~ 1 -> x; mean -20 -> a ~ 0 -> 2 x
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([1.5, -1.5]))
    torch.testing.assert_close(out[0, :, 0, 1], torch.tensor([20.0, 20.0]))
    torch.testing.assert_close(out[0, :, 0, 2], torch.tensor([-40.0, -40.0]))


# --------------------------------------------------------------------------- budget


def test_parameter_and_mac_budget() -> None:
    """Default network: <= 5 M parameters and <= 3 GMACs at 240x320 (FlopCounterMode counts
    2 FLOPs per multiply-add; shapes alone decide it, so it runs on the meta device)."""
    assert sum(p.numel() for p in UniMRSegNet().parameters()) <= MAX_PARAMS
    with torch.device("meta"):
        model = UniMRSegNet().eval()
        inputs = _inputs(1, 240, 320)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*(inputs[k] for k in INPUT_NAMES))
    macs = counter.get_total_flops() / 2
    assert 0 < macs <= MAX_MACS


# --------------------------------------------------------------------------- checkpoints


@pytest.fixture
def saved(net: UniMRSegNet, tmp_path: Path) -> Path:
    return save_model(net, tmp_path / "model.pt", input_size=(64, 96), extra={"note": "test"})


def test_checkpoint_round_trip(net: UniMRSegNet, saved: Path) -> None:
    """save_model + load_model: eval mode, same config, bit-identical outputs, metadata written."""
    loaded, meta = load_model(saved)
    assert not loaded.training
    assert loaded.cfg == net.cfg
    assert meta["input_size"] == [64, 96]
    assert meta["note"] == "test"
    assert meta["sha256"] == sha256_file(saved)
    assert meta["parameters"] == sum(p.numel() for p in net.parameters())
    inputs = _all_combinations_batch(*SMALL)
    for a, b in zip(_run(net, inputs), _run(loaded, inputs), strict=True):
        assert torch.equal(a, b)


def test_save_refuses_bad_input_size(net: UniMRSegNet, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiples"):
        save_model(net, tmp_path / "m.pt", input_size=(60, 96))


def test_checkpoint_with_a_flipped_byte_is_refused(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_model(saved)


def test_checkpoint_without_metadata_is_refused(saved: Path) -> None:
    metadata_path(saved).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_model(saved)


def test_missing_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such"):
        load_model(tmp_path / "nothing.pt")


def test_checkpoint_whose_class_table_does_not_fit_its_outputs_is_refused(saved: Path) -> None:
    """A model's class table travels with it (a fine-tuned model's differs from ours), but it
    must name every output channel, and be a table (a malformed one is refused too)."""
    meta_file = metadata_path(saved)
    meta = json.loads(meta_file.read_text())
    meta["classes"] = meta["classes"][:-1]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="classes name 7 of 8 outputs"):
        load_model(saved)
    meta["classes"] = [{"id": 0, "name": "ignore", "color": [0, 0, 0]}] * 8
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="classes"):
        load_model(saved)


def test_checkpoint_loading_never_unpickles_objects(net: UniMRSegNet, saved: Path, tmp_path: Path) -> None:
    """A .pt holding an arbitrary object (with a matching sha256) is refused, and its code never runs."""
    marker = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    state = dict(net.state_dict())
    state["payload"] = Payload()  # type: ignore[assignment]
    torch.save(state, saved)
    meta_file = metadata_path(saved)
    meta = json.loads(meta_file.read_text())
    meta["sha256"] = sha256_file(saved)
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError):
        load_model(saved)
    assert not marker.exists()


# --------------------------------------------------------------------------- export


def test_torch_export(net: UniMRSegNet) -> None:
    """torch.export traces the default network (the route to ONNX / AOTInductor) and matches eager."""
    inputs = _all_combinations_batch(64, 96)
    args = tuple(inputs[k] for k in INPUT_NAMES)
    exported = torch.export.export(net, args)
    with torch.no_grad():
        seg, sal = exported.module()(*args)
    ref_seg, ref_sal = _run(net, inputs)
    torch.testing.assert_close(seg, ref_seg, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sal, ref_sal, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- encoder layouts


@pytest.mark.parametrize("encoder", ["grouped", "shared", "separate"])
def test_branch_tensors_are_exactly_one_modalitys_branch(encoder: str) -> None:
    """Changing every tensor slice ``branch_tensors("depth")`` names changes nothing while depth is
    absent, and changes the result when it is present: the slices are depth's, and all of it."""
    torch.manual_seed(0)
    net = UniMRSegNet(ModelConfig(encoder=encoder)).eval()
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.rand(1, c, 64, 64, generator=gen) for c in (3, 1, 1)]
    without_depth, with_all = torch.tensor([[1.0, 0.0, 1.0]]), torch.ones(1, 3)
    with torch.no_grad():
        before = [net(*inputs, mask)[0] for mask in (without_depth, with_all)]
        for tensor, part in net.branch_tensors("depth"):
            tensor[part] = tensor[part] * 1.5 + 0.1
        after = [net(*inputs, mask)[0] for mask in (without_depth, with_all)]
    assert torch.equal(before[0], after[0])
    assert not torch.allclose(before[1], after[1])


def test_the_grouped_encoder_has_a_third_of_the_layers() -> None:
    """The same sizes in one grouped operator per layer: about a third of the convolutions."""
    convs = {
        e: sum(
            isinstance(m, torch.nn.Conv2d)
            for m in UniMRSegNet(ModelConfig(encoder=e)).encoder_modules()[0].modules()
        )
        for e in ("grouped", "separate")
    }
    assert convs["grouped"] * 3 == convs["separate"]
