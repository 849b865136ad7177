"""``unimrseg``: the project's one command line, with subcommands.

Subcommands: ``data generate|preview``, ``train``, ``eval``, ``export``, ``engine build``,
``infer``, ``bag make|eval|play|record``; each area keeps its own
parser beside its code (``train/cli.py``, ``eval/cli.py``) and registers it here. The ROS
ones (``bag play``, ``bag record``, ``bag eval --live``) live in ``unimrseg_ros/cli.py`` and
join ``bag`` as an entry-point plugin (:mod:`unimrseg_core.cli_plugins`).
Bad arguments exit with status 2 and a one-line reason, never a traceback.

Building the parser imports no heavy or optional package (no torch, rosbags or rclpy): a
command imports what it needs when it runs, so ``data``, ``train``, ``eval``, ``export``,
``engine`` and ``infer`` work where rosbags and ROS 2 are not installed, and only ``bag``
commands need rosbags (``test/core/test_cli_imports.py``). The argparse types the
subcommands share live in :mod:`unimrseg_core.cli_types`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from unimrseg_core import __version__
from unimrseg_core.cli_types import non_negative_int, parse_size, positive_int

__all__ = ["build_parser", "main"]

log = logging.getLogger("unimrseg")


def _cmd_data_generate(args: argparse.Namespace) -> int:
    from unimrseg_core.data.disk import write_dataset

    root = write_dataset(
        args.out,
        args.n,
        seed=args.seed,
        size=args.size,
        workers=args.workers,
        conditions=args.conditions,
        progress=not args.quiet,
    )
    print(f"wrote {args.n} scenes to {root}")
    return 0


def _cmd_data_preview(args: argparse.Namespace) -> int:
    from unimrseg_core.data.preview import write_contact_sheet

    path = write_contact_sheet(args.out, seed=args.seed, size=args.size, per_condition=args.per_condition)
    print(f"wrote contact sheet {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from unimrseg_core.data.conditions import CONDITIONS

    parser = argparse.ArgumentParser(
        prog="unimrseg", description="UniMRSeg: robust RGB/depth/thermal segmentation."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    data = groups.add_parser("data", help="procedural dataset: generate, preview")
    data_cmds = data.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    gen = data_cmds.add_parser("generate", help="write N generated scenes in the project's on-disk layout")
    gen.add_argument("--out", required=True, help="output directory (must not exist, or be empty)")
    gen.add_argument("--n", type=positive_int, required=True, help="number of scenes")
    gen.add_argument("--seed", type=non_negative_int, default=0, help="dataset seed (default 0)")
    gen.add_argument("--size", type=parse_size, default=(240, 320), help="HEIGHTxWIDTH (default 240x320)")
    gen.add_argument("--workers", type=positive_int, default=1, help="parallel processes (default 1)")
    gen.add_argument(
        "--conditions",
        nargs="+",
        choices=CONDITIONS,
        default=None,
        help="force these conditions for every scene instead of sampling them",
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_cmd_data_generate)

    prev = data_cmds.add_parser("preview", help="contact sheet: one row per condition")
    prev.add_argument("--out", required=True, help="PNG to write")
    prev.add_argument("--seed", type=non_negative_int, default=0)
    prev.add_argument("--size", type=parse_size, default=(240, 320), help="HEIGHTxWIDTH (default 240x320)")
    prev.add_argument("--per-condition", type=positive_int, default=1, help="rows per condition (default 1)")
    prev.set_defaults(func=_cmd_data_preview)

    from unimrseg_core.bags.cli import add_parser as add_bag
    from unimrseg_core.eval.cli import add_parser as add_eval
    from unimrseg_core.runtime.cli import add_parser as add_runtime
    from unimrseg_core.train.cli import add_eval_sources
    from unimrseg_core.train.cli import add_parser as add_train

    add_train(groups)
    add_eval_sources(add_eval(groups))
    add_runtime(groups)
    add_bag(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    try:
        return int(args.func(args))
    except (FileExistsError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"unimrseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unimrseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
