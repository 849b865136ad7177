"""Pick and open a backend by name; ``auto`` takes the fastest one this machine can run, and says why.

``auto`` order: ``tensorrt`` (TensorRT importable and a CUDA GPU), else
``compiled`` on a GPU, else on a GPU ``torch`` then ``onnxruntime``, on a CPU
``onnxruntime`` then ``torch`` (``auto_order``). A backend that is
usable but fails to open (an engine build error, a missing library) is logged
and the next one is tried. An engine is only loaded here once child processes
have built it and run it against a reference (``engine_check``); one that
crashed, hung or disagreed, now or in the verdict its cache recorded, is
refused at once. Every step is recorded in ``Selection.notes`` so the node can
put the reasons on /diagnostics.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from unimrseg_core.fingerprint import model_code_fingerprint
from unimrseg_core.model.checkpoint import SHIPPED, read_metadata, sha256_file
from unimrseg_core.runtime.backends import Backend, OnnxRuntimeBackend, TorchBackend
from unimrseg_core.runtime.engine_check import EngineRefusedError
from unimrseg_core.runtime.options import BACKENDS, BackendOptions

log = logging.getLogger(__name__)

SHIPPED_ONNX: Final = SHIPPED.with_suffix(".onnx")


class BackendError(ValueError):
    """No backend (or not the one named) can be opened here: missing library, no GPU, failed build.

    A ValueError, so the command line reports it in one line with exit status 2.
    """


@dataclass
class Selection:
    backend: Backend
    notes: list[str]  # one line per backend tried or skipped, and the choice


NVIDIA_DEVICE_FILES: Final = (
    "/dev/nvidiactl",  # the desktop / server driver (also passed into containers)
    "/dev/nvhost-ctrl-gpu",  # Jetson (L4T)
    "/dev/nvgpu",  # Jetson, JetPack 6
    "/dev/dxg",  # WSL2
)


def _cuda() -> bool:
    """Whether torch sees a CUDA GPU; without any NVIDIA device file, False without importing torch
    (torch costs a CPU-only node seconds of start-up and ~200 MB for nothing)."""
    if not any(Path(f).exists() for f in NVIDIA_DEVICE_FILES):
        return False
    import torch

    return torch.cuda.is_available()


def _files(options: BackendOptions) -> tuple[Path | None, Path | None]:
    """(checkpoint, onnx) to use; the shipped pair when neither is given or the shipped checkpoint is.

    When both are given, the ONNX must have been exported from that checkpoint, or which
    model runs would depend on which backend wins.
    """
    shipped = options.checkpoint is not None and Path(options.checkpoint).resolve() == SHIPPED
    if options.onnx is None and (options.checkpoint is None or shipped):
        return SHIPPED, SHIPPED_ONNX
    if options.checkpoint is not None and options.onnx is not None:
        source = _onnx_meta(Path(options.onnx)).get("checkpoint_sha256")
        if source != sha256_file(Path(options.checkpoint)):
            raise ValueError(f"{options.onnx} was not exported from {options.checkpoint}")
    return options.checkpoint, options.onnx


def _onnx_meta(path: Path) -> dict:
    from unimrseg_core.runtime.contract import read_onnx

    return read_onnx(path)[1]


def _onnx_size(path: Path) -> tuple[int, int]:
    h, w = _onnx_meta(path)["input_size"]
    return int(h), int(w)


def ensure_onnx(options: BackendOptions) -> Path:
    """The ONNX file to run: the given one, or the checkpoint exported once into the cache.

    A given ONNX is used when its H x W is the asked ``input_size``; otherwise the
    checkpoint is exported at that size (an ONNX file alone cannot change size).
    """
    checkpoint, onnx_path = _files(options)
    if onnx_path is not None and (
        options.input_size is None or _onnx_size(Path(onnx_path)) == tuple(options.input_size)
    ):
        return Path(onnx_path)
    if checkpoint is None:
        raise ValueError(
            f"{onnx_path} is fixed at {_onnx_size(Path(onnx_path))}; "
            f"running at {options.input_size} needs the checkpoint"
        )
    from unimrseg_core.runtime.export import export_onnx

    read_metadata(checkpoint)  # a missing or foreign checkpoint: its clear CheckpointError first
    size = "" if options.input_size is None else "-{}x{}".format(*options.input_size)
    name = f"{sha256_file(Path(checkpoint))[:24]}-{model_code_fingerprint()}{size}"
    target = options.cache_dir / "onnx" / f"{name}.onnx"
    if not target.is_file():
        log.warning("exporting %s to %s for the ONNX-based backends", checkpoint, target)
        export_onnx(
            checkpoint,
            target,
            max_batch=max(options.max_batch, 2),
            parity_scenes=1,
            input_size=options.input_size,
        )
    return target


def device_for(options: BackendOptions) -> str:
    """The device asked for, else cuda when torch sees a GPU, else cpu."""
    return options.device or ("cuda" if _cuda() else "cpu")


def precision_for(options: BackendOptions, device: str) -> str:
    """GPU engines run ``options.precision``; CPU engines run fp32."""
    return options.precision if device.startswith("cuda") else "fp32"


def tensorrt_usable(options: BackendOptions) -> str | None:
    """Why TensorRT cannot run here, or None."""
    if importlib.util.find_spec("tensorrt") is None:
        return "not installed (TensorRT comes from JetPack or NVIDIA's packages)"
    if not device_for(options).startswith("cuda"):
        return "no CUDA device (none found, or device=cpu asked for)"
    return None


def _open_tensorrt(options: BackendOptions) -> Backend:
    from unimrseg_core.runtime.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(
        ensure_onnx(options),
        cache_dir=options.cache_dir / "engines",
        precision=options.precision,
        batch=(options.max_batch,) * 3 if options.dla_core is not None else (1, 1, options.max_batch),
        force_update=options.force_engine_update,
        workspace_mib=options.workspace_mib,
        dla_core=options.dla_core,
        device=options.device or "cuda:0",
        build_timeout_s=options.engine_build_timeout_s,
        check_timeout_s=options.engine_check_timeout_s,
    )


def _open_compiled(options: BackendOptions) -> Backend:
    from unimrseg_core.runtime.compiled import CompiledBackend

    checkpoint, _ = _files(options)
    if checkpoint is None:
        raise ValueError("the compiled backend builds from a checkpoint (.pt); only an ONNX model was given")
    device = device_for(options)
    return CompiledBackend(
        checkpoint,
        cache_dir=options.cache_dir / "engines",
        device=device,
        precision=precision_for(options, device),
        max_batch=options.max_batch,
        force_update=options.force_engine_update,
        input_size=options.input_size,
        build_timeout_s=options.engine_build_timeout_s,
        check_timeout_s=options.engine_check_timeout_s,
    )


def _open_onnxruntime(options: BackendOptions) -> Backend:
    device = options.device or "cpu"  # the CUDA provider only when asked for: onnxruntime-gpu is optional
    return OnnxRuntimeBackend(ensure_onnx(options), threads=options.threads, device=device)


def _open_torch(options: BackendOptions) -> Backend:
    checkpoint, _ = _files(options)
    if checkpoint is None:
        raise ValueError("the torch backend runs a checkpoint (.pt); only an ONNX model was given")
    device = device_for(options)
    return TorchBackend(
        checkpoint, device=device, input_size=options.input_size, precision=precision_for(options, device)
    )


OPENERS: Final[dict[str, Callable[[BackendOptions], Backend]]] = {
    "tensorrt": _open_tensorrt,
    "compiled": _open_compiled,
    "onnxruntime": _open_onnxruntime,
    "torch": _open_torch,
}


def _usable(name: str, options: BackendOptions) -> str | None:
    """Why ``auto`` skips ``name`` on this machine, or None when it is worth trying."""
    checkpoint, _ = _files(options)
    if name == "tensorrt" and (why := tensorrt_usable(options)):
        return f"tensorrt: {why}"
    if name == "compiled":
        if not device_for(options).startswith("cuda"):
            return "compiled: no CUDA device (on a CPU, onnxruntime is faster)"
        if checkpoint is None:
            return "compiled: needs a checkpoint, only an ONNX model was given"
    if name == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime: not installed"
    if name == "torch" and checkpoint is None:
        return "torch: needs a checkpoint, only an ONNX model was given"
    return None


def auto_order(options: BackendOptions) -> list[str]:
    """The order ``auto`` tries: on a CUDA device eager torch (under CUDA graphs in the Segmenter)
    before ONNX Runtime's CPU provider, which is tens of times slower there; on a CPU the reverse."""
    if device_for(options).startswith("cuda"):
        return ["tensorrt", "compiled", "torch", "onnxruntime"]
    return ["tensorrt", "compiled", "onnxruntime", "torch"]


def _first_that_opens(candidates: list[str], options: BackendOptions, notes: list[str]) -> Selection:
    """Open the first of ``candidates`` that is usable here and opens; every step goes into ``notes``."""
    for candidate in candidates:
        skip = _usable(candidate, options)
        if skip is not None:
            notes.append(skip)
            continue
        try:
            backend = OPENERS[candidate](options)
        except EngineRefusedError as exc:  # its engine crashed, hung or disagreed in a child process
            notes.append(f"{candidate}: refused: {exc}")
            continue  # engine_check has logged it, with the child's last output
        except Exception as exc:  # any failure to open means: try the next backend
            notes.append(f"{candidate}: failed to open ({type(exc).__name__}: {exc})")
            log.warning("backend: %s", notes[-1])
            continue
        notes.append(f"{candidate}: chosen")
        log.info("backend: %s", "; ".join(notes))
        return Selection(backend, notes)
    raise BackendError(f"no backend could be opened: {'; '.join(notes)}")


def select_backend(name: str = "auto", options: BackendOptions | None = None) -> Selection:
    """Open backend ``name``; for ``auto``, the first of the order above that opens."""
    options = options or BackendOptions()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        try:
            backend = OPENERS[name](options)
        except EngineRefusedError as exc:
            raise BackendError(f"backend {name} refused its engine: {exc}") from exc
        except (ImportError, RuntimeError) as exc:  # a missing library, no GPU, a failed engine build
            raise BackendError(f"backend {name} cannot run here: {type(exc).__name__}: {exc}") from exc
        return Selection(backend, [f"{name}: chosen by name"])
    return _first_that_opens(auto_order(options), options, [])


def next_backend(failed: str, options: BackendOptions, reason: str) -> Selection:
    """The backend that takes over when ``failed`` breaks at runtime: the next of the ``auto`` order
    that opens here (e.g. compiled -> torch -> onnxruntime on a GPU). BackendError when none does."""
    order = auto_order(options)
    if failed not in order:
        raise ValueError(f"unknown backend {failed!r}")
    return _first_that_opens(order[order.index(failed) + 1 :], options, [f"{failed}: {reason}"])


def open_backend(name: str = "auto", options: BackendOptions | None = None) -> Backend:
    return select_backend(name, options).backend
