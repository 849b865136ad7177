"""A simulated camera (rgb, depth or thermal) publishing scenes of the procedural world, as a driver would.

The node's DDS tests and the benchmarks (``benchmarks/bench_node.py``, ``benchmarks/soak.py``)
feed the node with it; it also shows the node working on a machine without cameras:

    python -m unimrseg_ros.sensor_sim --modality rgb --events /tmp/rgb.jsonl [--ros-args -r ...]

Run one process per camera, as real drivers are: ``--modality rgb`` publishes
``rgb/image`` (rgb8), ``depth`` ``depth/image`` (16UC1 millimetres), ``thermal``
``thermal/image`` (mono16 counts, 0.01 K each), the names of :mod:`unimrseg_core.topics`,
at ``--rate`` Hz with one frame_id per camera.

``--transport`` publishes sensor_msgs/CompressedImage instead, as image_transport's plugins
do (``compressed_msg.encode_compressed`` lays them out): ``compressed`` on
``<modality>/image/compressed`` (rgb as JPEG ``"rgb8; jpeg compressed bgr8"``, quality 95 as
the plugin's default; depth and thermal as 16-bit PNG ``"16UC1; png compressed "`` /
``"mono16; png compressed "``), ``compressedDepth`` on ``<modality>/image/compressedDepth``
(depth and thermal: the 12-byte ConfigHeader, then a 16UC1 PNG). Each scene is encoded once
at start. Ticks fall on multiples of the period of the
wall clock and the stamp is the tick's time, as hardware-triggered cameras would have, so
the three processes give the same stamp to the same instant and the same scene:
``scene = tick % --scenes`` of ``SceneGenerator(size, seed).sample(scene, ["day"])``,
precomputed at start.

(One process per camera also keeps each image stream in its own Fast DDS shared-memory
segment: the default 512 KB segment cannot hold the previous tick's three images while a
reader is still busy with them, and the next rgb image would be dropped.)

``--rig`` renders each camera through its own camera of ``data.rig.DEMO_RIG`` (own
resolution, field of view and mounting; rgb is the anchor) and publishes its
sensor_msgs/CameraInfo on ``<modality>/camera_info`` just before every image, with the
image's header, as camera drivers do; :func:`rig_extrinsic` is what the node's
``<modality>.extrinsic`` parameter must say for it.

Faults are switched by commands on stdin, one per line:

    stop | start      destroy / recreate the publisher (as if the driver died and came back)
    freeze            re-send the last message (same stamp, same content)
    black             rgb: an all-zero image
    holes             depth: 95 % of the pixels 0 (no return)
    malformed         after every good message, one malformed one (cycling through kinds;
                      with --transport, CompressedImages: an unknown format, a damaged payload)
    normal            good messages again
    quit              (end of stdin does not stop it; --duration, SIGINT or SIGTERM do)

Every tick and every command is written as one JSON line to ``--events`` (flushed), so
a test knows which scene and stamp each output frame came from, and when the publisher
really stopped.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from unimrseg_core import topics
from unimrseg_core.bags.rig import rig_calibration
from unimrseg_core.compressed_msg import encode_compressed
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.rig import DEMO_RIG
from unimrseg_core.image_msg import fill_msg
from unimrseg_core.modalities import MODALITIES
from unimrseg_ros.camera_info import camera_info_message

__all__ = ["SimCamera", "main", "rig_extrinsic"]

ENCODING: Final = dict(zip(MODALITIES, ("rgb8", "16UC1", "mono16"), strict=True))
"""What each simulated camera publishes: a colour camera, a depth camera in mm, raw thermal counts."""
MALFORMED: Final = (
    "short_data",
    "bad_step",
    "unknown_encoding",
    "zero_size",
    "too_many_pixels",
    "wrong_encoding",
)
OWN_FAULT: Final = {"rgb": "black", "depth": "holes"}
"""The image faults a camera can show (stdin commands ``black``, ``holes``)."""
MALFORMED_COMPRESSED: Final = ("unknown_format", "bad_compressed")
"""The malformed CompressedImages of ``--transport compressed|compressedDepth``."""
TRANSPORT_CHOICES: Final = tuple(dict.fromkeys(t for ts in topics.TRANSPORTS.values() for t in ts))
_NS: Final = 1_000_000_000
Message = Image | CompressedImage


def frame_id(modality: str) -> str:
    """The header frame_id of the simulated ``modality`` camera."""
    return f"sim_{modality}_optical_frame"


def malformed(kind: str) -> Image:
    """A small message the node must reject, named after the kind of damage.

    Small on purpose: a big one next to a good image could crowd it out of the
    publisher's shared-memory segment.
    """
    h, w = 16, 16
    msg = Image(height=h, width=w, encoding="rgb8", step=3 * w)
    if kind == "short_data":
        msg.data = bytes(100)
    elif kind == "bad_step":
        msg.step, msg.data = 10, bytes(10 * h)
    elif kind == "unknown_encoding":
        msg.encoding, msg.data = "yuv422_weird", bytes(3 * w * h)
    elif kind == "zero_size":
        msg.height, msg.width, msg.step, msg.data = 0, 0, 0, b""
    elif kind == "too_many_pixels":  # claims 25 M pixels: refused before anything is allocated
        msg.height, msg.width, msg.step, msg.data = 5000, 5000, 15000, bytes(16)
    elif kind == "wrong_encoding":
        msg.encoding, msg.step, msg.data = "32FC1", 4 * w, bytes(4 * w * h)
    return msg


def malformed_compressed(kind: str) -> CompressedImage:
    """A CompressedImage the node must reject: a format no plugin writes, or a cut JPEG."""
    if kind == "unknown_format":
        return CompressedImage(format="rgb8; webp compressed bgr8", data=bytes(64))
    if kind == "bad_compressed":  # a JPEG start-of-image marker, then nothing of an image
        return CompressedImage(format="rgb8; jpeg compressed bgr8", data=b"\xff\xd8\xff\xe0" + bytes(60))
    raise ValueError(f"unknown malformed CompressedImage kind {kind!r}")


def compressed_message(image: np.ndarray, modality: str, transport: str) -> CompressedImage:
    """``image`` (sensor units) as the image_transport plugin of ``transport`` publishes it."""
    fmt, data = encode_compressed(image, modality, transport)
    return CompressedImage(format=fmt, data=data)


def rig_extrinsic(modality: str, *, size: tuple[int, int] = (240, 320), seed: int = 11) -> str:
    """``<modality>.extrinsic`` of ``--rig``'s camera relative to rgb: ``"x y z qx qy qz qw"``."""
    sample = SceneGenerator(size, seed=seed).sample_rig(0, DEMO_RIG, ["day"])
    pose = rig_calibration(sample.cameras, DEMO_RIG.anchor)[modality].anchor_from_sensor
    return " ".join(f"{v:.9g}" for v in (*pose.translation, *pose.quaternion()))


def _copy(msg: Message) -> Message:
    """An independent copy (the scene messages are reused with new stamps)."""
    if isinstance(msg, CompressedImage):
        out: Message = CompressedImage(format=msg.format, data=msg.data)
    else:
        out = Image(height=msg.height, width=msg.width, encoding=msg.encoding, is_bigendian=msg.is_bigendian)
        out.step = msg.step
        out.data = msg.data
    out.header.stamp.sec, out.header.stamp.nanosec = msg.header.stamp.sec, msg.header.stamp.nanosec
    out.header.frame_id = msg.header.frame_id
    return out


def _stamp_ns(msg: Message) -> int:
    return msg.header.stamp.sec * _NS + msg.header.stamp.nanosec


class SimCamera(Node):
    """One camera: precomputed scenes and their faulted variants, published one per :meth:`tick`."""

    def __init__(
        self,
        modality: str,
        *,
        size: tuple[int, int] = (240, 320),
        seed: int = 11,
        scenes: int = 4,
        reliability: str = "reliable",
        transport: str = "raw",
        rig: bool = False,
        **kwargs: Any,
    ) -> None:
        self.topic = topics.input_topic(modality, transport)  # ValueError for a transport it lacks
        super().__init__(f"unimrseg_sim_{modality}", **kwargs)
        self.modality = modality
        self.transport = transport
        self.own_fault = OWN_FAULT.get(modality)
        generator = SceneGenerator(size, seed=seed)
        rng = np.random.default_rng(seed)
        self.scenes: list[Message] = []
        self.variants: list[dict[str, Message]] = []
        self.infos: list[CameraInfo] = []  # with --rig: each scene's CameraInfo of this camera
        for i in range(scenes):
            sample = generator.sample_rig(i, DEMO_RIG, ["day"]) if rig else generator.sample(i, ["day"])
            if rig:
                intrinsics = rig_calibration(sample.cameras, DEMO_RIG.anchor)[modality].intrinsics
                self.infos.append(camera_info_message(intrinsics, CameraInfo().header, intrinsics.size))
            holes = sample.depth.copy()
            holes[rng.random(holes.shape) < 0.95] = 0.0
            self.scenes.append(self._encode(getattr(sample, modality)))
            faulted = {"black": np.zeros_like(sample.rgb), "holes": holes}
            self.variants.append(
                {self.own_fault: self._encode(faulted[self.own_fault])} if self.own_fault else {}
            )
        self.malformed: list[tuple[str, Message]] = (
            [(kind, malformed(kind)) for kind in MALFORMED]
            if transport == "raw"
            else [(kind, malformed_compressed(kind)) for kind in MALFORMED_COMPRESSED]
        )
        self.qos = QoSProfile(depth=5, reliability=ReliabilityPolicy[reliability.upper()])
        self.pub: Any = self._publisher()
        self.info_pub: Any = (
            self.create_publisher(CameraInfo, topics.CAMERA_INFOS[modality], self.qos) if rig else None
        )
        self.mode = "normal"
        self.last: Message | None = None  # the last published (a reused object)
        self.frozen: Message | None = None  # a copy, re-sent while frozen
        self.last_publish_ns: int | None = None
        self.malformed_sent = dict.fromkeys((kind for kind, _ in self.malformed), 0)
        self.malformed_index = 0

    def _encode(self, image: np.ndarray) -> Message:
        """An image of this camera's modality (sensor units) as this camera publishes it."""
        if self.transport != "raw":
            return compressed_message(image, self.modality, self.transport)
        return fill_msg(Image(), image, ENCODING[self.modality], modality=self.modality)

    def _publisher(self) -> Any:
        kind = Image if self.transport == "raw" else CompressedImage
        return self.create_publisher(kind, self.topic, self.qos)

    def command(self, line: str) -> dict[str, Any]:
        """Apply one stdin command; the event says what happened (and when the publisher went)."""
        verb = line.strip()
        event: dict[str, Any] = {"event": verb, "modality": self.modality, "wall_ns": time.time_ns()}
        if verb == "stop" and self.pub is not None:
            self.destroy_publisher(self.pub)
            self.pub = None
            event["last_publish_ns"] = self.last_publish_ns
        elif verb == "start" and self.pub is None:
            self.pub = self._publisher()
        elif verb in ("black", "holes") and verb != self.own_fault:
            event["ignored"] = f"{verb} is a fault of another camera (black: rgb, holes: depth)"
        elif verb in ("freeze", "black", "holes", "malformed", "normal"):
            self.mode = verb
            self.frozen = _copy(self.last) if verb == "freeze" and self.last is not None else None
        event["malformed_sent"] = dict(self.malformed_sent)
        return event

    def _message(self, scene: int, stamp_ns: int) -> Message:
        if self.mode == "freeze" and self.frozen is not None:
            return self.frozen  # the same stamp and content again
        msg = self.variants[scene][self.mode] if self.mode in ("black", "holes") else self.scenes[scene]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, _NS)
        msg.header.frame_id = frame_id(self.modality)
        return msg

    def tick(self, tick: int, stamp_ns: int) -> dict[str, Any] | None:
        """Publish ``tick``'s frame stamped ``stamp_ns`` (then a malformed one if asked); None if stopped."""
        if self.pub is None:
            return None
        scene = tick % len(self.scenes)
        msg = self._message(scene, stamp_ns)
        if self.info_pub is not None:  # before the image: the node registers with it
            info = self.infos[scene]
            info.header = msg.header
            self.info_pub.publish(info)
        self.pub.publish(msg)
        self.last = msg
        self.last_publish_ns = time.time_ns()
        if self.mode == "malformed":
            kind, bad = self.malformed[self.malformed_index % len(self.malformed)]
            self.malformed_index += 1
            bad.header.stamp = msg.header.stamp
            self.pub.publish(bad)
            self.malformed_sent[kind] += 1
        return {
            "tick": tick,
            "stamp_ns": _stamp_ns(msg),
            "scene": scene,
            "modality": self.modality,
            "mode": self.mode,
            "transport": self.transport,
        }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m unimrseg_ros.sensor_sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--modality", choices=MODALITIES, required=True)
    parser.add_argument("--events", type=Path, required=True, help="JSON lines: every tick and command")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scenes", type=int, default=4, help="scenes cycled through")
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    parser.add_argument("--reliability", choices=["reliable", "best_effort"], default="reliable")
    parser.add_argument(
        "--transport",
        choices=TRANSPORT_CHOICES,
        default="raw",
        help="raw: sensor_msgs/Image; compressed (any camera) or compressedDepth (depth, thermal): "
        "sensor_msgs/CompressedImage on <modality>/image/<transport>, as image_transport's plugins",
    )
    parser.add_argument(
        "--rig",
        action="store_true",
        help="render through this camera's own camera of data.rig.DEMO_RIG and publish "
        "<modality>/camera_info before every image",
    )
    parser.add_argument("--duration", type=float, default=600.0, help="seconds before exiting on its own")
    return parser


def _stdin_commands() -> queue.Queue[str]:
    """Lines of stdin, read on their own thread (end of input just ends the commands)."""
    commands: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            commands.put(line)

    threading.Thread(target=read, daemon=True).start()
    return commands


def _run(
    camera: SimCamera, rate: float, duration: float, emit: Callable[[dict[str, Any] | None], None]
) -> None:
    """Publish on every tick of the wall clock until ``duration`` s, ``quit`` or a signal."""
    commands = _stdin_commands()
    period_ns = round(_NS / rate)
    end = time.monotonic() + duration
    while time.monotonic() < end:
        tick = time.time_ns() // period_ns + 1  # the next multiple of the period
        time.sleep(max(0.0, (tick * period_ns - time.time_ns()) / _NS))
        while not commands.empty():
            line = commands.get()
            if line.strip() == "quit":
                return
            emit(camera.command(line))
        try:
            emit(camera.tick(tick, tick * period_ns))
        except Exception:
            if rclpy.ok():
                raise
            return  # SIGINT/SIGTERM: rclpy shut the context down


def _writer(events: TextIO) -> Callable[[dict[str, Any] | None], None]:
    def emit(event: dict[str, Any] | None) -> None:
        if event is not None:
            events.write(json.dumps(event) + "\n")
            events.flush()

    return emit


def main(argv: Sequence[str] | None = None) -> int:
    """Run one camera until ``--duration``, ``quit``, SIGINT or SIGTERM; exit 0."""
    argv = list(sys.argv if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(remove_ros_args(argv)[1:])
    if args.transport not in topics.TRANSPORTS[args.modality]:
        parser.error(
            f"--transport {args.transport}: {args.modality} has {', '.join(topics.TRANSPORTS[args.modality])}"
        )
    rclpy.init(args=argv)
    camera = SimCamera(
        args.modality,
        size=tuple(args.size),
        seed=args.seed,
        scenes=args.scenes,
        reliability=args.reliability,
        transport=args.transport,
        rig=args.rig,
    )
    with args.events.open("a", encoding="utf-8") as events:
        emit = _writer(events)
        emit({"event": "ready", "modality": args.modality, "wall_ns": time.time_ns()})
        print(f"SIM {args.modality} READY", flush=True)
        try:
            _run(camera, args.rate, args.duration, emit)
        except KeyboardInterrupt:
            pass
        finally:
            camera.destroy_node()
            rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
