"""``unimrseg bag make|eval``: the core's bag commands, and the hook for the ROS ones.

Every bag command needs the ``rosbags`` package, imported only when the command runs (a
missing one ends the command with one line on stderr and exit status 2), so that
registering these parsers costs nothing and the other ``unimrseg`` subcommands work where
it is not installed. ``bag play``, ``bag record`` and ``bag eval --live`` need ROS 2's
rclpy: they live in :mod:`unimrseg_ros.cli`, which adds them to ``bag`` as a plugin
(:mod:`unimrseg_core.cli_plugins`, entry point ``unimrseg.commands: bag``); ``eval --live``
runs the ``run_live`` that plugin sets on the ``eval`` parser. The core imports no ROS.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = [
    "add_parser",
    "exit_status",
    "import_rosbags",
    "make_transports",
    "nothing_scored",
    "print_eval",
    "run_eval",
    "run_make",
    "write_eval",
]


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
    """Register ``bag`` with ``make`` and ``eval``, then the plugins' subcommands; returns ``bag``'s."""
    from unimrseg_core.bags.topics import STORAGE_NAMES
    from unimrseg_core.cli_plugins import add_plugin_commands
    from unimrseg_core.cli_types import parse_size, positive_float
    from unimrseg_core.data.splits import TEST_SEED

    bag = groups.add_parser("bag", help="rosbag2 bags: make, eval, play, record")
    bag_cmds = bag.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    make = bag_cmds.add_parser(
        "make",
        help="write a bag of the procedural world seen by a moving camera, with faults baked in",
        description="A rosbag2 bag: rgb/depth/thermal images, ground-truth masks and the fault "
        "timeline (see README 'Bags and faults').",
    )
    make.add_argument("--out", type=Path, required=True, help="bag directory to create (must not exist)")
    make.add_argument("--duration", type=positive_float, default=60.0, help="seconds (default 60)")
    make.add_argument("--rate", type=positive_float, default=10.0, help="camera rate in Hz (default 10)")
    make.add_argument("--size", type=parse_size, default=(240, 320), help="HEIGHTxWIDTH (default 240x320)")
    make.add_argument("--faults", type=Path, help="fault schedule YAML (e.g. config/faults_demo.yaml)")
    make.add_argument(
        "--storage", choices=STORAGE_NAMES, default="mcap", help="storage plugin (default mcap)"
    )
    make.add_argument(
        "--seed", type=_count(0), default=TEST_SEED, help="world seed (default: the held-out test seed)"
    )
    make.add_argument("--workers", type=_count(1), default=1, help="rendering processes (default 1)")
    make.add_argument(
        "--segment",
        type=positive_float,
        default=20.0,
        help="seconds per scene before a new one (default 20)",
    )
    make.add_argument(
        "--rig",
        action="store_true",
        help="cameras as on a robot: each with its own resolution, field of view and mounting "
        "(data.rig.DEMO_RIG), <modality>/camera_info beside every image and /tf_static",
    )
    make.add_argument(
        "--transport",
        nargs="+",
        action="extend",
        default=[],
        metavar="[MODALITY=]TRANSPORT",
        help="record cameras as image_transport publishes them: 'compressed' for every camera, "
        "MODALITY=TRANSPORT for one (compressed, compressedDepth; default raw), e.g. --transport "
        "compressed depth=compressedDepth",
    )
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=run_make)
    _add_eval(bag_cmds)
    add_plugin_commands("bag", bag_cmds)
    return bag_cmds


def _add_eval(bag_cmds: argparse._SubParsersAction) -> None:
    from unimrseg_core.cli_types import positive_float
    from unimrseg_core.runtime.options import BACKENDS  # torch-free: `unimrseg --help` stays fast

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
        "ground_truth/saliency, faults/timeline, faults/events, <modality>/camera_info, tf_static)",
    )
    ev.add_argument(
        "--transport",
        nargs="+",
        action="extend",
        default=[],
        metavar="MODALITY=TRANSPORT",
        help="which recorded transport of a camera to read when the bag has several (raw, compressed, "
        "compressedDepth; default raw, else the CompressedImage topic the bag has, detected by type)",
    )
    ev.add_argument(
        "--extrinsic",
        nargs="+",
        action="extend",
        default=[],
        metavar="MODALITY='X Y Z QX QY QZ QW'",
        help="a camera's pose in the reference (first anchor) camera's optical frame, as the node's "
        "<modality>.extrinsic parameter; before the bag's /tf_static (for bags without one)",
    )
    ev.add_argument(
        "--no-registration",
        action="store_true",
        help="only resize the cameras' images, as the node with registration.enabled false "
        "(default: register them with the bag's CameraInfo and /tf_static, as the node does)",
    )
    ev.add_argument(
        "--window",
        type=positive_float,
        default=None,
        help="seconds per time window (default: bags.score.DEFAULT_WINDOW_S, 2)",
    )
    ev.add_argument("--faults", type=Path, help="fault schedule YAML instead of the one in the bag")
    ev.add_argument(
        "--live",
        action="store_true",
        help="play the bag (bag play, real timing) against unimrseg_node (config/unimrseg.yaml) in its "
        "own processes on a private ROS domain (--domain-id, else $ROS_DOMAIN_ID, else a free one) and "
        "score what the node publishes",
    )
    ev.add_argument("--domain-id", type=int, help="ROS domain of the --live run")
    ev.add_argument("--logs", type=Path, help="--live: keep the node's and player's logs here")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=run_eval, run_live=None)  # the ROS plugin sets run_live


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _short(fault: dict[str, Any]) -> str:
    """``thermal drop 10-18 s``: a fault without its parameters, for narrow tables."""
    return f"{fault['modality']} {fault['kind']} {fault['start_s']:g}-{fault['end_s']:g} s"


def print_eval(result: dict[str, Any]) -> None:
    """The tables and summary lines of a ``bag eval`` result, offline or live (its ``live`` line)."""
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
    verdict = {
        "passed": "all passed",
        "failed": "not all passed",
        "not measurable": "not all measurable",
        "no data": "no data (no output frame)",
        "no targets": "none (the bag has no fault schedule)",
    }[targets["status"]]
    print(f"targets: {verdict}")
    _print_registration(result.get("registration"))
    for modality, row in result["inputs"].items():
        if row["rejected"]:
            rejected = ", ".join(f"{n} x {why}" for why, n in row["rejected"].items())
            print(f"  rejected {modality}: {rejected} of {row['messages']} messages")
    for line in missed:
        print(f"  missed: {line}")
    if "live" in result:
        live = result["live"]
        print(
            f"live: {live['outputs_received']} outputs received, receive latency p50 "
            f"{_cell(live['receive_latency_ms']['p50'], 1)} ms, node dropped "
            f"{live['node'].get('dropped_frames')}"
        )


def _print_registration(registration: dict[str, Any] | None) -> None:
    """One line per camera: how it reached the anchor camera (and in how many frames), and where
    its extrinsic came from."""
    if not registration:
        return
    state = "" if registration["enabled"] else " off (--no-registration): every image resized"
    print(f"registration into the anchor camera (extrinsics relative to {registration['reference']}){state}:")
    for modality, row in registration["modalities"].items():
        counts = row["outcomes"]
        total = sum(counts.values())
        how = row["how"] or "no frame"
        share = (
            f" ({counts[how]} of {total} {registration.get('counted', 'frames')})" if how in counts else ""
        )
        source = row.get("extrinsic_source")
        print(f"  {modality}: {how}{share}" + (f"; extrinsic: {source}" if source else ""))


def write_eval(result: dict[str, Any], json_path: Path | None, plots: Path | None) -> None:
    """``--json`` and ``--plots`` of ``bag eval``: the result file (strict JSON) and its timeline PNG."""
    from unimrseg_core.bags.timeline import write_timeline

    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
        print(f"wrote {json_path}")
    if plots:
        print(f"wrote {write_timeline(result, plots / 'timeline.png')}")


def run_eval(args: argparse.Namespace) -> int:
    """``bag eval``: offline here; ``--live`` is run by the ROS plugin's ``run_live``."""
    import sys

    if not import_rosbags("eval", "read"):
        return 2
    if args.live:
        if args.run_live is None:
            print(
                "unimrseg bag eval --live: needs the ROS 2 bag tools (unimrseg_ros.cli, entry point "
                "'unimrseg.commands: bag'), which are not installed; `make setup` installs them",
                file=sys.stderr,
            )
            return 2
        return int(args.run_live(args))
    from unimrseg_core.bags.calibration import parse_extrinsics
    from unimrseg_core.bags.evaluate import DEFAULT_WINDOW_S, evaluate_bag
    from unimrseg_core.bags.read import parse_remap, parse_transports
    from unimrseg_core.faults import FaultSchedule
    from unimrseg_core.runtime.selection import BackendOptions

    remap = parse_remap(args.remap)
    transports = parse_transports(args.transport)
    extrinsics = parse_extrinsics(args.extrinsic)
    schedule = FaultSchedule.load(args.faults) if args.faults else None
    options = BackendOptions(
        checkpoint=args.checkpoint, onnx=args.onnx, device=args.device, threads=args.threads or None
    )
    result = evaluate_bag(
        args.bag,
        backend=args.backend,
        options=options,
        remap=remap,
        transports=transports,
        window_s=DEFAULT_WINDOW_S if args.window is None else args.window,
        faults=schedule,
        extrinsics=extrinsics,
        registration=not args.no_registration,
        progress=not args.quiet,
    )
    print_eval(result)
    write_eval(result, args.json, args.plots)
    return exit_status(result)


def nothing_scored(result: dict[str, Any]) -> str | None:
    """Why a ``bag eval`` result has no output frame at all (None when it has some): the camera
    messages' rejection reasons and counts, else what the health and frame assembly did."""
    if result["summary"]["all"]["outputs"] > 0:
        return None
    inputs = result["inputs"]
    rejected = [f"{m} {n} x {why}" for m, row in inputs.items() for why, n in sorted(row["rejected"].items())]
    messages = sum(row["messages"] for row in inputs.values())
    if rejected and sum(sum(row["rejected"].values()) for row in inputs.values()) == messages:
        return (
            f"no frame could be scored: all {messages} camera messages were rejected ({', '.join(rejected)})"
        )
    detail = f"; rejected: {', '.join(rejected)}" if rejected else ""
    return f"no frame could be scored: no output frame from {messages} camera messages{detail}"


def exit_status(result: dict[str, Any]) -> int:
    """1 with the reason on stderr when no frame could be scored (a silent 0 would read as success)."""
    import sys

    reason = nothing_scored(result)
    if reason is None:
        return 0
    print(f"unimrseg bag eval: {reason}", file=sys.stderr)
    return 1


def run_make(args: argparse.Namespace) -> int:
    if not import_rosbags("make", "write"):
        return 2
    from unimrseg_core.bags.write import make_bag
    from unimrseg_core.data.rig import DEMO_RIG
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
        rig=DEMO_RIG if args.rig else None,
        transports=make_transports(args.transport),
    )
    print(json.dumps(summary.as_json(), indent=1))
    print(f"wrote {summary.path} ({summary.frames} frames, {summary.seconds:.1f} s)")
    return 0


def make_transports(items: list[str]) -> dict[str, str]:
    """``bag make --transport``: a bare TRANSPORT for every camera, then MODALITY=TRANSPORT items
    for one each; ValueError for a transport a camera does not have (named)."""
    from unimrseg_core.bags.read import parse_transports
    from unimrseg_core.topics import TRANSPORTS

    every = [item.strip() for item in items if "=" not in item]
    if len(every) > 1:
        raise ValueError(f"--transport: one transport for every camera, got {', '.join(every)}")
    chosen = dict.fromkeys(TRANSPORTS, every[0]) if every else {}
    chosen.update(parse_transports([item for item in items if "=" in item]))
    return chosen


def import_rosbags(command: str, *modules: str) -> bool:
    """The command's bag ``modules`` (and the rosbags they stand on) import; else explain, return False.

    Only a missing rosbags (or part of it) is explained; any other import error is a bug and raises.
    """
    import importlib
    import sys

    try:
        for module in modules:
            importlib.import_module(f"unimrseg_core.bags.{module}")
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "rosbags":
            raise
        print(
            f"unimrseg bag {command}: needs the Python package rosbags, which cannot be imported "
            f"({exc}); install it with `pip install rosbags` (`make setup` installs it into .venv)",
            file=sys.stderr,
        )
        return False
    return True
