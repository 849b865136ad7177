"""ONNX export: the contract, dynamic batch, metadata, parity, and refusals of broken graphs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from unimrseg_core.cli import main
from unimrseg_core.model.checkpoint import sha256_file
from unimrseg_core.runtime.contract import ContractError, read_metadata, validate_onnx
from unimrseg_core.runtime.export import export_onnx, report_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exported(tiny_checkpoint) -> tuple[Path, Path, dict]:
    out = tiny_checkpoint.with_suffix(".onnx")
    report = export_onnx(tiny_checkpoint, out, max_batch=4, parity_scenes=1)
    return tiny_checkpoint, out, report


def test_export_passes_checker_contract_and_parity(exported):
    ckpt, path, report = exported
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    meta = validate_onnx(model)
    assert meta["checkpoint_sha256"] == sha256_file(ckpt)
    assert meta["input_size"] == json.loads(ckpt.with_suffix(".json").read_text())["input_size"]
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
    h, w = validate_onnx(onnx.load(str(path)))["input_size"]
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
    old = renamed.graph.input[0].name
    renamed.graph.input[0].name = "image"  # a valid graph whose input is named otherwise
    for node in renamed.graph.node:
        node.input[:] = ["image" if name == old else name for name in node.input]
    with pytest.raises(ContractError, match="inputs are"):
        validate_onnx(renamed)
    broken = onnx.load(str(path))
    broken.graph.input[0].name = "image"  # nodes still read "rgb": not a valid graph at all
    with pytest.raises(ContractError, match="not a valid ONNX model"):
        validate_onnx(broken)
    del model.metadata_props[:]
    with pytest.raises(ContractError, match="metadata_props"):
        read_metadata(model)


def test_cli_export_bad_checkpoint_exits_2(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_onnxruntime_and_torch_backends_agree_through_the_segmenter(exported):
    from unimrseg_core.data.generator import SceneGenerator
    from unimrseg_core.runtime.segmenter import Segmenter
    from unimrseg_core.runtime.selection import BackendOptions, open_backend

    ckpt, path, _ = exported
    scene = SceneGenerator((64, 96), seed=5).sample(0)
    images = {"rgb": scene.rgb, "thermal": scene.thermal}
    ort_out = Segmenter(open_backend("onnxruntime", BackendOptions(onnx=path))).segment(**images)
    torch_out = Segmenter(open_backend("torch", BackendOptions(checkpoint=ckpt))).segment(**images)
    assert ort_out.used == torch_out.used
    assert (ort_out.class_ids == torch_out.class_ids).mean() > 0.999
    np.testing.assert_allclose(ort_out.saliency, torch_out.saliency, atol=1e-4)
