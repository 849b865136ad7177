"""``compiled`` backend: an AOTInductor package of the checkpoint, built once and kept in the engine cache.

It is the engine we can build and test on every machine (CPU here, CUDA on the
GPU machine), and on a GPU our measured stand-in for TensorRT. It follows the
same cache discipline as the TensorRT backend: the key covers the checkpoint's
sha256, the torch version, the device and its capability, the precision and the
shapes, so an upgrade or another GPU rebuilds instead of loading a stale package,
and the package is loaded only after its sha256 sidecar checks out.

The package is built, loaded and run once in child processes before this process loads
it (``engine_check``): an AOTInductor package can segfault on load (seen with an fp16
CUDA package on an H200), and the verdict in the sidecar makes the node refuse it and
fall back instead of dying. The reference is the checkpoint in eager fp32 on the CPU.

The package keeps the model contract: float32 inputs and outputs in every
precision (the cast to fp16/bf16 happens inside), dynamic batch, fixed H x W.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from unimrseg_core.fingerprint import model_code_fingerprint
from unimrseg_core.modalities import MODALITY_CHANNELS
from unimrseg_core.model.checkpoint import load_model
from unimrseg_core.model.network import INPUT_NAMES, check_input_size
from unimrseg_core.runtime.backends import Feeds
from unimrseg_core.runtime.contract import Tensor, check_tensors, outputs_of
from unimrseg_core.runtime.device import device_identity
from unimrseg_core.runtime.engine_cache import EngineCache, EngineKey
from unimrseg_core.runtime.engine_check import CheckLimits, EngineJob, SmokeTest, tolerance_for, vetted_engine
from unimrseg_core.runtime.export import example_inputs
from unimrseg_core.runtime.options import ENGINE_PRECISIONS, BackendOptions

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


def load_package(path: Path, device: torch.device) -> Callable[..., Any]:
    """``aoti_load_package`` on ``device``'s real index.

    ``device_index=-1`` ("cuda" without an index) leaves the package to find its device at
    run time; an explicit index ties it to the GPU the cache key was made for (the known
    AOTInductor segfaults involve a device other than the one expected, pytorch #141042).
    """
    index = -1
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
    return torch._inductor.aoti_load_package(str(path), device_index=index)


def infer_package(
    run: Callable[..., Any], device: torch.device, feeds: Feeds
) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        seg, sal = run(*(torch.from_numpy(feeds[k]).to(device) for k in INPUT_NAMES))
    return seg.cpu().numpy(), sal.cpu().numpy()


def child_build(args: dict[str, Any]) -> bytes:
    """``engine_child``'s build step: the package for ``compiled_job``'s arguments."""
    net, _ = load_model(args["checkpoint"])
    h, w = args["input_size"]
    return build_package(net, torch.device(args["device"]), args["precision"], args["max_batch"], (h, w))


def child_load(path: Path, args: dict[str, Any]) -> Callable[[Feeds], tuple[np.ndarray, np.ndarray]]:
    """``engine_child``'s check step: load the package, return its numpy inference."""
    device = torch.device(args["device"])
    run = load_package(path, device)
    return lambda feeds: infer_package(run, device, feeds)


def compiled_job(
    checkpoint: Path, device: torch.device, precision: str, max_batch: int, input_size: tuple[int, int]
) -> EngineJob:
    args = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "device": str(device),
        "precision": precision,
        "max_batch": max_batch,
        "input_size": list(input_size),
    }
    return EngineJob("compiled", f"{__name__}:child_build", f"{__name__}:child_load", args)


def eager_reference(net: torch.nn.Module) -> Callable[[Feeds], tuple[np.ndarray, np.ndarray]]:
    """The checkpoint in eager fp32 on the CPU: what every compiled precision must agree with."""
    return lambda feeds: infer_package(net, torch.device("cpu"), feeds)


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
        build_timeout_s: float = BackendOptions.engine_build_timeout_s,
        check_timeout_s: float = BackendOptions.engine_check_timeout_s,
    ) -> None:
        """Raises ``EngineRefusedError`` when the package fails its build or smoke test (now or before)."""
        self.device = torch.device(device)
        check_precision(precision, self.device)
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        limits = CheckLimits(build_timeout_s, check_timeout_s)
        net, meta = load_model(checkpoint)
        if input_size is not None:
            check_input_size(*input_size)
            meta = {**meta, "input_size": list(input_size)}
        self.metadata: dict[str, Any] = {**meta, "checkpoint_sha256": meta["sha256"]}
        self.input_size = (int(meta["input_size"][0]), int(meta["input_size"][1]))
        self.key = compiled_key(meta["sha256"], self.device, precision, max_batch, self.input_size)
        smoke = SmokeTest(
            self.input_size, 2, eager_reference(net), "eager torch fp32 (cpu)", tolerance_for(precision)
        )
        vetted = vetted_engine(
            EngineCache(cache_dir, suffix=PACKAGE_SUFFIX),
            self.key,
            compiled_job(Path(checkpoint), self.device, precision, max_batch, self.input_size),
            smoke,
            limits=limits,
            force_update=force_update,
        )
        self.path, self.built, self.check = vetted.path, vetted.built, vetted.check
        self._run = load_package(self.path, self.device)
        self._check_outputs()

    def _check_outputs(self) -> None:
        """One run on a zero batch; its outputs must match the contract, or the package is refused."""
        h, w = self.input_size
        feeds = {m: np.zeros((1, c, h, w), np.float32) for m, c in MODALITY_CHANNELS.items()}
        feeds["modality_mask"] = np.ones((1, len(MODALITY_CHANNELS)), np.float32)
        outputs = self.infer(feeds)
        specs = outputs_of(self.metadata)
        got = [Tensor(s.name, tuple(o.shape), o.dtype.name) for s, o in zip(specs, outputs, strict=True)]
        check_tensors("outputs", got, specs, self.input_size)

    def run_device(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs already on ``self.device`` in INPUT_NAMES order: the model alone, no copies."""
        with torch.inference_mode():
            seg, sal = self._run(*args)
        return seg, sal

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        return infer_package(self._run, self.device, feeds)
