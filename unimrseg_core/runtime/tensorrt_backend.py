"""``tensorrt`` backend: the TensorRT calls, kept thin and as TensorRT's Python API documents them.

TensorRT comes from the robot (JetPack on a Jetson, NVIDIA's packages on a
desktop); it is imported only here, lazily. Every decision (cache key, profile,
binding check, calibration data) is in ``tensorrt_plan`` and tested without
TensorRT. Device memory and the CUDA stream come from torch.cuda, so no extra
CUDA binding package is needed.

Flow: the ONNX is validated against the contract -> the engine cache is asked
for an engine with this exact key (ONNX sha256, TensorRT version, GPU name and
compute capability, precision, batch profile, H x W) -> on a miss (or
``force_update``) the engine is built and stored with its sha256 sidecar -> the
engine is deserialised and its I/O tensors are checked against the contract
before the first inference.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from unimrseg_core.modalities import INPUT_NAMES
from unimrseg_core.runtime.backends import Feeds
from unimrseg_core.runtime.contract import OUTPUTS, read_onnx
from unimrseg_core.runtime.device import device_identity
from unimrseg_core.runtime.engine_cache import EngineCache, Lookup, atomic_write
from unimrseg_core.runtime.tensorrt_plan import (
    ENGINE_SUFFIX,
    Binding,
    calibration_feeds,
    check_bindings,
    check_engine_options,
    engine_key,
    profile_shapes,
)

log = logging.getLogger(__name__)


class EngineBuildError(RuntimeError):
    """TensorRT could not parse the ONNX (the message has the parser's errors) or build an engine
    (the builder's reasons are in TensorRT's log on stderr)."""


def _make_calibrator(trt: Any, feeds: Iterable[Feeds], batch_size: int, cache: Path, device: Any) -> Any:
    """An entropy calibrator fed by generated scenes; its cache is reused for the same ONNX."""
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._feeds = iter(feeds)
            self._held: dict[str, torch.Tensor] = {}

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._feeds, None)
            if batch is None:
                return None
            self._held = {n: torch.from_numpy(batch[n]).to(device).contiguous() for n in names}
            return [int(self._held[n].data_ptr()) for n in names]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            atomic_write(cache, bytes(data))

    return Calibrator()


def build_engine(
    onnx_bytes: bytes,
    *,
    precision: str,
    batch: tuple[int, int, int],
    input_size: tuple[int, int],
    cache_dir: Path,
    workspace_mib: int = 1024,
    dla_core: int | None = None,
    calibration_batches: int = 32,
    device: Any = "cuda",
) -> bytes:
    """ONNX bytes -> a serialised engine (plan). Uses and updates a timing cache in ``cache_dir``.

    Runs on the current CUDA device: callers wrap it in ``torch.cuda.device(...)``.
    """
    import tensorrt as trt
    import torch

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse the ONNX model: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in profile_shapes(batch, input_size).items():
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)

    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        # the calibration cache belongs to one ONNX, TensorRT version and profile
        tag = hashlib.sha256(onnx_bytes + f"|{trt.__version__}|{batch}".encode()).hexdigest()[:16]
        config.int8_calibrator = _make_calibrator(
            trt,
            calibration_feeds(calibration_batches, batch[1], input_size),
            batch[1],
            cache_dir / f"calibration-{tag}.cache",
            device,
        )
        config.set_calibration_profile(profile)
    if dla_core is not None:  # Jetson AGX/NX Orin: run on a DLA core, layers it cannot run go to the GPU
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)

    # a timing cache is only valid for one TensorRT version and one GPU: name it by both, and
    # start afresh when TensorRT refuses the one on disk
    name, capability = device_identity(torch.device(device))
    tag = hashlib.sha256(f"{trt.__version__}|{name}|{capability}".encode()).hexdigest()[:16]
    timing_path = cache_dir / f"timing-{tag}.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    if not config.set_timing_cache(timing, ignore_mismatch=False):
        log.warning("tensorrt: %s does not fit this GPU/version; timing from scratch", timing_path.name)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError("TensorRT's builder returned no engine (see the TensorRT log above)")
    used = config.get_timing_cache()
    if used is not None:
        atomic_write(timing_path, bytes(used.serialize()))
    return bytes(plan)


class TensorRTBackend:
    name = "tensorrt"

    def __init__(
        self,
        onnx_path: str | Path,
        *,
        cache_dir: str | Path,
        precision: str = "fp16",
        batch: tuple[int, int, int] = (1, 1, 4),
        force_update: bool = False,
        workspace_mib: int = 1024,
        dla_core: int | None = None,
        device: str = "cuda:0",
    ) -> None:
        import tensorrt as trt
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("the tensorrt backend needs a CUDA GPU, and torch sees none")
        check_engine_options(precision, batch, dla_core)
        onnx_bytes, self.metadata = read_onnx(onnx_path)  # TensorRT parses the bytes that were validated
        self.input_size = (int(self.metadata["input_size"][0]), int(self.metadata["input_size"][1]))
        self.batch = batch
        self.device = torch.device(device)
        gpu, capability = device_identity(self.device)
        self.key = engine_key(
            hashlib.sha256(onnx_bytes).hexdigest(),
            tensorrt_version=trt.__version__,
            device_name=gpu if dla_core is None else f"{gpu} DLA{dla_core}",
            compute_capability=capability,
            precision=precision,
            batch=batch,
            input_size=self.input_size,
        )
        self._torch = torch
        cache = EngineCache(cache_dir, suffix=ENGINE_SUFFIX)
        build = {
            "precision": precision,
            "batch": batch,
            "input_size": self.input_size,
            "cache_dir": cache.root,
            "workspace_mib": workspace_mib,
            "dla_core": dla_core,
            "device": self.device,
        }
        self._trt_logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._trt_logger)
        if dla_core is not None:
            self._runtime.DLA_core = dla_core
        with torch.cuda.device(self.device):  # TensorRT builds and runs on the current device
            found = cache.resolve(self.key, force_update=force_update)
            self.built = found.path is None
            plan = self._plan(cache, found, onnx_bytes, build)
            self.engine = self._runtime.deserialize_cuda_engine(plan)
            if self.engine is None and not self.built:  # verified but unloadable: rebuild once
                log.warning("tensorrt engine: TensorRT cannot deserialise %s; rebuilding", self.path)
                stale = Lookup(None, "cached engine cannot be deserialised")
                plan = self._plan(cache, stale, onnx_bytes, build)
                self.built = True
                self.engine = self._runtime.deserialize_cuda_engine(plan)
            if self.engine is None:
                raise EngineBuildError(f"TensorRT cannot deserialise the engine it just built ({self.path})")
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            check_bindings(
                [
                    Binding(
                        name,
                        self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                        tuple(self.engine.get_tensor_shape(name)),
                        self.engine.get_tensor_dtype(name).name,
                    )
                    for name in names
                ],
                self.input_size,
            )
            self.context = self.engine.create_execution_context()
            self.stream = torch.cuda.Stream(self.device)

    def _plan(self, cache: EngineCache, found: Lookup, onnx_bytes: bytes, build: dict[str, Any]) -> bytes:
        """The verified cached plan's bytes (hashed and loaded from the same read), or a new build."""
        if found.path is not None:
            log.info("tensorrt engine: %s (%s)", found.reason, found.path)
            self.path = found.path
            return found.path.read_bytes()
        log.warning("tensorrt engine: %s", found.reason)
        start = time.perf_counter()
        plan = build_engine(onnx_bytes, **build)
        self.path = cache.store(self.key, plan)
        log.warning("tensorrt engine built in %.0f s: %s", time.perf_counter() - start, self.path)
        return plan

    def run_device(self, *args: Any) -> tuple[Any, Any]:
        """Contiguous float32 tensors on ``self.device``, in INPUT_NAMES order -> outputs on the GPU."""
        torch = self._torch
        for name, tensor in zip(INPUT_NAMES, args, strict=True):
            if tensor.dtype != torch.float32 or tensor.device != self.device or not tensor.is_contiguous():
                raise ValueError(
                    f"{name} must be a contiguous float32 tensor on {self.device}, "
                    f"got {tensor.dtype} on {tensor.device}"
                )
        size = int(args[0].shape[0])
        if not self.batch[0] <= size <= self.batch[2]:
            raise ValueError(f"batch {size} is outside the engine's profile {self.batch[0]}..{self.batch[2]}")
        h, w = self.input_size
        with torch.cuda.device(self.device):
            outputs = {
                spec.name: torch.empty((size, spec.channels, h, w), dtype=torch.float32, device=self.device)
                for spec in OUTPUTS
            }
            self.stream.wait_stream(torch.cuda.current_stream(self.device))  # inputs are ready
            for name, tensor in zip(INPUT_NAMES, args, strict=True):
                if not self.context.set_input_shape(name, tuple(tensor.shape)):
                    raise ValueError(f"TensorRT refused the shape {tuple(tensor.shape)} for {name}")
                self.context.set_tensor_address(name, tensor.data_ptr())
            for name, tensor in outputs.items():
                self.context.set_tensor_address(name, tensor.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
            self.stream.synchronize()
        return outputs["seg_logits"], outputs["saliency"]

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        args = [torch.from_numpy(feeds[n]).to(self.device).contiguous() for n in INPUT_NAMES]
        seg, sal = self.run_device(*args)
        return seg.cpu().numpy(), sal.cpu().numpy()
