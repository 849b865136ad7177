"""The reliability measurements, shared by ``test_node_reliability.py`` (asserts) and
``benchmarks/reliability.py`` (figures, repeated).

In-process (one rclpy context, the node and a camera peer on one executor thread):

- :func:`lifecycle_cycles`: N x configure/activate/deactivate/cleanup; threads, entities, RSS;
- :func:`slow_backend`: the real backend made slow (a sleep before each call), cameras at
  10 Hz; outputs, drops and output age.

Over DDS, with the node in its own process (``node_rig``):

- :func:`exit_after_signal`: signal -> exit time, exit code, traceback;
- :func:`live_fuzz`: ``helpers/image_fuzzer.py`` against the node, then its counters;
- :func:`offline_agreement`: the node's masks against ``Segmenter`` on the same decoded images.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from node_rig import (
    HELPERS,
    SIM_SCENES,
    SIM_SEED,
    SIZE,
    Listener,
    Process,
    Sim,
    stamp_ns,
    start_node,
)
from waits import wait_for, wait_until

from unimrseg_core.modalities import MODALITIES

ALL = "rgb+depth+thermal"
ENCODINGS = {"rgb": "rgb8", "depth": "16UC1", "thermal": "mono16"}
FUZZ_NODE_ARGS = (
    "-p",
    "input_qos.reliability:=reliable",  # the fuzzer's flow control then loses nothing
    "-p",
    "input_qos.depth:=300",
    "-p",
    "diagnostics_period_seconds:=0.2",
)
HANG_S = 10.0
"""A node that takes longer than this to exit after SIGINT/SIGTERM is hung (the target is 2 s)."""


# --------------------------------------------------------------------------- process facts


def proc_status(key: str) -> int:
    """An integer field of /proc/self/status (``VmRSS`` in kB, ``Threads``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def rss_mb() -> float:
    """Resident memory after a full collection and giving freed heap back (less allocator noise)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return proc_status("VmRSS") / 1024


def thread_names() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` against their index."""
    if len(values) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(values)), np.asarray(values), 1)[0])


# --------------------------------------------------------------------------- in-process harness


def camera_frames(n: int = 4, size: tuple[int, int] = (120, 160), seed: int = 0) -> list[dict[str, Any]]:
    """Healthy-looking frames (fresh noise each) as Image messages, one per modality."""
    from sensor_msgs.msg import Image

    from unimrseg_core.image_msg import fill_msg

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        arrays = {
            "rgb": rng.integers(30, 220, (*size, 3), dtype=np.uint8),
            "depth": rng.uniform(0.5, 15.0, size).astype(np.float32),
            "thermal": (290.0 + 8.0 * rng.standard_normal(size)).astype(np.float32),
        }
        frames.append({m: fill_msg(Image(), a, ENCODINGS[m], modality=m) for m, a in arrays.items()})
    return frames


@dataclass
class Output:
    receive_ns: int  # time.time_ns() at the peer's callback
    stamp_ns: int  # the anchor's stamp (the cameras stamp with time.time_ns() too)
    values: dict[str, str]

    @property
    def age_s(self) -> float:
        return (self.receive_ns - self.stamp_ns) / 1e9


@dataclass
class InProcess:
    """The node (not started) and a peer with camera publishers and a status subscriber, spinning."""

    node: Any
    peer: Any
    executor: Any
    pubs: dict[str, Any] = field(default_factory=dict)
    frames: list[dict[str, Any]] = field(default_factory=camera_frames)
    outputs: list[Output] = field(default_factory=list)
    published: int = 0
    _change_state: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _cameras: threading.Thread | None = None

    def start_cameras(self, rate_hz: float = 10.0) -> None:
        self._stop.clear()
        self._cameras = threading.Thread(
            target=self._publish, args=(rate_hz,), name="test-cameras", daemon=True
        )
        self._cameras.start()

    def stop_cameras(self) -> None:
        self._stop.set()
        if self._cameras is not None:
            self._cameras.join(5)
            self._cameras = None

    def _publish(self, rate_hz: float) -> None:
        pubs, frames = self.pubs, self.frames
        period = 1.0 / rate_hz
        next_t = time.monotonic()
        i = 0
        while not self._stop.is_set():
            now = time.time_ns()
            for m in MODALITIES:
                msg = frames[i % len(frames)][m]
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
                msg.header.frame_id = f"test_{m}"
                pubs[m].publish(msg)
            self.published += 1
            i += 1
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def _on_status(self, msg: Any) -> None:
        status = msg.status[0]
        self.outputs.append(
            Output(time.time_ns(), stamp_ns(msg.header), {kv.key: kv.value for kv in status.values})
        )

    def transition(self, name: str, timeout: float = 30.0) -> bool:
        """``ros2 lifecycle set``: through the node's ``~/change_state`` service, so the transition
        runs on the executor's thread as with a lifecycle manager. (``trigger_*`` from this thread
        while another spins races rclpy's executor: ros2/rclpy#1355.)"""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        if not self._change_state.wait_for_service(10):
            raise RuntimeError("no change_state service")
        ids = {
            "configure": Transition.TRANSITION_CONFIGURE,
            "activate": Transition.TRANSITION_ACTIVATE,
            "deactivate": Transition.TRANSITION_DEACTIVATE,
            "cleanup": Transition.TRANSITION_CLEANUP,
        }
        future = self._change_state.call_async(ChangeState.Request(transition=Transition(id=ids[name])))
        if not wait_for(future.done, timeout, 0.002):
            raise TimeoutError(f"no answer to {name}")
        return bool(future.result().success)

    def wait_outputs(self, more: int, timeout: float = 20.0) -> bool:
        target = len(self.outputs) + more
        return bool(wait_for(lambda: len(self.outputs) >= target, timeout, 0.02))

    def entities(self) -> dict[str, int]:
        n = self.node
        return {
            "publishers": len(list(n.publishers)),
            "subscriptions": len(list(n.subscriptions)),
            "timers": len(list(n.timers)),
            "services": len(list(n.services)),
            "clients": len(list(n.clients)),
            "guards": len(list(n.guards)),
        }


@contextlib.contextmanager
def in_process(context: Any, **overrides: Any) -> Iterator[InProcess]:
    """The node with ``autostart`` off (plus ``overrides``) and a camera peer, spun on one thread."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.srv import ChangeState
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from unimrseg_core import topics
    from unimrseg_ros.segmentation_node import SegmentationNode

    params = [Parameter("autostart", value=False), *(Parameter(k, value=v) for k, v in overrides.items())]
    node = SegmentationNode(context=context, parameter_overrides=params)
    peer = rclpy.create_node("unimrseg_reliability_peer", context=context)
    executor = SingleThreadedExecutor(context=context)
    h = InProcess(node, peer, executor)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    peer.create_subscription(DiagnosticArray, topics.STATUS, h._on_status, qos)
    h.pubs = {m: peer.create_publisher(Image, topics.INPUTS[m], qos) for m in MODALITIES}
    h._change_state = peer.create_client(ChangeState, f"{node.get_fully_qualified_name()}/change_state")
    executor.add_node(node)
    executor.add_node(peer)
    spinner = threading.Thread(target=executor.spin, name="test-executor", daemon=True)
    spinner.start()
    try:
        yield h
    finally:
        h.stop_cameras()
        executor.shutdown(timeout_sec=5)
        node.release()  # once nothing spins (see transition)
        node.destroy_node()
        peer.destroy_node()


# --------------------------------------------------------------------------- lifecycle cycles


def lifecycle_cycles(
    h: InProcess, cycles: int = 100, warmup: int = 5, feed_every: int = 10
) -> dict[str, Any]:
    """``cycles`` x configure/activate/deactivate/cleanup; frames flow (>= 2 outputs) every ``feed_every``.

    Threads, entities and RSS are read in the unconfigured state: at start, after
    ``warmup`` cycles (the baseline: first-use allocations done) and at the end.
    """

    def snapshot() -> dict[str, Any]:
        return {
            "rss_mb": rss_mb(),
            "threads_python": thread_names(),
            "threads_native": proc_status("Threads"),
            "entities": h.entities(),
        }

    h.start_cameras(10.0)  # before the first snapshot: its thread is in all three
    start = snapshot()
    rss: list[float] = []
    failures: list[str] = []
    leftover_workers = 0
    fed = 0
    baseline: dict[str, Any] | None = None
    began = time.monotonic()
    for i in range(cycles):
        for name in ("configure", "activate"):
            if not h.transition(name):
                failures.append(f"cycle {i}: {name}")
        if i % feed_every == 0:
            fed += h.wait_outputs(2, timeout=10)
        for name in ("deactivate", "cleanup"):
            if not h.transition(name):
                failures.append(f"cycle {i}: {name}")
        leftover_workers += sum(t.name == "unimrseg-inference" for t in threading.enumerate())
        rss.append(rss_mb())
        if i + 1 == warmup:
            baseline = snapshot()
    elapsed = time.monotonic() - began
    assert baseline is not None, "warmup must be shorter than cycles"
    # A thread that is ending is not a leak: give the counts a moment to settle.
    wait_for(
        lambda: (
            thread_names() == baseline["threads_python"]
            and proc_status("Threads") == baseline["threads_native"]
        ),
        5.0,
    )
    end = snapshot()
    h.stop_cameras()
    after = rss[warmup:]
    return {
        "cycles": cycles,
        "warmup_cycles": warmup,
        "cycles_with_frames": len(range(0, cycles, feed_every)),
        "cycles_with_outputs": int(fed),
        "failed_transitions": failures,
        "inference_threads_left_after_cleanup": leftover_workers,
        "seconds": round(elapsed, 2),
        "seconds_per_cycle": round(elapsed / cycles, 3),
        "rss_mb": {
            "start": round(start["rss_mb"], 1),
            "after_warmup": round(baseline["rss_mb"], 1),
            "end": round(end["rss_mb"], 1),
            "max_after_warmup": round(max(after), 1),
            "slope_per_cycle_after_warmup": round(slope(after), 4),
            "growth_after_warmup": round(end["rss_mb"] - baseline["rss_mb"], 1),
        },
        "threads": {
            "python_start": start["threads_python"],
            "python_after_warmup": baseline["threads_python"],
            "python_end": end["threads_python"],
            "native_start": start["threads_native"],
            "native_after_warmup": baseline["threads_native"],
            "native_end": end["threads_native"],
        },
        "entities": {
            "start": start["entities"],
            "after_warmup": baseline["entities"],
            "end": end["entities"],
        },
    }


# --------------------------------------------------------------------------- slow backend


class SlowBackend:
    """The real backend, ``delay_s`` slower per call: the fault, injected in front of the real model."""

    run_guarded = None
    """Not the failover backend's: ``Segmenter`` then calls ``infer``, where the delay is."""

    def __init__(self, backend: Any, delay_s: float) -> None:
        self._backend = backend
        self.delay_s = delay_s
        self.calls = 0

    def infer(self, feeds: Any) -> Any:
        self.calls += 1
        time.sleep(self.delay_s)
        return self._backend.infer(feeds)

    def __getattr__(self, name: str) -> Any:  # name, metadata, ... of the real one
        return getattr(self._backend, name)


def slow_backend(
    h: InProcess, delay_s: float = 0.3, seconds: float = 4.0, rate_hz: float = 10.0
) -> dict[str, Any]:
    """Configure, make the backend slow, activate, feed cameras at ``rate_hz`` for ``seconds``."""
    node = h.node
    if not (h.transition("configure") and h.transition("activate")):
        raise RuntimeError("the node did not start")
    segmenter = node.segmenter
    slow = SlowBackend(segmenter.backend, delay_s)
    segmenter.backend = slow
    worker = node._worker  # the one-slot hand-off: submitted, handled and dropped counts
    h.start_cameras(rate_hz)
    if not h.wait_outputs(1, timeout=20):
        raise RuntimeError("no output from the slow node")
    first_index = len(h.outputs)
    dropped_start = worker.dropped
    begun = time.monotonic()
    submitted_start, handled_start = worker.submitted, worker.handled
    frames = h.published + round(seconds * rate_hz)  # the window: this many camera frames
    wait_until(lambda: h.published >= frames, seconds + 20, f"{round(seconds * rate_hz)} camera frames")
    elapsed = time.monotonic() - begun
    submitted, handled, dropped = (
        worker.submitted - submitted_start,
        worker.handled - handled_start,
        worker.dropped - dropped_start,
    )
    diag = {
        s.name.rpartition(": ")[2]: {kv.key: kv.value for kv in s.values} for s in node.diagnostics().status
    }
    h.stop_cameras()
    outputs = h.outputs[first_index:]
    ages = [o.age_s for o in outputs]
    status_dropped = [int(o.values.get("dropped_frames", 0)) for o in outputs]
    h.transition("deactivate")
    n = max(1, len(ages) // 4)
    return {
        "delay_s": delay_s,
        "camera_rate_hz": rate_hz,
        "seconds": round(elapsed, 3),
        "outputs": len(outputs),
        "expected_outputs_at_most": round(elapsed / delay_s, 1),
        "submitted": submitted,
        "handled": handled,
        "dropped": dropped,
        "backend_calls": slow.calls,
        "diagnostics_dropped_frames": int(diag["inference"]["dropped_frames"]),
        "status_dropped_first": status_dropped[0] if status_dropped else None,
        "status_dropped_last": status_dropped[-1] if status_dropped else None,
        "age_s": {
            "first": round(ages[0], 3) if ages else None,
            "last": round(ages[-1], 3) if ages else None,
            "max": round(max(ages), 3) if ages else None,
            "mean_first_quarter": round(float(np.mean(ages[:n])), 3) if ages else None,
            "mean_last_quarter": round(float(np.mean(ages[-n:])), 3) if ages else None,
            "slope_per_output": round(slope(ages), 4),
        },
    }


# --------------------------------------------------------------------------- over DDS


@dataclass
class NodeRig:
    """The simulated cameras and a listener on one domain, and at most one node process at a time."""

    env: dict[str, str]
    tmp: Path
    listener: Listener
    sim: Sim
    node: Process | None = None
    node_args: tuple[str, ...] = ()
    started: int = 0

    def logs(self) -> str:
        node = self.node.text()[-6000:] if self.node else ""
        return f"----- node -----\n{node}\n----- sim -----\n{self.sim.text()[-2000:]}"

    def wait_used(self, used: str = ALL, timeout: float = 10.0, n: int = 5) -> bool:
        return bool(
            wait_for(
                lambda: len(s := self.listener.recent_statuses(n)) == n and all(x.used == used for x in s),
                timeout,
            )
        )

    def fresh_node(self, *ros_args: str, timeout: float = 90.0) -> Process:
        """Stop the running node, start another and wait until it publishes masks."""
        from unimrseg_core import topics

        if self.node is not None:
            self.node.stop()
        self.started += 1
        before = len(self.listener.image_list(topics.CLASS_MASK))
        self.node = start_node(self.env, self.tmp, *ros_args, name=f"node{self.started}")
        if not wait_for(lambda: len(self.listener.image_list(topics.CLASS_MASK)) >= before + 3, timeout):
            raise RuntimeError(f"the node published no masks within {timeout:g} s\n{self.logs()}")
        return self.node

    def node_with(self, *ros_args: str) -> Process:
        """The running node if it runs with ``ros_args``, else a fresh one with them."""
        if self.node is None or self.node.proc.poll() is not None or self.node_args != ros_args:
            self.fresh_node(*ros_args)
            self.node_args = ros_args
        assert self.node is not None
        return self.node

    def close(self) -> None:
        self.sim.stop()
        if self.node is not None:
            self.node.stop()
        self.listener.close()


def exit_after_signal(proc: Process, sig: signal.Signals, hang_s: float = HANG_S) -> dict[str, Any]:
    """Send ``sig``; seconds until the process is gone, its exit code, whether it logged a traceback."""
    began = time.monotonic()
    proc.proc.send_signal(sig)
    try:
        code: int | None = proc.proc.wait(hang_s)
    except subprocess.TimeoutExpired:
        code = None
        proc.proc.kill()
        proc.proc.wait(10)
    seconds = time.monotonic() - began
    text = proc.text()
    stopped = re.search(rf"{sig.name}: stopped in ([0-9.]+) s", text)  # run_node's own teardown
    return {
        "signal": sig.name,
        "exit_s": round(seconds, 3),
        "teardown_s": float(stopped.group(1)) if stopped else None,
        "exit_code": code,
        "hung": code is None,
        "traceback": "Traceback" in text,
        "log_tail": text[-1500:],
    }


def live_fuzz(rig: NodeRig, count: int, seed: int, timeout: float = 150.0) -> dict[str, Any]:
    """Run the fuzzer process against the rig's node; its summary, plus the node's own view."""
    summary_path = rig.tmp / f"fuzz_{seed}.json"
    cmd = [
        sys.executable,
        str(HELPERS / "image_fuzzer.py"),
        "--count",
        str(count),
        "--seed",
        str(seed),
        "--summary",
        str(summary_path),
        "--timeout",
        str(timeout),
    ]
    began_ns = time.time_ns()
    fuzzer = Process("fuzzer", cmd, rig.env, rig.tmp / f"fuzzer_{seed}.log", stdin=subprocess.DEVNULL)
    try:
        code = fuzzer.proc.wait(timeout + 30)
    finally:
        fuzzer.stop()
    ended_ns = time.time_ns()
    if code != 0 or not summary_path.exists():
        raise RuntimeError(f"the fuzzer failed ({code})\n{fuzzer.text()[-4000:]}\n{rig.logs()}")
    summary = json.loads(summary_path.read_text())
    summary["window_ns"] = [began_ns, ended_ns]
    return summary


def offline_agreement(
    listener: Listener, sim: Sim, after_ns: int, per_scene: int = 2
) -> list[dict[str, Any]]:
    """Class masks (all three modalities used) received for stamps after ``after_ns``, compared with
    ``Segmenter`` (the node's default backend and options) on exactly what the node decoded."""
    from sensor_msgs.msg import Image

    from unimrseg_core import topics
    from unimrseg_core.data.generator import SceneGenerator
    from unimrseg_core.image_msg import decode, fill_msg
    from unimrseg_core.runtime.segmenter import Segmenter
    from unimrseg_core.runtime.selection import select_backend
    from unimrseg_ros.parameters import defaults, node_config

    scene_of = {t["stamp_ns"]: t["scene"] for t in sim.ticks("rgb")}
    used = {s.stamp_ns: s.used for s in listener.status_list()}
    masks = listener.data_of(topics.CLASS_MASK)
    received = {r.stamp_ns: r for r in listener.image_list(topics.CLASS_MASK)}
    chosen: dict[int, list[int]] = {}
    for stamp in sorted(masks):
        if stamp > after_ns and used.get(stamp) == ALL and stamp in scene_of:
            chosen.setdefault(scene_of[stamp], [])
            if len(chosen[scene_of[stamp]]) < per_scene:
                chosen[scene_of[stamp]].append(stamp)
    config = node_config(defaults())
    selection = select_backend(config.backend, config.backend_options)
    segmenter = Segmenter(selection.backend)
    generator = SceneGenerator(SIZE, seed=SIM_SEED)
    out = []
    for scene, stamps in sorted(chosen.items()):
        assert scene < SIM_SCENES
        sample = generator.sample(scene, ["day"])
        inputs = {
            m: decode(fill_msg(Image(), getattr(sample, m), e, modality=m), m) for m, e in ENCODINGS.items()
        }
        reference = segmenter.segment(**inputs)
        for stamp in stamps:
            r = received[stamp]
            ids = np.frombuffer(masks[stamp], np.uint8)
            agree = (
                float(np.mean(ids == reference.class_ids.reshape(-1)))
                if ids.size == reference.class_ids.size
                else 0.0
            )
            out.append(
                {
                    "stamp_ns": stamp,
                    "scene": scene,
                    "size": [r.height, r.width],
                    "frame_id": r.frame_id,
                    "encoding": r.encoding,
                    "agreement": agree,
                    "backend": selection.backend.name,
                }
            )
    return out
