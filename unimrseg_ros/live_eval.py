"""``unimrseg bag eval --live``: play a bag against the running node and score what it publishes.

The live half of ``unimrseg bag eval``. Three processes on one private ROS domain:

1. ``unimrseg_node`` with ``config/unimrseg.yaml`` (its own process, /diagnostics every 0.2 s);
2. this process: a subscriber for the node's outputs (``segmentation/class_mask``,
   ``saliency/mask``, ``segmentation/status``), ``/diagnostics`` and the player's ``/clock``,
   each message kept with its receive time;
3. ``unimrseg bag play BAG --clock`` (its own process, the recorded timing), started once
   the node reports on /diagnostics, playing the camera topics only.

Then the outputs are matched to the bag's ground truth by header stamp and fed, in time
order with the bag's camera stamps and ground truth, to the same
:class:`~unimrseg_core.bags.score.Scoreboard` as offline, so the JSON has the same layout
(``mode``: ``live``). Times: the node runs on the system clock and the bag on its record
time; the offset between them is the smallest ``receive time - /clock value`` seen (the
player publishes the bag time of the playback position). Health transitions come from
the node's own reports: each sensor's ``state`` and ``state_since_s`` on /diagnostics;
``live`` adds, per fault, when the frames first left the faulted modality out
(``segmentation/status``), the receive latency (receive time - stamp) and the run's
bookkeeping. Every child process is stopped on return, on an exception and on SIGINT /
SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from unimrseg_core import topics
from unimrseg_core.bags.evaluate import (
    RESULT_FORMAT,
    RESULT_VERSION,
    package_versions,
    torch_threads,
    truth_mono8,
)
from unimrseg_core.bags.messages import stamp_to_ns
from unimrseg_core.bags.read import BagError, BagReader
from unimrseg_core.bags.score import DEFAULT_WINDOW_S, Output, Scoreboard
from unimrseg_core.bags.topics import GROUND_TRUTH, SENSORS
from unimrseg_core.faults import FaultSchedule
from unimrseg_core.health import HealthState, Transition
from unimrseg_core.image_msg import MAX_PIXELS
from unimrseg_core.modalities import MODALITIES
from unimrseg_ros.domain import LIVE_DOMAIN_IDS, LIVE_LOCK_DIR, DomainLease, NoFreeDomainError

__all__ = ["CONFIG", "LiveError", "evaluate_live"]

CONFIG: Final = Path(__file__).resolve().parent.parent / "config" / "unimrseg.yaml"
DIAGNOSTICS_PERIOD_S: Final = 0.2
PLAYER_DELAY_S: Final = 3.0
"""The player waits this long after creating its publishers: with 1 s, the node's subscriptions
missed the first 1.8 s of the demo bag on a busy 2-core machine (discovery still running)."""
SAMPLES: Final = "samples.npz"
"""In the log folder: the node's masks at 5 s and at 60 % of each fault (for the demo report's strip)."""
SAMPLE_HEALTHY_S: Final = 5.0
_MODALITY_OF: Final = {t.topic: m for m, t in SENSORS.items()}
_TRUTH_OF: Final = {t.topic: k for k, t in GROUND_TRUTH.items()}
_NS: Final = 1_000_000_000


class LiveError(RuntimeError):
    """The live run could not be made (the node never came up, the player failed)."""


@contextlib.contextmanager
def _domain(requested: int | None) -> Iterator[int]:
    """``requested`` (or ``$ROS_DOMAIN_ID``), else an id locked for this run among live evaluations."""
    if requested is None and os.environ.get("ROS_DOMAIN_ID", "").strip():
        requested = int(os.environ["ROS_DOMAIN_ID"])
    if requested is not None:
        yield requested
        return
    try:
        lease = DomainLease(LIVE_DOMAIN_IDS, LIVE_LOCK_DIR)
    except NoFreeDomainError:
        raise LiveError("no free ROS domain id for the live run; set ROS_DOMAIN_ID") from None
    with lease:
        yield lease.domain_id


class _Children:
    """Child processes, each in its own process group, stopped (SIGINT, then SIGKILL) on close."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class _Collector:
    """The in-process subscriber: the node's outputs, /diagnostics and /clock with receive times."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("unimrseg_live_eval", context=self.context)
        self.lock = threading.Lock()
        self.masks: dict[str, dict[int, tuple[np.ndarray, int]]] = {"class_mask": {}, "saliency": {}}
        self.status: dict[int, tuple[dict[str, str], int]] = {}
        self.diagnostics: list[tuple[int, list[tuple[str, int, dict[str, str]]]]] = []
        self.clock_offsets: list[int] = []
        best_effort = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, topics.CLASS_MASK, self._mask("class_mask"), best_effort)
        self.node.create_subscription(Image, topics.SALIENCY_MASK, self._mask("saliency"), best_effort)
        self.node.create_subscription(DiagnosticArray, topics.STATUS, self._on_status, best_effort)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, reliable)
        self.node.create_subscription(Clock, "/clock", self._on_clock, best_effort)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _mask(self, kind: str) -> Any:
        def callback(msg: Any) -> None:
            now = time.time_ns()
            image = (
                np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)[:, : msg.width].copy()
            )
            with self.lock:
                self.masks[kind][stamp_to_ns(msg.header.stamp)] = (image, now)

        return callback

    def _on_status(self, msg: Any) -> None:
        now = time.time_ns()
        values = {kv.key: kv.value for kv in msg.status[0].values} if msg.status else {}
        with self.lock:
            self.status[stamp_to_ns(msg.header.stamp)] = (values, now)

    def _on_diagnostics(self, msg: Any) -> None:
        now = time.time_ns()
        rows = [(s.name, s.level[0], {kv.key: kv.value for kv in s.values}) for s in msg.status]
        with self.lock:
            self.diagnostics.append((now, rows))

    def _on_clock(self, msg: Any) -> None:
        now = time.time_ns()
        with self.lock:
            self.clock_offsets.append(now - stamp_to_ns(msg.clock))

    def ready(self) -> bool:
        with self.lock:
            return any(name.endswith(": inference") for _, rows in self.diagnostics for name, _, _ in rows)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def _ros_env(domain_id: int) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    env.update({"ROS_DOMAIN_ID": str(domain_id), "PYTHONUNBUFFERED": "1"})
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env


def _transitions(
    diagnostics: list[tuple[int, list[tuple[str, int, dict[str, str]]]]], offset_ns: int
) -> list[Transition]:
    """Health state changes from the sensors' /diagnostics statuses, at their ``state_since_s`` (bag time)."""
    state = dict.fromkeys(MODALITIES, HealthState.LOST)
    out: list[Transition] = []
    for received, rows in diagnostics:
        for name, _, values in rows:
            modality = name.rsplit(": ", 1)[-1]
            if modality not in state or values.get("state") not in {str(s) for s in HealthState}:
                continue
            new = HealthState[values["state"]]
            if new is state[modality]:
                continue
            since = values.get("state_since_s")
            at = round(float(since) * _NS) if since else received
            out.append(Transition(modality, at - offset_ns, state[modality], new, values.get("reasons", "")))
            state[modality] = new
    out.sort(key=lambda t: t.time_ns)
    return out


def _stats_ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return dict.fromkeys(("p50", "p95", "max", "mean"))
    arr = np.asarray(values) * 1e3
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
        "max": round(float(arr.max()), 2),
        "mean": round(float(arr.mean()), 2),
    }


def evaluate_live(
    path: str | Path,
    *,
    domain_id: int | None = None,
    config: Path = CONFIG,
    remap: Mapping[str, str] | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    faults: FaultSchedule | None = None,
    node_args: tuple[str, ...] = (),
    log_dir: Path | None = None,
    ready_timeout_s: float = 90.0,
    progress: bool = False,
) -> dict[str, Any]:
    """Play the bag at ``path`` against ``unimrseg_node`` and score its outputs; the offline JSON layout.

    ``domain_id``: the ROS domain of the run (default ``$ROS_DOMAIN_ID``, else a free one);
    ``config``: the node's params file; ``node_args``: more ``--ros-args`` for it;
    ``log_dir``: where the node's and player's logs go (default a temporary folder).
    Raises :class:`BagError` for an unreadable bag, :class:`LiveError` when the run fails.
    """
    started = time.perf_counter()
    path = Path(path)
    with BagReader(path, remap=remap) as bag:
        present = dict(bag.topics)
        cameras = [m for m, t in SENSORS.items() if t.topic in present]
        if not cameras:
            raise BagError(path, "no camera topic to play (read another name with --remap OLD:=NEW)")
        schedule, source = (faults, "argument") if faults is not None else bag.fault_schedule()
        sequence = bag.sequence()
        t0_ns = int(sequence["start_ns"]) if sequence and "start_ns" in sequence else bag.start_ns
        duration_s = (bag.end_ns - bag.start_ns) / _NS
        bag_info = {
            "path": str(path),
            "storage": bag.storage,
            "start_ns": bag.start_ns,
            "duration_s": round(duration_s, 3),
            "messages": bag.message_count,
            "topics": {t: {"bag_topic": n, "messages": bag.count(t)} for t, n in sorted(present.items())},
            "remap": dict(bag.remap),
            "sequence": sequence,
        }
    play_topics = [present[SENSORS[m].topic] for m in cameras]

    logs = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="unimrseg_live_"))
    logs.mkdir(parents=True, exist_ok=True)
    children = _Children()
    previous = {}
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    collector: _Collector | None = None
    try:
        with _domain(domain_id) as domain:
            env = _ros_env(domain)
            node_cmd = [
                str(Path(sys.prefix) / "bin" / topics.NODE_NAME),
                "--ros-args",
                "--params-file",
                str(config),
                "-p",
                f"diagnostics_period_seconds:={DIAGNOSTICS_PERIOD_S}",
                *node_args,
            ]
            node = children.start(node_cmd, env, logs / "node.log")
            collector = _Collector(domain)
            _say(progress, f"live: domain {domain}, starting unimrseg_node (log {logs / 'node.log'})")
            deadline = time.monotonic() + ready_timeout_s
            while not collector.ready():
                if node.poll() is not None:
                    raise LiveError(f"unimrseg_node exited ({node.returncode}): {_tail(logs / 'node.log')}")
                if time.monotonic() > deadline:
                    raise LiveError(
                        f"unimrseg_node not reporting after {ready_timeout_s:g} s: {_tail(logs / 'node.log')}"
                    )
                time.sleep(0.1)
            play_cmd = [
                str(Path(sys.prefix) / "bin" / "unimrseg"),
                "bag",
                "play",
                str(path),
                "--clock",
                "--delay",
                str(PLAYER_DELAY_S),
                "--topics",
                *play_topics,
                "--json",
                str(logs / "play.json"),
            ]
            if bag_info["remap"]:
                play_cmd += ["--remap", *(f"{a}:={b}" for a, b in bag_info["remap"].items())]
            _say(progress, f"live: playing {path.name} ({duration_s:.0f} s) against the node")
            player = children.start(play_cmd, env, logs / "play.log")
            t_play = time.monotonic()
            last = -10.0
            while player.poll() is None:
                elapsed = time.monotonic() - t_play
                if progress and elapsed - last >= 5.0:
                    last = elapsed
                    with collector.lock:
                        n = len(collector.masks["class_mask"])
                    print(f"live: {elapsed:5.1f} s played, {n} outputs received", flush=True)
                if node.poll() is not None:
                    raise LiveError(f"unimrseg_node exited during playback: {_tail(logs / 'node.log')}")
                time.sleep(0.2)
            if player.returncode != 0:
                raise LiveError(f"bag play failed ({player.returncode}): {_tail(logs / 'play.log')}")
            time.sleep(1.0)  # the last frames' outputs and a last /diagnostics
            with collector.lock:
                masks = {k: dict(v) for k, v in collector.masks.items()}
                status = dict(collector.status)
                diagnostics = list(collector.diagnostics)
                offsets = list(collector.clock_offsets)
    finally:
        if collector is not None:
            collector.close()
        children.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not offsets:
        raise LiveError("no /clock from the player: cannot place the node's times on the bag's")
    offset_ns = int(min(offsets))
    _say(
        progress, f"live: {len(masks['class_mask'])} outputs received; scoring against the bag's ground truth"
    )
    with torch_threads(1):  # torchmetrics' confusion matrix: 1.6 ms a frame on one thread, 110 on two
        result = _score(
            path, remap, schedule, t0_ns, sequence, window_s, masks, status, diagnostics, offset_ns
        )
    _save_samples(logs / SAMPLES, schedule, t0_ns, masks, status)
    play_report: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        import json

        play_report = json.loads((logs / "play.json").read_text())
    inference = _last_inference(diagnostics)
    result["live"] = {
        "domain_id": domain,
        "clock_offset_s": round(offset_ns / _NS, 6),
        "logs": str(logs),
        "player": {
            k: play_report.get(k)
            for k in ("messages", "wall_s", "expected_s", "timing_error_pct", "lateness_ms")
        },
        "node": {
            k: inference.get(k)
            for k in ("backend", "precision", "device", "dropped_frames", "published_frames", "fps")
        },
        **result.pop("_live"),
    }
    return {
        "format": RESULT_FORMAT,
        "version": RESULT_VERSION,
        "mode": "live",
        "bag": bag_info,
        "backend": {"name": inference.get("backend"), "notes": [inference.get("backend_notes", "")]},
        "versions": package_versions(),
        "config": {"window_s": window_s, "node_params": str(config), "node_args": list(node_args)},
        "schedule": {
            "source": source,
            "t0_ns": t0_ns,
            "seed": schedule.seed if schedule is not None else None,
            "faults": [f.to_dict() for f in schedule] if schedule is not None else [],
        },
        **result,
        "seconds": round(time.perf_counter() - started, 2),
    }


def sample_times(schedule: FaultSchedule | None) -> list[tuple[str, float]]:
    """(label, seconds from t0) of the frames :data:`SAMPLES` keeps: a healthy one, then one per fault."""
    out = [("healthy", SAMPLE_HEALTHY_S)]
    out += [
        (f"{f.modality} {f.kind} {f.start_s:g}-{f.end_s:g} s", f.start_s + 0.6 * (f.end_s - f.start_s))
        for f in schedule or ()
    ]
    return out


def _save_samples(
    file: Path,
    schedule: FaultSchedule | None,
    t0_ns: int,
    masks: dict[str, dict[int, tuple[np.ndarray, int]]],
    status: dict[int, tuple[dict[str, str], int]],
) -> None:
    stamps = sorted(masks["class_mask"])
    if not stamps:
        return
    arrays: dict[str, Any] = {}
    for k, (label, t_s) in enumerate(sample_times(schedule)):
        want = t0_ns + round(t_s * _NS)
        stamp = min(stamps, key=lambda s: abs(s - want))
        class_ids = masks["class_mask"][stamp][0]
        arrays[f"class_mask_{k}"] = class_ids
        arrays[f"saliency_{k}"] = masks["saliency"].get(stamp, (np.zeros_like(class_ids), 0))[0]
        values = status.get(stamp, ({}, 0))[0]
        arrays[f"meta_{k}"] = np.array(
            [
                label,
                str(stamp),
                values.get("used", "?"),
                "; ".join(f"{k}: {v}" for k, v in values.items() if k.startswith("skipped.")),
            ]
        )
    np.savez_compressed(file, **arrays)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)


def _tail(log: Path, n: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def _last_inference(diagnostics: list[tuple[int, list[tuple[str, int, dict[str, str]]]]]) -> dict[str, str]:
    for _, rows in reversed(diagnostics):
        for name, _, values in rows:
            if name.endswith(": inference"):
                return values
    return {}


def _score(
    path: Path,
    remap: Mapping[str, str] | None,
    schedule: FaultSchedule | None,
    t0_ns: int,
    sequence: Mapping[str, Any] | None,
    window_s: float,
    masks: dict[str, dict[int, tuple[np.ndarray, int]]],
    status: dict[int, tuple[dict[str, str], int]],
    diagnostics: list[tuple[int, list[tuple[str, int, dict[str, str]]]]],
    offset_ns: int,
) -> dict[str, Any]:
    """Feed the Scoreboard in bag-time order: the bag's camera stamps and ground truth, the outputs."""
    scene_s = sequence.get("segment_s") if sequence else None
    events: list[tuple[int, int, Any]] = []  # (bag time, order, what)
    receive_latency: list[float] = []
    for stamp, (class_ids, received) in masks["class_mask"].items():
        saliency = masks["saliency"].get(stamp, (np.zeros_like(class_ids), received))[0]
        values = status.get(stamp, ({}, received))[0]
        time_ns = received - offset_ns
        receive_latency.append((time_ns - stamp) / _NS)
        skipped = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("skipped.")}
        latency_ms = values.get("latency_ms")
        output = Output(
            stamp_ns=stamp,
            time_ns=time_ns,
            anchor=values.get("anchor", ""),
            used=values.get("used", "?"),
            class_ids=class_ids,
            saliency=saliency,
            latency_s=float(latency_ms) / 1e3 if latency_ms else None,
            waited_ns=round(float(values.get("waited_ms", 0) or 0) * 1e6),
            skipped=skipped,
        )
        events.append((time_ns, 1, output))
    with BagReader(path, remap=remap) as bag:
        present = bag.topics
        end_ns = bag.end_ns
        truth_kinds = [_TRUTH_OF[t] for t in present if t in _TRUTH_OF]
        board = Scoreboard(
            schedule,
            t0_ns,
            window_s=window_s,
            truth_kinds=truth_kinds,
            scene_s=float(scene_s) if isinstance(scene_s, (int, float)) and scene_s > 0 else None,
        )
        topics = [t for t in present if t in _MODALITY_OF or t in _TRUTH_OF]
        for message in bag.messages(topics):
            stamp = stamp_to_ns(message.msg.header.stamp)
            kind = _TRUTH_OF.get(message.topic)
            if kind is not None:
                image = truth_mono8(path, message.bag_topic, message.msg, MAX_PIXELS)
                events.append((message.record_ns, 0, (kind, stamp, image)))
            else:
                events.append((message.record_ns, 0, (_MODALITY_OF[message.topic], stamp)))
    events.sort(key=lambda e: (e[0], e[1]))
    for time_ns, _, what in events:
        if isinstance(what, Output):
            board.add_output(what)
        elif len(what) == 3:
            board.add_truth(what[0], what[1], what[2], time_ns)
        else:
            board.add_input(what[0], what[1])
    # the cameras all fall silent when the bag ends: not a fault, not part of the run
    transitions = [t for t in _transitions(diagnostics, offset_ns) if t.time_ns <= end_ns]
    board.add_transitions(transitions)
    # the faulted modality's expected period when each fault began, from the node's reports
    periods: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for received, rows in diagnostics:
        for name, _, values in rows:
            modality = name.rsplit(": ", 1)[-1]
            if modality in MODALITIES and values.get("expected_period_s"):
                with contextlib.suppress(ValueError):
                    periods[modality].append((received - offset_ns, float(values["expected_period_s"]) * _NS))
    left_out: list[dict[str, Any]] = []
    for i, fault in enumerate(schedule or ()):
        start = t0_ns + round(fault.start_s * _NS)
        before = [p for t, p in periods[fault.modality] if t <= start and p > 0]
        if before:
            board.note_period(i, before[-1])
        first = min(
            (
                s
                for s, (values, _) in status.items()
                if start <= s < t0_ns + round(fault.end_s * _NS) and f"skipped.{fault.modality}" in values
            ),
            default=None,
        )
        left_out.append(
            {
                "index": i,
                "first_frame_without_s": None if first is None else round((first - start) / _NS, 3),
            }
        )
    result = board.result()
    for row, extra in zip(result["faults"], left_out, strict=True):
        row["left_out"] = extra
    result["_live"] = {
        "outputs_received": len(masks["class_mask"]),
        "status_received": len(status),
        "diagnostics_received": len(diagnostics),
        "receive_latency_ms": _stats_ms(receive_latency),
    }
    return result
