"""Test helper process: publish an Image and a String until acknowledged or a deadline passes.

Run by test/ros/test_dds_roundtrip.py with the environment of the ``ros_env`` fixture.
The image pixels come from a file the test wrote (so the test, not this script, owns
the expected content). Exit codes: 0 acknowledged (or ``--no-ack`` and the duration
ran out), 3 deadline passed without acknowledgement.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pixels", type=Path, required=True, help="raw rgb8 pixel bytes")
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--frame-id", required=True)
    parser.add_argument("--stamp", type=int, nargs=2, required=True, metavar=("SEC", "NANOSEC"))
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds to give up after")
    parser.add_argument("--no-ack", action="store_true", help="publish for --deadline s, wait for no ack")
    parser.add_argument("--period", type=float, default=0.1)
    args = parser.parse_args()

    pixels = args.pixels.read_bytes()
    if len(pixels) != args.width * args.height * 3:
        print(f"pixel file has {len(pixels)} bytes, expected {args.width * args.height * 3}", file=sys.stderr)
        return 2
    image = Image()
    image.header.frame_id = args.frame_id
    image.header.stamp.sec, image.header.stamp.nanosec = args.stamp
    image.height, image.width = args.height, args.width
    image.encoding = "rgb8"
    image.is_bigendian = 0
    image.step = args.width * 3
    image.data = pixels
    text = String(data=args.text)

    rclpy.init()
    node = rclpy.create_node("unimrseg_test_publisher")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, "unimrseg_test/image", qos)
    text_pub = node.create_publisher(String, "unimrseg_test/text", qos)
    acked: list[str] = []
    node.create_subscription(String, "unimrseg_test/ack", lambda msg: acked.append(msg.data), qos)
    print("PUBLISHER READY", flush=True)

    start = time.monotonic()
    sent = 0
    try:
        while time.monotonic() - start < args.deadline:
            image_pub.publish(image)
            text_pub.publish(text)
            sent += 1
            rclpy.spin_once(node, timeout_sec=args.period)
            if acked and not args.no_ack:
                print(f"PUBLISHER ACKED after {sent} rounds: {acked[0]}", flush=True)
                return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if args.no_ack:
        print(f"PUBLISHER DONE after {sent} rounds", flush=True)
        return 0
    print(f"PUBLISHER DEADLINE after {sent} rounds without ack", flush=True)
    return 3


if __name__ == "__main__":
    sys.exit(main())
