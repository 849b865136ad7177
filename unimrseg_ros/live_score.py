"""Scoring a live run: what the node published, set against the bag, by the core's Scoreboard.

The same :class:`~unimrseg_core.bags.score.Scoreboard` as offline does the scoring, so
the result has the offline layout; this module only turns what the collector received
(:class:`~unimrseg_ros.live_collect.Collected`) into the Scoreboard's inputs, in bag time:

- outputs: each class mask with its saliency mask and per-frame status (anchor, modalities
  used and left out, latency) at its receive time, matched to the ground truth by stamp;
- health: each sensor's ``state`` and ``state_since_s`` on the node's /diagnostics;
- rejections: each sensor's ``rejected.<reason>`` counts on its last /diagnostics report;
- the faulted modality's expected period when each fault began, from the same reports.

Times: the node runs on the system clock and the bag on its record time; ``offset_ns``
(receive time - bag time) places the node's times on the bag's. Header stamps (outputs carry
their anchor's) may be on a third clock; the bag's :class:`~unimrseg_core.bags.timebase.TimeBase`
places them on the record clock, as offline. No ROS is imported here.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from unimrseg_core.bags.evaluate import truth_mono8
from unimrseg_core.bags.messages import stamp_to_ns
from unimrseg_core.bags.read import BagReader
from unimrseg_core.bags.score import Output, Scoreboard
from unimrseg_core.bags.timebase import TimeBase
from unimrseg_core.bags.topics import GROUND_TRUTH, SENSORS
from unimrseg_core.faults import FaultSchedule
from unimrseg_core.health import HealthState, Transition
from unimrseg_core.image_msg import MAX_PIXELS
from unimrseg_core.modalities import MODALITIES
from unimrseg_ros.diagnostics import NO_FRAME_YET
from unimrseg_ros.live_collect import Collected, DiagnosticsLog, StatusLog

__all__ = [
    "last_inference",
    "node_outputs",
    "node_registration",
    "node_rejections",
    "node_transitions",
    "score_live",
    "stats_ms",
]

_MODALITY_OF: Final = {t.topic: m for m, t in SENSORS.items()}
_TRUTH_OF: Final = {t.topic: k for k, t in GROUND_TRUTH.items()}
_NS: Final = 1_000_000_000
_Event = tuple[int, int, Any]
"""(bag time, order: 0 the bag's own messages before 1 outputs at the same time, what)."""


def node_outputs(collected: Collected, offset_ns: int) -> list[Output]:
    """One :class:`Output` per class mask received, with its saliency and status, at its receive time."""
    outputs = []
    for stamp, (class_ids, received) in collected.masks["class_mask"].items():
        saliency = collected.masks["saliency"].get(stamp, (np.zeros_like(class_ids), received))[0]
        values = collected.status.get(stamp, ({}, received))[0]
        latency_ms = values.get("latency_ms")
        outputs.append(
            Output(
                stamp_ns=stamp,
                time_ns=received - offset_ns,
                anchor=values.get("anchor", ""),
                used=values.get("used", "?"),
                class_ids=class_ids,
                saliency=saliency,
                latency_s=float(latency_ms) / 1e3 if latency_ms else None,
                waited_ns=round(float(values.get("waited_ms", 0) or 0) * 1e6),
                skipped={k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("skipped.")},
            )
        )
    return outputs


def node_transitions(diagnostics: DiagnosticsLog, offset_ns: int) -> list[Transition]:
    """Health state changes from the sensors' /diagnostics statuses, at their ``state_since_s`` (bag time)."""
    state = dict.fromkeys(MODALITIES, HealthState.LOST)
    out: list[Transition] = []
    for received, rows in diagnostics:
        for name, _, values in rows:
            modality = name.rsplit(": ", 1)[-1]
            if modality not in state or values.get("state") not in {str(s) for s in HealthState}:
                continue
            new = HealthState[values["state"]]
            if new is state[modality]:
                continue
            since = values.get("state_since_s")
            at = round(float(since) * _NS) if since else received
            out.append(Transition(modality, at - offset_ns, state[modality], new, values.get("reasons", "")))
            state[modality] = new
    out.sort(key=lambda t: t.time_ns)
    return out


def node_rejections(diagnostics: DiagnosticsLog) -> dict[str, dict[str, int]]:
    """Per sensor, the malformed messages the node rejected by reason (``rejected.<reason>`` on its
    last /diagnostics report: counts since activation, so the last report holds the run's)."""
    out: dict[str, dict[str, int]] = {}
    for _, rows in diagnostics:
        for name, _, values in rows:
            modality = name.rsplit(": ", 1)[-1]
            if modality not in MODALITIES:
                continue
            counts = {}
            for key, value in values.items():
                if key.startswith("rejected.") and value.isdigit():
                    counts[key.split(".", 1)[1]] = int(value)
            out[modality] = counts
    return out


def node_registration(diagnostics: DiagnosticsLog) -> dict[str, dict[str, int]]:
    """Per sensor, how the node said it reached the anchor camera (its ``registration`` value) ->
    the /diagnostics reports that said so (before the first frame the node says ``no frame yet``,
    which is left out)."""
    out: dict[str, dict[str, int]] = {}
    for _, rows in diagnostics:
        for name, _, values in rows:
            modality = name.rsplit(": ", 1)[-1]
            text = values.get("registration")
            if modality not in MODALITIES or not text or text == NO_FRAME_YET:
                continue
            counts = out.setdefault(modality, {})
            counts[text] = counts.get(text, 0) + 1
    return out


def last_inference(diagnostics: DiagnosticsLog) -> dict[str, str]:
    """The key/values of the node's last inference status (backend, device, dropped frames, ...)."""
    for _, rows in reversed(diagnostics):
        for name, _, values in rows:
            if name.endswith(": inference"):
                return values
    return {}


def stats_ms(seconds: list[float]) -> dict[str, float | None]:
    """p50, p95, max and mean of ``seconds`` in milliseconds (None each when there are none)."""
    if not seconds:
        return dict.fromkeys(("p50", "p95", "max", "mean"))
    arr = np.asarray(seconds) * 1e3
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
        "max": round(float(arr.max()), 2),
        "mean": round(float(arr.mean()), 2),
    }


def score_live(
    path: Path,
    *,
    remap: Mapping[str, str] | None,
    time_base: TimeBase,
    schedule: FaultSchedule | None,
    t0_ns: int,
    scene_s: float | None,
    window_s: float,
    collected: Collected,
    outputs: list[Output],
    offset_ns: int,
    transports: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Feed the Scoreboard in bag-time order (the bag's camera stamps and ground truth, the outputs).

    ``time_base``: the bag's header stamps minus its record times (``timebase.measure``), so
    stamps on another clock score right; ``t0_ns``: the schedule's zero on the record clock
    (``TimeBase.schedule_zero_ns``); ``remap`` / ``transports``: read the bag as the run did.

    Returns :meth:`Scoreboard.result`, each fault row with ``left_out``: when the frames
    first went without the faulted modality.
    """
    with BagReader(path, remap=remap, transports=transports) as bag:
        truth_kinds = [_TRUTH_OF[t] for t in bag.topics if t in _TRUTH_OF]
        board = Scoreboard(
            schedule,
            t0_ns,
            window_s=window_s,
            truth_kinds=truth_kinds,
            scene_s=scene_s,
            stamp_offsets_ns=time_base.offsets_ns,
        )
        events: list[_Event] = [(output.time_ns, 1, output) for output in outputs]
        events += _bag_events(bag, path)
        end_ns = bag.end_ns
    events.sort(key=lambda e: (e[0], e[1]))
    for time_ns, _, what in events:
        if isinstance(what, Output):
            board.add_output(what)
        elif len(what) == 3:
            board.add_truth(what[0], what[1], what[2], time_ns)
        else:
            board.add_input(what[0], what[1])
    # the cameras all fall silent when the bag ends: not a fault, not part of the run
    board.add_transitions(
        [t for t in node_transitions(collected.diagnostics, offset_ns) if t.time_ns <= end_ns]
    )
    for modality, counts in node_rejections(collected.diagnostics).items():
        for reason, n in counts.items():
            for _ in range(n):
                board.add_reject(modality, reason)
    for index, period_ns in _fault_periods(schedule, t0_ns, collected.diagnostics, offset_ns):
        board.note_period(index, period_ns)
    result = board.result()
    left_out = _left_out(schedule, t0_ns, collected.status, time_base)
    for row, first in zip(result["faults"], left_out, strict=True):
        row["left_out"] = first
    return result


def _bag_events(bag: BagReader, path: Path) -> list[_Event]:
    """The bag's camera stamps and ground-truth images at their record times."""
    events: list[_Event] = []
    for message in bag.messages([t for t in bag.topics if t in _MODALITY_OF or t in _TRUTH_OF]):
        stamp = stamp_to_ns(message.msg.header.stamp)
        kind = _TRUTH_OF.get(message.topic)
        if kind is not None:
            image = truth_mono8(path, message.bag_topic, message.msg, MAX_PIXELS)
            events.append((message.record_ns, 0, (kind, stamp, image)))
        else:
            events.append((message.record_ns, 0, (_MODALITY_OF[message.topic], stamp)))
    return events


def _fault_periods(
    schedule: FaultSchedule | None, t0_ns: int, diagnostics: DiagnosticsLog, offset_ns: int
) -> Iterator[tuple[int, float]]:
    """(fault index, the faulted modality's expected period in ns when the fault began), as reported."""
    periods: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for received, rows in diagnostics:
        for name, _, values in rows:
            modality = name.rsplit(": ", 1)[-1]
            if modality in MODALITIES and values.get("expected_period_s"):
                with contextlib.suppress(ValueError):
                    periods[modality].append((received - offset_ns, float(values["expected_period_s"]) * _NS))
    for i, fault in enumerate(schedule or ()):
        start = t0_ns + round(fault.start_s * _NS)
        before = [p for t, p in periods[fault.modality] if t <= start and p > 0]
        if before:
            yield i, before[-1]


def _left_out(
    schedule: FaultSchedule | None, t0_ns: int, status: StatusLog, time_base: TimeBase
) -> list[dict[str, Any]]:
    """Per fault: seconds from its start to the first frame whose status left its modality out
    (the frame's anchor stamp placed on the record clock)."""
    on_clock = {
        time_base.stamp_on_clock_ns(stamp, values.get("anchor") or None): values
        for stamp, (values, _) in status.items()
    }
    rows = []
    for i, fault in enumerate(schedule or ()):
        start, end = t0_ns + round(fault.start_s * _NS), t0_ns + round(fault.end_s * _NS)
        first = min(
            (
                t
                for t, values in on_clock.items()
                if start <= t < end and f"skipped.{fault.modality}" in values
            ),
            default=None,
        )
        rows.append(
            {"index": i, "first_frame_without_s": None if first is None else round((first - start) / _NS, 3)}
        )
    return rows
