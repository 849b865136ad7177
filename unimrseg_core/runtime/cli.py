"""``unimrseg export``: the CLI face of ``runtime.export``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(groups: Any) -> None:
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unimrseg_core.model.checkpoint import SHIPPED
    from unimrseg_core.runtime.export import export_onnx

    report = export_onnx(
        args.checkpoint or SHIPPED,
        args.out,
        opset=args.opset,
        max_batch=args.max_batch,
        parity_scenes=args.parity_scenes,
    )
    print(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0
