"""Shared by the node's DDS tests and benchmark: the simulator process, the node process and a listener.

- :class:`Sim` runs ``python -m unimrseg_ros.sensor_sim`` per camera (generated scenes at 10 Hz,
  faults by command)
  and reads the JSON events it writes (every tick's stamp and scene, every command).
- :class:`Listener` is an in-process rclpy node subscribed to every output of the node.
- :func:`start_node` runs the ``unimrseg_node`` console script as a user would.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waits import wait_for

from unimrseg_core.modalities import MODALITIES

HELPERS = Path(__file__).resolve().parent / "helpers"
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "config" / "unimrseg.yaml"
NODE_SCRIPT = Path(sys.prefix) / "bin" / "unimrseg_node"
ROS_KEYS = (
    "ROS_DOMAIN_ID",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "ROS_STATIC_PEERS",
    "AMENT_PREFIX_PATH",
    "RMW_IMPLEMENTATION",
    "FASTDDS_DEFAULT_PROFILES_FILE",
)
SIM_SEED = 11
SIM_SCENES = 4
SIZE = (240, 320)


def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class Process:
    """A child process with its output in a log file."""

    def __init__(self, name: str, cmd: Sequence[str], env: dict[str, str], log: Path, **kwargs: Any) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(list(cmd), env=env, stdout=out, stderr=subprocess.STDOUT, **kwargs)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class Sim:
    """Three camera processes (rgb, depth, thermal), each with its own stdin and events file."""

    def __init__(self, env: dict[str, str], tmp: Path, *extra: str) -> None:
        self.cameras: dict[str, Process] = {}
        self.events_paths: dict[str, Path] = {}
        for modality in MODALITIES:
            path = tmp / f"sim_{modality}.jsonl"
            cmd = [
                sys.executable,
                "-m",
                "unimrseg_ros.sensor_sim",
                "--modality",
                modality,
                "--events",
                str(path),
                "--seed",
                str(SIM_SEED),
                "--scenes",
                str(SIM_SCENES),
                *extra,
            ]
            self.events_paths[modality] = path
            log = tmp / f"sim_{modality}.log"
            self.cameras[modality] = Process(f"sim_{modality}", cmd, env, log, stdin=subprocess.PIPE)

    def text(self) -> str:
        return "\n".join(f"--- {m} ---\n{p.text()[-1500:]}" for m, p in self.cameras.items())

    def stop(self) -> None:
        for camera in self.cameras.values():  # all at once, then wait for each
            if camera.proc.poll() is None:
                camera.proc.terminate()
        for camera in self.cameras.values():
            camera.stop()
            if camera.proc.stdin is not None:
                camera.proc.stdin.close()

    def events(self, modality: str | None = None) -> list[dict[str, Any]]:
        out = []
        for m, path in self.events_paths.items():
            if (modality is None or m == modality) and path.exists():
                out += [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
        return out

    def ticks(self, modality: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events(modality) if "tick" in e]

    def send(self, command: str, timeout: float = 5.0) -> dict[str, Any]:
        """Send ``VERB MODALITY`` to that camera; return its event once the camera applied it."""
        verb, _, modality = command.partition(" ")
        before = len(self.events(modality))
        camera = self.cameras[modality].proc
        assert camera.stdin is not None
        camera.stdin.write(f"{verb}\n".encode())
        camera.stdin.flush()
        found = wait_for(
            lambda: next((e for e in self.events(modality)[before:] if e.get("event") == verb), None), timeout
        )
        if found is None:
            raise TimeoutError(f"the {modality} camera did not apply {verb!r}\n{self.text()}")
        return found


def start_node(env: dict[str, str], tmp: Path, *ros_args: str, name: str = "node") -> Process:
    if not NODE_SCRIPT.is_file():
        raise FileNotFoundError(f"{NODE_SCRIPT} is missing: run `make setup` (pip install -e .)")
    cmd = [str(NODE_SCRIPT), "--ros-args", "--params-file", str(CONFIG), *ros_args]
    return Process(name, cmd, env, tmp / f"{name}.log", stdin=subprocess.DEVNULL)


@dataclass
class Received:
    time: float  # time.monotonic() at the callback
    stamp_ns: int
    frame_id: str
    height: int = 0
    width: int = 0
    encoding: str = ""
    step: int = 0


@dataclass
class Status:
    time: float
    stamp_ns: int
    frame_id: str
    level: int
    used: str
    anchor: str
    values: dict[str, str]


@dataclass
class Diag:
    time: float
    level: int
    message: str
    values: dict[str, str]


@dataclass
class Listener:
    """Subscribes to the node's outputs in this process and records what arrives."""

    context: Any
    namespace: str = ""
    keep_data: int = 40
    images: dict[str, list[Received]] = field(default_factory=dict)
    data: dict[str, OrderedDict[int, bytes]] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    diagnostics: list[dict[str, Diag]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from unimrseg_core import topics

        self._lock = threading.Lock()
        namespace = self.namespace or None
        self.node = rclpy.create_node("unimrseg_test_listener", namespace=namespace, context=self.context)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        outputs = (topics.CLASS_MASK, topics.COLORED_MASK, topics.SALIENCY_MASK, topics.SALIENCY_PROBABILITY)
        for topic in outputs:
            self.images[topic] = []
            self.data[topic] = OrderedDict()
            self.node.create_subscription(Image, topic, lambda m, t=topic: self._on_image(t, m), qos)
        self.node.create_subscription(DiagnosticArray, topics.STATUS, self._on_status, qos)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # the context is shut down at teardown
            self.executor.spin()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()

    def _on_image(self, topic: str, msg: Any) -> None:
        r = Received(
            time.monotonic(),
            stamp_ns(msg.header),
            msg.header.frame_id,
            msg.height,
            msg.width,
            msg.encoding,
            msg.step,
        )
        with self._lock:
            self.images[topic].append(r)
            store = self.data[topic]
            store[r.stamp_ns] = bytes(msg.data)
            while len(store) > self.keep_data:
                store.popitem(last=False)

    def _on_status(self, msg: Any) -> None:
        status = msg.status[0]
        values = {kv.key: kv.value for kv in status.values}
        s = Status(
            time.monotonic(),
            stamp_ns(msg.header),
            msg.header.frame_id,
            status.level[0],
            values.get("used", ""),
            values.get("anchor", ""),
            values,
        )
        with self._lock:
            self.statuses.append(s)

    def _on_diagnostics(self, msg: Any) -> None:
        now = time.monotonic()
        by_name = {
            s.name.rpartition(": ")[2]: Diag(now, s.level[0], s.message, {v.key: v.value for v in s.values})
            for s in msg.status
        }
        with self._lock:
            self.diagnostics.append(by_name)

    # ------------------------------------------------------------------ queries

    def status_list(self) -> list[Status]:
        with self._lock:
            return list(self.statuses)

    def image_list(self, topic: str) -> list[Received]:
        with self._lock:
            return list(self.images[topic])

    def data_of(self, topic: str) -> dict[int, bytes]:
        with self._lock:
            return dict(self.data[topic])

    def diag(self, component: str) -> Diag | None:
        """The latest /diagnostics status of ``component`` (rgb, depth, thermal, inference)."""
        with self._lock:
            for array in reversed(self.diagnostics):
                if component in array:
                    return array[component]
        return None

    def diag_after(self, component: str, after: float) -> Diag | None:
        d = self.diag(component)
        return d if d is not None and d.time > after else None

    def recent_statuses(self, n: int) -> list[Status]:
        return self.status_list()[-n:]

    def healthy(self, n: int = 5) -> bool:
        """Every camera OK on the latest /diagnostics, and the latest ``n`` frames used all three."""
        diags = [self.diag(m) for m in MODALITIES]
        recent = self.recent_statuses(n)
        return (
            all(d is not None and d.values["state"] == "OK" for d in diags)
            and len(recent) == n
            and all(s.used == "+".join(MODALITIES) for s in recent)
        )

    def dropped(self, start_ns: int, end_ns: int) -> int:
        """Frames the node shed (``dropped_frames``, replaced before inference) between the last
        output stamped before ``start_ns`` and the last one stamped up to ``end_ns``."""
        counts = [(s.stamp_ns, int(s.values.get("dropped_frames", 0))) for s in self.status_list()]
        before = [n for stamp, n in counts if stamp < start_ns]
        upto = [n for stamp, n in counts if stamp <= end_ns]
        return (max(upto) if upto else 0) - (max(before) if before else 0)
