"""Test helper: fuzzed ``sensor_msgs/Image`` messages for the node's inputs, and a process that sends them.

:func:`fuzz_messages` makes ``count`` messages from a seed, each built to hit one
failure of :func:`unimrseg_core.image_msg.decode` (its ``reason``) or to be a valid but
odd message ("accepted": big-endian flags, NaN/inf float payloads, 1x1 images, padded
rows, odd frame_ids and stamps). The reason is known by construction, and checked
against ``decode`` itself (``mismatches``), so a test can demand that the node's
/diagnostics counters match it exactly.

Run as a script, it publishes them on ``rgb/image``, ``depth/image`` and ``thermal/image``
(reliable, keep-last 1000, an 8 MB shared-memory segment for the large ones) to a node
subscribing reliably, with flow control instead of a guessed rate: it reads the node's
/diagnostics and never has more than ``--window`` rejects outstanding (sent, not yet
counted), so a message is never lost to a full history. Before the first one it sends a
probe per input (an empty image: ``zero_size``) until the node counts it, so the node's
readers have matched this publisher both ways; the summary reports the probes. It writes
a JSON summary.

    python image_fuzzer.py --count 3000 --seed 5 --summary out.json [--node-name unimrseg_node]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unimrseg_core.image_msg import ENCODINGS, MAX_PIXELS, MODALITY_ENCODINGS, ImageMsgError, decode
from unimrseg_core.modalities import MODALITIES

ACCEPTED = "accepted"
UINT32_MAX = (1 << 32) - 1
ODD_FRAME_IDS = ("", " ", "/", "../../etc", "a" * 5000, "ß漢字🚀", "frame\nwith\nnewlines", "rgb/image")
ODD_STAMPS = ((-(1 << 31), 0), (-1, 999_999_999), (0, 0), ((1 << 31) - 1, UINT32_MAX), (1, UINT32_MAX))
UNKNOWN_ENCODINGS = (
    "",
    "RGB8",
    "rgb8 ",
    "yuv420",
    "nv12",
    "bayer_rggb16",
    "8UC4",
    "16UC4",
    "64FC1",
    "ü",
    "x" * 300,
)
PROBE_REASON = "zero_size"
"""What the node counts for the probe, an empty image with the modality's encoding."""
PROBE_RESEND_S = 1.0
"""A probe not counted this long after it was sent is sent again (it reached no matched reader)."""
BIG_DATA_BYTES = 700_000
"""A few long_data messages this large: more than Fast DDS's default 512 KB shared-memory segment."""

KINDS: dict[str, tuple[str, float]] = {
    # kind: (intended reason, weight)
    "bad_step": ("bad_step", 1.0),
    "short_data": ("short_data", 1.0),
    "empty_data": ("short_data", 0.5),
    "long_data": ("long_data", 1.0),
    "zero_size": ("zero_size", 1.0),
    "too_many_pixels": ("too_many_pixels", 1.0),
    "unknown_encoding": ("unknown_encoding", 1.0),
    "wrong_encoding": ("wrong_encoding_for_modality", 1.0),
    "bigendian_flip": (ACCEPTED, 0.3),
    "nonfinite_float": (ACCEPTED, 0.3),
    "tiny_valid": (ACCEPTED, 0.2),
    "padded_valid": (ACCEPTED, 0.2),
    "odd_frame_id": (ACCEPTED, 0.2),
    "odd_stamp": (ACCEPTED, 0.2),
}


@dataclass
class Fuzzed:
    modality: str
    kind: str
    reason: str  # an ImageMsgError reason, or ACCEPTED
    fields: dict[str, Any]  # Image fields: height, width, encoding, is_bigendian, step, data, frame_id, stamp


def _valid_layout(rng: np.random.Generator, modality: str, max_side: int = 24) -> tuple[str, int, int, int]:
    encoding = str(rng.choice(MODALITY_ENCODINGS[modality]))
    h, w = int(rng.integers(1, max_side + 1)), int(rng.integers(1, max_side + 1))
    w += w % 2 if ENCODINGS[encoding].even_width else 0  # 4:2:2 packs pixels in pairs
    return encoding, h, w, w * ENCODINGS[encoding].bytes_per_pixel


def _one(rng: np.random.Generator, index: int, kind: str, modality: str, max_pixels: int) -> Fuzzed:
    encoding, h, w, row = _valid_layout(rng, modality)
    step = row
    big_endian = 0
    frame_id = f"fuzz_{modality}_{index}"
    stamp = (int(time.time()), 0)
    size: int | None = None  # data length; None: exactly h * step
    payload: bytes | None = None
    if kind == "bad_step":
        step = int(rng.integers(0, row))
    elif kind == "short_data":
        step = row + int(rng.integers(0, 8))
        size = int(rng.integers(0, step * (h - 1) + row))
    elif kind == "empty_data":
        size = 0
    elif kind == "long_data":
        extra = BIG_DATA_BYTES if index % 29 == 0 else int(rng.integers(1, 4096))
        size = h * step + extra
    elif kind == "zero_size":
        h, w = (0, int(rng.integers(0, UINT32_MAX))) if rng.random() < 0.5 else (int(rng.integers(0, 99)), 0)
        step, size = int(rng.integers(0, 1 << 16)), int(rng.integers(0, 64))
    elif kind == "too_many_pixels":
        h = int(rng.integers(1, 65536)) if rng.random() < 0.5 else int(rng.integers(1, UINT32_MAX + 1))
        w = int(rng.integers(max_pixels // h + 1, UINT32_MAX + 1))  # so h * w > max_pixels
        step, size = int(rng.integers(0, UINT32_MAX)), int(rng.integers(0, 64))
    elif kind == "unknown_encoding":
        encoding = str(rng.choice(UNKNOWN_ENCODINGS))
    elif kind == "wrong_encoding":
        encoding = str(rng.choice([e for e in ENCODINGS if e not in MODALITY_ENCODINGS[modality]]))
        w += w % 2 if ENCODINGS[encoding].even_width else 0
        row = w * ENCODINGS[encoding].bytes_per_pixel
        step = row
    elif kind == "bigendian_flip":
        big_endian = int(rng.integers(1, 256))
    elif kind == "nonfinite_float":
        if modality == "rgb":  # no float encoding for rgb: a big-endian 16-bit one instead
            encoding, big_endian = "mono16", 1
        else:
            encoding = "32FC1"
            values = rng.choice(np.array([np.nan, np.inf, -np.inf, 1e38, -0.0, 300.0], np.float32), (h, w))
            payload = values.astype(np.float32).tobytes()
        row = step = w * ENCODINGS[encoding].bytes_per_pixel
    elif kind == "tiny_valid":
        encoding, h, w, row = _valid_layout(rng, modality, max_side=2)
        step = row
    elif kind == "padded_valid":
        step = row + int(rng.integers(1, 16))
        size = step * (h - 1) + row if rng.random() < 0.5 else step * h
    elif kind == "odd_frame_id":
        frame_id = str(rng.choice(ODD_FRAME_IDS))
    elif kind == "odd_stamp":
        sec, nanosec = ODD_STAMPS[int(rng.integers(0, len(ODD_STAMPS)))]
        stamp = (sec, nanosec)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    if payload is None:
        n = h * step if size is None else size
        payload = rng.integers(0, 256, n, dtype=np.uint8).tobytes() if n < 1 << 16 else bytes(n)
    fields = {
        "height": h,
        "width": w,
        "encoding": encoding,
        "is_bigendian": big_endian,
        "step": step,
        "data": payload,
        "frame_id": frame_id,
        "stamp": stamp,
    }
    return Fuzzed(modality, kind, KINDS[kind][0], fields)


class _Fields:
    """What ``decode`` reads, without rclpy."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)


def decode_reason(fuzzed: Fuzzed, max_pixels: int) -> str:
    """What :func:`decode` says about the message: its reason, or ACCEPTED."""
    try:
        decode(_Fields(fuzzed.fields), fuzzed.modality, max_pixels=max_pixels)
    except ImageMsgError as exc:
        return exc.reason
    return ACCEPTED


def fuzz_messages(seed: int, count: int, max_pixels: int = MAX_PIXELS) -> list[Fuzzed]:
    """``count`` fuzzed messages, every kind of :data:`KINDS` by weight, modalities in turn."""
    rng = np.random.default_rng(seed)
    kinds = list(KINDS)
    weights = np.array([KINDS[k][1] for k in kinds])
    chosen = rng.choice(len(kinds), size=count, p=weights / weights.sum())
    return [_one(rng, i, kinds[k], MODALITIES[i % len(MODALITIES)], max_pixels) for i, k in enumerate(chosen)]


def tally(messages: list[Fuzzed]) -> dict[str, dict[str, int]]:
    """modality -> reason -> count (ACCEPTED included)."""
    out: dict[str, Counter[str]] = {m: Counter() for m in MODALITIES}
    for f in messages:
        out[f.modality][f.reason] += 1
    return {m: dict(sorted(c.items())) for m, c in out.items()}


# --------------------------------------------------------------------------- the publisher process


def to_image(fuzzed: Fuzzed) -> Any:
    from sensor_msgs.msg import Image

    f = fuzzed.fields
    msg = Image(height=f["height"], width=f["width"], encoding=f["encoding"], is_bigendian=f["is_bigendian"])
    msg.step = f["step"]
    msg.data = f["data"]
    msg.header.frame_id = f["frame_id"]
    msg.header.stamp.sec, msg.header.stamp.nanosec = f["stamp"]
    return msg


class _Counts:
    """The node's reject counters per modality, from its /diagnostics."""

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self.rejected: dict[str, int] | None = None
        self.by_reason: dict[str, dict[str, int]] = {}

    def on_diagnostics(self, msg: Any) -> None:
        rejected, by_reason = {}, {}
        for status in msg.status:
            node, _, component = status.name.rpartition(": ")
            if node != self.node_name or component not in MODALITIES:
                continue
            values = {kv.key: kv.value for kv in status.values}
            rejected[component] = int(values.get("rejected_total", 0) or 0)
            by_reason[component] = {
                k.partition(".")[2]: int(v) for k, v in values.items() if k.startswith("rejected.")
            }
        if len(rejected) == len(MODALITIES):
            self.rejected, self.by_reason = rejected, by_reason


def _probe(pubs: dict[str, Any], counts: _Counts, spin_until: Any) -> dict[str, int]:
    """Send an empty image on each input until the node counts one: its readers then know this
    publisher (it matching theirs is not enough). Returns the probes sent per modality, every one
    acknowledged and counted."""
    import rclpy
    from sensor_msgs.msg import Image

    encodings = {"rgb": "rgb8", "depth": "16UC1", "thermal": "mono16"}
    start = dict(counts.rejected or {})
    sent = dict.fromkeys(MODALITIES, 0)
    while pending := [m for m in MODALITIES if (counts.rejected or {}).get(m, 0) <= start[m]]:
        for m in pending:
            pubs[m].publish(Image(encoding=encodings[m]))
            sent[m] += 1
        resend = time.monotonic() + PROBE_RESEND_S
        spin_until(
            lambda p=pending, r=resend: (
                time.monotonic() > r or all((counts.rejected or {}).get(m, 0) > start[m] for m in p)
            ),
            "the node to count the probes",
        )
    for pub in pubs.values():
        pub.wait_for_all_acked(rclpy.duration.Duration(seconds=10))
    spin_until(
        lambda: all((counts.rejected or {}).get(m, 0) == start[m] + sent[m] for m in MODALITIES),
        "the node to count every probe",
    )
    return sent


def publish(args: argparse.Namespace) -> dict[str, Any]:
    from unimrseg_ros.transport import use_large_shm_segment

    use_large_shm_segment()  # before rclpy.init: the 700 KB messages, several in flight
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from unimrseg_core import topics

    messages = fuzz_messages(args.seed, args.count, args.max_pixels)
    mismatches = [
        {"index": i, "kind": f.kind, "modality": f.modality, "intended": f.reason, "decode": r}
        for i, f in enumerate(messages)
        if (r := decode_reason(f, args.max_pixels)) != f.reason
    ]
    images = [to_image(f) for f in messages]
    rclpy.init()
    node = rclpy.create_node("unimrseg_image_fuzzer")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {m: node.create_publisher(Image, topics.INPUTS[m], qos) for m in MODALITIES}
    counts = _Counts(args.node_name)
    node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, counts.on_diagnostics, 10)
    deadline = time.monotonic() + args.timeout

    def spin_until(done: Any, what: str) -> None:
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"image_fuzzer: gave up waiting for {what}")
            rclpy.spin_once(node, timeout_sec=0.02)

    try:
        spin_until(
            lambda: counts.rejected is not None and all(p.get_subscription_count() for p in pubs.values()),
            "the node's subscriptions and /diagnostics",
        )
        probes = _probe(pubs, counts, spin_until)
        baseline = dict(counts.rejected or {})
        expected_rejects = dict(baseline)
        started = time.monotonic()
        waited = 0.0
        for fuzzed, image in zip(messages, images, strict=True):

            def room() -> bool:
                got = counts.rejected or {}
                return sum(expected_rejects.values()) - sum(got.values()) < args.window

            if not room():
                t = time.monotonic()
                spin_until(room, "the node to count what was sent")
                waited += time.monotonic() - t
            pubs[fuzzed.modality].publish(image)
            if fuzzed.reason != ACCEPTED:
                expected_rejects[fuzzed.modality] += 1
            rclpy.spin_once(node, timeout_sec=0)
        sent_s = time.monotonic() - started
        for pub in pubs.values():
            pub.wait_for_all_acked(rclpy.duration.Duration(seconds=10))
        try:
            spin_until(
                lambda: counts.rejected == expected_rejects, "the node's counters to reach what was sent"
            )
        except TimeoutError as exc:
            print(exc, file=sys.stderr)
        final = dict(counts.rejected or {})
        return {
            "seed": args.seed,
            "sent": len(messages),
            "sent_by_modality": tally(messages),
            "sent_by_kind": dict(sorted(Counter(f.kind for f in messages).items())),
            "big_messages": sum(len(f.fields["data"]) >= BIG_DATA_BYTES for f in messages),
            "mismatches": mismatches,
            "probes_by_modality": {m: {PROBE_REASON: n} for m, n in probes.items()},
            "node_rejected_before": baseline,
            "node_rejected_after": final,
            "node_rejected_by_reason_after": counts.by_reason,
            "expected_rejected_after": expected_rejects,
            "publish_seconds": round(sent_s, 3),
            "flow_control_wait_seconds": round(waited, 3),
            "messages_per_second": round(len(messages) / sent_s, 1) if sent_s > 0 else math.inf,
        }
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS)
    parser.add_argument("--window", type=int, default=150, help="most rejects sent and not yet counted")
    parser.add_argument("--node-name", default="unimrseg_node")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--summary", type=Path, required=True)
    args = parser.parse_args()
    summary = publish(args)
    args.summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"FUZZER DONE sent {summary['sent']} in {summary['publish_seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
