"""CUDA graphs and device stages on a GPU: camera arrays in, the same masks as eager fp32 out.

Targets (issue 14): >= 99.5 % of pixels agree with eager fp32 and the mIoU drops by at most
0.005 on held-out scenes, for torch in fp32, fp16 and bf16 under CUDA graphs, and for the
compiled engine under CUDA graphs. Run on the GPU machine with ``pytest -m gpu test/gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unimrseg_core.eval.metrics import SegmentationMeter
from unimrseg_core.model.checkpoint import SHIPPED
from unimrseg_core.runtime.backends import TorchBackend
from unimrseg_core.runtime.segmenter import Segmenter

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine"),
]
SIZES = ((240, 320), (480, 640))


@pytest.fixture(scope="module")
def held_out(held_out_scenes) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Camera arrays of each held-out scene (the modalities of its combination) and its label."""
    return [
        ({m: getattr(sample, m) for m in combo.modalities}, sample.label) for sample, combo in held_out_scenes
    ]


def _compare(segmenter: Segmenter, reference: Segmenter, held_out) -> tuple[float, float]:
    agree, meters = [], (SegmentationMeter(), SegmentationMeter())
    for images, label in held_out:
        ids = [s.segment(**images).class_ids for s in (segmenter, reference)]
        agree.append(float((ids[0] == ids[1]).mean()))
        for meter, pred in zip(meters, ids, strict=True):
            meter.update(
                torch.from_numpy(pred.astype(np.int64))[None], torch.from_numpy(label.astype(np.int64))[None]
            )
    return float(np.mean(agree)), meters[1].miou() - meters[0].miou()


@pytest.fixture(scope="module")
def eager_fp32() -> Segmenter:
    """The reference: eager fp32 on the GPU, host stages (the path every other test trusts)."""
    return Segmenter(TorchBackend(SHIPPED, device="cuda"), stages="host")


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_torch_under_cuda_graphs_matches_eager_fp32(precision, held_out, eager_fp32):
    backend = TorchBackend(SHIPPED, device="cuda", precision=precision)
    graphed = Segmenter(backend, cuda_graphs=True)
    agreement, miou_drop = _compare(graphed, eager_fp32, held_out)
    assert agreement >= 0.995, agreement
    assert miou_drop <= 0.005, miou_drop
    stages = graphed.device_stages(backend)
    assert stages is not None
    assert stages.graphs is not None
    assert stages.graphs.captures == len({tuple(sorted(i)) for i, _ in held_out})  # one per shape key


def test_a_new_shape_captures_a_new_graph_and_old_ones_replay(held_out):
    backend = TorchBackend(SHIPPED, device="cuda")
    graphed, eager = Segmenter(backend), Segmenter(backend, cuda_graphs=False)
    images, _ = held_out[6]  # all three
    first = graphed.segment(**images)
    for size in SIZES:
        a = graphed.segment(**images, output_size=size)
        b = eager.segment(**images, output_size=size)
        assert float((a.class_ids == b.class_ids).mean()) >= 0.999
    again = graphed.segment(**images)
    np.testing.assert_array_equal(again.class_ids, first.class_ids)
    assert graphed.device_stages(backend).graphs.captures == 1 + len(SIZES) - 1  # 240x320 was first


def test_compiled_under_cuda_graphs_matches_eager_fp32(engine_cache, held_out, eager_fp32):
    from unimrseg_core.runtime.compiled import CompiledBackend

    engine = CompiledBackend(SHIPPED, cache_dir=engine_cache, device="cuda", precision="fp16")
    agreement, miou_drop = _compare(Segmenter(engine, cuda_graphs=True), eager_fp32, held_out)
    assert agreement >= 0.995, agreement
    assert miou_drop <= 0.005, miou_drop
