"""``unimrseg train``: run the phases of a training config (all, or one with ``--stage``)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from unimrseg_core.train.config import METHODS, STAGES


def add_eval_sources(eval_parser: argparse.ArgumentParser) -> None:
    """Let ``unimrseg eval --train-config`` run here (the eval layer cannot import training)."""
    eval_parser.set_defaults(run_sources=_run_sources)


def _run_sources(args: argparse.Namespace) -> int:
    from unimrseg_core.train.evaluate_sources import run_sources  # torch only when it runs

    return run_sources(args)


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
    p.add_argument(
        "--init",
        metavar="CHECKPOINT",
        help="fine-tune: start from this checkpoint (e.g. unimrseg_core/weights/unimrseg.pt) and its "
        "architecture; a new class head when the config's classes differ from the checkpoint's",
    )
    p.add_argument("--classes", metavar="YAML", help="override the config's class table file")
    p.add_argument("--restart", action="store_true", help="delete out_dir's previous state and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unimrseg_core.train.config import load
    from unimrseg_core.train.trainer import Trainer

    overrides = {
        k: v
        for k, v in (
            ("method", args.method),
            ("out_dir", args.out_dir),
            ("device", args.device),
            ("init", args.init),
            ("classes", args.classes),
        )
        if v is not None
    }
    try:
        cfg = load(args.config, overrides)
        if args.restart and Path(cfg.out_dir).exists():
            shutil.rmtree(cfg.out_dir)
        trainer = Trainer(cfg, progress=not args.quiet)
        if cfg.data.sources:
            trainer.mixed_pool()  # every source read now: a bad file ends here, naming it
    except ValueError as exc:  # DatasetError, BagError (a source's file), CheckpointError (--init)
        print(f"unimrseg train: error: {exc}", file=sys.stderr)
        return 2
    trainer.resume()
    final = trainer.run(only=args.stage)
    if trainer.dist.main:
        print(f"training output in {cfg.out_dir}" + (f"; model {final}" if final.exists() else ""))
    return 0
