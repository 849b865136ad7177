"""``unimrseg bag make|eval|play|record``: the bag tools' command line.

Every bag command needs the ``rosbags`` package, play, record and ``eval --live`` also ROS 2's
rclpy; both are imported only when such a command runs (a missing one ends the command with
one line on stderr and exit status 2), so that registering these parsers costs neither and
the other ``unimrseg`` subcommands work where they are not installed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_eval", "run_make", "run_play", "run_record"]


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
    from unimrseg_core.bags.topics import STORAGE_NAMES
    from unimrseg_core.cli_types import parse_size
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
    make.add_argument("--duration", type=_positive_float, default=60.0, help="seconds (default 60)")
    make.add_argument("--rate", type=_positive_float, default=10.0, help="camera rate in Hz (default 10)")
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
        type=_positive_float,
        default=20.0,
        help="seconds per scene before a new one (default 20)",
    )
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=run_make)
    _add_eval(bag_cmds)
    _add_play(bag_cmds)
    _add_record(bag_cmds)
    return bag_cmds


def _add_eval(bag_cmds: argparse._SubParsersAction) -> None:
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
        "ground_truth/saliency, faults/timeline, faults/events)",
    )
    ev.add_argument(
        "--window",
        type=_positive_float,
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
    if not _import_rosbags("eval", "read"):
        return 2
    if args.live:
        return _run_live(args)
    from unimrseg_core.bags.evaluate import DEFAULT_WINDOW_S, evaluate_bag
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
        window_s=DEFAULT_WINDOW_S if args.window is None else args.window,
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
    if not _import_rosbags("make", "write"):
        return 2
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


# --------------------------------------------------------------------------- play / record (need rclpy)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _add_play(bag_cmds: argparse._SubParsersAction) -> None:
    play = bag_cmds.add_parser(
        "play",
        help="play any rosbag2 bag into live topics with its recorded timing (and /clock)",
        description="Publishes every message as the recorded bytes (no deserialization), on the recorded "
        "timing scaled by --rate, with the QoS its publishers offered (see README 'Bags and faults'). "
        "Needs ROS 2's rclpy.",
    )
    play.add_argument("bag", type=Path, metavar="BAG", help="rosbag2 bag directory (or .mcap / .db3 file)")
    play.add_argument("--rate", type=_positive_float, default=1.0, help="playback speed factor (default 1)")
    play.add_argument(
        "--clock",
        type=_positive_float,
        nargs="?",
        const=40.0,
        metavar="HZ",
        help="also publish /clock (bag time) for use_sim_time nodes, at HZ (default 40)",
    )
    play.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    play.add_argument(
        "--topics", nargs="+", default=[], metavar="TOPIC", help="play only these topics (default all)"
    )
    play.add_argument(
        "--remap",
        nargs="+",
        action="extend",
        default=[],
        metavar="OLD:=NEW",
        help="publish recorded topic OLD as NEW (e.g. /camera/color/image_raw:=rgb/image)",
    )
    play.add_argument("--start", type=_seconds, default=0.0, help="skip this many seconds of the bag")
    play.add_argument("--duration", type=_positive_float, help="play at most this many seconds of the bag")
    play.add_argument(
        "--delay",
        type=_seconds,
        default=1.0,
        help="seconds between creating the publishers and the first message, for DDS discovery (1)",
    )
    play.add_argument(
        "--reliability", choices=("reliable", "best_effort"), help="override every topic's recorded QoS"
    )
    play.add_argument(
        "--skip-unknown", action="store_true", help="leave out topics whose type rclpy cannot import"
    )
    play.add_argument(
        "--shm-segment-mb",
        type=_seconds,
        help="Fast DDS shared-memory segment of the player (default $UNIMRSEG_SHM_SEGMENT_MB or 8; 0: as is)",
    )
    play.add_argument("--json", type=Path, help="write the playback report here")
    play.set_defaults(func=run_play)


def _add_record(bag_cmds: argparse._SubParsersAction) -> None:
    from unimrseg_core.bags.topics import STORAGE_NAMES

    record = bag_cmds.add_parser(
        "record",
        help="record live topics into a rosbag2 bag until Ctrl-C / SIGTERM or --duration",
        description="Types come from the ROS graph, messages are stored as received (no "
        "deserialization) with their receive time and the publishers' QoS. Needs ROS 2's rclpy.",
    )
    record.add_argument("topics", nargs="+", metavar="TOPIC", help="topics to record")
    record.add_argument("--out", type=Path, required=True, help="bag directory to create (must not exist)")
    record.add_argument(
        "--storage", choices=STORAGE_NAMES, default="mcap", help="storage plugin (default mcap)"
    )
    record.add_argument("--duration", type=_positive_float, help="stop after this many seconds")
    record.add_argument(
        "--wait",
        type=_seconds,
        default=10.0,
        help="seconds to wait at the start for the topics' publishers (default 10)",
    )
    record.add_argument("--json", type=Path, help="write the recording report here")
    record.set_defaults(func=run_record)


def _run_live(args: argparse.Namespace) -> int:
    """``bag eval --live``: the node and the player in their own processes (unimrseg_ros.live_eval)."""
    import sys

    if not _import_ros("eval --live"):
        return 2
    from unimrseg_core.bags.read import parse_remap
    from unimrseg_core.bags.score import DEFAULT_WINDOW_S
    from unimrseg_core.bags.timeline import write_timeline
    from unimrseg_core.faults import FaultSchedule
    from unimrseg_ros.live_eval import LiveError, evaluate_live

    try:
        result = evaluate_live(
            args.bag,
            domain_id=args.domain_id,
            remap=parse_remap(args.remap),
            window_s=DEFAULT_WINDOW_S if args.window is None else args.window,
            faults=FaultSchedule.load(args.faults) if args.faults else None,
            log_dir=args.logs,
            progress=not args.quiet,
        )
    except LiveError as exc:
        print(f"unimrseg bag eval --live: {exc}", file=sys.stderr)
        return 1
    _print_eval(result)
    live = result["live"]
    print(
        f"live: {live['outputs_received']} outputs received, receive latency p50 "
        f"{_cell(live['receive_latency_ms']['p50'], 1)} ms, node dropped {live['node'].get('dropped_frames')}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    if args.plots:
        print(f"wrote {write_timeline(result, args.plots / 'timeline.png')}")
    return 0


def _import_rosbags(command: str, *modules: str) -> bool:
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


def _import_ros(command: str) -> bool:
    """rclpy importable (AMENT_PREFIX_PATH defaults to this venv); else explain and return False."""
    import os
    import sys

    if not os.environ.get("AMENT_PREFIX_PATH") and (Path(sys.prefix) / "share" / "ament_index").is_dir():
        os.environ["AMENT_PREFIX_PATH"] = sys.prefix  # rclpy finds the rmw and message types through it
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        print(
            f"unimrseg bag {command}: needs ROS 2's rclpy, which cannot be imported ({exc}); "
            "`make setup` installs it into .venv, or source a ROS 2 workspace",
            file=sys.stderr,
        )
        return False
    return True


def _until_signal(run: Any) -> Any:
    """``run(stop)`` with SIGINT and SIGTERM setting ``stop`` (the command then ends cleanly)."""
    import signal
    import threading

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _write_json(path: Path | None, data: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {path}")


def run_play(args: argparse.Namespace) -> int:
    if not (_import_rosbags("play", "read", "raw") and _import_ros("play")):
        return 2
    from unimrseg_core.bags.read import parse_remap
    from unimrseg_ros.bag_player import PlayOptions, play_bag

    options = PlayOptions(
        rate=args.rate,
        clock=args.clock is not None,
        clock_hz=args.clock or 40.0,
        loop=args.loop,
        topics=tuple(args.topics),
        remap=parse_remap(args.remap),
        start_s=args.start,
        duration_s=args.duration,
        delay_s=args.delay,
        reliability=args.reliability,
        skip_unknown=args.skip_unknown,
        segment_mb=args.shm_segment_mb,
    )
    print(f"playing {args.bag} at x{args.rate:g}{' with /clock' if options.clock else ''}", flush=True)
    report = _until_signal(lambda stop: play_bag(args.bag, options, stop=stop))
    summary = report.as_json()
    print(json.dumps(summary, indent=1))
    late, error = summary["lateness_ms"], summary["timing_error_pct"]
    timing = "-" if error is None else f"{error:+.2f} %"
    print(
        f"played {summary['messages']} messages on {len(summary['topics'])} topics in "
        f"{summary['wall_s']:.2f} s (recorded timing {summary['expected_s']:.2f} s, error {timing}; "
        f"lateness p50 {late['p50']:.2f} ms, p95 {late['p95']:.2f} ms, max {late['max']:.2f} ms)"
        + (", interrupted" if summary["interrupted"] else "")
    )
    _write_json(args.json, summary)
    return 0


def run_record(args: argparse.Namespace) -> int:
    if not (_import_rosbags("record", "write") and _import_ros("record")):
        return 2
    from unimrseg_ros.bag_recorder import RecordOptions, record_bag

    options = RecordOptions(
        out=args.out,
        topics=tuple(args.topics),
        storage=args.storage,
        duration_s=args.duration,
        wait_s=args.wait,
    )
    print(f"recording into {args.out} ({args.storage}); Ctrl-C stops", flush=True)
    report = _until_signal(lambda stop: record_bag(options, stop=stop))
    summary = report.as_json()
    print(json.dumps(summary, indent=1))
    total = sum(t["messages"] for t in summary["topics"].values())
    seconds, why = summary["seconds"], summary["stopped_by"]
    print(f"wrote {args.out} ({total} messages, {seconds:.1f} s, stopped by {why})")
    _write_json(args.json, summary)
    return 0
