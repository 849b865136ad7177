"""Test helper process: subscribe to the test Image and String topics and report what arrived.

Run by test/ros/test_dds_roundtrip.py with the environment of the ``ros_env`` fixture.

``roundtrip`` mode waits for the first Image and the first String, writes the image
pixels to ``<out>.pixels`` and everything else to ``<out>`` (JSON), acknowledges on
``unimrseg_test/ack`` and exits 0; exit 3 if nothing complete arrived before the deadline.
``listen`` mode counts the messages that arrive during ``--window`` seconds, writes the
counts to ``<out>`` and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import rclpy
from rclpy.duration import Duration
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String


def image_fields(msg: Image) -> dict[str, object]:
    return {
        "frame_id": msg.header.frame_id,
        "stamp": [msg.header.stamp.sec, msg.header.stamp.nanosec],
        "height": msg.height,
        "width": msg.width,
        "encoding": msg.encoding,
        "is_bigendian": msg.is_bigendian,
        "step": msg.step,
        "data_len": len(msg.data),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["roundtrip", "listen"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--deadline", type=float, default=30.0, help="roundtrip: seconds to give up after")
    parser.add_argument("--window", type=float, default=3.0, help="listen: seconds to count messages for")
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node("unimrseg_test_subscriber")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    images: list[Image] = []
    texts: list[str] = []
    node.create_subscription(Image, "unimrseg_test/image", images.append, qos)
    node.create_subscription(String, "unimrseg_test/text", lambda msg: texts.append(msg.data), qos)
    ack_pub = node.create_publisher(String, "unimrseg_test/ack", qos)
    print("SUBSCRIBER READY", flush=True)

    try:
        start = time.monotonic()
        if args.mode == "listen":
            while time.monotonic() - start < args.window:
                rclpy.spin_once(node, timeout_sec=0.05)
            args.out.write_text(json.dumps({"images": len(images), "texts": len(texts)}))
            print(f"SUBSCRIBER LISTENED: {len(images)} images, {len(texts)} texts", flush=True)
            return 0

        while not (images and texts) and time.monotonic() - start < args.deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        if not (images and texts):
            print(f"SUBSCRIBER DEADLINE: {len(images)} images, {len(texts)} texts", flush=True)
            return 3
        Path(f"{args.out}.pixels").write_bytes(bytes(images[0].data))
        args.out.write_text(json.dumps({"image": image_fields(images[0]), "text": texts[0]}))
        # Acknowledge reliably: re-send until the publisher's reader has acked it (bounded).
        ack_deadline = time.monotonic() + 5.0
        while time.monotonic() < ack_deadline:
            ack_pub.publish(String(data="received"))
            if ack_pub.get_subscription_count() > 0 and ack_pub.wait_for_all_acked(Duration(seconds=0.5)):
                break
            rclpy.spin_once(node, timeout_sec=0.1)
        print("SUBSCRIBER RECEIVED", flush=True)
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
