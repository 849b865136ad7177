"""``unimrseg bag play|record`` and ``bag eval --live``: the bag commands that need ROS 2's rclpy.

A plugin of the core's ``unimrseg`` command: setup.py registers :func:`add_bag_commands`
under the entry-point group ``unimrseg.commands`` with the name ``bag``, and the core's
``bag`` parser calls it (:mod:`unimrseg_core.cli_plugins`), so the core never imports
this package or rclpy. Building the parser imports no ROS either: rosbags and rclpy are
imported when a command runs, and a missing one ends it with one line on stderr and exit
status 2, as for the core's bag commands.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from unimrseg_core.bags.cli import exit_status, import_rosbags, print_eval, write_eval
from unimrseg_core.cli_types import non_negative_float, positive_float

__all__ = ["add_bag_commands", "require_rclpy", "run_live", "run_play", "run_record"]


def add_bag_commands(bag_cmds: argparse._SubParsersAction) -> None:
    """The plugin: ``bag play`` and ``bag record``, and ``run_live`` for the core's ``bag eval --live``."""
    _add_play(bag_cmds)
    _add_record(bag_cmds)
    bag_cmds.choices["eval"].set_defaults(run_live=run_live)


def _add_play(bag_cmds: argparse._SubParsersAction) -> None:
    play = bag_cmds.add_parser(
        "play",
        help="play any rosbag2 bag into live topics with its recorded timing (and /clock)",
        description="Publishes every message as the recorded bytes (no deserialization), on the recorded "
        "timing scaled by --rate, with the QoS its publishers offered (see README 'Bags and faults'). "
        "Needs ROS 2's rclpy.",
    )
    play.add_argument("bag", type=Path, metavar="BAG", help="rosbag2 bag directory (or .mcap / .db3 file)")
    play.add_argument("--rate", type=positive_float, default=1.0, help="playback speed factor (default 1)")
    play.add_argument(
        "--clock",
        type=positive_float,
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
    play.add_argument(
        "--start", type=non_negative_float, default=0.0, help="skip this many seconds of the bag"
    )
    play.add_argument("--duration", type=positive_float, help="play at most this many seconds of the bag")
    play.add_argument(
        "--delay",
        type=non_negative_float,
        default=1.0,
        help="seconds between creating the publishers and the first message, for DDS discovery (1)",
    )
    play.add_argument(
        "--reliability", choices=("reliable", "best_effort"), help="override every topic's recorded QoS"
    )
    play.add_argument(
        "--skip-unknown",
        action="store_true",
        help="leave out --topics whose type rclpy cannot import (playing the whole bag, they are always "
        "left out with a note, e.g. a robot's /tf_static)",
    )
    play.add_argument(
        "--shm-segment-mb",
        type=non_negative_float,
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
    record.add_argument("--duration", type=positive_float, help="stop after this many seconds")
    record.add_argument(
        "--wait",
        type=non_negative_float,
        default=10.0,
        help="seconds to wait at the start for the topics' publishers (default 10)",
    )
    record.add_argument("--json", type=Path, help="write the recording report here")
    record.set_defaults(func=run_record)


def run_live(args: argparse.Namespace) -> int:
    """``bag eval --live``, once the core found rosbags: the node and the player in their own processes."""
    import sys

    if not require_rclpy("eval --live"):
        return 2
    from unimrseg_core.bags.calibration import parse_extrinsics
    from unimrseg_core.bags.read import parse_remap, parse_transports
    from unimrseg_core.bags.score import DEFAULT_WINDOW_S
    from unimrseg_core.faults import FaultSchedule
    from unimrseg_ros.live_eval import LiveError, evaluate_live

    try:
        result = evaluate_live(
            args.bag,
            domain_id=args.domain_id,
            remap=parse_remap(args.remap),
            transports=parse_transports(args.transport),
            window_s=DEFAULT_WINDOW_S if args.window is None else args.window,
            faults=FaultSchedule.load(args.faults) if args.faults else None,
            log_dir=args.logs,
            extrinsics=parse_extrinsics(args.extrinsic),
            registration=not args.no_registration,
            progress=not args.quiet,
        )
    except LiveError as exc:
        print(f"unimrseg bag eval --live: {exc}", file=sys.stderr)
        return 1
    print_eval(result)
    write_eval(result, args.json, args.plots)
    return exit_status(result)


def require_rclpy(command: str) -> bool:
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
    """The ``--json`` report of play and record (when asked for)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {path}")


def run_play(args: argparse.Namespace) -> int:
    """``bag play``: the recorded bytes on their recorded timing, until the end, Ctrl-C or SIGTERM."""
    if not (import_rosbags("play", "read", "raw") and require_rclpy("play")):
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
    """``bag record``: the topics as received, until --duration, Ctrl-C or SIGTERM."""
    if not (import_rosbags("record", "write") and require_rclpy("record")):
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
