"""``unimrseg bag make|eval``: the bag tools' command line (play and record join this group)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_eval", "run_make"]


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

    bag = groups.add_parser("bag", help="rosbag2 bags: make, eval")
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
    _add_eval(bag_cmds)
    return bag_cmds


def _add_eval(bag_cmds: argparse._SubParsersAction) -> None:
    from unimrseg_core.bags.evaluate import DEFAULT_WINDOW_S
    from unimrseg_core.runtime.selection import BACKENDS

    ev = bag_cmds.add_parser(
        "eval",
        help="replay a bag through health, frame assembly and the model; score against its ground truth",
        description="Offline: the node's health monitor, frame assembler and Segmenter run over the bag "
        "in recorded time order (no DDS, deterministic). Scores mIoU, S-measure and MAE per time window "
        "and fault phase, fault detection and recovery delays, output vs anchor rate, latency (see "
        "README 'Bags and faults').",
    )
    ev.add_argument("bag", type=Path, metavar="BAG", help="rosbag2 bag directory (or .mcap / .db3 file)")
    ev.add_argument("--json", type=Path, help="write the result here")
    ev.add_argument("--plots", type=Path, help="write timeline.png into this folder")
    ev.add_argument("--backend", choices=BACKENDS, default="auto", help="inference backend (default auto)")
    ev.add_argument("--checkpoint", type=Path, help="model .pt (default: the shipped model)")
    ev.add_argument("--onnx", type=Path, help="ONNX model for onnxruntime / tensorrt")
    ev.add_argument("--device", help="cpu, cuda or cuda:N (default: as the node)")
    ev.add_argument(
        "--threads",
        type=_count(0),
        default=1,
        help="ONNX Runtime threads, 0 = all cores (default 1, as the node)",
    )
    ev.add_argument(
        "--remap",
        nargs="+",
        action="extend",
        default=[],
        metavar="OLD:=NEW",
        help="read bag topic OLD as NEW (rgb/image, depth/image, thermal/image, ground_truth/class_mask, "
        "ground_truth/saliency, faults/timeline, faults/events)",
    )
    ev.add_argument(
        "--window",
        type=_positive_float,
        default=DEFAULT_WINDOW_S,
        help=f"seconds per time window (default {DEFAULT_WINDOW_S:g})",
    )
    ev.add_argument("--faults", type=Path, help="fault schedule YAML instead of the one in the bag")
    ev.add_argument(
        "--live", action="store_true", help="play the bag against a running node (not available yet)"
    )
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=run_eval)


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _short(fault: dict[str, Any]) -> str:
    """``thermal drop 10-18 s``: a fault without its parameters, for narrow tables."""
    return f"{fault['modality']} {fault['kind']} {fault['start_s']:g}-{fault['end_s']:g} s"


def _print_eval(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    summary = result["summary"]
    console = Console()
    if not console.is_terminal:  # piped or captured: 80 columns would wrap every fault name
        console = Console(width=120)
    table = Table(title=f"bag eval {result['bag']['path']} ({result['mode']}, {result['backend']['name']})")
    for title in ("phase", "s", "mIoU", "S-measure", "MAE", "out Hz", "anchor Hz", "out/anchor"):
        table.add_column(title, justify="left" if title == "phase" else "right")
    for row in result["phases"]:
        table.add_row(
            " + ".join(_short(result["faults"][i]) for i in row["faults"]) or row["phase"],
            _cell(row["duration_s"], 1),
            _cell(row["miou"]),
            _cell(row["s_measure"]),
            _cell(row["mae"]),
            _cell(row["output_rate_hz"], 2),
            _cell(row["anchor_rate_hz"], 2),
            _cell(row["rate_ratio"]),
        )
    console.print(table)
    faults = Table(title="faults: detection (start -> not OK) and recovery (end -> OK)")
    for title in ("fault", "detected s", "periods", "recovered s", "periods", "mIoU/healthy", "/scene's"):
        faults.add_column(title, justify="left" if title == "fault" else "right")
    for f in result["faults"]:
        det, rec = f["detection"] or {}, f["recovery"] or {}
        faults.add_row(
            _short(f),
            _cell(det.get("delay_s"), 2),
            _cell(det.get("delay_periods"), 1),
            _cell(rec.get("delay_s"), 2),
            _cell(rec.get("delay_periods"), 1),
            _cell(f["miou_vs_healthy"]),
            _cell(f["miou_vs_scene_healthy"]),
        )
    if result["faults"]:
        console.print(faults)
    latency = result["latency"]["segmenter_ms"]
    targets = result["targets"]
    missed = [f"{r['fault']}: {r['target']} {r['value']} (target {r['threshold']})" for r in targets["rows"]]
    missed = [m for m, r in zip(missed, targets["rows"], strict=True) if r["passed"] is False]
    print(
        f"all: mIoU {_cell(summary['all']['miou'])}, healthy mIoU {_cell(summary['healthy']['miou'])}, "
        f"{summary['all']['outputs']} outputs / {summary['all']['anchor_frames']} anchor frames; "
        f"Segmenter p50 {_cell(latency['p50'], 1)} ms; {result['seconds']:.0f} s"
    )
    verdict = {True: "all passed", False: "not all passed", None: "not all measurable"}[targets["passed"]]
    print(f"targets: {verdict}")
    for line in missed:
        print(f"  missed: {line}")


def run_eval(args: argparse.Namespace) -> int:
    import sys

    if args.live:
        print(
            "unimrseg bag eval: --live is not available yet (playing the bag against a running node "
            "comes with the bag player); run without --live for the offline evaluation",
            file=sys.stderr,
        )
        return 2
    from unimrseg_core.bags.evaluate import evaluate_bag
    from unimrseg_core.bags.read import parse_remap
    from unimrseg_core.bags.timeline import write_timeline
    from unimrseg_core.faults import FaultSchedule
    from unimrseg_core.runtime.selection import BackendOptions

    remap = parse_remap(args.remap)
    schedule = FaultSchedule.load(args.faults) if args.faults else None
    options = BackendOptions(
        checkpoint=args.checkpoint, onnx=args.onnx, device=args.device, threads=args.threads or None
    )
    result = evaluate_bag(
        args.bag,
        backend=args.backend,
        options=options,
        remap=remap,
        window_s=args.window,
        faults=schedule,
        progress=not args.quiet,
    )
    _print_eval(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    if args.plots:
        print(f"wrote {write_timeline(result, args.plots / 'timeline.png')}")
    return 0


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
