"""Inference backends behind one small interface: normalised batch in, (seg_logits, saliency) out.

- ``onnxruntime``: the CPU fast path; the ONNX file is checked against the contract first.
- ``torch``: the checkpoint in eager PyTorch (CPU or CUDA), the reference.
The engine backends live in ``compiled`` and ``tensorrt_backend``; ``selection``
picks one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from unimrseg_core.modalities import INPUT_NAMES, OUTPUT_NAMES

Feeds = dict[str, np.ndarray]


class Backend(Protocol):
    name: str
    metadata: dict[str, Any]  # classes, normalisation, input_size, ...

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        """``feeds``: INPUT_NAMES -> float32 batch; returns seg_logits [B,C,H,W], saliency [B,1,H,W]."""
        ...


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, *, threads: int | None = None, device: str = "cpu") -> None:
        """``threads``: intra-op threads (default: the cores this process may use); ``device``
        ``cuda`` uses ONNX Runtime's CUDA provider when onnxruntime-gpu is installed."""
        import onnxruntime as ort

        from unimrseg_core.runtime.contract import read_onnx

        data, self.metadata = read_onnx(onnx_path)  # the session runs the bytes that were validated
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("device cuda needs onnxruntime-gpu (no CUDAExecutionProvider)")
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(data, options, providers=providers)
        self.providers = self.session.get_providers()

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        seg, sal = self.session.run(list(OUTPUT_NAMES), {k: feeds[k] for k in INPUT_NAMES})
        return seg, sal


class TorchBackend:
    name = "torch"

    def __init__(
        self, checkpoint: str | Path, *, device: str = "cpu", input_size: tuple[int, int] | None = None
    ) -> None:
        """``input_size``: run at this H x W instead of the trained size (any multiple of the stride)."""
        import torch

        from unimrseg_core.model.checkpoint import load_model
        from unimrseg_core.model.network import check_input_size

        self._torch = torch
        self.device = torch.device(device)
        self.net, meta = load_model(checkpoint, device=self.device)
        if input_size is not None:
            check_input_size(*input_size)
            meta = {**meta, "input_size": list(input_size)}
        self.metadata = {**meta, "checkpoint_sha256": meta["sha256"]}

    def run_device(self, *args: Any) -> tuple[Any, Any]:
        """Inputs already on ``self.device`` in INPUT_NAMES order: the model alone, no copies."""
        with self._torch.inference_mode():
            return self.net(*args)

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        seg, sal = self.run_device(*(torch.from_numpy(feeds[k]).to(self.device) for k in INPUT_NAMES))
        return seg.float().cpu().numpy(), sal.float().cpu().numpy()
