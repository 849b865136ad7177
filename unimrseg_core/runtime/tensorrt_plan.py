"""Everything about the TensorRT backend that does not need TensorRT: tested on every machine.

TensorRT's builder cannot be installed on our CI machines (DESIGN.md), so the
decisions live here, as plain functions, and ``tensorrt_backend`` only makes the
TensorRT calls: the cache key of an engine, the optimisation profile, the
engine's I/O tensors checked against the contract, and the INT8 calibration data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from unimrseg_core.modalities import COMBINATIONS, apply_mask
from unimrseg_core.runtime.contract import INPUTS, OUTPUTS, ContractError, Tensor, TensorSpec, check_tensors
from unimrseg_core.runtime.engine_cache import EngineKey
from unimrseg_core.runtime.examples import CALIBRATION_SEED, example_scenes
from unimrseg_core.runtime.options import ENGINE_PRECISIONS

PRECISIONS: Final = ENGINE_PRECISIONS["tensorrt"]
ENGINE_SUFFIX: Final = ".engine"

# TensorRT DataType member name -> numpy dtype name, for the contract check
DTYPE_NAMES: Final[dict[str, str]] = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "BOOL": "bool",
    "FP8": "float8",
}

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Binding:
    """One I/O tensor as the engine reports it (``get_tensor_name/mode/shape/dtype``)."""

    name: str
    is_input: bool
    shape: Shape  # -1 where dynamic
    dtype: str  # TensorRT DataType member name: "FLOAT", "HALF", ...


def check_batch_range(batch: tuple[int, int, int]) -> None:
    low, opt, high = batch
    if not 1 <= low <= opt <= high:
        raise ValueError(f"batch profile must satisfy 1 <= min <= opt <= max, got {batch}")


def check_engine_options(precision: str, batch: tuple[int, int, int], dla_core: int | None) -> None:
    """Precision, profile and DLA choices TensorRT would reject or silently ignore, refused early.

    A DLA (Jetson AGX/NX Orin) runs FP16 or INT8 only, on static shapes: its profile must have
    min == opt == max, or every layer silently falls back to the GPU.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"the tensorrt engine's precision is one of {PRECISIONS}, got {precision!r}")
    check_batch_range(batch)
    if dla_core is not None:
        if dla_core < 0:
            raise ValueError(f"dla_core must be >= 0, got {dla_core}")
        if precision == "fp32":
            raise ValueError("a DLA runs fp16 or int8 only")
        if len(set(batch)) != 1:
            raise ValueError(f"a DLA needs a static batch (min == opt == max), got {batch}")


def engine_key(
    onnx_sha256: str,
    *,
    tensorrt_version: str,
    device_name: str,
    compute_capability: str,
    precision: str,
    batch: tuple[int, int, int],
    input_size: tuple[int, int],
) -> EngineKey:
    """The cache key of an engine: what makes one engine unusable for another situation."""
    if precision not in PRECISIONS:
        raise ValueError(f"the tensorrt engine's precision is one of {PRECISIONS}, got {precision!r}")
    check_batch_range(batch)
    return EngineKey(
        model_sha256=onnx_sha256,
        backend="tensorrt",
        runtime_version=tensorrt_version,
        device_name=device_name,
        compute_capability=compute_capability,
        precision=precision,
        batch=batch,
        input_size=input_size,
    )


def profile_shapes(batch: tuple[int, int, int], input_size: tuple[int, int]) -> dict[str, tuple[Shape, ...]]:
    """Input name -> (min, opt, max) shapes: only the batch varies, H x W are the model's."""
    check_batch_range(batch)
    h, w = input_size
    shapes: dict[str, tuple[Shape, ...]] = {}
    for spec in INPUTS:
        if spec.rank == 4:
            shapes[spec.name] = tuple((b, spec.channels, h, w) for b in batch)  # type: ignore[misc]
        else:
            shapes[spec.name] = tuple((b, spec.channels) for b in batch)  # type: ignore[misc]
    return shapes


def check_bindings(
    bindings: list[Binding], input_size: tuple[int, int], outputs: tuple[TensorSpec, ...] = OUTPUTS
) -> None:
    """The engine's inputs and outputs against the contract; ``ContractError`` names the first break.

    Engines may list their tensors in any order, so they are put in contract order
    first; a missing or extra name is still an error. ``outputs``: the model's
    (``contract.outputs_of`` its metadata; default our class table's).
    """
    for is_input, specs, kind in ((True, INPUTS, "inputs"), (False, outputs, "outputs")):
        mine = {b.name: b for b in bindings if b.is_input == is_input}
        order = [s.name for s in specs]
        if sorted(mine) != sorted(order):
            raise ContractError(f"engine {kind} are {sorted(mine)}, the contract needs {order}")
        tensors = [
            Tensor(n, mine[n].shape, DTYPE_NAMES.get(mine[n].dtype, mine[n].dtype.lower())) for n in order
        ]
        check_tensors(kind, tensors, specs, input_size)


def calibration_feeds(
    batches: int, batch_size: int, input_size: tuple[int, int]
) -> Iterator[dict[str, np.ndarray]]:
    """INT8 calibration data: the runtime's example scenes (never those of the checks), all 7
    combinations in turn.

    Each batch is one combination, cycling, so the calibrator sees the activation
    ranges of every mask the engine will be run with.
    """
    if batches < 1 or batch_size < 1:
        raise ValueError(f"batches and batch_size must be >= 1, got {batches}, {batch_size}")
    for index in range(batches):
        scenes = example_scenes(batch_size, input_size, seed=CALIBRATION_SEED, first=index * batch_size)
        yield apply_mask(scenes, COMBINATIONS[index % len(COMBINATIONS)].mask)
