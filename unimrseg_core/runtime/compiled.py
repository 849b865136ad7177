"""``compiled`` backend: an AOTInductor package of the checkpoint, built once and kept in the engine cache.

It is the engine we can build and test on every machine (CPU here, CUDA on the
GPU machine), and on a GPU our measured stand-in for TensorRT. It follows the
same cache discipline as the TensorRT backend: the key covers the checkpoint's
sha256, the torch version, the device and its capability, the precision and the
shapes, so an upgrade or another GPU rebuilds instead of loading a stale package,
and the package is loaded only after its sha256 sidecar checks out.

The package keeps the model contract: float32 inputs and outputs in every
precision (the cast to fp16/bf16 happens inside), dynamic batch, fixed H x W.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from unimrseg_core.fingerprint import model_code_fingerprint
from unimrseg_core.modalities import MODALITY_CHANNELS
from unimrseg_core.model.checkpoint import load_model
from unimrseg_core.model.network import INPUT_NAMES, check_input_size
from unimrseg_core.runtime.backends import Feeds
from unimrseg_core.runtime.contract import OUTPUTS, Tensor, check_tensors
from unimrseg_core.runtime.device import device_identity
from unimrseg_core.runtime.engine_cache import EngineCache, EngineKey
from unimrseg_core.runtime.export import example_inputs
from unimrseg_core.runtime.options import ENGINE_PRECISIONS

log = logging.getLogger(__name__)

DTYPES: Final[dict[str, torch.dtype]] = {
    p: {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[p]
    for p in ENGINE_PRECISIONS["compiled"]
}
PACKAGE_SUFFIX: Final = ".pt2"


class CompiledPrecision(torch.nn.Module):
    """Runs the network in ``dtype`` behind float32 inputs and outputs, so the contract never changes."""

    def __init__(self, net: torch.nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net = net.to(dtype)
        self.dtype = dtype

    def forward(
        self, rgb: torch.Tensor, depth: torch.Tensor, thermal: torch.Tensor, modality_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        seg, sal = self.net(*(x.to(self.dtype) for x in (rgb, depth, thermal, modality_mask)))
        return seg.float(), sal.float()


def compiled_key(
    model_sha256: str, device: torch.device, precision: str, max_batch: int, input_size: tuple[int, int]
) -> EngineKey:
    name, capability = device_identity(device)
    return EngineKey(
        model_sha256=model_sha256,
        backend="compiled",
        runtime_version=f"torch {torch.__version__}, model code {model_code_fingerprint()}",
        device_name=name,
        compute_capability=capability,
        precision=precision,
        batch=(1, 1, max_batch),
        input_size=input_size,
    )


def check_precision(precision: str, device: torch.device) -> None:
    if precision not in DTYPES:
        raise ValueError(f"the compiled engine's precision is one of {sorted(DTYPES)}, got {precision!r}")
    if precision != "fp32" and device.type != "cuda":
        raise ValueError(f"{precision} needs a CUDA device; on {device.type} use fp32")


def build_package(
    net: torch.nn.Module, device: torch.device, precision: str, max_batch: int, input_size: tuple[int, int]
) -> bytes:
    """torch.export with a dynamic batch, then AOTInductor; returns the package bytes."""
    module = CompiledPrecision(net, DTYPES[precision]).to(device).eval()
    example, batch = example_inputs(input_size, max_batch, device)
    with torch.inference_mode(False), torch.no_grad():
        program = torch.export.export(
            module, example, dynamic_shapes={name: {0: batch} for name in INPUT_NAMES}
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = torch._inductor.aoti_compile_and_package(
                program, package_path=str(Path(tmp) / f"model{PACKAGE_SUFFIX}")
            )
            return Path(path).read_bytes()


class CompiledBackend:
    name = "compiled"

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        cache_dir: str | Path,
        device: str = "cpu",
        precision: str = "fp32",
        max_batch: int = 4,
        force_update: bool = False,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        self.device = torch.device(device)
        check_precision(precision, self.device)
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        net, meta = load_model(checkpoint)
        if input_size is not None:
            check_input_size(*input_size)
            meta = {**meta, "input_size": list(input_size)}
        self.metadata: dict[str, Any] = {**meta, "checkpoint_sha256": meta["sha256"]}
        self.input_size = (int(meta["input_size"][0]), int(meta["input_size"][1]))
        self.key = compiled_key(meta["sha256"], self.device, precision, max_batch, self.input_size)
        cache = EngineCache(cache_dir, suffix=PACKAGE_SUFFIX)
        found = cache.resolve(self.key, force_update=force_update)
        self.built = found.path is None
        if found.path is None:
            log.info("compiled engine: %s", found.reason)
            start = time.perf_counter()
            package = build_package(net, self.device, precision, max_batch, self.input_size)
            path = cache.store(self.key, package)
            log.info("compiled engine built in %.0f s: %s", time.perf_counter() - start, path)
        else:
            log.info("compiled engine: %s (%s)", found.reason, found.path)
            path = found.path
        self.path = path
        index = self.device.index if self.device.index is not None else -1
        self._run = torch._inductor.aoti_load_package(str(path), device_index=index)
        self._check_outputs()

    def _check_outputs(self) -> None:
        """One run on a zero batch; its outputs must match the contract, or the package is refused."""
        h, w = self.input_size
        feeds = {m: np.zeros((1, c, h, w), np.float32) for m, c in MODALITY_CHANNELS.items()}
        feeds["modality_mask"] = np.ones((1, len(MODALITY_CHANNELS)), np.float32)
        outputs = self.infer(feeds)
        got = [
            Tensor(spec.name, tuple(o.shape), o.dtype.name) for spec, o in zip(OUTPUTS, outputs, strict=True)
        ]
        check_tensors("outputs", got, OUTPUTS, self.input_size)

    def run_device(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs already on ``self.device`` in INPUT_NAMES order: the model alone, no copies."""
        with torch.inference_mode():
            seg, sal = self._run(*args)
        return seg, sal

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        seg, sal = self.run_device(*(torch.from_numpy(feeds[k]).to(self.device) for k in INPUT_NAMES))
        return seg.cpu().numpy(), sal.cpu().numpy()
