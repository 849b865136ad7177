"""``unimrseg export``: checkpoint -> ONNX with the contract, metadata, checker and a parity check.

The graph comes from torch's dynamo exporter (opset 18+), with a dynamic batch
dimension and the fixed H x W of the checkpoint's ``input_size`` (engines build
faster and run faster with fixed spatial shapes; the Segmenter resizes to it).
Before the file is moved into place it must pass ``onnx.checker``, the contract
(``runtime.contract``) and parity with PyTorch through ONNX Runtime on the runtime's
example scenes (``runtime.examples``) for all 7 combinations, absent modalities zeroed
as the contract says, so a bad export never lands where a node looks.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from unimrseg_core.modalities import COMBINATIONS, MODALITIES, MODALITY_CHANNELS, apply_mask
from unimrseg_core.model.checkpoint import load_model
from unimrseg_core.model.cost import model_cost
from unimrseg_core.model.network import INPUT_NAMES, OUTPUT_NAMES, check_input_size
from unimrseg_core.runtime.contract import METADATA_KEY, validate_onnx
from unimrseg_core.runtime.examples import CHECK_SEED, example_scenes

log = logging.getLogger(__name__)

MIN_OPSET = 18
LOGIT_TOLERANCE = 1e-3  # max |torch - onnxruntime| on logits and probabilities
LABEL_AGREEMENT = 0.999  # fraction of pixels with the same argmax class


class ExportError(ValueError):
    """The exported graph failed the checker, the contract or the parity check."""


def _metadata(meta: dict[str, Any]) -> dict[str, Any]:
    keep = ("modalities", "modality_channels", "combinations", "classes", "ignore_index", "normalization")
    return {
        **{k: meta[k] for k in keep},
        "input_size": meta["input_size"],
        "model": meta["model"],
        "checkpoint_sha256": meta["sha256"],
        "training": {k: meta.get("training", {}).get(k) for k in ("method", "commit", "data_seed")},
        "inputs": list(INPUT_NAMES),
        "outputs": list(OUTPUT_NAMES),
    }


def example_inputs(
    input_size: tuple[int, int], max_batch: int, device: str | torch.device = "cpu"
) -> tuple[tuple[torch.Tensor, ...], torch.export.Dim]:
    """Example inputs (batch 2) and the dynamic batch Dim for torch.export / the ONNX exporter.

    The example batch is 2 because torch.export specialises a dimension of size 1; the Dim's
    upper bound is therefore at least 2 even when ``max_batch`` is 1.
    """
    h, w = input_size
    example = tuple(torch.rand(2, MODALITY_CHANNELS[m], h, w, device=device) for m in MODALITIES)
    example += (torch.ones(2, len(MODALITIES), device=device),)
    return example, torch.export.Dim("batch", min=1, max=max(2, max_batch))


def export_graph(
    net: torch.nn.Module, path: Path, size: tuple[int, int], *, max_batch: int, opset: int = MIN_OPSET
) -> None:
    """The bare graph of ``net`` (eval mode) at ``size`` with a dynamic batch, saved to ``path``: no
    metadata and no checks (``export_onnx`` adds them; the architecture sweep needs only this)."""
    example, batch = example_inputs(size, max_batch)
    program = torch.onnx.export(
        net,
        example,
        dynamo=True,
        opset_version=opset,
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        dynamic_shapes={name: {0: batch} for name in INPUT_NAMES},
    )
    program.save(str(path))


def report_path(onnx_path: Path) -> Path:
    """``model.onnx`` -> ``model.onnx.report.json`` (never the checkpoint's ``model.json``)."""
    return onnx_path.with_name(onnx_path.name + ".report.json")


def parity(net: torch.nn.Module, onnx_path: Path, size: tuple[int, int], scenes: int) -> dict[str, Any]:
    """Run torch and ONNX Runtime on ``scenes`` check scenes x 7 combinations; return the worst gaps."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    batch = example_scenes(scenes, size, seed=CHECK_SEED)
    worst_logit, worst_prob, worst_agree = 0.0, 0.0, 1.0
    for combo in COMBINATIONS:
        feeds = apply_mask(batch, combo.mask)
        seg_o, sal_o = session.run(list(OUTPUT_NAMES), feeds)
        with torch.inference_mode():
            seg_t, sal_t = (t.numpy() for t in net(*(torch.from_numpy(feeds[k]) for k in INPUT_NAMES)))
        worst_logit = max(worst_logit, float(np.abs(seg_o - seg_t).max()))
        worst_prob = max(worst_prob, float(np.abs(sal_o - sal_t).max()))
        worst_agree = min(worst_agree, float((seg_o.argmax(1) == seg_t.argmax(1)).mean()))
    return {
        "scenes": scenes,
        "combinations": len(COMBINATIONS),
        "max_abs_logit_diff": worst_logit,
        "max_abs_saliency_diff": worst_prob,
        "min_label_agreement": worst_agree,
    }


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    *,
    opset: int = MIN_OPSET,
    max_batch: int = 16,
    parity_scenes: int = 2,
    input_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Export, check and move into ``out``; returns a report, also written to ``report_path(out)``.

    ``input_size`` fixes the graph's H x W (default: the size the checkpoint was trained at;
    the network is fully convolutional, so any multiple of its stride works, e.g. a camera's
    native 480x640).
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET} (the dynamo exporter), got {opset}")
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    out = Path(out)
    net, meta = load_model(checkpoint)
    if input_size is not None:
        check_input_size(*input_size)
        meta = {**meta, "input_size": [int(input_size[0]), int(input_size[1])]}
    h, w = (int(v) for v in meta["input_size"])
    out.parent.mkdir(parents=True, exist_ok=True)  # the temporary file must be on out's filesystem
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        path = Path(tmp) / out.name
        export_graph(net, path, (h, w), max_batch=max_batch, opset=opset)
        model = onnx.load(str(path))
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(_metadata(meta), sort_keys=True)
        onnx.save(model, str(path))
        try:
            onnx.checker.check_model(str(path), full_check=True)
            validate_onnx(onnx.load(str(path)))
        except (onnx.checker.ValidationError, ValueError) as exc:
            raise ExportError(f"exported graph is invalid: {exc}") from exc
        report: dict[str, Any] = {
            "checkpoint": Path(checkpoint).name,
            "checkpoint_sha256": meta["sha256"],
            "opset": opset,
            "max_batch": max_batch,
            "input_size": [h, w],
            "onnx_nodes": len(onnx.load(str(path)).graph.node),
            **model_cost(net, (h, w)),
        }
        if parity_scenes:
            report["parity"] = check = parity(net, path, (h, w), parity_scenes)
            if (
                check["max_abs_logit_diff"] > LOGIT_TOLERANCE
                or check["max_abs_saliency_diff"] > LOGIT_TOLERANCE
                or check["min_label_agreement"] < LABEL_AGREEMENT
            ):
                raise ExportError(f"ONNX Runtime disagrees with PyTorch: {check}")
        out.parent.mkdir(parents=True, exist_ok=True)
        path.replace(out)
    report_path(out).write_text(json.dumps(report, indent=1) + "\n")
    return report
