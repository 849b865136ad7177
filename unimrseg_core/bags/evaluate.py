"""``evaluate_bag``: replay a bag offline through the node's own logic and score it.

The offline half of ``unimrseg bag eval``. Every message of the bag is taken in
recorded time order, and the bag's record time stands in for the node's clock:

1. a camera image is decoded (:func:`unimrseg_core.image_msg.decode`, the node's
   decoder; a malformed one is counted and dropped, as the node does) and given to
   :class:`~unimrseg_core.pipeline.FramePipeline` with its header stamp and record
   time: the health monitor checks it, the frame assembler may emit frames;
2. between messages, the pipeline is polled every ``1 / poll_rate_hz`` of bag time
   (the node's health timer, 50 Hz by default): silence detection, and frames whose
   wait for companions ran out;
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
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from tqdm import tqdm

from unimrseg_core import __version__
from unimrseg_core.bags.messages import stamp_to_ns
from unimrseg_core.bags.read import BagError, BagReader
from unimrseg_core.bags.score import DEFAULT_WINDOW_S, Output, Scoreboard
from unimrseg_core.bags.topics import GROUND_TRUTH, SENSORS
from unimrseg_core.faults import FaultSchedule
from unimrseg_core.health import HealthConfig
from unimrseg_core.image_msg import DEFAULT_THERMAL, MAX_PIXELS, ImageMsgError, ThermalMapping, decode
from unimrseg_core.pipeline import DEFAULT_POLL_RATE_HZ, FramePipeline
from unimrseg_core.runtime.segmenter import Segmenter, saliency_mono8
from unimrseg_core.runtime.selection import BackendOptions, select_backend
from unimrseg_core.sync import Frame, SyncConfig

__all__ = ["DEFAULT_WINDOW_S", "RESULT_FORMAT", "RESULT_VERSION", "evaluate_bag", "saliency_mono8"]

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


def _mono8(bag: Path, topic: str, msg: Any, max_pixels: int) -> np.ndarray:
    """A ground-truth Image (mono8) -> ``HxW`` uint8; anything else is a :class:`BagError`."""
    if getattr(msg, "encoding", None) != "mono8":
        raise BagError(
            bag, f"ground truth on {topic!r} must be mono8, got {getattr(msg, 'encoding', None)!r}"
        )
    try:  # the rgb decoder validates mono8 (size, step, data length) and spreads it to 3 equal channels
        return np.ascontiguousarray(decode(msg, "rgb", max_pixels=max_pixels)[..., 0])
    except ImageMsgError as exc:
        raise BagError(bag, f"ground truth on {topic!r}: {exc}") from None


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"unimrseg": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
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
    window_s: float = DEFAULT_WINDOW_S,
    faults: FaultSchedule | None = None,
    health: HealthConfig | None = None,
    sync: SyncConfig | None = None,
    poll_rate_hz: float = DEFAULT_POLL_RATE_HZ,
    thermal: ThermalMapping = DEFAULT_THERMAL,
    max_pixels: int = MAX_PIXELS,
    progress: bool = False,
) -> dict[str, Any]:
    """Replay the bag at ``path`` through health, frame assembly and the model; return the scores.

    ``backend`` / ``options`` open the model as the node does (``options`` default: the
    shipped model, one ONNX Runtime thread like the node's ``threads`` default), unless a
    ready ``segmenter`` is given. ``remap``: ``{bag topic: project topic}`` for a bag
    recorded under other names. ``faults`` overrides the bag's own fault schedule (times
    from the bag's first message, or from ``bag make``'s start stamp). ``health``,
    ``sync``, ``poll_rate_hz``, ``thermal``, ``max_pixels``: the node's settings, by
    default its parameter defaults. ``window_s``: length of the time windows.

    Returns a JSON-ready dict (finite numbers or None): ``format``, ``version``,
    ``mode`` (``offline``), ``bag``, ``backend``, ``versions``, ``config``,
    ``schedule`` and the :meth:`Scoreboard.result` keys (``summary``, ``targets``,
    ``faults``, ``phases``, ``windows``, ``health``, ``inputs``, ``latency``), and
    ``seconds``. Raises :class:`BagError` for a bag that cannot be read, ValueError
    for bad settings, BackendError when no backend opens.
    """
    started = time.perf_counter()
    if not (np.isfinite(poll_rate_hz) and poll_rate_hz > 0):
        raise ValueError(f"poll_rate_hz must be > 0, got {poll_rate_hz}")
    if not (np.isfinite(window_s) and window_s > 0):
        raise ValueError(f"window_s must be > 0, got {window_s}")
    path = Path(path)
    sync = sync if sync is not None else SyncConfig()
    health = health if health is not None else HealthConfig()

    with _torch_threads(1), BagReader(path, remap=remap) as bag:
        present = bag.topics
        cameras = [m for m, t in SENSORS.items() if t.topic in present]
        if not cameras:
            raise BagError(
                path,
                f"no camera topic: expected {', '.join(t.topic for t in SENSORS.values())}; the bag has "
                f"{', '.join(bag.bag_topics) or 'no topics'} (read another name with --remap OLD:=NEW)",
            )
        if faults is not None:
            schedule, source = faults, "argument"
        else:
            schedule, source = bag.fault_schedule()
        sequence = bag.sequence()
        t0_ns = int(sequence["start_ns"]) if sequence and "start_ns" in sequence else bag.start_ns

        if segmenter is None:
            selection = select_backend(backend, options if options is not None else BackendOptions(threads=1))
            segmenter, notes = Segmenter(selection.backend), selection.notes
        else:
            notes = ["given by the caller"]

        truth_kinds = [_TRUTH_OF[t] for t in present if t in _TRUTH_OF]
        scene_s = sequence.get("segment_s") if sequence else None
        board = Scoreboard(
            schedule,
            t0_ns,
            anchors=sync.anchors,
            window_s=window_s,
            truth_kinds=truth_kinds,
            scene_s=float(scene_s) if isinstance(scene_s, (int, float)) and scene_s > 0 else None,
        )
        pipeline: FramePipeline[np.ndarray] = FramePipeline(health, sync)
        probes = sorted((t0_ns + round(f.start_s * 1e9), i, f.modality) for i, f in enumerate(schedule or ()))
        period_ns = round(1e9 / poll_rate_hz)

        def run(frames: list[Frame[np.ndarray]], now_ns: int) -> None:
            board.add_transitions(pipeline.monitor.pop_transitions())
            for frame in frames:
                anchor = frame.messages[frame.anchor].payload
                images = {m: message.payload for m, message in frame.messages.items()}
                tic = time.perf_counter()
                segmentation = segmenter.segment(**images, output_size=anchor.shape[:2])
                latency_s = time.perf_counter() - tic
                board.add_output(
                    Output(
                        stamp_ns=frame.stamp_ns,
                        time_ns=now_ns,
                        anchor=frame.anchor,
                        used=segmentation.used.name,
                        class_ids=segmentation.class_ids,
                        saliency=segmentation.saliency_mono8,
                        latency_s=latency_s,
                        waited_ns=frame.waited_ns,
                        skipped=dict(frame.skipped),
                    )
                )

        def advance(now_ns: int) -> None:
            """Fault starts reached (note the expected period), then every poll due before ``now_ns``."""
            nonlocal next_poll
            while probes and probes[0][0] <= now_ns:
                _, index, modality = probes.pop(0)
                board.note_period(index, pipeline.monitor.expected_period_ns(modality))
            while next_poll is not None and next_poll < now_ns:
                run(pipeline.poll(next_poll), next_poll)
                next_poll += period_ns

        topics = [t for t in present if t in _MODALITY_OF or t in _TRUTH_OF]
        total = sum(bag.count(t) for t in topics)
        next_poll: int | None = None
        last_ns = bag.start_ns
        bar = tqdm(total=total, desc=f"eval {path.name}", unit="msg", disable=not progress)
        try:
            for message in bag.messages(topics):
                bar.update()
                now_ns = last_ns = message.record_ns
                if next_poll is None:
                    next_poll = now_ns + period_ns
                advance(now_ns)
                stamp = stamp_to_ns(message.msg.header.stamp)
                kind = _TRUTH_OF.get(message.topic)
                if kind is not None:
                    image = _mono8(path, message.bag_topic, message.msg, max_pixels)
                    board.add_truth(kind, stamp, image, now_ns)
                    continue
                modality = _MODALITY_OF[message.topic]
                if modality not in sync.enabled:
                    continue
                try:
                    image = decode(message.msg, modality, thermal=thermal, max_pixels=max_pixels)
                except ImageMsgError as exc:
                    board.add_reject(modality, exc.reason)
                    continue
                board.add_input(modality, stamp)
                frames = pipeline.receive(
                    modality, image, image, stamp_ns=stamp, receive_ns=now_ns, encoding=message.msg.encoding
                )
                run(frames, now_ns)
            advance(last_ns + sync.wait_ns + 1)  # flush a frame still waiting for companions
        finally:
            bar.close()
        board.add_transitions(pipeline.monitor.pop_transitions())
        scores = board.result()

        bag_info = {
            "path": str(path),
            "storage": bag.storage,
            "start_ns": bag.start_ns,
            "duration_s": round((bag.end_ns - bag.start_ns) / 1e9, 3),
            "messages": bag.message_count,
            "topics": {
                topic: {"bag_topic": name, "messages": bag.count(topic)}
                for topic, name in sorted(present.items())
            },
            "remap": dict(bag.remap),
            "sequence": sequence,
        }

    h, w = segmenter.input_size
    return {
        "format": RESULT_FORMAT,
        "version": RESULT_VERSION,
        "mode": "offline",
        "bag": bag_info,
        "backend": {
            "name": segmenter.backend.name,
            "notes": list(notes),
            "input_size": [h, w],
            "model_sha256": segmenter.backend.metadata.get("checkpoint_sha256"),
        },
        "versions": _versions(),
        "config": {
            "window_s": window_s,
            "poll_rate_hz": poll_rate_hz,
            "health": asdict(health),
            "sync": {
                "anchor_priority": list(sync.anchor_priority),
                "enabled": list(sync.enabled),
                "max_age_s": sync.max_age_ns / 1e9,
                "max_skew_s": sync.max_skew_ns / 1e9,
                "wait_s": sync.wait_ns / 1e9,
            },
            "thermal": asdict(thermal),
        },
        "schedule": {
            "source": source,
            "t0_ns": t0_ns,
            "seed": schedule.seed if schedule is not None else None,
            "faults": [f.to_dict() for f in schedule] if schedule is not None else [],
        },
        **scores,
        "seconds": round(time.perf_counter() - started, 2),
    }
