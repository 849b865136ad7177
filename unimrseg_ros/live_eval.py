"""``unimrseg bag eval --live``: play a bag against the running node and score what it publishes.

The live half of ``unimrseg bag eval``. Three processes on one private ROS domain:

1. ``unimrseg_node`` with ``config/unimrseg.yaml`` (its own process, /diagnostics every 0.2 s);
2. this process: a subscriber for the node's outputs (``segmentation/class_mask``,
   ``saliency/mask``, ``segmentation/status``), ``/diagnostics`` and the player's ``/clock``,
   each message kept with its receive time;
3. ``unimrseg bag play BAG --clock`` (its own process, the recorded timing), started once
   the node reports on /diagnostics, playing the camera topics only.

A bag whose cameras were recorded as CompressedImage is played as it is, under image_transport's
names (``rgb/image/compressed``), and the node is started with ``<modality>.transport`` to
match: the transport of each camera is the one ``BagReader`` reads (``--transport`` chooses).
The cameras' CameraInfo topics are played too (as ``<modality>/camera_info``), and the
extrinsics offline ``bag eval`` reads from the bag's ``/tf_static`` (or ``--extrinsic``) go to
the node as its ``<modality>.extrinsic`` parameters (:mod:`unimrseg_core.bags.calibration`:
the node cannot subscribe to /tf_static, no tf2_msgs wheel), so the node registers its inputs
as offline; ``registration`` in the JSON says per camera how the node's /diagnostics reported it.

Then the outputs are matched to the bag's ground truth by header stamp and fed, in time
order with the bag's camera stamps and ground truth, to the same
:class:`~unimrseg_core.bags.score.Scoreboard` as offline, so the JSON has the same layout
(``mode``: ``live``). Times: the node runs on the system clock and the bag on its record
time; the offset between them is the smallest ``receive time - /clock value`` seen (the
player publishes the bag time of the playback position). Header stamps may run on a third
clock (simulation time, a camera an hour ahead, a replayed recording's): they are placed on
the record clock by the offsets :mod:`unimrseg_core.bags.timebase` measures, as offline
(``bag.time_base`` in the JSON; cameras on clocks further apart than the node's max skew are
named in ``bag.warnings``, since no frame can combine them). Health transitions come from
the node's own reports: each sensor's ``state`` and ``state_since_s`` on /diagnostics;
``live`` adds, per fault, when the frames first left the faulted modality out
(``segmentation/status``), the receive latency (receive time - stamp) and the run's
bookkeeping. Every child process is stopped on return, on an exception and on SIGINT /
SIGTERM.

This module holds the run's order and its result; each step has its own module:
:mod:`~unimrseg_ros.live_processes` (domain, node and player processes),
:mod:`~unimrseg_ros.live_collect` (the DDS subscriber), :mod:`~unimrseg_ros.live_score`
(the node's reports as Scoreboard inputs).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from unimrseg_core.bags import timebase
from unimrseg_core.bags.calibration import BagCalibration, read_calibration
from unimrseg_core.bags.evaluate import (
    bag_topics_json,
    registration_json,
    result_document,
    schedule_json,
    torch_threads,
)
from unimrseg_core.bags.read import BagError, BagReader
from unimrseg_core.bags.score import DEFAULT_WINDOW_S, Output
from unimrseg_core.bags.topics import SENSORS
from unimrseg_core.faults import FaultSchedule
from unimrseg_core.registration import Transform
from unimrseg_core.sync import SyncConfig
from unimrseg_core.topics import CAMERA_INFOS, input_topic
from unimrseg_ros.live_collect import Collected, Collector
from unimrseg_ros.live_processes import (
    Children,
    LiveError,
    interrupt_on_signals,
    live_domain,
    node_command,
    player_command,
    ros_env,
    wait_for_node,
    watch_playback,
)
from unimrseg_ros.live_score import last_inference, node_outputs, node_registration, score_live, stats_ms

__all__ = ["CONFIG", "SAMPLES", "LiveBag", "LiveError", "evaluate_live", "read_bag", "sample_times"]

CONFIG: Final = Path(__file__).resolve().parent.parent / "config" / "unimrseg.yaml"
SAMPLES: Final = "samples.npz"
"""In the log folder: the node's masks at 5 s and at 60 % of each fault (for the demo report's strip)."""
SAMPLE_HEALTHY_S: Final = 5.0
_NS: Final = 1_000_000_000


@dataclass(frozen=True)
class LiveBag:
    """What the run needs to know of the bag before playing it."""

    path: Path
    info: dict[str, Any]
    """The result's ``bag`` entry."""
    play_topics: list[str]
    play_remap: dict[str, str]
    """Bag camera topic -> the node's input topic by its transport (only those named otherwise)."""
    transports: dict[str, str]
    """Camera modality -> the transport it is played and subscribed by."""
    time_base: timebase.TimeBase
    schedule: FaultSchedule | None
    source: str
    t0_ns: int
    scene_s: float | None
    duration_s: float
    calibration: BagCalibration
    """The cameras' frame ids, CameraInfo and extrinsics (the node's ``<modality>.extrinsic``)."""
    node_args: tuple[str, ...] = ()
    """What the node is told of the bag: each camera's transport and extrinsic."""


def evaluate_live(
    path: str | Path,
    *,
    domain_id: int | None = None,
    config: Path = CONFIG,
    remap: Mapping[str, str] | None = None,
    transports: Mapping[str, str] | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    faults: FaultSchedule | None = None,
    node_args: tuple[str, ...] = (),
    log_dir: Path | None = None,
    ready_timeout_s: float = 90.0,
    extrinsics: Mapping[str, Transform] | None = None,
    registration: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Play the bag at ``path`` against ``unimrseg_node`` and score its outputs; the offline JSON layout.

    ``domain_id``: the ROS domain of the run (default ``$ROS_DOMAIN_ID``, else a free one);
    ``config``: the node's params file; ``node_args``: more ``--ros-args`` for it;
    ``log_dir``: where the node's and player's logs go (default a temporary folder).
    ``remap`` / ``transports``: read the bag's cameras as offline (``BagReader``);
    ``extrinsics`` (before the bag's /tf_static) and ``registration`` as offline.
    Raises :class:`BagError` for an unreadable bag, :class:`LiveError` when the run fails.
    """
    started = time.perf_counter()
    bag = read_bag(Path(path), remap, transports, faults, extrinsics=extrinsics, registration=registration)
    logs = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="unimrseg_live_"))
    logs.mkdir(parents=True, exist_ok=True)
    collected, domain = _run(bag, config, node_args, domain_id, logs, ready_timeout_s, progress)
    if not collected.clock_offsets:
        raise LiveError("no /clock from the player: cannot place the node's times on the bag's")
    offset_ns = int(min(collected.clock_offsets))
    outputs = node_outputs(collected, offset_ns)
    _say(progress, f"live: {len(outputs)} outputs received; scoring against the bag's ground truth")
    with torch_threads(1):  # torchmetrics' confusion matrix: 1.6 ms a frame on one thread, 110 on two
        scores = score_live(
            bag.path,
            remap=remap,
            transports=transports,
            time_base=bag.time_base,
            schedule=bag.schedule,
            t0_ns=bag.t0_ns,
            scene_s=bag.scene_s,
            window_s=window_s,
            collected=collected,
            outputs=outputs,
            offset_ns=offset_ns,
        )
    _save_samples(logs / SAMPLES, bag.schedule, bag.t0_ns, bag.time_base, collected)
    inference = last_inference(collected.diagnostics)
    live = _live_summary(domain, offset_ns, logs, inference, collected, outputs, bag.time_base)
    return result_document(
        "live",
        bag=bag.info,
        backend={"name": inference.get("backend"), "notes": [inference.get("backend_notes", "")]},
        config={
            "window_s": window_s,
            "node_params": str(config),
            "node_args": [*node_args, *bag.node_args],
        },
        schedule=schedule_json(bag.schedule, bag.source, bag.t0_ns),
        scores=scores,
        started=started,
        extra={
            "registration": registration_json(
                bag.calibration,
                node_registration(collected.diagnostics),
                enabled=registration,
                counted="/diagnostics reports",
            ),
            "live": live,
        },
    )


def _live_summary(
    domain: int,
    offset_ns: int,
    logs: Path,
    inference: Mapping[str, str],
    collected: Collected,
    outputs: list[Output],
    time_base: timebase.TimeBase,
) -> dict[str, Any]:
    """The result's ``live`` entry: the run's bookkeeping, the player's and the node's own figures
    (the receive latency: receive time - the anchor's stamp, both on the record clock)."""
    return {
        "domain_id": domain,
        "clock_offset_s": round(offset_ns / _NS, 6),
        "logs": str(logs),
        "player": _player_report(logs / "play.json"),
        "node": {
            k: inference.get(k)
            for k in ("backend", "precision", "device", "dropped_frames", "published_frames", "fps")
        },
        "outputs_received": len(outputs),
        "status_received": len(collected.status),
        "diagnostics_received": len(collected.diagnostics),
        "receive_latency_ms": stats_ms(
            [(o.time_ns - time_base.stamp_on_clock_ns(o.stamp_ns, o.anchor or None)) / _NS for o in outputs]
        ),
    }


def read_bag(
    path: Path,
    remap: Mapping[str, str] | None,
    transports: Mapping[str, str] | None,
    faults: FaultSchedule | None,
    *,
    extrinsics: Mapping[str, Transform] | None = None,
    registration: bool = True,
) -> LiveBag:
    """The bag's cameras and their CameraInfo (and how to play them), what the node must be told
    (transports, extrinsics), fault schedule, clocks and summary; :class:`BagError` without cameras."""
    with BagReader(path, remap=remap, transports=transports) as bag:
        present = dict(bag.topics)
        cameras = [m for m, t in SENSORS.items() if t.topic in present]
        if not cameras:
            raise BagError(path, "no camera topic to play (read another name with --remap OLD:=NEW)")
        schedule, source = (faults, "argument") if faults is not None else bag.fault_schedule()
        sequence = bag.sequence()
        scene_s = sequence.get("segment_s") if sequence else None
        duration_s = (bag.end_ns - bag.start_ns) / _NS
        time_base = timebase.measure(bag)
        t0_ns = time_base.schedule_zero_ns(bag.start_ns, sequence)
        chosen = {m: bag.transports[m] for m in cameras}
        bag_topic = {m: present[SENSORS[m].topic] for m in cameras}
        max_skew_ns = SyncConfig().max_skew_ns  # the node's default
        try:  # extrinsics relative to the node's reference camera: its default first anchor
            calibration = read_calibration(bag, reference=SyncConfig().anchors[0], given=extrinsics)
        except ValueError as exc:
            raise BagError(path, str(exc)) from None
        infos = {m: present[CAMERA_INFOS[m]] for m in cameras if CAMERA_INFOS[m] in present}
        plays_as = {bag_topic[m]: input_topic(m, t) for m, t in chosen.items()}
        plays_as |= {infos[m]: CAMERA_INFOS[m] for m in infos}
        node_args = [*_transport_args(chosen), *calibration.node_args()]
        if not registration:
            node_args += ["-p", "registration.enabled:=false"]
        return LiveBag(
            path=path,
            info={
                "path": str(path),
                "storage": bag.storage,
                "start_ns": bag.start_ns,
                "duration_s": round(duration_s, 3),
                "messages": bag.message_count,
                "topics": bag_topics_json(bag),
                "remap": dict(bag.remap),
                "warnings": [*bag.warnings, *time_base.warnings(max_skew_ns), *calibration.warnings],
                "sequence": sequence,
                "time_base": time_base.as_json(t0_ns, max_skew_ns),
            },
            play_topics=list(plays_as),
            play_remap={name: to for name, to in plays_as.items() if name.lstrip("/") != to},
            transports=chosen,
            time_base=time_base,
            schedule=schedule,
            source=source,
            t0_ns=t0_ns,
            scene_s=float(scene_s) if isinstance(scene_s, (int, float)) and scene_s > 0 else None,
            duration_s=duration_s,
            calibration=calibration,
            node_args=tuple(node_args),
        )


def _transport_args(transports: Mapping[str, str]) -> list[str]:
    """The node's ``<modality>.transport`` parameters for the cameras not played raw."""
    return [arg for m, t in transports.items() if t != "raw" for arg in ("-p", f"{m}.transport:={t}")]


def _run(
    bag: LiveBag,
    config: Path,
    node_args: tuple[str, ...],
    domain_id: int | None,
    logs: Path,
    ready_timeout_s: float,
    progress: bool,
) -> tuple[Collected, int]:
    """Start the node, wait for its reports, play the bag; what was received, and the domain used."""
    node_log, play_log = logs / "node.log", logs / "play.log"
    with interrupt_on_signals(), live_domain(domain_id) as domain, Children() as children:
        env = ros_env(domain)
        node = children.start(node_command(config, (*node_args, *bag.node_args)), env, node_log)
        with Collector(domain) as collector:
            _say(progress, f"live: domain {domain}, starting unimrseg_node (log {node_log})")
            wait_for_node(collector.ready, node, node_log, ready_timeout_s)
            play = player_command(bag.path, bag.play_topics, bag.play_remap, logs / "play.json")
            _say(progress, f"live: playing {bag.path.name} ({bag.duration_s:.0f} s) against the node")
            player = children.start(play, env, play_log)

            def report(elapsed: float) -> None:
                print(
                    f"live: {elapsed:5.1f} s played, {collector.outputs_received()} outputs received",
                    flush=True,
                )

            watch_playback(player, play_log, node, node_log, report if progress else None)
            time.sleep(1.0)  # the last frames' outputs and a last /diagnostics
            return collector.snapshot(), domain


def _player_report(file: Path) -> dict[str, Any]:
    """The player's timing figures from its ``--json`` report (None each when it wrote none)."""
    report: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        report = json.loads(file.read_text())
    return {k: report.get(k) for k in ("messages", "wall_s", "expected_s", "timing_error_pct", "lateness_ms")}


def sample_times(schedule: FaultSchedule | None) -> list[tuple[str, float]]:
    """(label, seconds from t0) of the frames :data:`SAMPLES` keeps: a healthy one, then one per fault."""
    out = [("healthy", SAMPLE_HEALTHY_S)]
    out += [
        (f"{f.modality} {f.kind} {f.start_s:g}-{f.end_s:g} s", f.start_s + 0.6 * (f.end_s - f.start_s))
        for f in schedule or ()
    ]
    return out


def _save_samples(
    file: Path, schedule: FaultSchedule | None, t0_ns: int, time_base: timebase.TimeBase, collected: Collected
) -> None:
    """The node's masks nearest each :func:`sample_times`, with what it used and left out (demo report)."""
    masks, status = collected.masks, collected.status
    stamps = sorted(masks["class_mask"])
    if not stamps:
        return
    arrays: dict[str, Any] = {}
    for k, (label, t_s) in enumerate(sample_times(schedule)):
        want = t0_ns + round(t_s * _NS) + time_base.offset_ns()  # a stamp: on the cameras' clock
        stamp = min(stamps, key=lambda s: abs(s - want))
        class_ids = masks["class_mask"][stamp][0]
        arrays[f"class_mask_{k}"] = class_ids
        arrays[f"saliency_{k}"] = masks["saliency"].get(stamp, (np.zeros_like(class_ids), 0))[0]
        values = status.get(stamp, ({}, 0))[0]
        skipped = "; ".join(f"{key}: {v}" for key, v in values.items() if key.startswith("skipped."))
        arrays[f"meta_{k}"] = np.array([label, str(stamp), values.get("used", "?"), skipped])
    np.savez_compressed(file, **arrays)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)
