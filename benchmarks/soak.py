"""Soak: ``unimrseg_node`` at 30 Hz for minutes, its cameras broken by a schedule cycling through every fault.

Processes on one private ROS domain, wired as on a robot under test:

    unimrseg_ros.sensor_sim x3 (rgb8 / 16UC1 / mono16 at --rate Hz, one process per camera,
        stamps on the system clock's tick grid)  ->  rgb/image, depth/image, thermal/image
    unimrseg_fault_injector (the soak schedule, repeated for the whole run)  ->  injected/<m>/image
    unimrseg_node (config/unimrseg.yaml, network input --input)  ->  segmentation/class_mask,
        segmentation/status, /diagnostics  ->  this process

The schedule (:func:`soak_cycle`) comes from the fault model's table
(:data:`unimrseg_core.faults.KINDS`): every kind on every modality it applies to, one at
a time, each followed by a healthy gap, so every cycle has each fault's detection and
recovery; the cycle repeats until the run ends. Its time 0 is the injector's first camera
message, which the injector publishes on ``faults/active`` (``schedule.t0_ns``).

Sampled every second: RSS (VmRSS of the process and its children), threads and CPU time of
every process. Every output: its stamp and receive time (latency = receive - camera stamp:
camera -> injector -> node -> here) and, from ``segmentation/status``, the node's count of
frames it shed so far (its one-slot inference hand-off replaces a frame still waiting when
a newer one comes: ``dropped_frames``). /diagnostics: inference time, drops, sensor states.

Analysis; warm-up = the first ``min(20 % of the run, 60 s)``, left out of every target;
the first and last windows are ``min(60 s, 25 % of the run after warm-up)`` long:

- RSS growth = (last-window median - first-window median) / first-window median of the
  node's RSS; target < 5 %. The least-squares slope after warm-up is reported in MB/h.
- Latency drift, outputs outside fault windows: each window's p50 is reported; the check
  takes each window's best 5 s (the 5-s slice with the lowest p50) and wants
  last <= first x slowdown + max(20 %, 10 ms), where slowdown (>= 1) is how much longer the
  node's model took per frame in the last slice than in the first: the same model on the
  same input, so the machine's speed. Other users of a shared 2-core machine lift every
  percentile for a while; a drift of the node (work growing with time) lifts every slice.
- Missing outputs: every frame the rgb camera published after warm-up and outside every
  fault window (each widened by :func:`fault_margins`: a frame in flight at the start, the
  node's recovery after the end) must come back as a mask with its stamp. Two causes are
  load, not defects, and are counted apart: frames the node reports as shed (its
  ``dropped_frames`` on the outputs around them, :meth:`Analysis.shed_frames`), and frames
  lost while the node was starved of CPU (it logged a camera LOST for silence outside any
  fault while the camera kept publishing, :meth:`Analysis.starved_episodes`). Target: no
  other missing frame. The shed fraction, the false LOSTs, the node's CPU and model time
  measure the headroom.
- Health (from the node's log, where it logs each transition once): no false transition,
  i.e. no camera leaves OK outside its own fault windows (+ margins), counted from the
  schedule's start, apart for the CPU hog on and off, each with its time and reason; and
  every fault window detected, its camera leaving OK within 2.5 camera periods of the first
  frame the fault affects (the camera's first frame at or after its start, as the cameras'
  own logs say; a rate drop: its first withheld frame; :data:`DETECTION` says how each kind
  is seen, and what the monitor leaves alone by design), per kind the worst over all cycles.
  When the whole machine pauses (a virtual machine descheduled: the cameras publish nothing
  either) a window may hold no frame to damage; it is listed as not exercised, not undetected.
  The strengths (:data:`PARAMS`) are ones the README's health table says are detected.

Load: ``--hog-fraction`` (default 0.5) of the run after warm-up has a CPU hog on every core
(``benchmarks/hog.py``), in on/off blocks (:func:`hog_blocks`); its on/off times, the machine's
load average and busy share (sampled every second: other jobs share the machine too) are in
the JSON and the figure. The node polls its health at 2x the camera rate
(``health_poll_rate_hz``, :func:`poll_rate_hz` says why).

    python benchmarks/soak.py --minutes 10                        # benchmarks/results/soak.{json,png}
    python benchmarks/soak.py --minutes 1 --out /tmp/soak/soak    # /tmp/soak/soak.{json,png}
    python benchmarks/soak.py --minutes 2 --hog-fraction 0 --out /tmp/soak/idle   # no hog

Exit status: 0 when every target is met, 1 when one is not, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment
from hog import CpuHog

from unimrseg_core import topics
from unimrseg_core.faults import KINDS, Fault, FaultSchedule
from unimrseg_core.modalities import MODALITIES

REPO: Final = Path(__file__).resolve().parents[1]
SIM: Final = (sys.executable, "-m", "unimrseg_ros.sensor_sim")
"""One simulated camera: the command before its own options."""
CONFIG: Final = REPO / "config" / "unimrseg.yaml"
FASTDDS_PROFILE: Final = REPO / "test" / "fastdds_fast_discovery.xml"
_NS: Final = 1_000_000_000
RUN_FILE: Final = "run.json"
"""In the logs folder: everything a run recorded (``--from-logs`` reads it)."""

# ----------------------------------------------------------------------------- the fault cycle

PARAMS: Final[Mapping[str, Mapping[str, Any]]] = {
    "freeze": {"restamp": False},  # the stale stamp, as a hung driver re-sends it
    "saturate": {"fraction": 1.0},
    # per modality: from what the README's health table says is detected (rgb 0.3: 8 % of frames,
    # depth 0.3: 71 %); depth noise at 0.5 (10 m) is past the fault model's range of costly noise
    "noise": {"sigma": {"rgb": 0.5, "depth": 0.5, "thermal": 0.2}},
    "depth_holes": {"fraction": 0.95},  # above max_invalid_depth_fraction (0.9): detected
    "rate_drop": {"rate_hz": 5.0},
    "delay": {"delay_s": 0.2},
}
"""Parameters of the kinds in the soak cycle (the model's defaults for the others): strengths the
health monitor is meant to flag, so that every fault window must end in a detection. A value may be
a mapping from modality to value where the strength that is flagged differs by modality."""
DETECTION: Final[Mapping[str, str]] = {
    "drop": "LOST: no message for more than health.silence_periods (2.5) expected periods",
    "freeze": "DEGRADED: frozen, 3 frames with the same stamp (restamp false), i.e. at the second repeat",
    "blackout": "DEGRADED: the single-frame content check (dark rgb, all-invalid depth, flat thermal)",
    "saturate": "DEGRADED: the single-frame content check (>= 80 % of pixels at the top of the range)",
    "noise": "DEGRADED: high-frequency noise against the stream's own baseline",
    "depth_holes": "DEGRADED: more than 90 % of depth invalid",
    "rate_drop": "LOST: at 5 Hz the gaps (0.2 s) are longer than the silence limit (2.5 periods, 83 ms at "
    "30 Hz), so the camera is LOST after each frame for the whole fault. The monitor has no rate check "
    "besides silence: a rate that falls by less than 2.5x is not flagged (the learned period follows it)",
    "delay": "LOST at the onset only: the first delay_s (0.2 s) bring nothing, longer than the silence "
    "limit; the late frames then come at the camera's pace, and the camera is OK again after 2 of them "
    "while the delay lasts. By design the monitor never compares a stamp with its own clock (stamps may "
    "be sim time, a bag's, a camera's own clock), so a steady delay is not flagged, and a delay shorter "
    "than the silence limit is not seen at all",
}
"""How the health monitor detects each kind of the soak cycle at the strength of :data:`PARAMS`."""
DETECT_PERIODS: Final = 2.5
"""Target: every fault window is detected (its modality leaves OK) within this many camera periods of
the first frame it affects. The windows start half a period before a camera tick, so this is 3
periods from the start, the rule before the reference was the first frame: a silence judged after
health.silence_periods (2.5) from the last frame received (half a period before the start), polled
every half period, is in time with no slack; the content checks flag the first damaged frame."""
MAX_NOT_EXERCISED: Final = 0.05
"""At most this fraction of the fault windows may be left out for want of a camera frame in them: a
run in which the machine paused more than that did not test detection."""
HOG_BLOCK_S: Final = 60.0
"""Default length of one hog-on block after warm-up (the off blocks are as long at --hog-fraction 0.5)."""
LEAD_S: Final = 1.0
FAULT_S: Final = 1.5
GAP_S: Final = 1.5
PRE_MARGIN_S: Final = 0.1
"""Before a fault: a frame stamped just before the start reaches the injector after it."""
RECOVERY_S: Final = 0.5
"""After a fault: the health monitor calls a camera OK again after ``recover_frames`` (2) good
frames, and the frame assembler needs a fresh companion; 0.5 s is 15 frames at 30 Hz, room for
that on a loaded machine. A delay fault adds its ``delay_s`` (its late messages still arrive)."""
SLICE_S: Final = 5.0
"""Latency drift compares the best ``SLICE_S`` of the first and the last window."""


def soak_cycle(rate_hz: float) -> FaultSchedule:
    """One cycle: every kind of :data:`KINDS` on every modality it applies to, one at a time.

    ``LEAD_S`` (and half a camera period) healthy, then for each fault ``FAULT_S`` faulted and
    ``GAP_S`` healthy. Time 0 is a camera message's arrival and the cameras tick together, so
    whole seconds fall on a tick: a fault starting there took or spared the frame at its start by
    microseconds of jitter, and its first affected frame (the reference of a detection delay) was
    a coin flip between two periods. Half a period off the grid, it is the next tick. A kind
    added to the fault model joins the cycle by itself (with its default parameters; a required
    one missing from :data:`PARAMS` raises FaultError naming it).
    """
    faults = []
    t = LEAD_S + 0.5 / rate_hz  # half a period off the tick grid (docstring)
    for kind, spec in KINDS.items():
        wanted = PARAMS.get(kind, {})
        for modality in spec.modalities:
            params = {
                p.name: _for(wanted[p.name], modality)
                for p in spec.params
                if p.name in wanted and modality in p.modalities
            }
            faults.append(Fault(modality, kind, round(t, 6), round(t + FAULT_S, 6), params))
            t += FAULT_S + GAP_S
    return FaultSchedule(faults, seed=0)


def _for(value: Any, modality: str) -> Any:
    """A :data:`PARAMS` value for ``modality``: the value itself, or its entry in a per-modality mapping."""
    return value[modality] if isinstance(value, Mapping) else value


def cycle_s(cycle: FaultSchedule) -> float:
    """Length of one cycle: its last fault's end plus a healthy gap, less the first start's offset
    from ``LEAD_S``, so the cycle is whole seconds (ticks) and every cycle keeps that offset."""
    return round(cycle.end_s + GAP_S - (cycle.faults[0].start_s - LEAD_S), 6)


def repeated(cycle: FaultSchedule, until_s: float) -> FaultSchedule:
    """``cycle`` every :func:`cycle_s` seconds, as many times as it takes to reach ``until_s``."""
    period = cycle_s(cycle)
    return FaultSchedule(
        [
            Fault(
                f.modality, f.kind, round(k * period + f.start_s, 6), round(k * period + f.end_s, 6), f.params
            )
            for k in range(math.ceil(until_s / period))
            for f in cycle
        ],
        seed=cycle.seed,
    )


def fault_margins(fault: Fault) -> tuple[float, float]:
    """Seconds before the start and after the end of ``fault`` in which no output is expected."""
    return PRE_MARGIN_S, RECOVERY_S + float(fault.params.get("delay_s", 0.0))


def poll_rate_hz(rate_hz: float) -> float:
    """The node's ``health_poll_rate_hz`` for cameras at ``rate_hz``: 2x, a poll every half period,
    which the 3-period detection of a drop rests on (``health/config.py``); the 50 Hz default polls
    30 Hz cameras every 0.6 periods. A poll that comes late on a loaded machine still counts its
    gap in full up to one camera period (``health/monitor.py``), so scheduling delays do not hide
    silence; the poll runs in the node's input group, so faster would only take CPU from it."""
    return 2.0 * rate_hz


def first_affected_ns(fault: Fault, start_ns: int, end_ns: int, ticks: np.ndarray) -> int | None:
    """Stamp of the first frame ``fault`` can show in: its camera's first frame at or after the start
    (``ticks``: the stamps the camera published, sorted), for a rate drop the second (it sends the
    first of each interval). None when the camera published no such frame before the end: the
    machine was paused (every process stops, the cameras too), so there was nothing to damage or
    withhold, and a monitor that judges silence by what arrived rightly sees no fault."""
    index = int(np.searchsorted(ticks, start_ns)) + (1 if fault.kind == "rate_drop" else 0)
    if index >= ticks.size or ticks[index] >= end_ns:
        return None
    return int(ticks[index])


def warmup_seconds(seconds: float) -> float:
    """The warm-up of a run ``seconds`` long, left out of the targets: min(20 % of it, 60 s)."""
    return min(0.2 * seconds, 60.0)


def hog_blocks(warmup_s: float, seconds: float, fraction: float, block_s: float) -> list[tuple[float, float]]:
    """(on s, off s) of the CPU hog: ``fraction`` of the run after warm-up, in on/off pairs.

    The time after warm-up is cut into whole on/off pairs about ``2 x block_s`` long (at least
    one), each on for ``fraction`` of it, first: so exactly ``fraction`` of it is loaded. 0 -> none,
    1 -> on from the end of warm-up to the end of the run.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"the hog fraction must be in [0, 1], got {fraction}")
    if not block_s > 0:
        raise ValueError(f"the hog block must be > 0 s, got {block_s}")
    span = seconds - warmup_s
    if fraction == 0.0 or span <= 0:
        return []
    if fraction == 1.0:
        return [(warmup_s, seconds)]
    pairs = max(1, round(span / (2 * block_s)))
    pair = span / pairs
    return [(warmup_s + k * pair, warmup_s + k * pair + fraction * pair) for k in range(pairs)]


def fault_windows(schedule: FaultSchedule, t0_ns: int, *, margins: bool) -> list[tuple[int, int, Fault]]:
    """(start ns, end ns, fault) on the system clock, widened by :func:`fault_margins` if asked."""
    out = []
    for fault in schedule:
        before, after = fault_margins(fault) if margins else (0.0, 0.0)
        start = t0_ns + round((fault.start_s - before) * _NS)
        out.append((start, t0_ns + round((fault.end_s + after) * _NS), fault))
    return out


# ----------------------------------------------------------------------------- processes


def ros_env(domain_id: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ROS_DOMAIN_ID": str(domain_id),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(FASTDDS_PROFILE))
    return env


@contextlib.contextmanager
def domain(requested: int | None) -> Iterator[int]:
    """``requested``, else ``$ROS_DOMAIN_ID``, else an id leased from ``bag eval --live``'s pool."""
    if requested is None and os.environ.get("ROS_DOMAIN_ID", "").strip():
        requested = int(os.environ["ROS_DOMAIN_ID"])
    if requested is not None:
        yield requested
        return
    from unimrseg_ros.domain import LIVE_DOMAIN_IDS, LIVE_LOCK_DIR, DomainLease

    with DomainLease(LIVE_DOMAIN_IDS, LIVE_LOCK_DIR) as lease:
        yield lease.domain_id


def ros_args(
    params: Mapping[str, object], remaps: Mapping[str, str], params_file: Path | None = None
) -> list[str]:
    return [
        "--ros-args",
        *(["--params-file", str(params_file)] if params_file else []),
        *(a for k, v in params.items() for a in ("-p", f"{k}:={v}")),
        *(a for k, v in remaps.items() for a in ("-r", f"{k}:={v}")),
    ]


class Children:
    """Child processes, each in its own session with a log file, stopped with SIGINT (then SIGKILL)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(
                list(cmd),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.procs[name]

    def tail(self, name: str, n: int = 2000) -> str:
        try:
            return (self.logs / f"{name}.log").read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def check(self) -> None:
        """Raise RunError if a child has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RunError(f"{name} exited ({proc.returncode}): {self.tail(name)}")

    def stop(self, *names: str) -> dict[str, int | None]:
        """Stop ``names`` (default all), all at once; their exit codes."""
        chosen = [n for n in (names or tuple(self.procs)) if n in self.procs]
        for name in chosen:
            if self.procs[name].poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.procs[name].pid, signal.SIGINT)
        codes: dict[str, int | None] = {}
        for name in chosen:
            proc = self.procs[name]
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            codes[name] = proc.returncode
        return codes


class RunError(RuntimeError):
    """The soak could not be run: a process did not start, or died."""


def _children_of() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                out.setdefault(ppid, []).append(int(entry.name))
    return out


def proc_sample(pid: int, children_of: Mapping[int, list[int]]) -> dict[str, float] | None:
    """RSS (MB), threads and CPU seconds of ``pid`` and its descendants; None once it is gone."""
    rss_kb = threads = cpu_ticks = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        todo += children_of.get(p, [])
        try:
            status = Path(f"/proc/{p}/status").read_text()
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            if p == pid:
                return None
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss_kb += int(fields.get("VmRSS", "0 kB").split()[0])
        threads += int(fields.get("Threads", "0"))
        cpu_ticks += int(stat[11]) + int(stat[12])  # utime, stime
    return {"rss_mb": rss_kb / 1024, "threads": threads, "cpu_s": cpu_ticks / os.sysconf("SC_CLK_TCK")}


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores from /proc/stat; None where it cannot be read."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class Sampler(threading.Thread):
    """Every ``period_s``, :func:`proc_sample` of each named process, and the machine's load, with
    the system time."""

    def __init__(self, pids: Mapping[str, int], period_s: float = 1.0) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.pids = dict(pids)
        self.period_s = period_s
        self.rows: dict[str, list[tuple[int, dict[str, float]]]] = {name: [] for name in self.pids}
        self.machine: list[tuple[int, dict[str, float]]] = []
        """os.getloadavg() (1, 5, 15 min) and the share of all cores busy since the last sample."""
        self.halt = threading.Event()

    def run(self) -> None:
        next_at = time.monotonic()
        cpu = _cpu_times()
        while not self.halt.is_set():
            now, children_of = time.time_ns(), _children_of()
            for name, pid in self.pids.items():
                sample = proc_sample(pid, children_of)
                if sample is not None:
                    self.rows[name].append((now, sample))
            load1, load5, load15 = os.getloadavg()
            row = {"load1": load1, "load5": load5, "load15": load15}
            previous, cpu = cpu, _cpu_times()
            if previous is not None and cpu is not None and cpu[1] > previous[1]:
                row["busy_pct"] = round(100 * (cpu[0] - previous[0]) / (cpu[1] - previous[1]), 1)
            self.machine.append((now, row))
            next_at += self.period_s
            self.halt.wait(max(0.0, next_at - time.monotonic()))


@dataclass(frozen=True)
class Output:
    stamp_ns: int
    receive_ns: int


class Collector:
    """This process's subscriber: masks, per-frame status, /diagnostics and faults/active."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from unimrseg_ros.cdr_header import cdr_stamp_ns

        self._stamp = cdr_stamp_ns
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("unimrseg_soak", context=self.context)
        self.lock = threading.Lock()
        self.masks: list[Output] = []
        self.shed: dict[int, int] = {}  # output stamp -> the node's dropped_frames when it was published
        self.inference: dict[int, float] = {}  # output stamp -> the node's inference time (ms)
        self.diagnostics: list[tuple[int, dict[str, str]]] = []  # (receive ns, inference status values)
        self.faults: list[dict[str, Any]] = []
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        sub = self.node.create_subscription
        sub(Image, topics.CLASS_MASK, self._on_mask, reliable, raw=True)
        sub(DiagnosticArray, topics.STATUS, self._on_status, reliable)
        sub(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, reliable)
        sub(String, topics.FAULTS_ACTIVE, self._on_faults, latched)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="soak-collector", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._halt.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_mask(self, data: bytes) -> None:
        output = Output(self._stamp(data), time.time_ns())
        with self.lock:
            self.masks.append(output)

    def _on_status(self, msg: Any) -> None:
        stamp = msg.header.stamp.sec * _NS + msg.header.stamp.nanosec
        values = {kv.key: kv.value for status in msg.status for kv in status.values}
        with contextlib.suppress(KeyError, ValueError), self.lock:
            self.shed[stamp] = max(self.shed.get(stamp, 0), int(values["dropped_frames"]))
            self.inference[stamp] = float(values["inference_ms"])

    def _on_diagnostics(self, msg: Any) -> None:
        now = time.time_ns()
        for status in msg.status:
            if status.name.endswith(": inference"):
                values = {kv.key: kv.value for kv in status.values}
                with self.lock:
                    self.diagnostics.append((now, values))

    def _on_faults(self, msg: Any) -> None:
        with contextlib.suppress(ValueError):
            payload = json.loads(msg.data)
            with self.lock:
                self.faults.append(payload)

    def t0_ns(self) -> int | None:
        """The schedule's time 0 on the system clock, once the injector has armed it."""
        with self.lock:
            for payload in reversed(self.faults):
                t0 = (payload.get("schedule") or {}).get("t0_ns")
                if t0:
                    return int(t0)
        return None

    def node_reporting(self) -> bool:
        with self.lock:
            return bool(self.diagnostics)

    def close(self) -> None:
        self._halt.set()
        self._thread.join(timeout=2)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


# ----------------------------------------------------------------------------- the run


@dataclass
class RunData:
    """What a run recorded; times are system-clock ns."""

    t0_ns: int
    schedule: FaultSchedule
    camera_ticks: dict[str, list[int]]  # per modality, the stamps of the frames its camera published
    masks: list[Output]
    shed: dict[int, int]
    inference: dict[int, float]
    diagnostics: list[tuple[int, dict[str, str]]]
    samples: dict[str, list[tuple[int, dict[str, float]]]]
    injector: dict[str, Any]
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    node_log: list[tuple[int, str]] = field(default_factory=list)  # (system ns, text) of its log lines
    hog: list[tuple[int, int]] = field(default_factory=list)  # (on ns, off ns) of the CPU hog
    machine: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # Sampler.machine

    @property
    def ticks(self) -> list[int]:
        """The rgb camera's stamps: every frame it published should come back as a mask."""
        return self.camera_ticks.get("rgb", [])

    def save(self, path: Path) -> None:
        """Everything recorded, as JSON: ``--from-logs`` analyses it again without a run."""
        raw = {
            "t0_ns": self.t0_ns,
            "schedule": self.schedule.to_yaml(),
            "camera_ticks": self.camera_ticks,
            "masks": [[o.stamp_ns, o.receive_ns] for o in self.masks],
            "shed": sorted(self.shed.items()),
            "inference": sorted(self.inference.items()),
            "diagnostics": self.diagnostics,
            "samples": self.samples,
            "injector": self.injector,
            "exit_codes": self.exit_codes,
            "node_log": self.node_log,
            "hog": self.hog,
            "machine": self.machine,
        }
        path.write_text(json.dumps(raw))

    @classmethod
    def load(cls, path: Path) -> RunData:
        raw = json.loads(path.read_text())
        return cls(
            t0_ns=raw["t0_ns"],
            schedule=FaultSchedule.from_yaml(raw["schedule"], str(path)),
            camera_ticks=raw.get("camera_ticks")  # older runs: rgb's in the JSON, the others' in the logs
            or {
                m: raw["ticks"] if m == "rgb" else _read_ticks(path.parent / f"sim_{m}.jsonl")
                for m in MODALITIES
            },
            masks=[Output(s, r) for s, r in raw["masks"]],
            shed=dict(map(tuple, raw["shed"])),
            inference=dict(map(tuple, raw["inference"])),
            diagnostics=[(t, v) for t, v in raw["diagnostics"]],
            samples={k: [(t, v) for t, v in rows] for k, rows in raw["samples"].items()},
            injector=raw["injector"],
            exit_codes=raw["exit_codes"],
            node_log=[(t, text) for t, text in raw.get("node_log") or read_log(path.parent / "node.log")],
            hog=[(a, b) for a, b in raw.get("hog", [])],
            machine=[(t, v) for t, v in raw.get("machine", [])],
        )


_LOG_LINE: Final = re.compile(r"\[(?:INFO|WARN|ERROR)\] \[(\d+)\.(\d+)\] \[[^\]]*\]: (.*)")


def read_log(path: Path) -> list[tuple[int, str]]:
    """(system-clock ns, text) of each INFO / WARN / ERROR line of a ROS log file."""
    out = []
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if m := _LOG_LINE.match(line):
                out.append((int(m.group(1)) * _NS + int(m.group(2).ljust(9, "0")[:9]), m.group(3)))
    return out


_TRANSITION: Final = re.compile(r"(\w+): (OK|DEGRADED|LOST) -> (OK|DEGRADED|LOST) \((.*)\)$")
"""The node logs each health transition once, as ``rgb: OK -> DEGRADED (reasons)``."""


@dataclass(frozen=True)
class HealthChange:
    """One health transition the node logged: its log time (system ns, just after the monitor made it)."""

    ns: int
    modality: str
    old: str
    new: str
    reason: str


def health_changes(node_log: Sequence[tuple[int, str]]) -> list[HealthChange]:
    """Every health transition in the node's log, in time order.

    The log is the exact record: the node logs each transition once, in the callback that made
    it, where /diagnostics reports states once a second and misses a one-frame DEGRADED.
    """
    out = []
    for ns, text in node_log:
        if (m := _TRANSITION.match(text)) and m.group(1) in MODALITIES:
            out.append(HealthChange(ns, *m.groups()))
    return sorted(out, key=lambda c: c.ns)


def _read_ticks(path: Path) -> list[int]:
    ticks = set()
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            if line.endswith("}") and '"tick"' in line:
                ticks.add(int(json.loads(line)["stamp_ns"]))
    return sorted(ticks)


def run_soak(args: argparse.Namespace, logs: Path, domain_id: int) -> RunData:
    """Start everything, wait for the node, run the schedule for ``--minutes``, stop everything."""
    seconds = args.minutes * 60.0
    cycle = soak_cycle(args.rate)
    schedule = repeated(cycle, seconds + cycle_s(cycle))
    schedule_file = schedule.save(logs / "faults_soak.yaml")
    env = ros_env(domain_id)
    injected = {topics.INPUTS[m]: f"injected/{topics.INPUTS[m]}" for m in MODALITIES}
    node_params = {
        "input_height": args.input[0],
        "input_width": args.input[1],
        "diagnostics_period_seconds": 1.0,
        "health_poll_rate_hz": poll_rate_hz(args.rate),
    }
    bin_dir = Path(sys.prefix) / "bin"
    children = Children(logs)
    collector: Collector | None = None
    sampler: Sampler | None = None
    hog = CpuHog()
    hog_on: list[int] = []  # when the running block began
    hog_spans: list[tuple[int, int]] = []
    try:
        children.start(
            "node", [str(bin_dir / topics.NODE_NAME), *ros_args(node_params, injected, CONFIG)], env
        )
        for m in MODALITIES:
            sim = [*SIM, "--modality", m, "--events", str(logs / f"sim_{m}.jsonl")]
            sim += ["--rate", str(args.rate), "--size", *map(str, args.size)]
            children.start(f"sim_{m}", [*sim, "--duration", str(seconds + args.ready_timeout + 120)], env)
        collector = Collector(domain_id)
        print(f"soak: domain {domain_id}, logs in {logs}; waiting for unimrseg_node", flush=True)
        deadline = time.monotonic() + args.ready_timeout
        while not collector.node_reporting():
            children.check()
            if time.monotonic() > deadline:
                raise RunError(f"unimrseg_node silent for {args.ready_timeout:g} s: {children.tail('node')}")
            time.sleep(0.2)
        remaps = {topics.INJECTOR_INPUTS[m]: topics.INPUTS[m] for m in MODALITIES} | injected
        params = {"schedule_file": schedule_file, "schedule_start": "first_message"}
        children.start("injector", [str(bin_dir / topics.INJECTOR_NODE_NAME), *ros_args(params, remaps)], env)
        sampler = Sampler({name: proc.pid for name, proc in children.procs.items()})
        sampler.start()
        deadline = time.monotonic() + 60
        while (t0_ns := collector.t0_ns()) is None:
            children.check()
            if time.monotonic() > deadline:
                raise RunError(f"the injector never started its schedule: {children.tail('injector')}")
            time.sleep(0.1)
        print(
            f"soak: {args.minutes:g} min at {args.rate:g} Hz from now; the schedule repeats a "
            f"{cycle_s(cycle):g} s cycle of {len(cycle)} faults",
            flush=True,
        )
        end_ns = t0_ns + round(seconds * _NS)
        switches = [  # (system ns, on?) in time order
            (t0_ns + round(t * _NS), on)
            for block in hog_blocks(warmup_seconds(seconds), seconds, args.hog_fraction, args.hog_block_s)
            for t, on in zip(block, (True, False), strict=True)
        ]
        next_note = time.monotonic() + 60
        while (left := (end_ns - time.time_ns()) / _NS) > 0:
            children.check()
            while switches and switches[0][0] <= time.time_ns():
                _, on = switches.pop(0)
                if on:
                    hog.start()
                    hog_on.append(time.time_ns())
                else:
                    hog.stop()
                    hog_spans.append((hog_on.pop(), time.time_ns()))
                print(f"soak: CPU hog {'on' if on else 'off'} ({hog.processes} busy loops)", flush=True)
            if time.monotonic() >= next_note:
                next_note += 60
                with collector.lock:
                    n = len(collector.masks)
                rss = sampler.rows["node"][-1][1]["rss_mb"] if sampler.rows["node"] else math.nan
                done = seconds - left
                load = os.getloadavg()[0]
                print(
                    f"soak: {done / 60:4.1f} min, {n} masks, node RSS {rss:.1f} MB, load {load:.2f}",
                    flush=True,
                )
            until_switch = (switches[0][0] - time.time_ns()) / _NS if switches else left
            time.sleep(max(0.0, min(0.5, left, until_switch)))
        hog.stop()
        hog_spans += [(on_ns, time.time_ns()) for on_ns in hog_on]
        codes = children.stop(*(f"sim_{m}" for m in MODALITIES))
        time.sleep(1.0)  # the last frames' outputs, one more /diagnostics
        sampler.halt.set()
        sampler.join(timeout=5)
        codes |= children.stop("injector", "node")
        with collector.lock:
            data = RunData(
                t0_ns=t0_ns,
                schedule=schedule,
                camera_ticks={m: _read_ticks(logs / f"sim_{m}.jsonl") for m in MODALITIES},
                masks=list(collector.masks),
                shed=dict(collector.shed),
                inference=dict(collector.inference),
                diagnostics=list(collector.diagnostics),
                samples=sampler.rows,
                injector={k: (collector.faults or [{}])[-1].get(k) for k in ("counts", "schedule")},
                exit_codes=codes,
                node_log=read_log(logs / "node.log"),
                hog=hog_spans,
                machine=sampler.machine,
            )
    finally:
        hog.stop()
        if sampler is not None:
            sampler.halt.set()
        if collector is not None:
            collector.close()
        children.stop()
    return data


# ----------------------------------------------------------------------------- analysis


def _stats_ms(values: np.ndarray) -> dict[str, float | int | None]:
    if values.size == 0:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p95": round(float(np.percentile(values, 95)), 2),
        "max": round(float(values.max()), 2),
        "n": int(values.size),
    }


def _slope(t: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of y over t; None with fewer than 3 points."""
    if t.size < 3 or float(np.ptp(t)) == 0.0:
        return None
    return float(np.polyfit(t, y, 1)[0])


def _inside(stamps: np.ndarray, windows: Sequence[tuple[int, int, Fault]]) -> np.ndarray:
    inside = np.zeros(stamps.shape, dtype=bool)
    for start, end, _ in windows:
        inside |= (stamps >= start) & (stamps < end)
    return inside


def _best_slice(
    t_s: np.ndarray, latency: np.ndarray, inference: np.ndarray, window: tuple[float, float]
) -> tuple[float, float] | None:
    """(latency p50, inference p50) of the ``SLICE_S`` slice of ``window`` with the lowest latency
    p50, among the slices with at least 30 outputs."""
    best = None
    start = window[0]
    while start + SLICE_S <= window[1] + 1e-9:
        sel = (t_s >= start) & (t_s < start + SLICE_S)
        if sel.sum() >= 30:
            p50 = float(np.median(latency[sel]))
            if best is None or p50 < best[0]:
                best = (p50, float(np.nanmedian(inference[sel])))
        start += SLICE_S
    return best


class Analysis:
    """The targets and figures of one run (see the module docstring for the rules)."""

    def __init__(self, data: RunData, seconds: float, rate_hz: float) -> None:
        self.data, self.seconds, self.period_s = data, seconds, 1.0 / rate_hz
        self.warmup_s = warmup_seconds(seconds)
        self.window_s = min(60.0, 0.25 * (seconds - self.warmup_s))
        self.first = (self.warmup_s, self.warmup_s + self.window_s)
        self.last = (seconds - self.window_s, seconds)
        self.tail_s = 1.0  # frames still in flight when the cameras stop are not expected
        self.windows = fault_windows(data.schedule, data.t0_ns, margins=True)
        self.bare_windows = fault_windows(data.schedule, data.t0_ns, margins=False)
        self.received = {o.stamp_ns: o.receive_ns for o in data.masks}  # a frozen stamp again: the last
        self.stamps = np.array(sorted(self.received), dtype=np.int64)
        self.drops = [
            ((t - data.t0_ns) / _NS, int(v.get("dropped_frames") or 0)) for t, v in data.diagnostics
        ]
        self.changes = health_changes(data.node_log)

    def rel(self, ns: Any) -> Any:
        return (np.asarray(ns, dtype=np.int64) - self.data.t0_ns) / _NS

    def dropped_at(self, t_s: float) -> int:
        """The node's dropped_frames as last reported on /diagnostics at ``t_s``."""
        before = [d for t, d in self.drops if t <= t_s]
        return before[-1] if before else 0

    # --------------------------------------------------------------- missing outputs

    def shed_frames(self, missing: np.ndarray) -> np.ndarray:
        """Which of the ``missing`` frames (sorted stamps) the node reported as shed.

        The node's ``dropped_frames`` on each output counts the frames its one-slot hand-off
        replaced so far; it is read after the inference, so a frame stamped between outputs k
        and k + 1 (replaced while k was computed) is in output k's count, or in k + 1's when
        the replacement came just after k's count was read. Each output's new drops are given
        to the missing frames after it, in stamp order, those of output k before k + 1's; a
        drop is never given twice, so a frame lost for another reason is left unexplained.
        """
        shed_at = np.maximum.accumulate(  # monotone: a frozen stamp can come late
            np.array([self.data.shed.get(int(s), 0) for s in self.stamps], dtype=np.int64)
        )
        pool = np.diff(shed_at, prepend=shed_at[:1]) if shed_at.size else shed_at
        after = np.searchsorted(self.stamps, missing)  # the first output after each missing frame
        explained = np.zeros(missing.size, dtype=bool)
        for j, k in enumerate(after - 1):  # k: the output before the frame
            for source in (k, k + 1):
                if k > 0 and source < pool.size and pool[source] > 0:
                    pool[source] -= 1
                    explained[j] = True
                    break
        return explained

    def starved_episodes(self) -> list[tuple[int, int, str]]:
        """(from ns, to ns, log line) around each camera the node called LOST for silence outside faults.

        The cameras kept publishing (their tick logs say so), so such a LOST means the node itself
        ran no callback for ``silence_periods`` frame periods: a process starved of CPU (rclpy runs a
        ready timer, here the health poll, before the ready subscriptions). Frames that arrived in
        the stall, and the first ones after it (a LOST camera needs ``recover_frames`` good ones),
        find no healthy anchor. The episode spans from the stall's start (the logged silence) less
        0.1 s to 0.3 s after the transition.
        """
        out = []
        for ns, text in self.data.node_log:
            m = re.search(r"-> LOST \(silent for ([0-9.]+) s", text)
            if m is None or _inside(np.array([ns], dtype=np.int64), self.windows)[0]:
                continue
            stall = round((float(m.group(1)) + 0.1) * _NS)
            out.append((ns - stall, ns + round(0.3 * _NS), text))
        return out

    def missing(self) -> dict[str, Any]:
        """Camera frames after warm-up and outside fault windows without an output, and why."""
        ticks = np.asarray(self.data.ticks, dtype=np.int64)
        t = self.rel(ticks)
        checked = (t >= self.warmup_s) & (t <= self.seconds - self.tail_s) & ~_inside(ticks, self.windows)
        expected = ticks[checked]
        lost = ~np.isin(ticks, self.stamps)  # every frame without an output, faults included
        shed = self.shed_frames(ticks[lost])[checked[lost]]
        missing = ticks[lost & checked]
        episodes = self.starved_episodes()
        starved = ~shed & _inside(missing, episodes)
        gaps: list[dict[str, Any]] = []
        for stamp, why in zip(
            missing, np.where(shed, "shed", np.where(starved, "starved", "other")), strict=True
        ):
            t_s = float(self.rel(int(stamp)))
            if gaps and t_s - gaps[-1]["end_s"] <= 1.5 * self.period_s:
                gaps[-1]["end_s"] = round(t_s, 3)
                gaps[-1]["frames"] += 1
                gaps[-1][why] += 1
                continue
            ended = [(end, f) for _, end, f in self.bare_windows if end <= stamp]
            end, fault = max(ended, key=lambda e: e[0]) if ended else (None, None)
            gap = {"start_s": round(t_s, 3), "end_s": round(t_s, 3), "frames": 1, "shed": 0, "starved": 0}
            gap |= {"other": 0, "after_fault": str(fault) if fault else None}
            gap["since_fault_end_s"] = round((int(stamp) - end) / _NS, 3) if end else None
            gap[why] += 1
            gaps.append(gap)
        for gap in gaps:  # what the node logged about it: a camera called LOST, "no output"
            if gap["shed"] < gap["frames"]:
                t_lo, t_hi = gap["start_s"] - 0.3, gap["end_s"] + 0.3
                gap["node_log"] = [
                    f"{t:.3f} s: {text}"
                    for t, text in ((float(self.rel(ns)), text) for ns, text in self.data.node_log)
                    if t_lo <= t <= t_hi
                ][:6]
        skipped = 0  # ticks the rgb camera itself did not publish (it woke up late on a loaded machine)
        if ticks.size:
            grid = np.arange(ticks[0], ticks[-1] + 1, round(self.period_s * _NS), dtype=np.int64)
            t_grid = self.rel(grid)
            skipped = int(
                (~np.isin(grid, ticks) & (t_grid >= self.warmup_s) & (t_grid <= self.seconds)).sum()
            )
        t_ep = self.rel(np.array([a for a, _, _ in episodes], dtype=np.int64))
        pauses = [  # the camera published nothing for > 3 periods: the machine stopped, not the node
            {"start_s": round(float(self.rel(int(a))), 3), "length_s": round((int(b) - int(a)) / _NS, 3)}
            for a, b in itertools.pairwise(ticks)
            if b - a > 3 * self.period_s * _NS and self.rel(int(a)) >= 0
        ]
        return {
            "expected": int(expected.size),
            "received": int(expected.size - missing.size),
            "missing": int(missing.size),
            "shed_by_node": int(shed.sum()),
            "lost_while_node_starved": int(starved.sum()),
            "unexplained": int((~shed & ~starved).sum()),
            "shed_fraction": round(float(shed.sum()) / max(1, expected.size), 4),
            "false_silence_lost_outside_faults": int(
                ((t_ep >= self.warmup_s) & (t_ep <= self.seconds)).sum()
            ),
            "camera_ticks_skipped": skipped,
            "camera_pauses": pauses,
            "gaps_total": len(gaps),
            "unexplained_gaps": [g for g in gaps if g["other"]][:50],
            "starved_gaps": [g for g in gaps if g["starved"]][:20],
            "gaps": gaps[:50],
        }

    def during_faults(self) -> dict[str, float]:
        """Fraction of camera frames with an output while each kind of fault was on (information)."""
        ticks = np.asarray(self.data.ticks, dtype=np.int64)
        during: dict[str, list[float]] = {}
        for start, end, fault in self.bare_windows:
            if self.rel(start) < self.warmup_s or self.rel(end) > self.seconds - self.tail_s:
                continue
            sel = (ticks >= start) & (ticks < end)
            if sel.any():
                during.setdefault(f"{fault.modality} {fault.kind}", []).append(
                    float(np.isin(ticks[sel], self.stamps).mean())
                )
        return {k: round(float(np.mean(v)), 3) for k, v in sorted(during.items())}

    # --------------------------------------------------------------- health

    def hog_on(self, ns: int) -> bool:
        return any(on <= ns < off for on, off in self.data.hog)

    def state_at(self, modality: str, ns: int) -> str:
        """The modality's state at ``ns`` from the logged transitions (LOST before the first)."""
        state = "LOST"
        for c in self.changes:
            if c.ns > ns:
                break
            if c.modality == modality:
                state = c.new
        return state

    def _change(self, c: HealthChange) -> dict[str, Any]:
        return {
            "t_s": round(float(self.rel(c.ns)), 3),
            "modality": c.modality,
            "from": c.old,
            "to": c.new,
            "reason": c.reason,
            "hog": self.hog_on(c.ns),
        }

    def false_transitions(self) -> dict[str, Any]:
        """Every change of a sensor away from OK outside its own fault windows (+ margins), from the
        schedule's start to the run's end, split by whether the CPU hog was on.

        Stricter than "outside any fault window": a camera that leaves OK while another one is
        faulted counts (``during_other_fault`` names that fault).
        """
        end = self.data.t0_ns + round(self.seconds * _NS)
        out: dict[str, list[dict[str, Any]]] = {"hog_on": [], "hog_off": []}
        for c in self.changes:
            if not (self.data.t0_ns <= c.ns <= end and c.old == "OK" and c.new != "OK"):
                continue
            if any(s <= c.ns < e and f.modality == c.modality for s, e, f in self.windows):
                continue
            row = self._change(c)
            row["during_other_fault"] = next((str(f) for s, e, f in self.windows if s <= c.ns < e), None)
            out["hog_on" if row["hog"] else "hog_off"].append(row)
        return {
            "count": len(out["hog_on"]) + len(out["hog_off"]),
            "count_hog_on": len(out["hog_on"]),
            "count_hog_off": len(out["hog_off"]),
            **out,
        }

    def detections(self) -> dict[str, Any]:
        """Per fault window: the delay from the first frame it affects (:func:`first_affected_ns`)
        to its modality leaving OK, in camera periods; per kind the worst; and when it was OK again
        after the end (information). A window whose camera published no frame it could affect (the
        machine paused through it) is listed as not exercised, apart from the per-kind figures."""
        windows, idle = [], []
        ticks = {m: np.asarray(t, dtype=np.int64) for m, t in self.data.camera_ticks.items()}
        for start, end, fault in self.bare_windows:
            after = fault_margins(fault)[1]
            if start < self.data.t0_ns or self.rel(end) + after > self.seconds - self.tail_s:
                continue
            reference = first_affected_ns(fault, start, end, ticks.get(fault.modality, np.zeros(0, np.int64)))
            if reference is None:
                idle.append({"fault": str(fault), "start_s": round(float(self.rel(start)), 3)})
                continue
            own = [c for c in self.changes if c.modality == fault.modality]
            at_start = self.state_at(fault.modality, start)
            left = next(
                (c for c in own if c.old == "OK" and c.new != "OK" and start <= c.ns <= end + after * _NS),
                None,
            )
            back = None
            if left is not None and self.state_at(fault.modality, end) != "OK":
                back = next((c for c in own if c.new == "OK" and c.ns >= end), None)
            row: dict[str, Any] = {
                "fault": str(fault),
                "kind": fault.kind,
                "start_s": round(float(self.rel(start)), 3),
                "state_at_start": at_start,
                "hog": self.hog_on(start),
                "detected": at_start == "OK" and left is not None,
            }
            if left is not None:
                delay = (left.ns - reference) / _NS
                row |= {
                    "delay_s": round(delay, 4),
                    "delay_periods": round(delay / self.period_s, 2),
                    "from_start_periods": round((left.ns - start) / _NS / self.period_s, 2),
                    "to": left.new,
                    "reason": left.reason,
                }
            if back is not None:
                row["ok_again_periods_after_end"] = round((back.ns - end) / _NS / self.period_s, 2)
            elif left is not None and self.state_at(fault.modality, end) == "OK":
                row["ok_again_periods_after_end"] = 0.0  # OK before the end (a delay's late frames)
            windows.append(row)
        per_kind: dict[str, dict[str, Any]] = {}
        for kind in sorted({w["kind"] for w in windows}):
            rows = [w for w in windows if w["kind"] == kind]
            delays = [w["delay_periods"] for w in rows if w["detected"]]

            def worst(rs: list[dict[str, Any]]) -> float | None:
                return max((w["delay_periods"] for w in rs if w["detected"]), default=None)

            recovered = [w["ok_again_periods_after_end"] for w in rows if "ok_again_periods_after_end" in w]
            per_kind[kind] = {
                "how": DETECTION.get(kind, "(not described)"),
                "windows": len(rows),
                "detected": len(delays),
                "worst_periods": max(delays, default=None),
                "median_periods": round(float(np.median(delays)), 2) if delays else None,
                "worst_periods_hog_on": worst([w for w in rows if w["hog"]]),
                "worst_periods_hog_off": worst([w for w in rows if not w["hog"]]),
                "worst_ok_again_periods_after_end": max(recovered, default=None),
                "met": len(delays) == len(rows) and max(delays, default=math.inf) <= DETECT_PERIODS,
            }
        return {"per_kind": per_kind, "windows": windows, "not_exercised": idle}

    def machine_load(self) -> dict[str, Any]:
        """The machine's load average and busy share after warm-up, with the hog on and off."""
        rows = [(float(self.rel(t)), v) for t, v in self.data.machine]
        out: dict[str, Any] = {}
        for name, on in (("hog_on", True), ("hog_off", False)):
            sel = [
                v
                for t, v in rows
                if self.warmup_s <= t <= self.seconds and self.hog_on(self.data.t0_ns + round(t * _NS)) is on
            ]
            load1 = [v["load1"] for v in sel]
            busy = [v["busy_pct"] for v in sel if "busy_pct" in v]
            out[name] = {
                "seconds_sampled": len(sel),
                "load1_mean": _round(float(np.mean(load1)) if load1 else None),
                "load1_max": _round(max(load1, default=None)),
                "busy_pct_of_all_cores_mean": _round(float(np.mean(busy)) if busy else None, 1),
            }
        return out

    # --------------------------------------------------------------- latency

    def latency(self) -> dict[str, Any]:
        stamps = self.stamps[~_inside(self.stamps, self.windows)]
        t = self.rel(stamps)
        ms = np.array([(self.received[int(s)] - int(s)) / 1e6 for s in stamps])
        post = t >= self.warmup_s
        in_first = (t >= self.first[0]) & (t < self.first[1])
        in_last = (t >= self.last[0]) & (t < self.last[1])
        minutes = []
        for k in range(int(self.warmup_s // 60), math.ceil(self.seconds / 60)):
            sel = post & (t >= 60 * k) & (t < 60 * (k + 1))
            if sel.sum() >= 30:
                minutes.append((60 * k + 30, float(np.median(ms[sel]))))
        slope = _slope(np.array([m[0] for m in minutes]), np.array([m[1] for m in minutes]))
        return {
            "outside_faults_after_warmup": _stats_ms(ms[post]),
            "first_window": _stats_ms(ms[in_first]),
            "last_window": _stats_ms(ms[in_last]),
            "drift": self.drift(t, ms, stamps),
            "per_minute_p50": [{"t_s": m, "p50_ms": round(v, 2)} for m, v in minutes],
            "per_minute_p50_slope_ms_per_min": _round(None if slope is None else slope * 60, 3),
        }

    def drift(self, t: np.ndarray, ms: np.ndarray, stamps: np.ndarray) -> dict[str, Any]:
        """The latency drift check: best slices of the first and last windows, the machine's slowdown.

        The node's inference time per frame (same model, same input size all along) measures how
        fast the shared machine is at the time; the first window's latency is scaled by how much
        slower the model ran in the last window's slice, then given max(20 %, 10 ms) of room.
        """
        inference = np.array([self.data.inference.get(int(s), np.nan) for s in stamps])
        first = _best_slice(t, ms, inference, self.first)
        last = _best_slice(t, ms, inference, self.last)
        if first is None or last is None:
            return {"met": False, "why": "fewer than 30 outputs in every slice of a window"}
        slowdown = max(1.0, last[1] / first[1]) if first[1] > 0 else 1.0
        limit = first[0] * slowdown + max(0.2 * first[0], 10.0)
        return {
            "first_best_slice_p50_ms": round(first[0], 2),
            "first_best_slice_inference_p50_ms": round(first[1], 2),
            "last_best_slice_p50_ms": round(last[0], 2),
            "last_best_slice_inference_p50_ms": round(last[1], 2),
            "machine_slowdown": round(slowdown, 3),
            "limit_ms": round(limit, 2),
            "met": last[0] <= limit,
        }

    # --------------------------------------------------------------- processes

    def series(self, name: str, key: str) -> tuple[np.ndarray, np.ndarray]:
        rows = self.data.samples.get(name, [])
        return self.rel(np.array([t for t, _ in rows], dtype=np.int64)), np.array([s[key] for _, s in rows])

    def rss(self, name: str) -> dict[str, Any]:
        t, rss = self.series(name, "rss_mb")
        first = rss[(t >= self.first[0]) & (t < self.first[1])]
        last = rss[(t >= self.last[0]) & (t <= self.last[1] + 1)]
        if not (first.size and last.size):
            return {}
        post = t >= self.warmup_s
        start, end = float(np.median(first)), float(np.median(last))
        slope = _slope(t[post], rss[post])
        return {
            "at_start_mb": round(float(rss[0]), 1),
            "first_window_median_mb": round(start, 1),
            "last_window_median_mb": round(end, 1),
            "growth_pct": round(100 * (end - start) / start, 2),
            "slope_mb_per_h": _round(None if slope is None else slope * 3600),
            "max_mb": round(float(rss.max()), 1),
        }

    def inference_ms(self) -> dict[str, float | int | None]:
        """The node's model time per frame (``segmentation/status``) after warm-up."""
        stamps = np.array(sorted(self.data.inference), dtype=np.int64)
        post = self.rel(stamps) >= self.warmup_s
        return _stats_ms(np.array([self.data.inference[int(s)] for s in stamps[post]]))

    def cpu_pct(self, name: str) -> float | None:
        """Mean CPU after warm-up, in % of one core."""
        t, cpu = self.series(name, "cpu_s")
        post = t >= self.warmup_s
        if post.sum() < 2:
            return None
        return round(100 * float(np.ptp(cpu[post]) / np.ptp(t[post])), 1)

    def threads(self) -> dict[str, int | None]:
        t, n = self.series("node", "threads")
        post, first = n[t >= self.warmup_s], n[(t >= self.first[0]) & (t < self.first[1])]
        return {
            "node_first_window_max": int(first.max()) if first.size else None,
            "node_after_warmup_min": int(post.min()) if post.size else None,
            "node_after_warmup_max": int(post.max()) if post.size else None,
            "node_last": int(n[-1]) if n.size else None,
        }

    def per_second(self) -> dict[str, list[Any]]:
        """Per-second series for the figure: outputs, latency, RSS, threads, CPU, drops."""
        n = math.ceil(self.seconds)
        receive = np.array([o.receive_ns for o in self.data.masks], dtype=np.int64)
        ms = np.array([(o.receive_ns - o.stamp_ns) / 1e6 for o in self.data.masks])
        bins = np.floor(self.rel(receive)).astype(int)
        rate, p50, p95 = [], [], []
        for b in range(n):
            sel = bins == b
            rate.append(int(sel.sum()))
            p50.append(round(float(np.percentile(ms[sel], 50)), 2) if sel.any() else None)
            p95.append(round(float(np.percentile(ms[sel], 95)), 2) if sel.any() else None)

        def sampled(name: str, key: str, digits: int) -> list[float | None]:
            t, y = self.series(name, key)
            if key == "cpu_s":  # CPU seconds -> % of a core over each interval
                t, y = t[1:], np.diff(y) / np.maximum(np.diff(t), 1e-9) * 100 if t.size > 1 else y[:0]
            out: list[float | None] = [None] * n
            for ti, yi in zip(t, y, strict=True):
                if 0 <= ti < n:
                    out[int(ti)] = round(float(yi), digits)
            return out

        return {
            "t_s": list(range(n)),
            "outputs_per_s": rate,
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "node_rss_mb": sampled("node", "rss_mb", 2),
            "node_threads": sampled("node", "threads", 0),
            "node_cpu_pct": sampled("node", "cpu_s", 1),
            "injector_rss_mb": sampled("injector", "rss_mb", 2),
            "node_dropped_frames": [self.dropped_at(b + 1) for b in range(n)],
            **{key: self.machine_series(key, n) for key in ("load1", "busy_pct")},
        }

    def machine_series(self, key: str, n: int) -> list[float | None]:
        out: list[float | None] = [None] * n
        for t, v in self.data.machine:
            b = int(self.rel(t))
            if 0 <= b < n and key in v:
                out[b] = round(float(v[key]), 2)
        return out

    # --------------------------------------------------------------- all of it

    def result(self) -> dict[str, Any]:
        node_rss, latency, missing = self.rss("node"), self.latency(), self.missing()
        false, detection = self.false_transitions(), self.detections()
        inference = self.data.diagnostics[-1][1] if self.data.diagnostics else {}
        targets = {
            "rss_growth": {
                "target": "node RSS growth after warm-up < 5 % (last-window vs first-window median)",
                "growth_pct": node_rss.get("growth_pct"),
                "met": bool(node_rss) and node_rss["growth_pct"] < 5.0,
            },
            "latency_drift": {
                "target": "no latency drift, outputs outside fault windows: the last window's best 5-s p50 "
                "<= the first's x machine slowdown + max(20 %, 10 ms)",
                "first_window_p50_ms": latency["first_window"]["p50"],
                "last_window_p50_ms": latency["last_window"]["p50"],
                **latency["drift"],
            },
            "missing_outputs": {
                "target": "no missing outputs outside fault windows (+ margins) after warm-up, except "
                "frames the node reports as shed under load or lost while it was starved of CPU",
                **{
                    k: missing[k]
                    for k in (
                        "expected",
                        "received",
                        "missing",
                        "shed_by_node",
                        "lost_while_node_starved",
                        "false_silence_lost_outside_faults",
                        "unexplained",
                    )
                },
                "met": missing["expected"] > 0 and missing["unexplained"] == 0,
            },
            "no_false_health_transitions": {
                "target": "0 changes of a sensor's health away from OK outside its own fault windows "
                "(+ margins), from the schedule's start, with the CPU hog on or off",
                "count_hog_on": false["count_hog_on"],
                "count_hog_off": false["count_hog_off"],
                "met": bool(self.data.node_log) and false["count"] == 0,
            },
            "fault_detection": {
                "target": f"every fault window detected (its modality leaves OK) within {DETECT_PERIODS:g} "
                "camera periods of the first frame it affects (a rate drop: its first withheld frame); "
                "per kind the worst over all cycles; windows the camera published no frame in (the "
                f"machine paused) left out, at most {MAX_NOT_EXERCISED:.0%} of them",
                "worst_periods": {k: v["worst_periods"] for k, v in detection["per_kind"].items()},
                "windows": len(detection["windows"]),
                "undetected": [w["fault"] for w in detection["windows"] if not w["detected"]][:20],
                "not_exercised": [w["fault"] for w in detection["not_exercised"]],
                "kinds_not_in_run": sorted(set(KINDS) - set(detection["per_kind"])),
                "met": bool(detection["windows"])
                and all(v["met"] for v in detection["per_kind"].values())
                and len(detection["not_exercised"])
                <= MAX_NOT_EXERCISED * (len(detection["windows"]) + len(detection["not_exercised"])),
            },
        }
        return {
            "windows": {
                "warmup_s": round(self.warmup_s, 2),
                "warmup_rule": "min(20 % of the run, 60 s)",
                "window_s": round(self.window_s, 2),
                "first_window_s": [round(v, 2) for v in self.first],
                "last_window_s": [round(v, 2) for v in self.last],
                "latency_slice_s": SLICE_S,
                "tail_left_out_s": self.tail_s,
            },
            "targets": targets,
            "all_met": all(t["met"] for t in targets.values()),
            "rss": {name: self.rss(name) for name in sorted(self.data.samples)},
            "threads": self.threads(),
            "cpu_pct_of_a_core_after_warmup": {
                name: self.cpu_pct(name) for name in sorted(self.data.samples)
            },
            "health": {
                "source": "the node's log: it logs each health transition once, in the callback that made "
                "it (log time = system clock); /diagnostics' 1-Hz states would miss a one-frame DEGRADED",
                "transitions_total": len(self.changes),
                "false_transitions": false,
                "detection": detection,
            },
            "machine_load_after_warmup": self.machine_load(),
            "latency_ms": latency,
            "outputs": {
                "received_total": len(self.data.masks),
                "camera_ticks_published": len(self.data.ticks),
                **missing,
                "fraction_with_output_during_faults": self.during_faults(),
            },
            "node": {
                "inference_ms_after_warmup": self.inference_ms(),
                "dropped_frames_total": self.dropped_at(self.seconds + 5),
                "dropped_frames_after_warmup": self.dropped_at(self.seconds + 5)
                - self.dropped_at(self.warmup_s),
                "published_frames": int(inference.get("published_frames") or 0),
                "backend": inference.get("backend"),
                "last_diagnostics": {
                    k: _round(_float(inference.get(k)))
                    for k in ("inference_p50_ms", "inference_p95_ms", "latency_p50_ms", "fps")
                },
            },
            "series": self.per_second(),
        }


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# ----------------------------------------------------------------------------- figure


def plot(payload: dict[str, Any], path: Path) -> None:
    """RSS, latency p50/p95, outputs per second, CPU / threads / drops over time; faults shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = payload["series"]
    t = np.asarray(s["t_s"], dtype=float) / 60.0

    def arr(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in s[key]], dtype=float)

    fig, axes = plt.subplots(5, 1, figsize=(12, 12.5), sharex=True)
    for ax in axes:
        ax.axvspan(0, payload["windows"]["warmup_s"] / 60, color="0.85", lw=0)
        for w in payload["schedule"]["windows"]:
            ax.axvspan(w["start_s"] / 60, w["end_s"] / 60, color="tab:red", alpha=0.12, lw=0)
        for on, off in payload["hog"]["on_off_s"]:
            ax.axvspan(on / 60, off / 60, color="tab:orange", alpha=0.15, lw=0)
        ax.grid(alpha=0.3)
    axes[0].plot(t, arr("node_rss_mb"), color="tab:blue", label=topics.NODE_NAME)
    axes[0].plot(t, arr("injector_rss_mb"), color="tab:gray", ls="--", label="fault injector")
    axes[0].set_ylabel("RSS (MB)")
    axes[0].legend(loc="center right", fontsize=8)
    axes[1].plot(t, arr("latency_p95_ms"), color="tab:orange", lw=0.7, label="p95")
    axes[1].plot(t, arr("latency_p50_ms"), color="tab:green", lw=0.7, label="p50")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("camera -> mask (ms)")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[2].plot(t, arr("outputs_per_s"), color="tab:purple", lw=0.7)
    axes[2].axhline(payload["config"]["rate_hz"], color="k", lw=0.6, ls=":")
    axes[2].set_ylabel("masks / s")
    axes[3].plot(t, arr("node_cpu_pct"), color="tab:brown", lw=0.5)
    axes[3].set_ylabel("node CPU (% of a core)")
    twin = axes[3].twinx()
    twin.plot(t, arr("node_threads"), color="k", lw=1.0, label="node threads")
    twin.plot(t, arr("node_dropped_frames"), color="tab:red", lw=1.0, label="frames shed (cumulative)")
    twin.set_ylabel("threads / frames")
    twin.legend(loc="upper left", fontsize=8)
    health = payload["health"]
    kinds = sorted(health["detection"]["per_kind"])
    for w in health["detection"]["windows"]:
        if w["detected"]:
            axes[4].plot(w["start_s"] / 60, w["delay_periods"], ".", ms=4, color=f"C{kinds.index(w['kind'])}")
    for k, kind in enumerate(kinds):
        axes[4].plot([], [], ".", color=f"C{k}", label=kind)
    axes[4].axhline(DETECT_PERIODS, color="k", lw=0.6, ls=":")
    axes[4].set_ylim(bottom=0)
    false = health["false_transitions"]["hog_on"] + health["false_transitions"]["hog_off"]
    for row in false:
        axes[4].axvline(row["t_s"] / 60, color="tab:red", lw=1.2)
    axes[4].set_ylabel("detection (periods)")
    axes[4].legend(loc="upper left", fontsize=7, ncol=4)
    load = axes[4].twinx()
    load.plot(t, arr("load1"), color="0.3", lw=0.8, label="load average (1 min)")
    load.set_ylabel("load average")
    load.legend(loc="upper right", fontsize=8)
    axes[4].set_xlabel(
        "minutes (grey: warm-up; red: fault windows; orange: CPU hog on every core; red lines: false "
        "health transitions)"
    )
    c, tg = payload["config"], payload["targets"]
    rss, lat, miss = tg["rss_growth"], tg["latency_drift"], tg["missing_outputs"]
    det, fls = tg["fault_detection"], tg["no_false_health_transitions"]
    worst = max((v for v in det["worst_periods"].values() if v is not None), default=None)
    fig.suptitle(
        f"unimrseg_node soak: {c['minutes']:g} min, {c['rate_hz']:g} Hz cameras "
        f"{'x'.join(map(str, c['camera_size']))}, network input {'x'.join(map(str, c['network_input']))}\n"
        f"RSS {rss['growth_pct']:+.2f} % | latency p50 {lat['first_window_p50_ms']} -> "
        f"{lat['last_window_p50_ms']} ms | outside faults {miss['received']}/{miss['expected']} masks, "
        f"{miss['shed_by_node']} shed, {miss['lost_while_node_starved']} starved, "
        f"{miss['unexplained']} unexplained\nCPU hog {payload['hog']['fraction']:g} of it after warm-up | "
        f"false health transitions {fls['count_hog_on']} (hog on) + {fls['count_hog_off']} (off) | "
        f"{det['windows'] - len(det['undetected'])}/{det['windows']} faults detected, worst {worst} periods",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    try:
        size = int(h), int(w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, got {text!r}") from None
    if min(size) <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return size


def summarize(p: dict[str, Any]) -> None:
    rss, lat, miss = p["rss"]["node"], p["targets"]["latency_drift"], p["targets"]["missing_outputs"]
    print(
        f"node RSS {rss.get('first_window_median_mb')} -> {rss.get('last_window_median_mb')} MB "
        f"({rss.get('growth_pct')} %, {rss.get('slope_mb_per_h')} MB/h); latency p50 "
        f"{lat['first_window_p50_ms']} -> {lat['last_window_p50_ms']} ms (best 5 s: "
        f"{lat.get('first_best_slice_p50_ms')} -> {lat.get('last_best_slice_p50_ms')}, "
        f"limit {lat.get('limit_ms')}); "
        f"outside faults {miss['received']}/{miss['expected']} masks, "
        f"{miss['shed_by_node']} shed by the node, "
        f"{miss['lost_while_node_starved']} lost while it was starved, {miss['unexplained']} unexplained; "
        f"inference p50 {p['node']['inference_ms_after_warmup']['p50']} ms; "
        f"node CPU {p['cpu_pct_of_a_core_after_warmup'].get('node')} %; threads {p['threads']['node_last']}"
    )
    false, detection = p["health"]["false_transitions"], p["health"]["detection"]["per_kind"]
    print(
        f"health: {false['count_hog_on']} false transitions with the hog on, {false['count_hog_off']} off; "
        "detection worst (periods) "
        + ", ".join(
            f"{k} {v['worst_periods']} ({v['detected']}/{v['windows']})" for k, v in detection.items()
        )
    )
    for row in (false["hog_on"] + false["hog_off"])[:10]:
        print(f"  false: {row['t_s']} s {row['modality']} {row['from']} -> {row['to']} ({row['reason']})")
    for name, target in p["targets"].items():
        print(f"  {'met ' if target['met'] else 'MISS'} {name}: {target['target']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run (default 10)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate in Hz (default 30)")
    parser.add_argument("--size", type=_size, default=(240, 320), help="camera images HxW (default 240x320)")
    parser.add_argument(
        "--input", type=_size, default=(128, 160), help="network input HxW, multiples of 16 (default 128x160)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / "soak",
        help="results path without suffix: OUT.json and OUT.png (default benchmarks/results/soak)",
    )
    parser.add_argument("--domain-id", type=int, help="ROS domain (default $ROS_DOMAIN_ID, else a free one)")
    parser.add_argument(
        "--logs", type=Path, help="keep the processes' logs here (default a temporary folder)"
    )
    parser.add_argument(
        "--from-logs",
        type=Path,
        metavar="LOGS",
        help=f"no run: analyse LOGS/{RUN_FILE} of an earlier run again (same --minutes and --rate)",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=300.0, help="seconds for the node to come up (default 300)"
    )
    parser.add_argument(
        "--hog-fraction",
        type=float,
        default=0.5,
        help="share of the run after warm-up with a CPU hog on every core, in on/off blocks "
        "(default 0.5; 0: none)",
    )
    parser.add_argument(
        "--hog-block-s",
        type=float,
        default=HOG_BLOCK_S,
        help=f"about how long one hog-on block lasts at --hog-fraction 0.5, s (default {HOG_BLOCK_S:g})",
    )
    args = parser.parse_args(argv)
    if not (args.minutes > 0 and args.rate > 0):
        parser.error("--minutes and --rate must be > 0")
    if not (0.0 <= args.hog_fraction <= 1.0 and args.hog_block_s > 0):
        parser.error("--hog-fraction must be in [0, 1] and --hog-block-s > 0")
    if args.input[0] % 16 or args.input[1] % 16:
        parser.error(f"--input must be multiples of 16, got {args.input[0]}x{args.input[1]}")
    logs = args.from_logs or args.logs or Path(tempfile.mkdtemp(prefix="unimrseg_soak_"))
    logs.mkdir(parents=True, exist_ok=True)
    seconds = args.minutes * 60.0
    started = time.monotonic()
    # SIGTERM (a CI timeout) ends the run like Ctrl-C does: the children are stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    domain_id = None
    if args.from_logs:
        data = RunData.load(logs / RUN_FILE)
    else:
        try:
            with domain(args.domain_id) as domain_id:
                data = run_soak(args, logs, domain_id)
        except RunError as exc:
            print(f"soak: failed: {exc}", file=sys.stderr)
            return 2
        data.save(logs / RUN_FILE)
    cycle = soak_cycle(args.rate)
    windows = [
        {
            "start_s": round((s - data.t0_ns) / _NS, 3),
            "end_s": round((e - data.t0_ns) / _NS, 3),
            "fault": str(f),
        }
        for s, e, f in fault_windows(data.schedule, data.t0_ns, margins=False)
        if (s - data.t0_ns) / _NS < seconds
    ]
    payload = {
        "environment": environment(("numpy", "onnxruntime", "torch", "ros-rclpy")),
        "config": {
            "minutes": args.minutes,
            "rate_hz": args.rate,
            "camera_size": list(args.size),
            "network_input": list(args.input),
            "network_input_why": "the model at its own 240x320 takes 40-50 ms a frame with 1 ONNX Runtime "
            "thread on these 2 cores, more than the 33 ms between frames at 30 Hz; at 128x160 it took "
            "12.6 ms alone (node.inference_ms_after_warmup: what it took in the soak, the machine shared)",
            "node_params": f"{CONFIG.relative_to(REPO)} + input_height, input_width, "
            f"diagnostics_period_seconds 1.0, health_poll_rate_hz {poll_rate_hz(args.rate):g} (2x the "
            "camera rate: a poll every half period, see poll_rate_hz)",
            "pipeline": "unimrseg_ros.sensor_sim x3 -> unimrseg_fault_injector -> unimrseg_node -> soak.py",
            "domain_id": domain_id,
            "logs": str(logs),
            "wall_s": round(time.monotonic() - started, 1),
        },
        "schedule": {
            "cycle_s": cycle_s(cycle),
            "faults_per_cycle": len(cycle),
            "kinds": sorted({f.kind for f in cycle}),
            "cycle": [f.to_dict() for f in cycle],
            "margins": {"before_s": PRE_MARGIN_S, "after_s": f"{RECOVERY_S} + delay_s (delay faults)"},
            "t0_ns": data.t0_ns,
            "windows": windows,
        },
        "hog": {
            "what": "benchmarks/hog.py: one busy loop per core, nice 0 (the node's own priority)",
            "processes": os.cpu_count(),
            "fraction": args.hog_fraction,
            "block_s": args.hog_block_s,
            "planned_s": [
                [round(a, 2), round(b, 2)]
                for a, b in hog_blocks(warmup_seconds(seconds), seconds, args.hog_fraction, args.hog_block_s)
            ],
            "on_off_s": [
                [round((a - data.t0_ns) / _NS, 3), round((b - data.t0_ns) / _NS, 3)] for a, b in data.hog
            ],
            "note": "the machine is shared: other jobs load it too (machine_load_after_warmup, series.load1)",
        },
        "injector": data.injector,
        "exit_codes": data.exit_codes,
        **Analysis(data, seconds, args.rate).result(),
    }
    out = args.out.with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1) + "\n")
    plot(payload, args.out.with_suffix(".png"))
    summarize(payload)
    print(f"wrote {out} and {args.out.with_suffix('.png')}")
    return 0 if payload["all_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
