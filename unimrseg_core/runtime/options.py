"""What a caller can ask of the runtime, without importing torch: backend names, options, cache folder.

Command-line parsers and the ROS parameter table read these; ``selection`` acts on them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

# the shipped model's folder is the model's fact; the ROS parameter table still reads it from here

BACKENDS: Final = ("auto", "tensorrt", "compiled", "onnxruntime", "torch")
ENGINE_PRECISIONS: Final[dict[str, tuple[str, ...]]] = {
    "tensorrt": ("fp32", "fp16", "int8"),
    "compiled": ("fp32", "fp16", "bf16"),
}
"""Precisions each engine backend builds (the others run fp32)."""


def default_cache_dir() -> Path:
    """Where engines are cached: ``$UNIMRSEG_CACHE`` or ``$XDG_CACHE_HOME/unimrseg`` (``~/.cache``)."""
    if os.environ.get("UNIMRSEG_CACHE"):
        return Path(os.environ["UNIMRSEG_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "unimrseg"


@dataclass(frozen=True)
class BackendOptions:
    """What every backend may need; each takes the fields that apply to it.

    With neither file given, the shipped checkpoint and its ONNX are used. With
    only a checkpoint, backends that need ONNX export it once into the cache.
    """

    checkpoint: Path | None = None
    onnx: Path | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    device: str | None = None  # None: cuda when torch sees a GPU, else cpu
    precision: str = "fp16"  # on a GPU (tensorrt, compiled, torch); CPU backends run fp32
    cuda_graphs: bool = True  # Segmenter: device stages of a CUDA backend replayed from CUDA graphs
    max_batch: int = 4
    force_engine_update: bool = False
    threads: int | None = None  # onnxruntime intra-op threads; None: all cores this process may use
    input_size: tuple[int, int] | None = None  # network H x W; None: the model's (trained / exported) size
    workspace_mib: int = 1024  # tensorrt builder workspace; keep small on a Jetson (shared memory)
    dla_core: int | None = None  # tensorrt on a Jetson Orin DLA core (fixed batch, fp16/int8)
    # engines are built, then loaded and run once, in child processes first (engine_check):
    # a compiled CPU build takes 1-2 min on 2 cores, a GPU or TensorRT build can take many
    engine_build_timeout_s: float = 1200.0
    engine_check_timeout_s: float = 120.0  # a fresh interpreter, imports, load, one inference
