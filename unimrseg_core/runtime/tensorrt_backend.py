"""``tensorrt`` backend: the TensorRT calls, kept thin and as TensorRT's Python API documents them.

TensorRT comes from the robot (JetPack on a Jetson, NVIDIA's packages on a
desktop); it is imported only here, lazily. Every decision (cache key, profile,
binding check, calibration data) is in ``tensorrt_plan`` and tested without
TensorRT. Device memory and the CUDA stream come from torch.cuda, so no extra
CUDA binding package is needed.

Flow: the ONNX is validated against the contract -> the engine cache is asked
for an engine with this exact key (ONNX sha256, TensorRT version, GPU name and
compute capability, precision, batch profile, H x W) -> on a miss (or
``force_update``) a child process builds the engine, which is stored with its
sha256 sidecar -> unless its sidecar records a passed smoke test, a second child
deserialises it, checks its I/O tensors against the contract and runs it once
against ONNX Runtime on the CPU (``engine_check``) -> only then is it
deserialised here. A builder or plan that crashes or hangs costs the child.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from unimrseg_core.modalities import INPUT_NAMES
from unimrseg_core.runtime.backends import Feeds, OnnxRuntimeBackend
from unimrseg_core.runtime.contract import OUTPUTS, TensorSpec, output_specs, outputs_of, read_onnx
from unimrseg_core.runtime.device import device_identity
from unimrseg_core.runtime.engine_cache import EngineCache, atomic_write
from unimrseg_core.runtime.engine_check import CheckLimits, EngineJob, SmokeTest, tolerance_for, vetted_engine
from unimrseg_core.runtime.options import BackendOptions
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

Infer = Callable[[Feeds], tuple[np.ndarray, np.ndarray]]


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


def child_build(args: dict[str, Any]) -> bytes:
    """``engine_child``'s build step: the plan for the job arguments ``TensorRTBackend`` makes."""
    import torch

    onnx_bytes, _ = read_onnx(args["onnx"])
    if hashlib.sha256(onnx_bytes).hexdigest() != args["onnx_sha256"]:
        raise ValueError(f"{args['onnx']} changed since its engine key was made")
    device = torch.device(args["device"])
    with torch.cuda.device(device):
        return build_engine(
            onnx_bytes,
            precision=args["precision"],
            batch=tuple(args["batch"]),
            input_size=tuple(args["input_size"]),
            cache_dir=Path(args["cache_dir"]),
            workspace_mib=args["workspace_mib"],
            dla_core=args["dla_core"],
            device=device,
        )


def child_load(path: Path, args: dict[str, Any]) -> Infer:
    """``engine_child``'s check step: deserialise the plan, return its numpy inference."""
    engine = TensorRTEngine(
        path.read_bytes(),
        device=args["device"],
        batch=tuple(args["batch"]),
        input_size=tuple(args["input_size"]),
        dla_core=args["dla_core"],
        outputs=output_specs(int(args["num_classes"])) if "num_classes" in args else OUTPUTS,
    )
    return engine.infer


def onnxruntime_reference(onnx_path: Path) -> Infer:
    """ONNX Runtime on the CPU, fp32: the reference every TensorRT precision must agree with."""
    return lambda feeds: OnnxRuntimeBackend(onnx_path, device="cpu").infer(feeds)


class TensorRTEngine:
    """A deserialised plan, its I/O checked against the contract, with its context and stream."""

    def __init__(
        self,
        plan: bytes,
        *,
        device: str,
        batch: tuple[int, int, int],
        input_size: tuple[int, int],
        dla_core: int | None = None,
        outputs: tuple[TensorSpec, ...] = OUTPUTS,
    ) -> None:
        """``outputs``: the model's (``contract.outputs_of`` its metadata: its class count)."""
        import tensorrt as trt
        import torch

        self._torch = torch
        self.outputs = outputs
        self.device = torch.device(device)
        self.batch = batch
        self.input_size = input_size
        self._trt_logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._trt_logger)
        if dla_core is not None:
            self._runtime.DLA_core = dla_core
        with torch.cuda.device(self.device):  # TensorRT loads and runs on the current device
            self.engine = self._runtime.deserialize_cuda_engine(plan)
            if self.engine is None:
                raise EngineBuildError("TensorRT cannot deserialise the engine (see the TensorRT log above)")
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
                outputs,
            )
            self.context = self.engine.create_execution_context()
            self.stream = torch.cuda.Stream(self.device)

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
                for spec in self.outputs
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


class TensorRTBackend:
    name = "tensorrt"
    # its run synchronises its own stream, which a CUDA graph capture forbids: the Segmenter runs
    # its device stages around it without a graph (TensorRT's kernels are already fused)
    graph_safe = False

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
        build_timeout_s: float = BackendOptions.engine_build_timeout_s,
        check_timeout_s: float = BackendOptions.engine_check_timeout_s,
    ) -> None:
        """Raises ``EngineRefusedError`` when the plan fails its build or smoke test (now or before)."""
        import tensorrt as trt
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("the tensorrt backend needs a CUDA GPU, and torch sees none")
        check_engine_options(precision, batch, dla_core)
        limits = CheckLimits(build_timeout_s, check_timeout_s)
        onnx_path = Path(onnx_path).resolve()
        onnx_bytes, self.metadata = read_onnx(onnx_path)
        self.input_size = (int(self.metadata["input_size"][0]), int(self.metadata["input_size"][1]))
        self.batch = batch
        self.device = torch.device(device)
        gpu, capability = device_identity(self.device)
        onnx_sha256 = hashlib.sha256(onnx_bytes).hexdigest()
        self.key = engine_key(
            onnx_sha256,
            tensorrt_version=trt.__version__,
            device_name=gpu if dla_core is None else f"{gpu} DLA{dla_core}",
            compute_capability=capability,
            precision=precision,
            batch=batch,
            input_size=self.input_size,
        )
        cache = EngineCache(cache_dir, suffix=ENGINE_SUFFIX)
        args = {
            "onnx": str(onnx_path),
            "onnx_sha256": onnx_sha256,
            "precision": precision,
            "batch": list(batch),
            "input_size": list(self.input_size),
            "num_classes": outputs_of(self.metadata)[0].channels,
            "cache_dir": str(cache.root),
            "workspace_mib": workspace_mib,
            "dla_core": dla_core,
            "device": str(self.device),
        }
        job = EngineJob("tensorrt", f"{__name__}:child_build", f"{__name__}:child_load", args)
        smoke = SmokeTest(
            self.input_size,
            min(max(2, batch[0]), batch[2]),
            onnxruntime_reference(onnx_path),
            "ONNX Runtime fp32 (cpu)",
            tolerance_for(precision),
        )
        vetted = vetted_engine(cache, self.key, job, smoke, limits=limits, force_update=force_update)
        self.path, self.built, self.check = vetted.path, vetted.built, vetted.check
        self.engine = TensorRTEngine(
            self.path.read_bytes(),
            device=device,
            batch=batch,
            input_size=self.input_size,
            dla_core=dla_core,
            outputs=outputs_of(self.metadata),
        )

    def run_device(self, *args: Any) -> tuple[Any, Any]:
        """Contiguous float32 tensors on ``self.device``, in INPUT_NAMES order -> outputs on the GPU."""
        return self.engine.run_device(*args)

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        return self.engine.infer(feeds)
