"""The model I/O contract (DESIGN.md) as data, and its check against an ONNX graph.

Every exported model and every engine is checked against this before use, so a
renamed input, a wrong channel count or a missing metadata entry is a clear
error, never garbage output.

An ONNX file is also untrusted input: before its contract is read it must pass
``onnx.checker``, keep every weight inside the file (external data names other files
on disk, and a crafted location can point anywhere) and use only the standard
operator set (a custom-op domain would need native code this package does not ship).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import onnx

from unimrseg_core.modalities import (
    MODALITIES,
    MODALITY_CHANNELS,
    NUM_CLASSES,
    metadata_mismatch,
    model_classes,
)

METADATA_KEY: Final = "unimrseg"  # metadata_props entry holding the model metadata JSON
STANDARD_DOMAINS: Final = frozenset({"", "ai.onnx"})


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


def output_specs(num_classes: int) -> tuple[TensorSpec, ...]:
    """The outputs of a model of ``num_classes`` classes (its metadata's class table says how many)."""
    return (TensorSpec("seg_logits", num_classes, 4), TensorSpec("saliency", 1, 4))


def outputs_of(meta: dict[str, Any]) -> tuple[TensorSpec, ...]:
    """The outputs a model with this metadata must have (our 8 classes when it names none)."""
    return output_specs(len(model_classes(meta)))


OUTPUTS: Final[tuple[TensorSpec, ...]] = output_specs(NUM_CLASSES)
"""The shipped model's outputs (our class table)."""


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


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph (If / Loop / Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in (*([attr.g] if attr.HasField("g") else []), *attr.graphs):
                yield from _graphs(sub)


def check_untrusted(model: onnx.ModelProto) -> None:
    """The checks any ONNX from outside must pass before anything reads it further."""
    external = [
        t.name
        for g in _graphs(model.graph)
        for t in (*g.initializer, *(s.values for s in g.sparse_initializer))
        if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        raise ContractError(
            f"weights stored outside the file ({', '.join(external[:3])}...); "
            "this package loads self-contained ONNX files only"
        )
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ContractError(f"not a valid ONNX model: {str(exc).splitlines()[0]}") from None
    nodes = [*model.graph.node, *(n for f in model.functions for n in f.node)]
    local = {f.domain for f in model.functions}
    custom = sorted({n.domain for n in nodes} - STANDARD_DOMAINS - local)
    if custom:
        raise ContractError(f"uses operators of non-standard domains {custom}; custom operators are refused")


def validate_onnx(model: onnx.ModelProto) -> dict[str, Any]:
    """Check the file (checker, self-contained, standard operators), the metadata, then every input
    and output against the contract; return the metadata."""
    check_untrusted(model)
    meta = read_metadata(model)
    for key in ("classes", "normalization", "input_size", "checkpoint_sha256"):
        if key not in meta:
            raise ContractError(f"metadata lacks {key!r}")
    try:
        model_classes(meta)  # the model's own class table: the outputs are checked against it below
    except ValueError as exc:
        raise ContractError(f"bad class table: {exc}") from None
    differs = metadata_mismatch(meta)
    if differs:  # the Segmenter normalises with this code's tables
        raise ContractError(f"the model's {differs} differ from this code's; re-export with matching code")
    size = (int(meta["input_size"][0]), int(meta["input_size"][1]))
    check_tensors("inputs", [_onnx_tensor(v) for v in model.graph.input], INPUTS, size)
    check_tensors("outputs", [_onnx_tensor(v) for v in model.graph.output], outputs_of(meta), size)
    return meta


def read_onnx(path: str | Path) -> tuple[bytes, dict[str, Any]]:
    """Read an ONNX file once and validate it; (its bytes, its metadata).

    Callers run what they validated (``InferenceSession(bytes)``, TensorRT's parser), so
    the file cannot change between the check and the use.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX model")
    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file at all
        raise ContractError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from None
    try:
        return data, validate_onnx(model)
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from None
