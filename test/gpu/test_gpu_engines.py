"""GPU engines: the compiled engine in FP16 on CUDA, and TensorRT where it is installed.

Skipped with the reason on machines without a CUDA GPU (``gpu``) or without TensorRT
(``tensorrt``); run on the GPU machine with ``pytest -m gpu test/gpu``.
Accuracy targets (issue 5): FP16 mask agreement >= 99.5 % with eager FP32 and an
mIoU drop <= 0.005 on held-out scenes.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from unimrseg_core.data.tensors import model_inputs
from unimrseg_core.eval.metrics import SegmentationMeter
from unimrseg_core.eval.protocols import drop
from unimrseg_core.model.checkpoint import SHIPPED
from unimrseg_core.runtime.backends import TorchBackend

CUDA = torch.cuda.is_available()
TRT = importlib.util.find_spec("tensorrt") is not None
gpu = pytest.mark.skipif(not CUDA, reason="no CUDA GPU on this machine")
tensorrt = pytest.mark.skipif(not (CUDA and TRT), reason="TensorRT or a CUDA GPU is missing")


@pytest.fixture(scope="module")
def held_out(held_out_scenes) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Model inputs of each held-out scene in its combination, and its label."""
    return [
        (drop({k: v[None] for k, v in model_inputs(sample).items()}, combo), sample.label)
        for sample, combo in held_out_scenes
    ]


def _agreement_and_miou_drop(engine, reference, held_out) -> tuple[float, float]:
    agree, meters = [], (SegmentationMeter(), SegmentationMeter())
    for feeds, label in held_out:
        ids = [b.infer(feeds)[0][0].argmax(0) for b in (engine, reference)]
        agree.append(float((ids[0] == ids[1]).mean()))
        for meter, pred in zip(meters, ids, strict=True):
            meter.update(torch.from_numpy(pred)[None], torch.from_numpy(label.astype(np.int64))[None])
    return float(np.mean(agree)), meters[1].miou() - meters[0].miou()


@pytest.mark.gpu
@gpu
def test_compiled_fp16_matches_fp32_and_is_vetted_once(engine_cache, held_out):
    """Built and smoke-tested in child processes (the AOTInductor load that once segfaulted in the
    node's process), then loaded here; a second open loads the vetted package without a child."""
    from unimrseg_core.runtime.compiled import CompiledBackend

    engine = CompiledBackend(SHIPPED, cache_dir=engine_cache, device="cuda", precision="fp16")
    assert engine.check.passed, engine.check
    agreement, miou_drop = _agreement_and_miou_drop(engine, TorchBackend(SHIPPED, device="cuda"), held_out)
    assert agreement >= 0.995
    assert miou_drop <= 0.005
    again = CompiledBackend(SHIPPED, cache_dir=engine_cache, device="cuda", precision="fp16")
    assert not again.built
    assert again.path == engine.path


@pytest.mark.gpu
@pytest.mark.tensorrt
@tensorrt
def test_tensorrt_fp16_matches_fp32_and_is_cached(tmp_path, held_out):
    from unimrseg_core.runtime.selection import SHIPPED_ONNX
    from unimrseg_core.runtime.tensorrt_backend import TensorRTBackend

    engine = TensorRTBackend(SHIPPED_ONNX, cache_dir=tmp_path, precision="fp16")
    assert engine.built
    agreement, miou_drop = _agreement_and_miou_drop(engine, TorchBackend(SHIPPED, device="cuda"), held_out)
    assert agreement >= 0.995
    assert miou_drop <= 0.005
    assert not TensorRTBackend(SHIPPED_ONNX, cache_dir=tmp_path, precision="fp16").built
    assert TensorRTBackend(SHIPPED_ONNX, cache_dir=tmp_path, precision="fp16", force_update=True).built


@pytest.mark.gpu
@pytest.mark.tensorrt
@tensorrt
def test_tensorrt_engine_with_foreign_bindings_is_refused(tmp_path):
    """An engine under our key (valid sidecar) whose outputs are renamed: a ContractError, no output."""
    import onnx

    from unimrseg_core.runtime.engine_cache import EngineCache
    from unimrseg_core.runtime.engine_check import EngineRefusedError
    from unimrseg_core.runtime.selection import SHIPPED_ONNX
    from unimrseg_core.runtime.tensorrt_backend import TensorRTBackend, build_engine
    from unimrseg_core.runtime.tensorrt_plan import ENGINE_SUFFIX

    good = TensorRTBackend(SHIPPED_ONNX, cache_dir=tmp_path, precision="fp32")
    model = onnx.load(str(SHIPPED_ONNX))
    for node in model.graph.node:
        node.output[:] = ["sal" if o == "saliency" else o for o in node.output]
    model.graph.output[1].name = "sal"
    plan = build_engine(
        model.SerializeToString(),
        precision="fp32",
        batch=good.batch,
        input_size=good.input_size,
        cache_dir=tmp_path,
    )
    EngineCache(tmp_path, suffix=ENGINE_SUFFIX).store(good.key, plan)
    with pytest.raises(EngineRefusedError, match="ContractError: engine outputs are"):
        TensorRTBackend(SHIPPED_ONNX, cache_dir=tmp_path, precision="fp32")
