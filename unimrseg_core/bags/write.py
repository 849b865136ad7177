"""``make_bag``: a rosbag2 bag of the procedural world seen by a moving robot, faults baked in.

What the bag holds (names in :mod:`unimrseg_core.bags.topics`):

- ``rgb/image`` (rgb8), ``depth/image`` (16UC1 mm), ``thermal/image`` (mono16, 0.01 K
  counts): one message per frame and camera at ``rate_hz``, header stamp = frame time
  from ``start_ns``, written at that time, unless a fault says otherwise;
- ``ground_truth/class_mask`` and ``ground_truth/saliency`` (mono8): every frame, never faulted;
- ``faults/timeline`` (std_msgs/String): the schedule's YAML, once, at the first frame;
  ``faults/events``: one YAML mapping per fault start or end, at that time;
- ``metadata.yaml`` ``custom_data``: ``unimrseg.faults`` (the YAML) and
  ``unimrseg.sequence`` (JSON: seed, size, rate, duration, segments, start stamp);
- ``faults.yaml`` beside the storage file: the schedule again, for tools without a bag reader.

With ``rig`` (``bag make --rig``: ``data.rig.DEMO_RIG``) the cameras are a real robot's: each
renders through its own camera (own resolution, field of view, mounting), ``<modality>/camera_info``
(sensor_msgs/CameraInfo) goes with every image (same header and record time), ``/tf_static``
(tf2_msgs/TFMessage) holds every camera's pose in the anchor camera's optical frame once at
the start, and the ground truth is the anchor camera's.

With ``transports`` (``bag make --transport compressed depth=compressedDepth``) a camera is
recorded as image_transport's plugin publishes it instead of raw: a
``sensor_msgs/CompressedImage`` on ``rgb/image/compressed`` / ``depth/image/compressedDepth``
(:func:`unimrseg_core.compressed_msg.encode_compressed`, the layouts the node decodes: rgb
JPEG, depth and thermal 16-bit PNG, compressedDepth's header before its PNG). With ``rig``,
that is a robot's bag in one command.

Faults are the :mod:`unimrseg_core.faults` model that the live injector also uses: a
dropped or rate-dropped frame is not written; a frozen camera's last message is written
again with its stale stamp; a delayed message keeps its stamp and is written ``delay_s``
later; content faults change the image before it is encoded.

The bag is written under a hidden sibling directory and renamed into place when complete,
so ``out`` either does not exist or is a whole bag; an existing ``out`` is never touched.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from tqdm import tqdm

from unimrseg_core.bags import messages
from unimrseg_core.bags.rig import (
    CAMERA_INFO_TYPE,
    TF_MESSAGE_TYPE,
    camera_info_msg,
    rig_calibration,
    tf_static_msg,
)
from unimrseg_core.bags.topics import (
    COMPRESSED_IMAGE_TYPE,
    GROUND_TRUTH,
    IMAGE_TYPE,
    SENSORS,
    STORAGE_NAMES,
    STRING_TYPE,
)
from unimrseg_core.compressed_msg import encode_compressed
from unimrseg_core.data.rig import CameraRig
from unimrseg_core.data.sequence import DEFAULT_CONDITIONS, SequenceGenerator
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.faults import FaultInjector, FaultSchedule
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.topics import (
    CAMERA_INFOS,
    FAULT_EVENTS,
    FAULT_TIMELINE,
    TF_STATIC,
    TRANSPORTS,
    input_topic,
)

__all__ = [
    "BAG_FORMAT",
    "DEFAULT_START_NS",
    "FAULTS_SIDECAR",
    "STORAGES",
    "BagSummary",
    "make_bag",
]

log = logging.getLogger(__name__)

STORAGES: Final[Mapping[str, StoragePlugin]] = {name: StoragePlugin[name.upper()] for name in STORAGE_NAMES}
"""rosbag2 storage plugins ``make_bag`` writes (both read by ``ros2 bag`` and rosbags)."""

DEFAULT_START_NS: Final = 1_767_225_600 * 1_000_000_000
"""Stamp of the first frame: 2026-01-01T00:00:00Z (fixed, so bags are reproducible)."""
FAULTS_SIDECAR: Final = "faults.yaml"
"""The fault schedule beside the bag's storage file: ``<bag>/faults.yaml``."""
BAG_FORMAT: Final = "unimrseg-bag"
_BAG_VERSION: Final = 1
_NS_PER_S: Final = 1_000_000_000


@dataclass(frozen=True)
class BagSummary:
    """What :func:`make_bag` wrote."""

    path: Path
    storage: str
    frames: int
    duration_s: float
    counts: dict[str, int] = field(default_factory=dict)  # messages per topic
    seconds: float = 0.0  # wall-clock time it took

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "storage": self.storage,
            "frames": self.frames,
            "duration_s": self.duration_s,
            "counts": dict(sorted(self.counts.items())),
            "seconds": round(self.seconds, 2),
        }


class _Queue:
    """Serialized messages ordered by record time, so the bag is written in time order."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str, bytes]] = []
        self._order = itertools.count()

    def push(self, record_ns: int, topic: str, data: bytes) -> None:
        heapq.heappush(self._heap, (record_ns, next(self._order), topic, data))

    def pop_until(self, record_ns: float) -> list[tuple[int, str, bytes]]:
        out = []
        while self._heap and self._heap[0][0] <= record_ns:
            ns, _, topic, data = heapq.heappop(self._heap)
            out.append((ns, topic, data))
        return out


def check_transports(transports: Mapping[str, str]) -> dict[str, str]:
    """Every camera's transport (raw unless given); ValueError naming one a modality does not have."""
    unknown = [m for m in transports if m not in TRANSPORTS]
    if unknown:
        raise ValueError(f"transport: unknown camera {unknown[0]!r}; valid: {', '.join(TRANSPORTS)}")
    for modality, transport in transports.items():
        if transport not in TRANSPORTS[modality]:
            raise ValueError(
                f"{modality} has no transport {transport!r}; valid: {', '.join(TRANSPORTS[modality])}"
            )
    return {m: transports.get(m, "raw") for m in MODALITIES}


def _check(duration_s: float, rate_hz: float, storage: str, workers: int, start_ns: int) -> None:
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if start_ns < 0:
        raise ValueError(f"start_ns must be >= 0, got {start_ns}")


def make_bag(
    out: str | Path,
    *,
    duration_s: float = 60.0,
    rate_hz: float = 10.0,
    size: tuple[int, int] = (240, 320),
    faults: FaultSchedule | None = None,
    storage: str = "mcap",
    seed: int = TEST_SEED,
    workers: int = 1,
    segment_s: float = 20.0,
    conditions: Sequence[Sequence[str]] = DEFAULT_CONDITIONS,
    start_ns: int = DEFAULT_START_NS,
    progress: bool = True,
    rig: CameraRig | None = None,
    transports: Mapping[str, str] | None = None,
) -> BagSummary:
    """Write a ``duration_s`` bag of a moving camera at ``rate_hz`` to the new directory ``out``.

    ``seed`` defaults to the held-out test seed, so a bag never shows training scenes;
    a new scene (and lighting, cycling through ``conditions``) starts every ``segment_s``.
    ``faults`` (default: none) are applied as described in the module docstring; ``rig``
    renders offset cameras with their CameraInfo and /tf_static (default: one shared pinhole);
    ``transports``: ``{modality: raw|compressed|compressedDepth}`` (default raw).
    Raises FileExistsError if ``out`` exists, ValueError for bad arguments.
    """
    started = time.perf_counter()
    _check(duration_s, rate_hz, storage, workers, start_ns)
    cameras = check_transports(transports or {})
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise FileExistsError(f"{out} exists; refusing to overwrite it (choose a new --out)")
    schedule = faults if faults is not None else FaultSchedule()
    for fault in schedule:
        if fault.start_s >= duration_s:
            log.warning("fault %s starts after the bag ends (%g s): it has no effect", fault, duration_s)
    sequence = SequenceGenerator(
        size, seed, rate_hz=rate_hz, segment_s=segment_s, conditions=conditions, rig=rig
    )
    n_frames = sequence.frame_count(duration_s)
    meta = {
        "format": BAG_FORMAT,
        "version": _BAG_VERSION,
        "seed": sequence.seed,
        "size": list(sequence.size),
        "rate_hz": rate_hz,
        "duration_s": duration_s,
        "frames": n_frames,
        "segment_s": segment_s,
        "conditions": [list(c) for c in sequence.conditions],
        "start_ns": start_ns,
        **({"rig": rig.to_json()} if rig is not None else {}),
        **({"transports": cameras} if any(t != "raw" for t in cameras.values()) else {}),
    }
    with _scratch(out) as partial:
        with Writer(partial, version=9, storage_plugin=STORAGES[storage]) as writer:
            writer.set_custom_data("unimrseg.faults", schedule.to_yaml())
            writer.set_custom_data("unimrseg.sequence", json.dumps(meta))
            bag = _BagMessages(writer, schedule, start_ns, rig=rig is not None, transports=cameras)
            bag.queue_fault_messages(until_s=(n_frames - 1) / rate_hz)
            frames = sequence.frames(0, n_frames, workers=workers)
            for frame in tqdm(
                frames, total=n_frames, desc=f"bag {out.name}", unit="frame", disable=not progress
            ):
                bag.add_frame(frame.t_s, frame.sample)
            bag.flush(float("inf"))
        schedule.save(partial / FAULTS_SIDECAR)
        if out.exists():
            raise FileExistsError(f"{out} appeared while the bag was written; refusing to overwrite it")
        partial.rename(out)
    return BagSummary(
        path=out,
        storage=storage,
        frames=n_frames,
        duration_s=duration_s,
        counts=dict(bag.counts),
        seconds=time.perf_counter() - started,
    )


@contextlib.contextmanager
def _scratch(out: Path) -> Iterator[Path]:
    """``<parent>/.<name>.partial-<pid>/<name>``: the bag is written there (so the storage file gets
    the bag's name) and renamed into place by the caller; the scratch folder never stays."""
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = out.parent / f".{out.name}.partial-{os.getpid()}"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    try:
        yield scratch / out.name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _BagMessages:
    """The bag's connections and a queue that writes messages in record-time order."""

    def __init__(
        self,
        writer: Writer,
        schedule: FaultSchedule,
        start_ns: int,
        *,
        rig: bool = False,
        transports: Mapping[str, str] | None = None,
    ) -> None:
        store = messages.typestore()
        self.writer, self.schedule, self.start_ns = writer, schedule, start_ns
        self.transports = {m: (transports or {}).get(m, "raw") for m in MODALITIES}
        self.camera_topics = {m: input_topic(m, t) for m, t in self.transports.items()}
        self.connections = {
            t.topic: writer.add_connection(t.topic, IMAGE_TYPE, typestore=store)
            for t in GROUND_TRUTH.values()
        }
        for modality, topic in self.camera_topics.items():
            raw = self.transports[modality] == "raw"
            msgtype = IMAGE_TYPE if raw else COMPRESSED_IMAGE_TYPE
            self.connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
        for topic in (FAULT_TIMELINE, FAULT_EVENTS):
            self.connections[topic] = writer.add_connection(topic, STRING_TYPE, typestore=store)
        self.rig = rig
        if rig:
            for topic in CAMERA_INFOS.values():
                self.connections[topic] = writer.add_connection(topic, CAMERA_INFO_TYPE, typestore=store)
            self.connections[TF_STATIC] = writer.add_connection(TF_STATIC, TF_MESSAGE_TYPE, typestore=store)
        self.tf_written = False
        self.queue = _Queue()
        self.counts: Counter[str] = Counter()
        self.injector: FaultInjector[np.ndarray] = FaultInjector(schedule)

    def queue_fault_messages(self, *, until_s: float) -> None:
        """The schedule at the start, then one message per fault event (JSON is YAML: a flow mapping)."""
        timeline = messages.serialize(messages.string_msg(self.schedule.to_yaml()))
        self.queue.push(self.start_ns, FAULT_TIMELINE, timeline)
        for event in self.schedule.events(until_s=until_s):
            at = self.start_ns + round(event.t_s * _NS_PER_S)
            self.queue.push(
                at, FAULT_EVENTS, messages.serialize(messages.string_msg(json.dumps(event.to_dict())))
            )

    def add_frame(self, t_s: float, sample: Any) -> None:
        """Ground truth and the cameras' images of one instant, through the fault injector."""
        stamp_ns = self.start_ns + round(t_s * _NS_PER_S)
        for name, image in (("class_mask", sample.label), ("saliency", sample.saliency * 255)):
            topic = GROUND_TRUTH[name]
            msg = messages.image_msg(topic, np.ascontiguousarray(image, np.uint8), stamp_ns)
            self.queue.push(stamp_ns, topic.topic, messages.serialize(msg))
        calibration = rig_calibration(sample.cameras, sample.anchor) if self.rig else {}
        if calibration and not self.tf_written:
            self._push_tf_static(calibration, sample.anchor)
        for modality in MODALITIES:
            delivery = self.injector.process(modality, t_s, stamp_ns, getattr(sample, modality))
            if delivery is None:
                continue
            image = self.schedule.apply(delivery.content, delivery.payload, key=stamp_ns)
            msg = self._camera_msg(modality, image, delivery.stamp_ns)
            record_ns = stamp_ns + round(delivery.delay_s * _NS_PER_S)
            if calibration:  # the driver's CameraInfo, just before its image
                info = camera_info_msg(calibration[modality].intrinsics, msg.header)
                self.queue.push(record_ns, CAMERA_INFOS[modality], messages.serialize(info))
            self.queue.push(record_ns, self.camera_topics[modality], messages.serialize(msg))
        self.flush(stamp_ns)

    def _camera_msg(self, modality: str, image: np.ndarray, stamp_ns: int) -> Any:
        """The camera's message by its transport: a raw Image, or the plugin's CompressedImage."""
        topic = SENSORS[modality]
        transport = self.transports[modality]
        if transport == "raw":
            return messages.image_msg(topic, image, stamp_ns, modality=modality)
        fmt, data = encode_compressed(image, modality, transport)
        return messages.typestore().types[COMPRESSED_IMAGE_TYPE](
            header=messages.header(stamp_ns, topic.frame_id), format=fmt, data=np.frombuffer(data, np.uint8)
        )

    def _push_tf_static(self, calibration: Mapping[str, Any], anchor: str) -> None:
        """Every other camera's pose in the anchor's optical frame, once, at the start."""
        parent = SENSORS[anchor].frame_id
        poses = {
            (parent, SENSORS[m].frame_id): c.anchor_from_sensor for m, c in calibration.items() if m != anchor
        }
        tf = tf_static_msg(lambda frame: messages.header(self.start_ns, frame), poses)
        self.queue.push(self.start_ns, TF_STATIC, messages.serialize(tf))
        self.tf_written = True

    def flush(self, until_ns: float) -> None:
        for ns, topic, data in self.queue.pop_until(until_ns):
            self.writer.write(self.connections[topic], ns, data)
            self.counts[topic] += 1
