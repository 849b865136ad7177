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

from unimrseg_core.modalities import MODALITIES, MODALITY_CHANNELS, NUM_CLASSES

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


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _check(kind: str, got: list[onnx.ValueInfoProto], want: tuple[TensorSpec, ...]) -> None:
    names = [v.name for v in got]
    if names != [s.name for s in want]:
        raise ContractError(f"{kind} are {names}, the contract needs {[s.name for s in want]}")
    for value, spec in zip(got, want, strict=True):
        dims = _dims(value)
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ContractError(f"{kind[:-1]} {spec.name} must be float32")
        if len(dims) != spec.rank or (spec.channels is not None and dims[1] != spec.channels):
            raise ContractError(
                f"{kind[:-1]} {spec.name} has shape {dims}, contract: rank {spec.rank}, "
                f"{spec.channels} channels"
            )


def read_metadata(model: onnx.ModelProto) -> dict[str, Any]:
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ContractError(f"metadata_props has no {METADATA_KEY!r} entry (not exported by unimrseg export)")
    try:
        return json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ContractError(f"metadata {METADATA_KEY!r} is not JSON: {exc}") from exc


def validate_onnx(model: onnx.ModelProto) -> dict[str, Any]:
    """Check names, dtypes, ranks and channels of inputs/outputs, and the metadata; return the metadata."""
    _check("inputs", list(model.graph.input), INPUTS)
    _check("outputs", list(model.graph.output), OUTPUTS)
    meta = read_metadata(model)
    for key in ("classes", "normalization", "input_size", "checkpoint_sha256"):
        if key not in meta:
            raise ContractError(f"metadata lacks {key!r}")
    if len(meta["classes"]) != NUM_CLASSES:
        raise ContractError(f"metadata has {len(meta['classes'])} classes, this code {NUM_CLASSES}")
    h, w = meta["input_size"]
    for value in [*model.graph.input[:3], *model.graph.output]:
        dims = _dims(value)
        if dims[2:] != [h, w]:
            raise ContractError(f"{value.name} is {dims[2:]} but metadata input_size is {[h, w]}")
    return meta
