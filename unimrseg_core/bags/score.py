"""Scoring a replayed bag: outputs against ground truth, health against the fault schedule.

:class:`Scoreboard` is fed what happened, in any order close to time order, and turns
it into the JSON-ready result of ``unimrseg bag eval`` (layout in
:meth:`Scoreboard.result`). It does not care where the facts come from: offline
evaluation (:func:`unimrseg_core.bags.evaluate.evaluate_bag`) feeds it from the
node's logic run over the bag, a live run can feed it from the node's published
masks and health; both then give the same structure.

- :meth:`~Scoreboard.add_input`: a camera message seen (header stamp), for the anchor rate;
- :meth:`~Scoreboard.add_reject`: a camera message that could not be decoded;
- :meth:`~Scoreboard.add_truth`: a ground-truth image (``class_mask`` or ``saliency``);
- :meth:`~Scoreboard.add_output`: one output frame (:class:`Output`);
- :meth:`~Scoreboard.add_transitions`: health state changes;
- :meth:`~Scoreboard.note_period`: a modality's expected frame period when a fault began.

Times: stamps and clock times in nanoseconds; every time in the result is seconds
since ``t0_ns``, the zero of the fault schedule, on the clock (record time offline,
receive time live). Header stamps may run on another time base (simulation time, a
camera clock an hour ahead, the stamps of a replayed recording): ``stamp_offsets_ns``
gives, per modality, the measured ``stamp - clock`` (:mod:`unimrseg_core.bags.timebase`),
and a stamp is placed on the clock by subtracting it. An output is scored against the
ground truth with its anchor's stamp, and belongs to the time window and fault phase
of that stamp on the clock, as camera messages do; health transitions are placed at the
time the monitor learned them.

Measures: mIoU per bucket is dataset-level over the bucket's pixels
(:class:`~unimrseg_core.eval.metrics.SegmentationMeter`, as ``unimrseg eval``);
S-measure and MAE are per-frame values (pysodmetrics, as
:class:`~unimrseg_core.eval.metrics.SaliencyMeter` computes them) averaged over the
bucket's frames.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import cv2
import numpy as np
import py_sod_metrics as sod
import torch

from unimrseg_core.eval.metrics import SegmentationMeter
from unimrseg_core.faults import Fault, FaultSchedule
from unimrseg_core.health import HealthState, Transition
from unimrseg_core.modalities import MODALITIES

DEFAULT_WINDOW_S: Final = 2.0
"""Seconds per scoring window (bag eval offline and live)."""

__all__ = [
    "TARGET_DELAY_PERIODS",
    "TARGET_KINDS",
    "TARGET_MIOU_RATIO",
    "TARGET_RATE_RATIO",
    "TRUTH_KINDS",
    "Output",
    "Scoreboard",
]

TRUTH_KINDS: Final = ("class_mask", "saliency")
TARGET_KINDS: Final = ("drop", "freeze", "blackout")
"""Faults whose detection and recovery delays have a target (issue 7)."""
TARGET_DELAY_PERIODS: Final = 3.0
"""Detected within, and recovered within, this many expected frame periods."""
TARGET_RATE_RATIO: Final = 0.95
"""Output rate at least this fraction of the anchor rate while one sensor is faulted."""
TARGET_MIOU_RATIO: Final = 0.90
"""mIoU during each single-sensor fault at least this fraction of the healthy mIoU (of the
fault's own scene when the bag has scenes, else of the whole bag)."""
HEALTHY: Final = "healthy"
_NS: Final = 1_000_000_000
_DIGITS: Final = 5


def _num(value: float | None, digits: int = _DIGITS) -> float | None:
    """A JSON-safe number: rounded, None for missing, NaN or infinite values."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _seconds(ns: float | None) -> float | None:
    return None if ns is None else _num(ns / _NS)


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or not den else _num(num / den)


@dataclass(frozen=True)
class Output:
    """One output frame: what the node publishes for it, and when."""

    stamp_ns: int
    """The anchor's header stamp (the masks carry it)."""
    time_ns: int
    """When the frame was made (bag record time offline, receive time live)."""
    anchor: str
    used: str
    """The combination the model saw (``rgb+depth``)."""
    class_ids: np.ndarray
    """``HxW`` uint8 (``segmentation/class_mask``)."""
    saliency: np.ndarray
    """``HxW`` uint8 0..255 (``saliency/mask``: round(255 x probability))."""
    latency_s: float | None = None
    """Offline: the Segmenter's time; live: anchor received -> masks published."""
    waited_ns: int = 0
    """How long the frame waited for companions after its anchor arrived."""
    skipped: Mapping[str, str] = field(default_factory=dict)
    """Enabled modalities left out, with the reason (the frame assembler's)."""


class _Bucket:
    """Everything measured over one set of frames (a window, a phase, a fault, the whole bag)."""

    def __init__(self) -> None:
        self.seg = SegmentationMeter()
        self.s_measure: list[float] = []
        self.mae: list[float] = []
        self.outputs = 0
        self.scored = 0
        self.used: Counter[str] = Counter()
        self.inputs: Counter[str] = Counter()  # distinct camera stamps per modality

    def row(self, duration_s: float, anchors: Sequence[str]) -> dict[str, Any]:
        anchor_frames = max((self.inputs[m] for m in anchors), default=0)
        duration = duration_s if duration_s > 0 else None
        return {
            "duration_s": _num(duration_s, 3),
            "outputs": self.outputs,
            "anchor_frames": anchor_frames,
            "output_rate_hz": _ratio(self.outputs, duration),
            "anchor_rate_hz": _ratio(anchor_frames, duration),
            "rate_ratio": _ratio(self.outputs, anchor_frames),
            "scored": self.scored,
            "miou": _num(self.seg.miou()),
            "s_measure": _num(float(np.mean(self.s_measure))) if self.s_measure else None,
            "mae": _num(float(np.mean(self.mae))) if self.mae else None,
            "used": dict(sorted(self.used.items())),
        }


def _saliency_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(S-measure, MAE) of one image: pysodmetrics, inputs uint8 0..255 and 0/255."""
    s_measure, mae = sod.Smeasure(), sod.MAE()
    s_measure.step(pred, gt)
    mae.step(pred, gt)
    return float(s_measure.get_results()["sm"]), float(mae.get_results()["mae"])


def _fit(image: np.ndarray, shape: tuple[int, ...], interpolation: int) -> np.ndarray:
    """``image`` at the ground truth's size (robot bags may label at another resolution)."""
    if image.shape[:2] == shape[:2]:
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=interpolation)


def _skip_kind(reason: str) -> str:
    """``"skew 0.080 s > max 0.050 s"`` -> ``"skew"``: the kind of reason, without numbers."""
    match = re.match(r"[a-z ]+", reason)
    return match.group().strip() if match else reason


def _verdict(rows: list[dict[str, Any]], *, outputs: int) -> bool | None:
    """All targets met (True), one missed (False), or unknown (None: one unmeasured, or no output
    frame at all, or no target)."""
    verdicts = [r["passed"] for r in rows]
    if outputs == 0 or not verdicts:
        return None
    if any(v is False for v in verdicts):
        return False
    return None if any(v is None for v in verdicts) else True


class Scoreboard:
    """Accumulates one evaluated bag; :meth:`result` makes the JSON-ready dict.

    ``schedule``: the injected faults (None: a bag without a schedule, everything is
    one healthy phase); ``t0_ns``: the schedule's zero; ``anchors``: the modalities
    that may anchor, for the anchor rate; ``window_s``: length of the time windows;
    ``truth_kinds``: the ground-truth kinds the bag has (an output is scored once each
    has arrived for its stamp, or after ``horizon_s`` with what there is). ``scene_s``:
    the bag shows a new scene every ``scene_s`` seconds (``bag make``'s segments), so a
    fault's mIoU is also compared with the healthy frames of its own scene.
    ``stamp_offsets_ns``: per modality, its header stamps minus the clock (default 0).
    """

    def __init__(
        self,
        schedule: FaultSchedule | None,
        t0_ns: int,
        *,
        anchors: Sequence[str] = MODALITIES,
        window_s: float = DEFAULT_WINDOW_S,
        truth_kinds: Iterable[str] = TRUTH_KINDS,
        horizon_s: float = 2.0,
        scene_s: float | None = None,
        stamp_offsets_ns: Mapping[str, int] | None = None,
    ) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.schedule = schedule if schedule is not None else FaultSchedule()
        self.t0_ns = int(t0_ns)
        self.anchors = tuple(anchors)
        self.window_ns = round(window_s * _NS)
        self.truth_kinds = tuple(k for k in TRUTH_KINDS if k in set(truth_kinds))
        self.horizon_ns = round(horizon_s * _NS)
        if scene_s is not None and not (math.isfinite(scene_s) and scene_s > 0):
            raise ValueError(f"scene_s must be > 0 or None, got {scene_s}")
        self.scene_s = scene_s
        self._scene_healthy: dict[int, _Bucket] = defaultdict(_Bucket)
        self._truth: dict[str, dict[int, tuple[np.ndarray, int]]] = {k: {} for k in TRUTH_KINDS}
        self._pending: dict[int, list[Output]] = defaultdict(list)
        self._stamps: dict[str, set[int]] = {m: set() for m in MODALITIES}
        self._messages: Counter[str] = Counter()
        self._rejects: dict[str, Counter[str]] = {m: Counter() for m in MODALITIES}
        self._transitions: list[Transition] = []
        self._periods: dict[int, float] = {}  # fault index -> expected period (ns) at its start
        self._all = _Bucket()
        self._windows: dict[int, _Bucket] = defaultdict(_Bucket)
        self._phases: dict[tuple[int, ...], _Bucket] = defaultdict(_Bucket)
        self._faults: dict[int, _Bucket] = defaultdict(_Bucket)
        self._latency: list[float] = []
        self._waited: list[int] = []
        self._skipped: dict[str, Counter[str]] = {m: Counter() for m in MODALITIES}
        self.unscored = 0
        self.stamp_offsets_ns = {m: int((stamp_offsets_ns or {}).get(m, 0)) for m in MODALITIES}

    # ------------------------------------------------------------------ time -> buckets

    def _t_s(self, ns: int) -> float:
        return (ns - self.t0_ns) / _NS

    def _active(self, t_s: float) -> tuple[int, ...]:
        return tuple(i for i, f in enumerate(self.schedule) if f.active(t_s))

    def _clock_ns(self, modality: str, stamp_ns: int) -> int:
        """A header stamp of ``modality`` on the clock the result is in."""
        return stamp_ns - self.stamp_offsets_ns.get(modality, 0)

    def _buckets(self, time_ns: int) -> list[_Bucket]:
        """The buckets of a moment on the clock: the whole bag, its window, its phase, scene, faults."""
        t_s = self._t_s(time_ns)
        active = self._active(t_s)
        window = max(0, (time_ns - self.t0_ns) // self.window_ns)
        buckets = [self._all, self._windows[window], self._phases[active]]
        if not active and self.scene_s is not None:
            buckets.append(self._scene_healthy[self._scene(t_s)])
        return buckets + [self._faults[i] for i in active]

    def _scene(self, t_s: float) -> int:
        return math.floor(t_s / self.scene_s) if self.scene_s else 0

    # ------------------------------------------------------------------ feeding

    def add_input(self, modality: str, stamp_ns: int) -> None:
        """A camera message of ``modality`` with header stamp ``stamp_ns`` reached the node."""
        self._messages[modality] += 1
        if stamp_ns in self._stamps[modality]:
            return  # a frozen camera's re-sent message is not a new frame
        self._stamps[modality].add(stamp_ns)
        for bucket in self._buckets(self._clock_ns(modality, stamp_ns)):
            bucket.inputs[modality] += 1

    def add_reject(self, modality: str, reason: str) -> None:
        self._messages[modality] += 1
        self._rejects[modality][reason] += 1

    def add_truth(self, kind: str, stamp_ns: int, image: np.ndarray, time_ns: int) -> None:
        """Ground truth ``kind`` (``class_mask``: ids, 255 = none; ``saliency``: 0/255) for ``stamp_ns``."""
        if kind not in TRUTH_KINDS:
            raise ValueError(f"unknown ground truth {kind!r}; valid: {', '.join(TRUTH_KINDS)}")
        self._truth[kind][int(stamp_ns)] = (image, int(time_ns))
        self._score_ready(int(stamp_ns))
        self.advance(time_ns)

    def add_output(self, output: Output) -> None:
        self._pending[output.stamp_ns].append(output)
        for bucket in self._buckets(self._clock_ns(output.anchor, output.stamp_ns)):
            bucket.outputs += 1
            bucket.used[output.used] += 1
        if output.latency_s is not None:
            self._latency.append(float(output.latency_s))
        self._waited.append(int(output.waited_ns))
        for modality, reason in output.skipped.items():
            self._skipped[modality][_skip_kind(reason)] += 1
        self._score_ready(output.stamp_ns)
        self.advance(output.time_ns)

    def add_transitions(self, transitions: Iterable[Transition]) -> None:
        self._transitions.extend(transitions)

    def note_period(self, fault_index: int, period_ns: float) -> None:
        """The faulted modality's expected frame period when fault ``fault_index`` began."""
        self._periods[fault_index] = float(period_ns)

    def advance(self, now_ns: int) -> None:
        """Time is ``now_ns``: score outputs whose ground truth is overdue, forget old ground truth."""
        limit = now_ns - self.horizon_ns
        for stamp in [s for s, outs in self._pending.items() if outs[0].time_ns < limit]:
            self._score(stamp, final=True)
        for truths in self._truth.values():
            for stamp in [s for s, (_, t) in truths.items() if t < limit]:
                del truths[stamp]

    def finish(self) -> None:
        """No more input: score every pending output with the ground truth there is."""
        for stamp in list(self._pending):
            self._score(stamp, final=True)

    # ------------------------------------------------------------------ scoring

    def _score_ready(self, stamp_ns: int) -> None:
        if stamp_ns in self._pending and all(stamp_ns in self._truth[k] for k in self.truth_kinds):
            self._score(stamp_ns, final=False)

    def _score(self, stamp_ns: int, *, final: bool) -> None:
        outputs = self._pending.pop(stamp_ns, [])
        label = self._truth["class_mask"].get(stamp_ns)
        salient = self._truth["saliency"].get(stamp_ns)
        for output in outputs:
            if label is None and salient is None:
                self.unscored += 1
                continue
            buckets = self._buckets(self._clock_ns(output.anchor, stamp_ns))
            if label is not None:
                gt = label[0]
                pred = _fit(output.class_ids, gt.shape, cv2.INTER_NEAREST)
                pred_t = torch.from_numpy(pred.astype(np.int64))
                gt_t = torch.from_numpy(gt.astype(np.int64))
                for bucket in buckets:
                    bucket.seg.update(pred_t, gt_t)
            if salient is not None:
                gt = salient[0]
                s_measure, mae = _saliency_scores(_fit(output.saliency, gt.shape, cv2.INTER_LINEAR), gt)
                for bucket in buckets:
                    bucket.s_measure.append(s_measure)
                    bucket.mae.append(mae)
            for bucket in buckets:
                bucket.scored += 1

    # ------------------------------------------------------------------ result

    def frame_period_ns(self) -> float | None:
        """The cameras' frame period: the median stamp interval of the busiest camera."""
        busiest = max(MODALITIES, key=lambda m: len(self._stamps[m]))
        stamps = np.array(sorted(self._stamps[busiest]), dtype=np.int64)
        gaps = np.diff(stamps)
        gaps = gaps[gaps > 0]
        return float(np.median(gaps)) if gaps.size else None

    def span_ns(self) -> int:
        """From ``t0`` to one frame period after the last camera stamp on the clock (or the last event)."""
        ends = [self._clock_ns(m, max(s)) for m, s in self._stamps.items() if s]
        ends += [t.time_ns for t in self._transitions]
        last = max(ends, default=self.t0_ns)
        return max(0, int(last - self.t0_ns + (self.frame_period_ns() or 0)))

    def _segments(self, span_s: float) -> list[tuple[float, float, tuple[int, ...]]]:
        """[start, end) pieces of [0, span] with the faults active in each."""
        cuts = {0.0, span_s}
        for fault in self.schedule:
            cuts.update(t for t in (fault.start_s, fault.end_s) if 0.0 < t < span_s)
        points = sorted(cuts)
        return [(a, b, self._active((a + b) / 2)) for a, b in itertools.pairwise(points)]

    def _phase_name(self, key: tuple[int, ...]) -> str:
        return " + ".join(str(self.schedule[i]) for i in key) if key else HEALTHY

    def _state_before(self, modality: str, time_ns: int) -> HealthState:
        state = HealthState.LOST  # the monitor's state before any message
        for t in self._transitions:
            if t.modality == modality and t.time_ns < time_ns:
                state = t.new
        return state

    def _fault_timing(self, index: int, fault: Fault, span_ns: int) -> dict[str, Any]:
        """Detection (start -> leaves OK) and recovery (end -> OK again) of one fault."""
        start_ns = self.t0_ns + round(fault.start_s * _NS)
        end_ns = self.t0_ns + round(fault.end_s * _NS)
        period_ns = self._periods.get(index) or self.frame_period_ns()
        mine = [t for t in self._transitions if t.modality == fault.modality]

        def event(time_ns: int, ref_ns: int, transition: Transition | None, note: str) -> dict[str, Any]:
            delay = time_ns - ref_ns
            return {
                "t_s": _seconds(time_ns - self.t0_ns),
                "delay_s": _seconds(delay),
                "delay_periods": _ratio(delay, period_ns),
                "state": str(transition.new)
                if transition
                else str(self._state_before(fault.modality, ref_ns)),
                "reason": transition.reason if transition else note,
            }

        detection = None
        before = self._state_before(fault.modality, start_ns)
        if before is not HealthState.OK:
            detection = event(start_ns, start_ns, None, f"already {before} when the fault began")
        else:
            hit = next((t for t in mine if start_ns <= t.time_ns <= end_ns and t.old is HealthState.OK), None)
            if hit is not None:
                detection = event(hit.time_ns, start_ns, hit, "")
        recovery = None
        if detection is not None and end_ns <= self.t0_ns + span_ns:
            nxt = min(
                (
                    self.t0_ns + round(f.start_s * _NS)
                    for f in self.schedule
                    if f.modality == fault.modality and f.start_s >= fault.end_s
                ),
                default=None,
            )
            at_end = self._state_before(fault.modality, end_ns)
            if at_end is HealthState.OK:
                recovery = event(end_ns, end_ns, None, "OK when the fault ended")
            else:
                hit = next(
                    (
                        t
                        for t in mine
                        if t.time_ns >= end_ns
                        and t.new is HealthState.OK
                        and (nxt is None or t.time_ns < nxt)
                    ),
                    None,
                )
                if hit is not None:
                    recovery = event(hit.time_ns, end_ns, hit, "")
        return {"period_s": _seconds(period_ns), "detection": detection, "recovery": recovery}

    def _single_sensor(self, fault: Fault) -> bool:
        """No fault of another modality overlaps ``fault``."""
        return not any(f.modality != fault.modality and f.overlaps(fault) for f in self.schedule)

    def _health(self, span_ns: int) -> dict[str, Any]:
        time_in: dict[str, dict[str, float]] = {}
        for modality in MODALITIES:
            spent = dict.fromkeys((str(s) for s in HealthState), 0.0)
            state, since = HealthState.LOST, self.t0_ns
            for t in self._transitions:
                if t.modality == modality:
                    spent[str(state)] += max(0, t.time_ns - since) / _NS
                    state, since = t.new, t.time_ns
            spent[str(state)] += max(0, self.t0_ns + span_ns - since) / _NS
            time_in[modality] = {k: _num(v, 3) for k, v in spent.items()}
        return {
            "initial": dict.fromkeys(MODALITIES, str(HealthState.LOST)),
            "transitions": [
                {
                    "t_s": _seconds(t.time_ns - self.t0_ns),
                    "modality": t.modality,
                    "old": str(t.old),
                    "new": str(t.new),
                    "reason": t.reason,
                }
                for t in self._transitions
            ],
            "time_in_state_s": time_in,
        }

    def result(self) -> dict[str, Any]:
        """The JSON-ready scores (finite numbers or None); the caller adds bag, backend, versions.

        Keys: ``summary`` (whole bag, healthy phase, counts), ``targets`` (issue 7's,
        each with value, threshold and ``passed``), ``faults`` (per scheduled fault:
        detection and recovery delay in seconds and expected frame periods, the
        scores and rates while it was active, its mIoU against the healthy mIoU of the
        whole bag and of its own scene),
        ``phases`` (healthy and each set of simultaneously active faults), ``windows``
        (every ``window_s``), ``health`` (transitions, time in each state),
        ``inputs`` (messages and rejections per camera), ``latency``.
        """
        self.finish()
        span_ns = self.span_ns()
        span_s = span_ns / _NS
        healthy = self._phases[()].row(self._phase_times(span_s)[()], self.anchors)
        scenes = self._scene_rows(span_s)
        faults = [
            self._fault_row(i, fault, span_ns, healthy, scenes) for i, fault in enumerate(self.schedule)
        ]
        return {
            "summary": {
                "span_s": _num(span_s, 3),
                "frame_period_s": _seconds(self.frame_period_ns()),
                "all": self._all.row(span_s, self.anchors),
                HEALTHY: healthy,
                "scene_s": self.scene_s,
                "scenes": scenes,
                "unscored_outputs": self.unscored,
                "rejected": {m: sum(self._rejects[m].values()) for m in MODALITIES},
            },
            "targets": self._targets(faults),
            "faults": faults,
            "phases": self._phase_rows(span_s),
            "windows": self._window_rows(span_ns),
            "health": self._health(span_ns),
            "inputs": {
                m: {
                    "messages": self._messages[m],
                    "frames": len(self._stamps[m]),
                    "rejected": dict(sorted(self._rejects[m].items())),
                    "skipped_from_frames": dict(sorted(self._skipped[m].items())),
                }
                for m in MODALITIES
            },
            "latency": self._latency_row(),
        }

    def _phase_times(self, span_s: float) -> dict[tuple[int, ...], float]:
        """Seconds spent in each phase (the healthy one and each set of simultaneous faults)."""
        phase_time: dict[tuple[int, ...], float] = defaultdict(float)
        for a, b, key in self._segments(span_s):
            phase_time[key] += b - a
        return phase_time

    def _phase_rows(self, span_s: float) -> list[dict[str, Any]]:
        """The healthy phase first, then each phase in the order its first fault starts."""
        phase_time = self._phase_times(span_s)
        keys = list(dict.fromkeys([key for _, _, key in self._segments(span_s)] + list(self._phases)))
        keys.sort(key=lambda k: (k != (), min((self.schedule[i].start_s for i in k), default=0.0)))
        return [
            {
                "phase": self._phase_name(k),
                "faults": list(k),
                **self._phases[k].row(phase_time[k], self.anchors),
            }
            for k in keys
        ]

    def _fault_row(
        self, i: int, fault: Any, span_ns: int, healthy: dict[str, Any], scenes: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """One scheduled fault: its timing, its scores while active, against healthy and its scene."""
        start, end = max(0.0, fault.start_s), min(fault.end_s, span_ns / _NS)
        during = self._faults[i].row(max(0.0, end - start), self.anchors)
        scene = self._fault_scene(fault)
        scene_miou = scenes[scene]["healthy_miou"] if scene is not None and scene < len(scenes) else None
        return {
            "index": i,
            "fault": str(fault),
            **fault.to_dict(),
            "single_sensor": self._single_sensor(fault),
            **self._fault_timing(i, fault, span_ns),
            "during": during,
            "miou_vs_healthy": _ratio(during["miou"], healthy["miou"]),
            "scene": scene,
            "scene_healthy_miou": scene_miou,
            "miou_vs_scene_healthy": _ratio(during["miou"], scene_miou),
        }

    def _window_rows(self, span_ns: int) -> list[dict[str, Any]]:
        rows = []
        for k in range(max(1, math.ceil(span_ns / self.window_ns))):
            a, b = k * self.window_ns / _NS, min((k + 1) * self.window_ns, span_ns) / _NS
            active = [i for i, f in enumerate(self.schedule) if f.start_s < b and a < f.end_s]
            row = self._windows[k].row(b - a, self.anchors)
            rows.append({"start_s": _num(a, 3), "end_s": _num(b, 3), "faults": active, **row})
        return rows

    def _scene_rows(self, span_s: float) -> list[dict[str, Any]]:
        """Per scene of the bag (when ``scene_s`` is known): its span and its healthy frames' scores."""
        if self.scene_s is None:
            return []
        rows = []
        for k in range(max(1, math.ceil(span_s / self.scene_s - 1e-9))):
            bucket = self._scene_healthy[k]
            rows.append(
                {
                    "scene": k,
                    "start_s": _num(k * self.scene_s, 3),
                    "end_s": _num(min((k + 1) * self.scene_s, span_s), 3),
                    "healthy_outputs": bucket.outputs,
                    "healthy_miou": _num(bucket.seg.miou()),
                    "healthy_s_measure": _num(float(np.mean(bucket.s_measure))) if bucket.s_measure else None,
                }
            )
        return rows

    def _fault_scene(self, fault: Fault) -> int | None:
        """The scene ``fault`` lies in; None without scenes or when it spans a scene change."""
        if self.scene_s is None:
            return None
        first, last = self._scene(fault.start_s), self._scene(max(fault.start_s, fault.end_s - 1e-9))
        return first if first == last else None

    def _latency_row(self) -> dict[str, Any]:
        def stats(values: Sequence[float], scale: float) -> dict[str, float | None]:
            if not values:
                return dict.fromkeys(("p50", "p95", "p99", "mean", "max"))
            arr = np.asarray(values, dtype=np.float64) * scale
            return {
                "p50": _num(float(np.percentile(arr, 50)), 3),
                "p95": _num(float(np.percentile(arr, 95)), 3),
                "p99": _num(float(np.percentile(arr, 99)), 3),
                "mean": _num(float(arr.mean()), 3),
                "max": _num(float(arr.max()), 3),
            }

        return {"segmenter_ms": stats(self._latency, 1e3), "waited_ms": stats(self._waited, 1e-6)}

    def _targets(self, faults: list[dict[str, Any]]) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []

        def add(
            fault: dict[str, Any], name: str, value: float | None, threshold: float, at_least: bool
        ) -> None:
            passed = None if value is None else (value >= threshold if at_least else value <= threshold)
            rows.append(
                {
                    "fault": fault["fault"],
                    "target": name,
                    "value": value,
                    "threshold": threshold,
                    "passed": passed,
                }
            )

        for f in faults:
            if f["kind"] in TARGET_KINDS:
                detection = f["detection"]["delay_periods"] if f["detection"] else None
                recovery = f["recovery"]["delay_periods"] if f["recovery"] else None
                add(f, "detection_delay_periods", detection, TARGET_DELAY_PERIODS, False)
                add(f, "recovery_delay_periods", recovery, TARGET_DELAY_PERIODS, False)
                # an undetected or unrecovered fault misses its target; it is not "unmeasured"
                for row in rows[-2:]:
                    row["passed"] = bool(row["passed"])
            if f["single_sensor"]:
                add(f, "output_rate_ratio", f["during"]["rate_ratio"], TARGET_RATE_RATIO, True)
                # against the healthy frames of the fault's own scene when the bag has scenes: the
                # whole bag's healthy frames mix other scenes and lighting (and pool more frames)
                if f["scene_healthy_miou"] is not None:
                    add(f, "miou_vs_scene_healthy", f["miou_vs_scene_healthy"], TARGET_MIOU_RATIO, True)
                else:
                    add(f, "miou_vs_healthy", f["miou_vs_healthy"], TARGET_MIOU_RATIO, True)
        return {
            "passed": _verdict(rows, outputs=self._all.outputs),
            "status": self._status(rows),
            "rows": rows,
        }

    def _status(self, rows: list[dict[str, Any]]) -> str:
        """``passed`` / ``failed`` / ``not measurable``, or ``no data`` (no output frame at all: nothing
        was measured, so nothing passed) or ``no targets`` (a bag without a fault schedule)."""
        if self._all.outputs == 0:
            return "no data"
        if not rows:
            return "no targets"
        return {True: "passed", False: "failed", None: "not measurable"}[_verdict(rows, outputs=1)]
