"""``unimrseg eval``: score a checkpoint on the held-out split or a real dataset.

Heavy imports (torch, metrics, plotting) happen inside :func:`run`, so building
the ``unimrseg`` parser stays fast. Bad arguments, a bad checkpoint or an unusable
dataset end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from unimrseg_core.cli_types import non_negative_int, positive_int
from unimrseg_core.data.stored_units import StoredUnits, add_arguments
from unimrseg_core.eval.formats import DATASET_FORMATS

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser(
        "eval",
        help="score a checkpoint on every modality combination, condition and robustness protocol",
        description="mIoU / per-class IoU and saliency S-measure, max F, mean E, MAE for every "
        "modality combination, per condition, and under the EMM / RMM / NM robustness protocols.",
    )
    p.add_argument("--checkpoint", type=Path, help="model .pt (default: the shipped unimrseg_core/weights)")
    p.add_argument("--json", type=Path, help="write the full result as JSON here")
    p.add_argument("--plots", type=Path, help="write combinations.png and conditions.png into this folder")
    p.add_argument("--scenes", type=positive_int, help="number of scenes (default: 140 procedural, all real)")
    p.add_argument(
        "--protocol-scenes",
        type=non_negative_int,
        help="the first N scenes get the RMM / NM protocols (default: evaluate.PROTOCOL_SCENES, 21)",
    )
    p.add_argument("--batch-size", type=positive_int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--no-protocols", action="store_true", help="skip the RMM / NM passes")
    p.add_argument("--data", type=Path, help="a real dataset root instead of the procedural test split")
    p.add_argument("--format", choices=DATASET_FORMATS, help="layout of --data")
    p.add_argument("--split", help="split of --data (default: test if the dataset has one, else all)")
    p.add_argument(
        "--train-config",
        type=Path,
        help="score each source of this training config's data.sources, read with its options "
        "(class map, stored units, split), on its held-out samples",
    )
    p.add_argument("--source", action="append", help="with --train-config: only this source (repeatable)")
    add_arguments(p, applies_to="--data")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    p.add_argument(
        "--backend",
        choices=("onnxruntime", "torch", "compiled", "tensorrt"),
        default="onnxruntime",
        help="runtime that runs the model (default onnxruntime; a checkpoint is exported once into the "
        "engine cache, the shipped one has its ONNX beside it)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run, run_sources=None)  # train.cli sets run_sources (train sits above eval)
    return p


def _fail(message: str) -> int:
    print(f"unimrseg eval: error: {message}", file=sys.stderr)
    return 2


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    keys = ("miou", "s_measure", "max_f", "e_measure", "mae")
    table = Table(title=f"unimrseg eval: {result['data'].get('source', '?')}, {result['seconds']:.0f} s")
    table.add_column("combination")
    for title in ("mIoU", "S-measure", "max F", "mean E", "MAE"):
        table.add_column(title, justify="right")
    for row in result["combinations"]:
        table.add_row(row["combination"], *(cell(row[k]) for k in keys))
    Console().print(table)
    s = result["summary"]
    print(
        f"complete ({s['complete_combination']}) mIoU {cell(s['complete_miou'])}, "
        f"mean over combinations {cell(s['mean_miou'])} (min {cell(s['min_miou'])})"
    )
    _print_notes(result["data"])


def _print_notes(data: dict[str, Any]) -> None:
    """Why some scores are "-", and the files of a real dataset that were not read."""
    for metrics, why in data.get("unscored", {}).items():
        print(f"{metrics}: - because {why}")
    ignored = data.get("ignored", [])
    if ignored:
        more = f" (and {len(ignored) - 1} more: the JSON's data.ignored)" if len(ignored) > 1 else ""
        print(f"ignored {len(ignored)} file(s) in the dataset's folders: {ignored[0]}{more}")


def run(args: argparse.Namespace) -> int:
    """Load, evaluate, print a table, write the JSON and plots. Returns the exit status."""
    if args.train_config is not None:
        if args.data is not None or args.run_sources is None:
            return _fail("--train-config scores a training config's sources; it takes no --data")
        return int(args.run_sources(args))
    if args.source:
        return _fail("--source applies to --train-config only")
    if (args.data is None) != (args.format is None):
        return _fail("--data and --format go together")
    if args.split is not None and args.data is None:
        return _fail("--split applies to --data only")
    units = StoredUnits.from_args(args)
    if units.given and args.data is None:
        return _fail(f"{', '.join(units.given)}: for --data only (the procedural split is in sensor units)")

    import torch

    from unimrseg_core.data.splits import TEST_SCENES
    from unimrseg_core.eval.evaluate import PROTOCOL_SCENES, evaluate
    from unimrseg_core.eval.plots import write_plots
    from unimrseg_core.eval.sources import default_split, held_out_split, load_real
    from unimrseg_core.model.checkpoint import SHIPPED
    from unimrseg_core.runtime.selection import BackendOptions, select_backend

    if args.device == "cuda" and not torch.cuda.is_available():
        return _fail("--device cuda: no CUDA device available")
    checkpoint = args.checkpoint or SHIPPED
    try:
        options = BackendOptions(checkpoint=checkpoint, device=args.device, max_batch=args.batch_size)
        backend = select_backend(args.backend, options).backend
        size = (int(backend.metadata["input_size"][0]), int(backend.metadata["input_size"][1]))
        if args.data is None:
            samples = held_out_split(size, args.scenes or TEST_SCENES)
        else:
            split = args.split if args.split is not None else default_split(args.data)
            samples = load_real(args.format, args.data, size, split=split, limit=args.scenes, units=units)
    except (ValueError, KeyError, OSError) as exc:  # CheckpointError and DatasetError are ValueErrors
        return _fail(str(exc))

    result = evaluate(
        backend,
        samples,
        protocols=not args.no_protocols,
        protocol_scenes=PROTOCOL_SCENES if args.protocol_scenes is None else args.protocol_scenes,
        batch_size=args.batch_size,
        progress=not args.quiet,
        data={**samples.info, "checkpoint": str(checkpoint), "backend": backend.name},
    )
    _print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    if args.plots:
        for path in write_plots(result, args.plots):
            print(f"wrote {path}")
    return 0
