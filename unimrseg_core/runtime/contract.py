"""The model I/O contract (DESIGN.md) as data, and its check against an ONNX graph.

Every exported model and every engine is checked against this before use, so a
renamed input, a wrong channel count or a missing metadata entry is a clear
error, never garbage output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import onnx

from unimrseg_core.modalities import MODALITIES, MODALITY_CHANNELS, NUM_CLASSES, metadata_mismatch

METADATA_KEY: Final = "unimrseg"  # metadata_props entry holding the model metadata JSON


class ContractError(ValueError):
    """A model whose inputs, outputs or metadata break the contract."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    channels: int | None  # dim 1; None for the [B, 3] mask
    rank: int


INPUTS: Final[tuple[TensorSpec, ...]] = (
    *(TensorSpec(m, MODALITY_CHANNELS[m], 4) for m in MODALITIES),
    TensorSpec("modality_mask", len(MODALITIES), 2),
)
OUTPUTS: Final[tuple[TensorSpec, ...]] = (
    TensorSpec("seg_logits", NUM_CLASSES, 4),
    TensorSpec("saliency", 1, 4),
)


@dataclass(frozen=True)
class Tensor:
    """What a runtime reports about one input or output: ONNX value info or an engine binding."""

    name: str
    dims: tuple[int | str, ...]  # symbolic (str) or -1 for dynamic dimensions
    dtype: str  # "float32", ...


def _onnx_tensor(value: onnx.ValueInfoProto) -> Tensor:
    dims = tuple(d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name
    return Tensor(value.name, dims, dtype)


def check_tensors(
    kind: str, got: list[Tensor], want: tuple[TensorSpec, ...], input_size: tuple[int, int]
) -> None:
    """Names in order, float32, rank, channels and image H x W; ContractError at the first break."""
    names = [t.name for t in got]
    if names != [s.name for s in want]:
        raise ContractError(f"{kind} are {names}, the contract needs {[s.name for s in want]}")
    for tensor, spec in zip(got, want, strict=True):
        dims = list(tensor.dims)
        if tensor.dtype != "float32":
            raise ContractError(f"{kind[:-1]} {spec.name} is {tensor.dtype}, the contract needs float32")
        if len(dims) != spec.rank or (spec.channels is not None and dims[1] != spec.channels):
            raise ContractError(
                f"{kind[:-1]} {spec.name} has shape {dims}; "
                f"contract: rank {spec.rank}, {spec.channels} channels"
            )
        if spec.rank == 4 and dims[2:] != list(input_size):
            raise ContractError(f"{spec.name} is {dims[2:]} but the model's input size is {list(input_size)}")


def read_metadata(model: onnx.ModelProto) -> dict[str, Any]:
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ContractError(f"metadata_props has no {METADATA_KEY!r} entry (not exported by unimrseg export)")
    try:
        return json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ContractError(f"metadata {METADATA_KEY!r} is not JSON: {exc}") from exc


def validate_onnx(model: onnx.ModelProto) -> dict[str, Any]:
    """Check the metadata, then every input and output against the contract; return the metadata."""
    meta = read_metadata(model)
    for key in ("classes", "normalization", "input_size", "checkpoint_sha256"):
        if key not in meta:
            raise ContractError(f"metadata lacks {key!r}")
    if len(meta["classes"]) != NUM_CLASSES:
        raise ContractError(f"metadata has {len(meta['classes'])} classes, this code {NUM_CLASSES}")
    differs = metadata_mismatch(meta)
    if differs:  # the Segmenter normalises and names classes with this code's tables
        raise ContractError(f"the model's {differs} differ from this code's; re-export with matching code")
    size = (int(meta["input_size"][0]), int(meta["input_size"][1]))
    check_tensors("inputs", [_onnx_tensor(v) for v in model.graph.input], INPUTS, size)
    check_tensors("outputs", [_onnx_tensor(v) for v in model.graph.output], OUTPUTS, size)
    return meta
