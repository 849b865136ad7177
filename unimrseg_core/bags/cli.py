"""``unimrseg bag make``: the bag tools' command line (play, record and eval join this group)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_make"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def add_parser(groups: Any) -> argparse._SubParsersAction:
    """Register ``bag`` and its ``make`` subcommand; returns the ``bag`` subcommands for later tools."""
    from unimrseg_core.bags.write import STORAGES
    from unimrseg_core.cli import parse_size
    from unimrseg_core.data.splits import TEST_SEED

    bag = groups.add_parser("bag", help="rosbag2 bags: make")
    bag_cmds = bag.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    make = bag_cmds.add_parser(
        "make",
        help="write a bag of the procedural world seen by a moving camera, with faults baked in",
        description="A rosbag2 bag: rgb/depth/thermal images, ground-truth masks and the fault "
        "timeline (see README 'Bags and faults').",
    )
    make.add_argument("--out", type=Path, required=True, help="bag directory to create (must not exist)")
    make.add_argument("--duration", type=_positive_float, default=60.0, help="seconds (default 60)")
    make.add_argument("--rate", type=_positive_float, default=10.0, help="camera rate in Hz (default 10)")
    make.add_argument("--size", type=parse_size, default=(240, 320), help="HEIGHTxWIDTH (default 240x320)")
    make.add_argument("--faults", type=Path, help="fault schedule YAML (e.g. config/faults_demo.yaml)")
    make.add_argument(
        "--storage", choices=tuple(STORAGES), default="mcap", help="storage plugin (default mcap)"
    )
    make.add_argument(
        "--seed", type=_count(0), default=TEST_SEED, help="world seed (default: the held-out test seed)"
    )
    make.add_argument("--workers", type=_count(1), default=1, help="rendering processes (default 1)")
    make.add_argument(
        "--segment",
        type=_positive_float,
        default=20.0,
        help="seconds per scene before a new one (default 20)",
    )
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=run_make)
    return bag_cmds


def run_make(args: argparse.Namespace) -> int:
    from unimrseg_core.bags.write import make_bag
    from unimrseg_core.faults import FaultSchedule

    schedule = FaultSchedule.load(args.faults) if args.faults else None
    summary = make_bag(
        args.out,
        duration_s=args.duration,
        rate_hz=args.rate,
        size=args.size,
        faults=schedule,
        storage=args.storage,
        seed=args.seed,
        workers=args.workers,
        segment_s=args.segment,
        progress=not args.quiet,
    )
    print(json.dumps(summary.as_json(), indent=1))
    print(f"wrote {summary.path} ({summary.frames} frames, {summary.seconds:.1f} s)")
    return 0
