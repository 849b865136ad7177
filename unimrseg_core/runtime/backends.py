"""Inference backends behind one small interface: normalised batch in, (seg_logits, saliency) out.

- ``onnxruntime``: the CPU fast path; the ONNX file is checked against the contract first.
- ``torch``: the checkpoint in eager PyTorch (CPU or CUDA), the reference.
TensorRT and the torch-compiled engine join in part 3.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from unimrseg_core.model.network import INPUT_NAMES, OUTPUT_NAMES

Feeds = dict[str, np.ndarray]


class Backend(Protocol):
    name: str
    metadata: dict[str, Any]  # classes, normalisation, input_size, ...

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        """``feeds``: INPUT_NAMES -> float32 batch; returns seg_logits [B,C,H,W], saliency [B,1,H,W]."""
        ...


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, *, threads: int | None = None) -> None:
        import onnx
        import onnxruntime as ort

        from unimrseg_core.runtime.contract import validate_onnx

        path = Path(onnx_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such ONNX model")
        self.metadata = validate_onnx(onnx.load(str(path), load_external_data=False))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        seg, sal = self.session.run(list(OUTPUT_NAMES), {k: feeds[k] for k in INPUT_NAMES})
        return seg, sal


class TorchBackend:
    name = "torch"

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu") -> None:
        import torch

        from unimrseg_core.model.checkpoint import load_model

        self._torch = torch
        self.device = torch.device(device)
        self.net, meta = load_model(checkpoint, device=self.device)
        self.metadata = {**meta, "checkpoint_sha256": meta["sha256"]}

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            args = [torch.from_numpy(feeds[k]).to(self.device) for k in INPUT_NAMES]
            seg, sal = self.net(*args)
        return seg.float().cpu().numpy(), sal.float().cpu().numpy()
