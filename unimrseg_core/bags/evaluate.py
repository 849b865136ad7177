"""``evaluate_bag``: replay a bag offline through the node's own logic and score it.

The offline half of ``unimrseg bag eval``. Every message of the bag is taken in
recorded time order, and the bag's record time stands in for the node's clock:

1. a camera image is decoded (:func:`unimrseg_core.image_msg.decode`, or
   :func:`unimrseg_core.compressed_msg.decode_compressed` for a camera recorded as
   CompressedImage: the node's decoders; a malformed one is counted with its reason and
   dropped, as the node does) and given to
   :class:`~unimrseg_core.pipeline.FramePipeline` with its header stamp and record
   time: the health monitor checks it, the frame assembler may emit frames;
2. between messages, the pipeline is polled every ``1 / poll_rate_hz`` of bag time
   (the node's health timer, 50 Hz by default): silence detection, and frames whose
   wait for companions ran out;
   A camera's CameraInfo (``<modality>/camera_info``) is given to the pipeline's registration
   in the same order, as the node's subscription gives it (a bad one is a counted
   ``bad_camera_info`` rejection); the extrinsics are the bag's ``/tf_static`` (or given),
   as the node's ``<modality>.extrinsic`` parameters (:mod:`unimrseg_core.bags.calibration`),
   so every frame is registered into its anchor camera as the node would register it;
3. every emitted frame goes through the :class:`~unimrseg_core.runtime.segmenter.Segmenter`
   (the node's inference), whose time is measured (the only wall-clock number);
4. outputs, ground truth, health transitions and camera stamps go to a
   :class:`~unimrseg_core.bags.score.Scoreboard`, which scores each output against
   the ground truth with its stamp and sets the transitions against the fault schedule.

Health, sync and poll settings default to the node's parameter defaults, so offline
numbers are what the node would do with the same timing. No DDS and no clock are
involved: two runs on one bag with one backend give the same result (latency aside).
One difference from a live node remains by design: the node hands frames to its
inference thread through a one-slot queue and drops frames when the model is slower
than the cameras; offline, every frame is segmented.

torch runs on one thread during an evaluation (the metrics are torchmetrics; a CPU
torch backend is then single-threaded too, as ONNX Runtime is by default).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import platform
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from tqdm import tqdm

from unimrseg_core import __version__
from unimrseg_core.bags import timebase
from unimrseg_core.bags.calibration import INFO_MODALITY, BagCalibration, read_calibration
from unimrseg_core.bags.read import BagError, BagReader
from unimrseg_core.bags.score import DEFAULT_WINDOW_S, Output, Scoreboard
from unimrseg_core.bags.topics import GROUND_TRUTH, SENSORS
from unimrseg_core.faults import FaultSchedule
from unimrseg_core.health import HealthConfig
from unimrseg_core.image_msg import DEFAULT_THERMAL, MAX_PIXELS, ImageMsgError, ThermalMapping, decode
from unimrseg_core.pipeline import DEFAULT_POLL_RATE_HZ, FramePipeline, RegisteredFrame, Step, stamp_ns
from unimrseg_core.registration import Transform
from unimrseg_core.runtime.segmenter import Segmenter, saliency_mono8
from unimrseg_core.runtime.selection import BackendOptions, select_backend
from unimrseg_core.sync import SyncConfig

__all__ = [
    "DEFAULT_WINDOW_S",
    "RESULT_FORMAT",
    "RESULT_VERSION",
    "bag_topics_json",
    "evaluate_bag",
    "package_versions",
    "registration_json",
    "saliency_mono8",
    "torch_threads",
    "truth_mono8",
]

log = logging.getLogger(__name__)

RESULT_FORMAT: Final = "unimrseg-bag-eval"
RESULT_VERSION: Final = 1
_MODALITY_OF: Final = {t.topic: m for m, t in SENSORS.items()}
_TRUTH_OF: Final = {t.topic: k for k, t in GROUND_TRUTH.items()}
_PACKAGES: Final = (
    "numpy",
    "rosbags",
    "onnxruntime",
    "torch",
    "opencv-python-headless",
    "torchmetrics",
    "pysodmetrics",
)


def truth_mono8(bag: Path, topic: str, msg: Any, max_pixels: int) -> np.ndarray:
    """A ground-truth Image (mono8) -> ``HxW`` uint8; anything else is a :class:`BagError`."""
    if getattr(msg, "encoding", None) != "mono8":
        raise BagError(
            bag, f"ground truth on {topic!r} must be mono8, got {getattr(msg, 'encoding', None)!r}"
        )
    try:  # the rgb decoder validates mono8 (size, step, data length) and spreads it to 3 equal channels
        return np.ascontiguousarray(decode(msg, "rgb", max_pixels=max_pixels)[..., 0])
    except ImageMsgError as exc:
        raise BagError(bag, f"ground truth on {topic!r}: {exc}") from None


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"unimrseg": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch (the metrics) on ``n`` threads, then restore: on 2 busy cores, torchmetrics'
    confusion matrix took 110 ms per 240x320 frame on 2 threads and 1.6 ms on one."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def evaluate_bag(
    path: str | Path,
    *,
    backend: str = "auto",
    options: BackendOptions | None = None,
    segmenter: Segmenter | None = None,
    remap: Mapping[str, str] | None = None,
    transports: Mapping[str, str] | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    faults: FaultSchedule | None = None,
    health: HealthConfig | None = None,
    sync: SyncConfig | None = None,
    poll_rate_hz: float = DEFAULT_POLL_RATE_HZ,
    thermal: ThermalMapping = DEFAULT_THERMAL,
    max_pixels: int = MAX_PIXELS,
    extrinsics: Mapping[str, Transform] | None = None,
    registration: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Replay the bag at ``path`` through health, frame assembly and the model; return the scores.

    ``backend`` / ``options`` open the model as the node does (``options`` default: the
    shipped model, one ONNX Runtime thread like the node's ``threads`` default), unless a
    ready ``segmenter`` is given. ``remap``: ``{bag topic: project topic}`` for a bag
    recorded under other names. ``transports``: ``{modality: raw|compressed|compressedDepth}``,
    which of a camera's recorded transports to read (default raw where the bag has it, else the
    CompressedImage topic it has). ``faults`` overrides the bag's own fault schedule (times
    from the bag's first message, or from ``bag make``'s start stamp). ``health``,
    ``sync``, ``poll_rate_hz``, ``thermal``, ``max_pixels``: the node's settings, by
    default its parameter defaults. ``window_s``: length of the time windows.
    ``extrinsics``: ``{modality: reference_from_modality}`` given by the user, before the bag's
    /tf_static; ``registration`` False: every image only resized (the node's
    ``registration.enabled``).

    Returns a JSON-ready dict (finite numbers or None): ``format``, ``version``, ``mode``
    (``offline``), ``bag``, ``backend``, ``versions``, ``config``, ``schedule``, the
    :meth:`Scoreboard.result` keys, ``registration`` (:func:`registration_json`) and ``seconds``.
    Raises :class:`BagError` for a bag that cannot be read (or a bad given extrinsic),
    ValueError for bad settings, BackendError when no backend opens.
    """
    started = time.perf_counter()
    for name, value in (("poll_rate_hz", poll_rate_hz), ("window_s", window_s)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be > 0, got {value}")
    path = Path(path)
    sync = sync if sync is not None else SyncConfig()
    health = health if health is not None else HealthConfig()
    with torch_threads(1), BagReader(path, remap=remap, transports=transports) as bag:
        _require_cameras(bag, path)
        schedule, source = (faults, "argument") if faults is not None else bag.fault_schedule()
        sequence = bag.sequence()
        time_base = timebase.measure(bag)
        t0_ns = time_base.schedule_zero_ns(bag.start_ns, sequence)
        calibration = _calibration(bag, path, sync, extrinsics)
        segmenter, notes = _open(segmenter, backend, options)
        board = _scoreboard(bag, schedule, t0_ns, sync, window_s, sequence, time_base)
        pipeline: FramePipeline[None] = FramePipeline(
            health,
            sync,
            poll_rate_hz=poll_rate_hz,
            thermal=thermal,
            max_pixels=max_pixels,
            registration=calibration.config(enabled=registration),
        )
        replay = Replay(pipeline, segmenter, board, poll_ns=round(1e9 / poll_rate_hz))
        replay.note_fault_starts(schedule, t0_ns)
        replay.run(bag, path, max_pixels=max_pixels, progress=progress)
        scores, bag_info = board.result(), _bag_info(bag, path, sequence)
    bag_info["time_base"] = time_base.as_json(t0_ns, sync.max_skew_ns)
    bag_info["warnings"] += calibration.warnings
    return result_document(
        "offline",
        bag=bag_info,
        backend=_backend_json(segmenter, notes),
        config=_config_json(window_s, poll_rate_hz, health, sync, thermal),
        schedule=schedule_json(schedule, source, t0_ns),
        scores=scores,
        started=started,
        extra={"registration": registration_json(calibration, replay.registration, enabled=registration)},
    )


def _config_json(
    window_s: float, poll_rate_hz: float, health: HealthConfig, sync: SyncConfig, thermal: ThermalMapping
) -> dict[str, Any]:
    """The settings a replay ran with, as the result's ``config``."""
    return {
        "window_s": window_s,
        "poll_rate_hz": poll_rate_hz,
        "health": asdict(health),
        "sync": _sync_json(sync),
        "thermal": asdict(thermal),
    }


def _calibration(
    bag: BagReader, path: Path, sync: SyncConfig, given: Mapping[str, Transform] | None
) -> BagCalibration:
    """The bag's calibration relative to the first anchor; a bad given extrinsic is a BagError."""
    try:
        return read_calibration(bag, reference=sync.anchors[0], given=given)
    except ValueError as exc:
        raise BagError(path, str(exc)) from None


def registration_json(
    calibration: BagCalibration,
    outcomes: Mapping[str, Mapping[str, int]],
    *,
    enabled: bool,
    counted: str = "frames",
) -> dict[str, Any]:
    """The result's ``registration``: the reference camera, and per modality the bag's calibration
    (frame id, CameraInfo count, extrinsic and its source), each way it reached the anchor with
    its count (``counted``: offline frames, live /diagnostics reports) and ``how``, the most frequent."""
    modalities = calibration.as_json()
    for modality, counts in outcomes.items():
        row = modalities.setdefault(modality, {})
        row["outcomes"] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
        row["how"] = max(counts, key=lambda k: counts[k]) if counts else None
    for row in modalities.values():
        row.setdefault("outcomes", {})
        row.setdefault("how", None)
    return {
        "enabled": enabled,
        "reference": calibration.reference,
        "counted": counted,
        "modalities": modalities,
    }


def result_document(
    mode: str,
    *,
    bag: dict[str, Any],
    backend: dict[str, Any],
    config: dict[str, Any],
    schedule: dict[str, Any],
    scores: dict[str, Any],
    started: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON document of a bag evaluation, offline or live: one layout for both (``extra``:
    the mode's own section, e.g. ``live``)."""
    return {
        "format": RESULT_FORMAT,
        "version": RESULT_VERSION,
        "mode": mode,
        "bag": bag,
        "backend": backend,
        "versions": package_versions(),
        "config": config,
        "schedule": schedule,
        **scores,
        **(extra or {}),
        "seconds": round(time.perf_counter() - started, 2),
    }


def schedule_json(schedule: FaultSchedule | None, source: str, t0_ns: int) -> dict[str, Any]:
    return {
        "source": source,
        "t0_ns": t0_ns,
        "seed": schedule.seed if schedule is not None else None,
        "faults": [f.to_dict() for f in schedule] if schedule is not None else [],
    }


class Replay:
    """Drives one :class:`FramePipeline` and a :class:`Segmenter` over a bag in record time, as the
    node's callbacks and timer would, and hands everything that happens to a :class:`Scoreboard`."""

    def __init__(
        self, pipeline: FramePipeline[None], segmenter: Segmenter, board: Scoreboard, *, poll_ns: int
    ):
        self.pipeline, self.segmenter, self.board, self.poll_ns = pipeline, segmenter, board, poll_ns
        self.next_poll: int | None = None
        self.probes: list[tuple[int, int, str]] = []
        self.registration: dict[str, Counter[str]] = defaultdict(Counter)
        """Per modality, how it reached the anchor (``Outcome.text``) -> frames."""

    def note_fault_starts(self, schedule: FaultSchedule | None, t0_ns: int) -> None:
        """At each fault's start, the board notes the period silence is judged against then."""
        self.probes = sorted(
            (t0_ns + round(f.start_s * 1e9), i, f.modality) for i, f in enumerate(schedule or ())
        )

    def run(self, bag: BagReader, path: Path, *, max_pixels: int, progress: bool) -> None:
        topics = [t for t in bag.topics if t in _MODALITY_OF or t in _TRUTH_OF or t in INFO_MODALITY]
        last_ns = bag.start_ns
        total = sum(bag.count(t) for t in topics)
        with tqdm(total=total, desc=f"eval {path.name}", unit="msg", disable=not progress) as bar:
            for message in bag.messages(topics):
                bar.update()
                last_ns = message.record_ns
                self.advance(last_ns)
                info_of = INFO_MODALITY.get(message.topic)
                if info_of is not None:  # before its image, as a driver publishes it
                    rejection = self.pipeline.receive_camera_info(info_of, message.msg)
                    if rejection is not None:
                        self.board.add_reject(rejection.modality, rejection.reason)
                    continue
                kind = _TRUTH_OF.get(message.topic)
                if kind is not None:
                    image = truth_mono8(path, message.bag_topic, message.msg, max_pixels)
                    self.board.add_truth(kind, stamp_ns(message.msg.header), image, last_ns)
                    continue
                modality = _MODALITY_OF[message.topic]
                self.apply(
                    self.pipeline.receive(modality, message.msg, receive_ns=last_ns, payload=None), last_ns
                )
        self.advance(last_ns + self.pipeline.assembler.config.wait_ns + 1)  # flush a waiting frame

    def advance(self, now_ns: int) -> None:
        """Fault starts reached (note the expected period), then every poll due before ``now_ns``."""
        if self.next_poll is None:
            self.next_poll = now_ns + self.poll_ns
        while self.probes and self.probes[0][0] <= now_ns:
            _, index, modality = self.probes.pop(0)
            self.board.note_period(index, self.pipeline.monitor.expected_period_ns(modality))
        while self.next_poll < now_ns:
            self.apply(self.pipeline.poll(self.next_poll), self.next_poll)
            self.next_poll += self.poll_ns

    def apply(self, step: Step[None], now_ns: int) -> None:
        """Score what one message or poll caused: rejections, inputs, transitions, outputs."""
        if step.rejected is not None:
            self.board.add_reject(step.rejected.modality, step.rejected.reason)
        if step.accepted is not None:
            self.board.add_input(step.accepted.modality, step.accepted.stamp_ns)
        self.board.add_transitions(list(step.transitions))
        for frame in step.frames:
            if isinstance(frame, RegisteredFrame) and frame.plan is not None:
                for modality, outcome in frame.plan.outcomes.items():
                    self.registration[modality][outcome.text] += 1
            tic = time.perf_counter()
            segmentation = self.segmenter.segment_frame(frame)
            self.board.add_output(
                Output(
                    stamp_ns=frame.stamp_ns,
                    time_ns=now_ns,
                    anchor=frame.anchor,
                    used=segmentation.used.name,
                    class_ids=segmentation.class_ids,
                    saliency=segmentation.saliency_mono8,
                    latency_s=time.perf_counter() - tic,
                    waited_ns=frame.waited_ns,
                    skipped=dict(frame.skipped),
                )
            )


def _require_cameras(bag: BagReader, path: Path) -> None:
    if not any(t.topic in bag.topics for t in SENSORS.values()):
        raise BagError(
            path,
            f"no camera topic: expected {', '.join(t.topic for t in SENSORS.values())}; the bag has "
            f"{', '.join(bag.bag_topics) or 'no topics'} (sensor_msgs/Image or CompressedImage, also as "
            "rgb/image/compressed, depth/image/compressedDepth; read another name with --remap OLD:=NEW)",
        )


def _open(
    segmenter: Segmenter | None, backend: str, options: BackendOptions | None
) -> tuple[Segmenter, list[str]]:
    """The caller's segmenter, or the model opened as the node opens it (one ONNX Runtime thread)."""
    if segmenter is not None:
        return segmenter, ["given by the caller"]
    options = options if options is not None else BackendOptions(threads=1)
    selection = select_backend(backend, options)
    return Segmenter(selection.backend, cuda_graphs=options.cuda_graphs), selection.notes


def _scoreboard(
    bag: BagReader,
    schedule: FaultSchedule | None,
    t0_ns: int,
    sync: SyncConfig,
    window_s: float,
    sequence: dict[str, Any] | None,
    time_base: timebase.TimeBase,
) -> Scoreboard:
    scene_s = sequence.get("segment_s") if sequence else None
    return Scoreboard(
        schedule,
        t0_ns,
        anchors=sync.anchors,
        window_s=window_s,
        truth_kinds=[_TRUTH_OF[t] for t in bag.topics if t in _TRUTH_OF],
        scene_s=float(scene_s) if isinstance(scene_s, (int, float)) and scene_s > 0 else None,
        stamp_offsets_ns=time_base.offsets_ns,
    )


def bag_topics_json(bag: BagReader) -> dict[str, Any]:
    """The result's ``bag.topics``: per project topic, the bag topic read as it, its type, count and,
    for a camera, the image_transport read (offline and live)."""
    transports = bag.transports
    out: dict[str, Any] = {}
    for topic, name in sorted(bag.topics.items()):
        row: dict[str, Any] = {
            "bag_topic": name,
            "type": bag.bag_topics[name][0],
            "messages": bag.count(topic),
        }
        if topic in _MODALITY_OF:
            row["transport"] = transports[_MODALITY_OF[topic]]
        out[topic] = row
    return out


def _bag_info(bag: BagReader, path: Path, sequence: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "path": str(path),
        "storage": bag.storage,
        "start_ns": bag.start_ns,
        "duration_s": round((bag.end_ns - bag.start_ns) / 1e9, 3),
        "messages": bag.message_count,
        "topics": bag_topics_json(bag),
        "remap": dict(bag.remap),
        "warnings": list(bag.warnings),
        "sequence": sequence,
    }


def _backend_json(segmenter: Segmenter, notes: list[str]) -> dict[str, Any]:
    h, w = segmenter.input_size
    return {
        "name": segmenter.backend.name,
        "notes": list(notes),
        "input_size": [h, w],
        "model_sha256": segmenter.backend.metadata.get("checkpoint_sha256"),
    }


def _sync_json(sync: SyncConfig) -> dict[str, Any]:
    return {
        "anchor_priority": list(sync.anchor_priority),
        "enabled": list(sync.enabled),
        "max_age_s": sync.max_age_ns / 1e9,
        "max_skew_s": sync.max_skew_ns / 1e9,
        "wait_s": sync.wait_ns / 1e9,
    }
