"""``unimrseg train``: run the phases of a training config (all, or one with ``--stage``)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from unimrseg_core.train.config import METHODS, STAGES


def add_parser(groups: argparse._SubParsersAction) -> None:
    p = groups.add_parser(
        "train",
        help="train (UniMRSeg's three stages, or a baseline); resumable; torchrun for DDP",
        description="Runs the phases of --config in order, resuming from out_dir/state.pt if present.",
    )
    p.add_argument("--config", required=True, help="training YAML (see config/train.yaml)")
    p.add_argument("--stage", choices=STAGES, help="run only this stage (the earlier ones must be done)")
    p.add_argument("--method", choices=METHODS, help="override the config's method")
    p.add_argument("--out-dir", help="override the config's out_dir")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the config's device")
    p.add_argument("--restart", action="store_true", help="delete out_dir's previous state and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unimrseg_core.train.config import load
    from unimrseg_core.train.trainer import Trainer

    overrides = {
        k: v
        for k, v in (("method", args.method), ("out_dir", args.out_dir), ("device", args.device))
        if v is not None
    }
    cfg = load(args.config, overrides)
    if args.restart and Path(cfg.out_dir).exists():
        shutil.rmtree(cfg.out_dir)
    trainer = Trainer(cfg, progress=not args.quiet)
    trainer.resume()
    final = trainer.run(only=args.stage)
    if trainer.dist.main:
        print(f"training output in {cfg.out_dir}" + (f"; model {final}" if final.exists() else ""))
    return 0
