"""``unimrseg export``, ``unimrseg engine build`` and ``unimrseg infer``: the runtime's command line."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def add_parser(groups: Any) -> None:
    from unimrseg_core.cli_types import parse_size
    from unimrseg_core.data.stored_units import add_arguments as add_stored_units
    from unimrseg_core.runtime.options import BACKENDS, ENGINE_PRECISIONS, BackendOptions, default_cache_dir

    size_help = "network HEIGHTxWIDTH, multiples of 16 (default: the model's trained size)"

    p = groups.add_parser(
        "export",
        help="checkpoint -> ONNX (contract, metadata, checker, parity with PyTorch on 7 combinations)",
    )
    p.add_argument("--checkpoint", type=Path, help="model .pt (default: the shipped one)")
    p.add_argument(
        "--out", type=Path, required=True, help="ONNX file to write (a report .json goes beside it)"
    )
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 18 (default 18)")
    p.add_argument("--max-batch", type=int, default=16, help="largest batch of the dynamic batch axis")
    p.add_argument(
        "--parity-scenes", type=int, default=2, help="held-out scenes for the parity check (0: skip)"
    )
    p.add_argument("--input-size", type=parse_size, help=size_help)
    p.set_defaults(func=run_export)

    engine = groups.add_parser("engine", help="build or refresh a cached inference engine")
    engine_cmds = engine.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    build = engine_cmds.add_parser(
        "build",
        help="build the TensorRT engine (without TensorRT: the compiled AOTInductor one) into the cache",
    )
    build.add_argument(
        "--backend",
        choices=("auto", "tensorrt", "compiled"),
        default="auto",
        help="auto: tensorrt when importable with a GPU, else compiled",
    )
    build.add_argument("--onnx", type=Path, help="ONNX model (default: the shipped one)")
    build.add_argument("--checkpoint", type=Path, help="checkpoint for the compiled engine")
    precision = build.add_mutually_exclusive_group()
    for flag in sorted({p for ps in ENGINE_PRECISIONS.values() for p in ps}):
        precision.add_argument(
            f"--{flag}", dest="precision", action="store_const", const=flag, help=f"build in {flag}"
        )
    build.add_argument("--max-batch", type=int, default=4, help="largest batch of the profile (default 4)")
    build.add_argument("--device", help="cuda, cuda:1 or cpu (default: cuda when available)")
    build.add_argument(
        "--cache-dir", type=Path, default=default_cache_dir(), help="engine cache (default %(default)s)"
    )
    build.add_argument("--input-size", type=parse_size, help=size_help)
    build.add_argument(
        "--force",
        action="store_true",
        help="rebuild and re-check even if a matching engine (or a recorded failure) is cached",
    )
    defaults = BackendOptions()
    build.add_argument(
        "--build-timeout",
        type=float,
        default=defaults.engine_build_timeout_s,
        help="seconds the build (in a child process) may take; a slower one is recorded as failed "
        "(default %(default)s)",
    )
    build.add_argument(
        "--check-timeout",
        type=float,
        default=defaults.engine_check_timeout_s,
        help="seconds the smoke test (load and one inference, in a child process) may take "
        "(default %(default)s)",
    )
    build.set_defaults(func=run_engine_build, precision=None)

    infer = groups.add_parser("infer", help="segment image files outside ROS; writes the masks as PNG")
    for modality, what in (
        ("rgb", "colour image (8-bit; a 4-channel PNG only if its 4th channel is a constant alpha)"),
        (
            "depth",
            "depth: 16-bit PNG (--depth-scale units per metre, default millimetres), float32 metres "
            "(.npy/.tiff), or 8-bit relative depth with --depth-polarity",
        ),
        (
            "thermal",
            "thermal: 8-bit grey (1 or 3 equal channels; --thermal-range), 16-bit raw counts, or float32 "
            "kelvin (.npy/.tiff)",
        ),
        ("rgbt", "one 8-bit 4-channel PNG holding R, G, B and thermal (MFNet): gives rgb and thermal"),
    ):
        infer.add_argument(f"--{modality}", type=Path, help=what)
    infer.add_argument("--out", type=Path, required=True, help="directory for the PNGs and result.json")
    infer.add_argument("--backend", choices=BACKENDS, default="auto")
    infer.add_argument("--checkpoint", type=Path, help="model .pt (default: the shipped one)")
    infer.add_argument("--onnx", type=Path, help="ONNX model (default: the shipped one)")
    infer.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    infer.add_argument(
        "--kelvin-per-count",
        type=float,
        help="16-bit thermal: K per count (default 0.01)",
    )
    infer.add_argument("--offset-kelvin", type=float, help="16-bit thermal: K at count 0 (default 0)")
    add_stored_units(infer, applies_to="the input files")
    infer.add_argument(
        "--cache-dir", type=Path, default=default_cache_dir(), help="engine cache (default %(default)s)"
    )
    infer.add_argument("--input-size", type=parse_size, help=size_help)
    infer.set_defaults(func=run_infer)


def run_export(args: argparse.Namespace) -> int:
    from unimrseg_core.model.checkpoint import SHIPPED
    from unimrseg_core.runtime.export import export_onnx

    report = export_onnx(
        args.checkpoint or SHIPPED,
        args.out,
        opset=args.opset,
        max_batch=args.max_batch,
        parity_scenes=args.parity_scenes,
        input_size=args.input_size,
    )
    print(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


def _checkpoint_for(onnx_path: Path | None, checkpoint: Path | None) -> Path | None:
    """The compiled engine needs weights: the given checkpoint, or the shipped one if the ONNX is its."""
    from unimrseg_core.model.checkpoint import SHIPPED, sha256_file
    from unimrseg_core.runtime.contract import read_onnx

    if checkpoint is not None or onnx_path is None:
        return checkpoint
    source = read_onnx(onnx_path)[1]["checkpoint_sha256"]
    if source == sha256_file(SHIPPED):
        return SHIPPED
    raise ValueError(f"{onnx_path} was not exported from the shipped checkpoint: pass its --checkpoint")


def run_engine_build(args: argparse.Namespace) -> int:
    from unimrseg_core.runtime.selection import (
        BackendOptions,
        device_for,
        precision_for,
        select_backend,
        tensorrt_usable,
    )

    device = device_for(BackendOptions(device=args.device))
    backend = args.backend
    if backend == "auto":
        why = tensorrt_usable(BackendOptions(device=device))
        backend = "compiled" if why else "tensorrt"
        log.info("engine build: %s", f"compiled engine, tensorrt {why}" if why else "tensorrt")
    precision = args.precision or precision_for(BackendOptions(), device)
    if backend == "compiled":  # an explicit precision is built as asked, or refused: never swapped
        import torch

        from unimrseg_core.runtime.compiled import check_precision

        check_precision(precision, torch.device(device))
    options = BackendOptions(
        checkpoint=_checkpoint_for(args.onnx, args.checkpoint) if backend == "compiled" else args.checkpoint,
        onnx=args.onnx,
        cache_dir=args.cache_dir,
        device=device,
        precision=precision,
        max_batch=args.max_batch,
        force_engine_update=args.force,
        input_size=args.input_size,
        engine_build_timeout_s=args.build_timeout,
        engine_check_timeout_s=args.check_timeout,
    )
    start = time.perf_counter()
    engine = select_backend(backend, options).backend
    summary = {
        "backend": engine.name,
        "engine": str(engine.path),  # type: ignore[attr-defined]
        "built": engine.built,  # type: ignore[attr-defined]
        "check": engine.check.summary,  # type: ignore[attr-defined]
        "seconds": round(time.perf_counter() - start, 1),
        "key": engine.key.as_json(),  # type: ignore[attr-defined]
    }
    print(json.dumps(summary, indent=1))
    return 0


def run_infer(args: argparse.Namespace) -> int:
    import sys

    import cv2

    from unimrseg_core.data.stored_units import StoredUnits
    from unimrseg_core.modalities import MODALITIES, colorize
    from unimrseg_core.runtime.image_files import read_inputs, thermal_mapping
    from unimrseg_core.runtime.segmenter import Segmenter
    from unimrseg_core.runtime.selection import BackendOptions, select_backend

    units = StoredUnits.from_args(args)
    mapping = thermal_mapping(units, kelvin_per_count=args.kelvin_per_count, offset_kelvin=args.offset_kelvin)
    files = {m: getattr(args, m) for m in MODALITIES if getattr(args, m) is not None}
    inputs = read_inputs(files, rgbt=args.rgbt, units=units, thermal=mapping)
    for warning in inputs.warnings:
        print(f"unimrseg infer: warning: {warning}", file=sys.stderr)
    chosen = select_backend(
        args.backend,
        BackendOptions(
            checkpoint=args.checkpoint,
            onnx=args.onnx,
            cache_dir=args.cache_dir,
            device=args.device,
            input_size=args.input_size,
        ),
    )
    segmenter = Segmenter(chosen.backend)
    start = time.perf_counter()
    result = segmenter.segment(**inputs.images)
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    outputs = {
        "class_mask.png": result.class_ids,
        "colored_mask.png": cv2.cvtColor(colorize(result.class_ids), cv2.COLOR_RGB2BGR),
        "saliency.png": result.saliency_mono8,
    }
    for name, image in outputs.items():
        if not cv2.imwrite(str(args.out / name), image):
            raise OSError(f"could not write {args.out / name}")
    summary = {
        "inputs": inputs.files,
        "stored_units": units.as_json(),
        "warnings": inputs.warnings,
        "used": result.used.name,
        "backend": chosen.backend.name,
        "backend_notes": chosen.notes,
        "size": list(result.class_ids.shape),
        "segment_ms": round(seconds * 1e3, 2),
        "outputs": sorted(outputs),
    }
    (args.out / "result.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0
