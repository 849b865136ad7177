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
        self.onnx_path = Path(onnx_path)
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


TORCH_PRECISIONS = ("fp32", "fp16", "bf16")


class TorchBackend:
    name = "torch"

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str = "cpu",
        input_size: tuple[int, int] | None = None,
        precision: str = "fp32",
    ) -> None:
        """``input_size``: run at this H x W instead of the trained size (any multiple of the stride);
        ``precision``: fp16 / bf16 run the network in that dtype on CUDA behind float32 inputs and
        outputs (the model contract never changes); a CPU runs fp32."""
        import torch

        from unimrseg_core.model.checkpoint import load_model
        from unimrseg_core.model.network import check_input_size

        if precision not in TORCH_PRECISIONS:
            raise ValueError(f"precision must be one of {TORCH_PRECISIONS}, got {precision!r}")
        self._torch = torch
        self.device = torch.device(device)
        if precision != "fp32" and self.device.type != "cuda":
            raise ValueError(f"{precision} needs a CUDA device; on {self.device.type} use fp32")
        self.precision = precision
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.net, meta = load_model(checkpoint, device=self.device)
        self.net.to(self.dtype)
        if input_size is not None:
            check_input_size(*input_size)
            meta = {**meta, "input_size": list(input_size)}
        self.metadata = {**meta, "checkpoint_sha256": meta["sha256"], "precision": precision}

    def run_device(self, *args: Any) -> tuple[Any, Any]:
        """Inputs already on ``self.device`` in INPUT_NAMES order: the model alone, no copies;
        float32 outputs in every precision."""
        with self._torch.inference_mode():
            if self.dtype == self._torch.float32:
                return self.net(*args)
            seg, sal = self.net(*(a.to(self.dtype) for a in args))
            return seg.float(), sal.float()

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        seg, sal = self.run_device(*(torch.from_numpy(feeds[k]).to(self.device) for k in INPUT_NAMES))
        return seg.float().cpu().numpy(), sal.float().cpu().numpy()
