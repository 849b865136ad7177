"""Publish -> mask latency through DDS against the Segmenter alone, at 240x320 on this machine.

1. ``Segmenter.segment`` on the three decoded modalities, in this process, with the
   node's default backend options (the model's latency, pre- and post-processing included).
2. The ``unimrseg_node`` script in its own process, with the shipped config; this
   process publishes rgb8 / 16UC1 / mono16 images of generated scenes at ``--rate``
   Hz (stamp = the time just before publishing) and receives
   ``segmentation/class_mask``: latency = receive time - stamp.

Node overhead = end-to-end p50 - Segmenter p50, as a fraction of the Segmenter p50
(the target is < 30 %). The result goes to ``benchmarks/results/bench_node.json``.

    python benchmarks/bench_node.py [--frames 150] [--rate 10] [--domain-id 91]
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
SIZE = (240, 320)
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


def scenes(count: int) -> list[dict[str, np.ndarray]]:
    from unimrseg_core.data.generator import SceneGenerator

    generator = SceneGenerator(SIZE, seed=3)
    return [{m: getattr(generator.sample(i, ["day"]), m) for m in ENCODINGS} for i in range(count)]


def bench_segmenter(inputs: list[dict[str, np.ndarray]], repeats: int) -> tuple[dict[str, Any], str]:
    from sensor_msgs.msg import Image

    from unimrseg_core.image_msg import decode, fill_msg
    from unimrseg_core.runtime.segmenter import Segmenter
    from unimrseg_core.runtime.selection import select_backend
    from unimrseg_ros.parameters import defaults, node_config

    config = node_config(defaults())  # the same backend and options as the node with the shipped config
    selection = select_backend(config.backend, config.backend_options)
    segmenter = Segmenter(selection.backend)
    decoded = [
        {m: decode(fill_msg(Image(), x[m], e, modality=m), m) for m, e in ENCODINGS.items()} for x in inputs
    ]
    for i in range(10):
        segmenter.segment(**decoded[i % len(decoded)])
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        segmenter.segment(**decoded[i % len(decoded)])
        times.append(time.perf_counter() - start)
    return percentiles(times), selection.backend.name


def bench_node(
    inputs: list[dict[str, np.ndarray]], frames: int, rate: float, domain_id: int
) -> dict[str, Any]:
    env = ros_env(domain_id)
    os.environ.update(env)
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from unimrseg_core.image_msg import fill_msg
    from unimrseg_ros import topics

    script = Path(sys.prefix) / "bin" / "unimrseg_node"
    log = Path(tempfile.mkstemp(prefix="bench_node_", suffix=".log")[1])
    with log.open("wb") as out:
        node_proc = subprocess.Popen(
            [str(script), "--ros-args", "--params-file", str(REPO / "config" / "unimrseg.yaml")],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    rclpy.init(domain_id=domain_id)
    node = rclpy.create_node("unimrseg_bench")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {m: node.create_publisher(Image, topics.INPUTS[m], qos) for m in ENCODINGS}
    messages = [{m: fill_msg(Image(), x[m], e, modality=m) for m, e in ENCODINGS.items()} for x in inputs]
    received: dict[int, int] = {}
    inference: list[dict[str, str]] = []

    def on_mask(msg: Any) -> None:
        received[msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = time.time_ns()

    def on_diag(msg: Any) -> None:
        for status in msg.status:
            if status.name.endswith(": inference"):
                inference.append({kv.key: kv.value for kv in status.values})

    node.create_subscription(Image, topics.CLASS_MASK, on_mask, qos)
    node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_diag, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    sent: list[int] = []
    try:
        deadline = time.monotonic() + 120
        i = 0
        while not received and time.monotonic() < deadline:  # until the node answers
            publish(messages[i % len(messages)], pubs)
            i += 1
            time.sleep(1.0 / rate)
        if not received:
            raise RuntimeError(f"the node never answered; its log:\n{log.read_text()}")
        time.sleep(2.0)  # health OK on every sensor, rates learned
        received.clear()
        period = 1.0 / rate
        start = time.monotonic()
        for k in range(frames):
            sent.append(publish(messages[k % len(messages)], pubs))
            delay = start + (k + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        time.sleep(1.0)
    finally:
        node_proc.terminate()
        node_proc.wait(20)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    latencies = [(received[s] - s) / 1e9 for s in sent if s in received]
    last = inference[-1] if inference else {}
    return {
        "end_to_end": percentiles(latencies),
        "sent": len(sent),
        "received": len(latencies),
        "rate_hz": rate,
        "node_reported": {k: float(last[k]) for k in REPORTED if last.get(k)}
        | {"dropped_frames": int(last.get("dropped_frames", 0) or 0)},
        "node_exit_code": node_proc.returncode,
    }


def publish(frame: dict[str, Any], pubs: dict[str, Any]) -> int:
    stamp = time.time_ns()
    for modality, msg in frame.items():
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg.header.frame_id = f"bench_{modality}"
        pubs[modality].publish(msg)
    return stamp


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=150)
    parser.add_argument("--domain-id", type=int, default=91)
    args = parser.parse_args()

    inputs = scenes(4)
    segmenter, backend = bench_segmenter(inputs, args.repeats)
    print(f"Segmenter alone ({backend}): p50 {segmenter['p50_ms']:.1f} ms, p95 {segmenter['p95_ms']:.1f} ms")
    node = bench_node(inputs, args.frames, args.rate, args.domain_id)
    e2e = node["end_to_end"]
    overhead_ms = e2e["p50_ms"] - segmenter["p50_ms"]
    fraction = overhead_ms / segmenter["p50_ms"]
    print(
        f"publish -> mask through DDS: p50 {e2e['p50_ms']:.1f} ms, p95 {e2e['p95_ms']:.1f} ms "
        f"({node['received']}/{node['sent']} frames); node overhead {overhead_ms:.1f} ms = "
        f"{100 * fraction:.0f} % of the model (target < {100 * TARGET:.0f} %)"
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
