"""Publish -> mask latency through DDS against the Segmenter alone, at 240x320 on this machine.

1. ``Segmenter.segment`` on the three decoded modalities of the simulated scenes, in this
   process, with the node's default backend options (the model's latency, pre- and
   post-processing included).
2. The ``unimrseg_node`` script in its own process with the shipped config, fed by three
   camera processes (``python -m unimrseg_ros.sensor_sim``: one per camera, as real drivers
   are; rgb8 / 16UC1 / mono16 at ``--rate`` Hz, stamped with the tick time at which they
   publish). This process receives ``segmentation/class_mask``: latency = receive time -
   stamp, i.e. publish -> mask, through DDS both ways.

Node overhead = end-to-end p50 - Segmenter p50, as a fraction of the Segmenter p50
(the target is < 30 %). The result goes to ``benchmarks/results/bench_node.json``.

    python benchmarks/bench_node.py [--seconds 15] [--rate 10] [--domain-id 91]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write_result

REPO = Path(__file__).resolve().parents[1]
SIM = (sys.executable, "-m", "unimrseg_ros.sensor_sim")  # one simulated camera, before its options
SIZE = (240, 320)
SIM_SEED, SIM_SCENES = 11, 4  # the simulator's defaults: the scenes both measurements run on
ENCODINGS = {"rgb": "rgb8", "depth": "16UC1", "thermal": "mono16"}
TARGET = 0.30
REPORTED = ("latency_p50_ms", "latency_p95_ms", "inference_p50_ms", "inference_p95_ms", "fps")


def ros_env(domain_id: int) -> dict[str, str]:
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "AMENT_PREFIX_PATH": sys.prefix,
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "FASTDDS_DEFAULT_PROFILES_FILE": str(REPO / "test" / "fastdds_fast_discovery.xml"),
        "PYTHONUNBUFFERED": "1",
    }


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1e3
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "mean_ms": float(a.mean()),
        "n": len(values),
    }


def bench_segmenter(repeats: int) -> tuple[dict[str, Any], str]:
    """The Segmenter alone on exactly what the node decodes from the simulated cameras."""
    from sensor_msgs.msg import Image

    from unimrseg_core.data.generator import SceneGenerator
    from unimrseg_core.image_msg import decode, fill_msg
    from unimrseg_core.runtime.segmenter import Segmenter
    from unimrseg_core.runtime.selection import select_backend
    from unimrseg_ros.parameters import defaults, node_config

    config = node_config(defaults())  # the same backend and options as the node with the shipped config
    selection = select_backend(config.backend, config.backend_options)
    segmenter = Segmenter(selection.backend)
    generator = SceneGenerator(SIZE, seed=SIM_SEED)
    decoded = []
    for i in range(SIM_SCENES):
        sample = generator.sample(i, ["day"])
        decoded.append(
            {m: decode(fill_msg(Image(), getattr(sample, m), e, modality=m), m) for m, e in ENCODINGS.items()}
        )
    for i in range(10):
        segmenter.segment(**decoded[i % len(decoded)])
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        segmenter.segment(**decoded[i % len(decoded)])
        times.append(time.perf_counter() - start)
    return percentiles(times), selection.backend.name


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)


def bench_node(seconds: float, rate: float, domain_id: int) -> dict[str, Any]:
    env = ros_env(domain_id)
    os.environ.update(env)
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from unimrseg_core import topics

    tmp = Path(tempfile.mkdtemp(prefix="bench_node_"))
    child_env = {**os.environ, **env}
    node_cmd = [str(Path(sys.prefix) / "bin" / topics.NODE_NAME), "--ros-args", "--params-file"]
    procs = {"node": start([*node_cmd, str(REPO / "config" / "unimrseg.yaml")], child_env, tmp / "node.log")}
    for m in ENCODINGS:
        cmd = [
            *SIM,
            "--modality",
            m,
            "--events",
            str(tmp / f"{m}.jsonl"),
            "--rate",
            str(rate),
        ]
        procs[m] = start(cmd, child_env, tmp / f"sim_{m}.log")

    rclpy.init(domain_id=domain_id)
    node = rclpy.create_node("unimrseg_bench")
    received: dict[int, int] = {}
    inference: list[dict[str, str]] = []
    measuring = threading.Event()

    def on_mask(msg: Any) -> None:
        if measuring.is_set():
            received[msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = time.time_ns()

    def on_diag(msg: Any) -> None:
        for status in msg.status:
            if status.name.endswith(": inference"):
                inference.append({kv.key: kv.value for kv in status.values})

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, topics.CLASS_MASK, on_mask, qos)
    node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_diag, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not inference or not inference[-1].get("latency_p50_ms"):  # the node answers
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node never answered; its log:\n{(tmp / 'node.log').read_text()}")
            time.sleep(0.2)
        time.sleep(2.0)  # every sensor OK, rates learned
        first_ns = time.time_ns()
        measuring.set()
        time.sleep(seconds)
        last_ns = time.time_ns() - 500_000_000  # frames still in flight are not counted
        time.sleep(1.0)
        measuring.clear()
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(20)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    period_ns = round(1e9 / rate)
    ticks = [t * period_ns for t in range(first_ns // period_ns + 1, last_ns // period_ns + 1)]
    latencies = [(received[t] - t) / 1e9 for t in ticks if t in received]
    last = inference[-1] if inference else {}
    return {
        "end_to_end": percentiles(latencies),
        "frames_published": len(ticks),
        "frames_received": len(latencies),
        "rate_hz": rate,
        "node_reported": {k: float(last[k]) for k in REPORTED if last.get(k)}
        | {"dropped_frames": int(last.get("dropped_frames", 0) or 0)},
        "exit_codes": {name: proc.returncode for name, proc in procs.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=150)
    parser.add_argument("--domain-id", type=int, default=91)
    args = parser.parse_args()

    segmenter, backend = bench_segmenter(args.repeats)
    print(f"Segmenter alone ({backend}): p50 {segmenter['p50_ms']:.1f} ms, p95 {segmenter['p95_ms']:.1f} ms")
    node = bench_node(args.seconds, args.rate, args.domain_id)
    e2e = node["end_to_end"]
    overhead_ms = e2e["p50_ms"] - segmenter["p50_ms"]
    fraction = overhead_ms / segmenter["p50_ms"]
    print(
        f"publish -> mask through DDS: p50 {e2e['p50_ms']:.1f} ms, p95 {e2e['p95_ms']:.1f} ms "
        f"({node['frames_received']}/{node['frames_published']} frames); "
        f"node overhead {overhead_ms:.1f} ms = {100 * fraction:.0f} % of the model "
        f"(target < {100 * TARGET:.0f} %)"
    )
    payload = {
        "environment": environment(("numpy", "onnxruntime", "torch", "opencv-python-headless", "ros-rclpy")),
        "size": list(SIZE),
        "backend": backend,
        "segmenter": segmenter,
        "node": node,
        "overhead_ms_p50": overhead_ms,
        "overhead_fraction_p50": fraction,
        "target_fraction": TARGET,
        "target_met": fraction < TARGET,
    }
    print(f"wrote {write_result('bench_node', payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
