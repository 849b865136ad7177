"""ONNX export: the contract, dynamic batch, metadata, parity, and refusals of broken graphs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from unimrseg_core.cli import main
from unimrseg_core.model import ModelConfig, UniMRSegNet
from unimrseg_core.model.checkpoint import save_model, sha256_file
from unimrseg_core.runtime.contract import ContractError, read_metadata, validate_onnx
from unimrseg_core.runtime.export import export_onnx, report_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SIZE = (32, 48)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    net = UniMRSegNet(ModelConfig(widths=(8, 8, 8, 8), depths=(1, 0, 0, 0), decoder_width=8, attention_dim=4))
    ckpt = save_model(net.eval(), root / "tiny.pt", input_size=SIZE)
    report = export_onnx(ckpt, root / "tiny.onnx", max_batch=4, parity_scenes=1)
    return ckpt, root / "tiny.onnx", report


def test_export_passes_checker_contract_and_parity(exported):
    ckpt, path, report = exported
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    meta = validate_onnx(model)
    assert meta["checkpoint_sha256"] == sha256_file(ckpt)
    assert meta["input_size"] == list(SIZE)
    assert [c["name"] for c in meta["classes"]][:2] == ["background", "ground"]
    assert model.opset_import[0].version >= 18
    parity = report["parity"]
    assert parity["combinations"] == 7
    assert parity["max_abs_logit_diff"] < 1e-3
    assert parity["min_label_agreement"] >= 0.999
    assert json.loads(report_path(path).read_text()) == report


@pytest.mark.parametrize("batch", [1, 3])
def test_dynamic_batch_and_mask_semantics_survive_export(exported, batch):
    _, path, _ = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(batch)
    h, w = SIZE
    feeds = {
        "rgb": rng.random((batch, 3, h, w), dtype=np.float32),
        "depth": rng.random((batch, 1, h, w), dtype=np.float32),
        "thermal": rng.random((batch, 1, h, w), dtype=np.float32),
        "modality_mask": np.tile(np.array([[1, 0, 1]], np.float32), (batch, 1)),
    }
    seg, sal = session.run(None, feeds)
    assert seg.shape == (batch, 8, h, w)
    assert sal.shape == (batch, 1, h, w)
    assert sal.min() >= 0
    assert sal.max() <= 1
    feeds["depth"] = np.full_like(feeds["depth"], 1e6)  # absent: must not matter
    seg2, sal2 = session.run(None, feeds)
    np.testing.assert_array_equal(seg, seg2)
    np.testing.assert_array_equal(sal, sal2)


def test_contract_refuses_renamed_input_and_missing_metadata(exported):
    _, path, _ = exported
    model = onnx.load(str(path))
    renamed = onnx.load(str(path))
    renamed.graph.input[0].name = "image"
    with pytest.raises(ContractError, match="inputs are"):
        validate_onnx(renamed)
    del model.metadata_props[:]
    with pytest.raises(ContractError, match="metadata_props"):
        read_metadata(model)


def test_cli_export_bad_checkpoint_exits_2(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_onnxruntime_and_torch_backends_agree_through_the_segmenter(exported):
    from unimrseg_core.data.generator import SceneGenerator
    from unimrseg_core.runtime.segmenter import Segmenter, open_backend

    ckpt, path, _ = exported
    scene = SceneGenerator((64, 96), seed=5).sample(0)
    ort_out = Segmenter(open_backend(path)).segment(rgb=scene.rgb, thermal=scene.thermal)
    torch_out = Segmenter(open_backend(ckpt)).segment(rgb=scene.rgb, thermal=scene.thermal)
    assert ort_out.used == torch_out.used
    assert (ort_out.class_ids == torch_out.class_ids).mean() > 0.999
    np.testing.assert_allclose(ort_out.saliency, torch_out.saliency, atol=1e-4)
