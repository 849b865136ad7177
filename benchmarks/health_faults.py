"""Which sensor faults hurt the model, and does the health monitor flag exactly those?

On the procedural world (the held-out test seed) with the shipped model, for every content
fault of the fault model (kind x strength x modality), plus a contrast washout that the
fault model lacks (``in_fault_model: false``):

(a) cost: mIoU with the faulted modality kept, and with it masked out, relative to healthy,
    over ``--scenes`` scenes of every condition (``data.conditions``: each lighting, with and
    without depth holes and thermal washout);
(b) detection: per condition, a fresh monitor fed ``--warmup`` healthy frames of a moving
    camera (``data.sequence``, 5 Hz) then ``--faulted`` faulted ones; the fraction of faulted
    frames on which the modality is DEGRADED, and how many of those were graded mild;
(c) false alarms: healthy streams of every condition, 20 s each (the camera's whole travel
    forward and back, 5 Hz), each alone and all in one stream with a cut between conditions,
    and the demo bag's 60 s (10 Hz, day -> night -> fog); the fraction of frames (after
    start-up) on which a modality is not OK.

A fault is ``costly`` when it costs more than 10 % mIoU; ``agrees`` says whether the monitor
flags it (detection rate >= 0.9) exactly when it is costly (rate <= 0.1 otherwise). The policy
section compares ``degraded_policy`` mask and keep_mild: expected mIoU per fault, from (a) and
the detection and grade rates of (b). Writes ``benchmarks/results/health_faults.json``.

    python benchmarks/health_faults.py [--scenes 3] [--warmup 20] [--faulted 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write_result

from unimrseg_core.data.conditions import LIGHTING
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.sequence import SequenceGenerator
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.eval.metrics import SegmentationMeter
from unimrseg_core.faults import Fault, FaultSchedule
from unimrseg_core.health import Grade, HealthConfig, HealthMonitor, HealthState
from unimrseg_core.health.checks import check_frame
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.runtime.backends import OnnxRuntimeBackend
from unimrseg_core.runtime.segmenter import Segmenter

SIZE: Final = (240, 320)
STREAM_HZ: Final = 5.0
STREAM_S: Final = 20.0
"""Healthy streams per condition: one segment of the sequence, a whole forward-and-back travel."""
DEMO_HZ: Final = 10.0
DEMO_S: Final = 60.0
"""The demo bag: 60 s at 10 Hz, a new scene every 20 s (day, night, fog)."""
ONNX: Final = Path(__file__).resolve().parents[1] / "unimrseg_core" / "weights" / "unimrseg.onnx"
COSTLY: Final = 0.10
"""A fault costing more than this fraction of the healthy mIoU must be detected."""
DETECTED: Final = 0.9
QUIET: Final = 0.1
CONDITIONS: Final[tuple[tuple[str, ...], ...]] = (
    *((light,) for light in LIGHTING),
    *((light, "depth_holes") for light in LIGHTING),
    *((light, "thermal_washout") for light in LIGHTING if light != "night"),  # never at night
)
STRENGTHS: Final[dict[tuple[str, str], tuple[str, tuple[float, ...]]]] = {
    ("noise", "rgb"): ("sigma", (0.05, 0.1, 0.2, 0.3, 0.5)),
    ("noise", "depth"): ("sigma", (0.02, 0.05, 0.07, 0.1, 0.2)),
    ("noise", "thermal"): ("sigma", (0.005, 0.01, 0.02, 0.03, 0.05, 0.1)),
    ("saturate", "rgb"): ("fraction", (0.25, 0.5, 0.75)),
    ("saturate", "depth"): ("fraction", (0.02, 0.05, 0.1, 0.25)),
    ("saturate", "thermal"): ("fraction", (0.05, 0.1, 0.25, 0.5)),
    ("depth_holes", "depth"): ("fraction", (0.2, 0.3, 0.4, 0.6, 0.8)),
    ("blackout", "rgb"): ("", (1.0,)),
    ("blackout", "depth"): ("", (1.0,)),
    ("blackout", "thermal"): ("", (1.0,)),
    **{("washout", m): ("contrast", (0.5, 0.25, 0.1, 0.05)) for m in MODALITIES},
}
"""Kind and modality -> the parameter swept and its strengths (blackout has none)."""


@dataclass(frozen=True)
class Case:
    kind: str
    modality: str
    param: str
    strength: float

    @property
    def in_fault_model(self) -> bool:
        return self.kind != "washout"

    @property
    def name(self) -> str:
        value = f" {self.param}={self.strength:g}" if self.param else ""
        return f"{self.modality} {self.kind}{value}"

    def damage(self, image: np.ndarray, key: int) -> np.ndarray:
        """``image`` with this fault, the same damage for the same ``key``."""
        if not self.in_fault_model:
            return washout(image, self.strength, depth=self.modality == "depth")
        fault = Fault(self.modality, self.kind, 0.0, 1.0, {self.param: self.strength} if self.param else {})
        schedule = FaultSchedule([fault], seed=0)
        return schedule.apply(schedule, image, key)


def washout(image: np.ndarray, contrast: float, *, depth: bool) -> np.ndarray:
    """Contrast pulled towards the mean by ``contrast`` (a fogged lens, a thermal crossover);
    ``depth`` keeps its invalid pixels (0) invalid."""
    values = image.astype(np.float32)
    valid = values > 0 if depth else np.ones(values.shape[:2], bool)
    out = values.copy()
    mean = values[valid].mean(axis=0) if valid.any() else 0.0
    out[valid] = mean + (values[valid] - mean) * np.float32(contrast)
    if image.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(image.dtype)


def cases() -> list[Case]:
    return [Case(k, m, p, s) for (k, m), (p, values) in STRENGTHS.items() for s in values]


# --------------------------------------------------------------------------- (a) cost


class CostRig:
    """mIoU of the shipped model on a fixed set of scenes, healthy, damaged or with a modality masked."""

    def __init__(self, scenes: int) -> None:
        self.segmenter = Segmenter(OnnxRuntimeBackend(ONNX))
        generator = SceneGenerator(SIZE, TEST_SEED)
        self.samples: list[Sample] = [generator.sample(i, c) for c in CONDITIONS for i in range(scenes)]

    def miou(self, case: Case | None = None, *, masked: str | None = None) -> float:
        meter = SegmentationMeter()
        for key, sample in enumerate(self.samples):
            images = {m: getattr(sample, m) for m in MODALITIES if m != masked}
            if case is not None:
                images[case.modality] = case.damage(images[case.modality], key)
            out = self.segmenter.segment(**images)
            meter.update(
                torch.from_numpy(out.class_ids.astype(np.int64)),
                torch.from_numpy(sample.label.astype(np.int64)),
            )
        value = meter.miou()
        if value is None:
            raise RuntimeError("no pixel scored")
        return value


# --------------------------------------------------------------------------- (b, c) streams


def render(sequence: SequenceGenerator, start: int, stop: int) -> list[Sample]:
    return [frame.sample for frame in sequence.frames(start, stop, workers=2)]


def feed(
    monitor: HealthMonitor,
    frames: Iterable[Sample],
    modalities: tuple[str, ...],
    case: Case | None = None,
    *,
    first: int = 0,
    rate_hz: float = STREAM_HZ,
) -> Iterator[dict[str, Any]]:
    """Deliver ``frames`` at ``rate_hz`` (``case`` damaging its modality); their health per modality."""
    for index, sample in enumerate(frames, start=first):
        now = round(index * 1e9 / rate_hz)
        out = {}
        for modality in modalities:
            image = getattr(sample, modality)
            if case is not None and modality == case.modality:
                image = case.damage(image, index)
            out[modality] = monitor.observe(modality, image, stamp_ns=now, receive_ns=now)
        yield out


def detection(
    case: Case, streams: dict[str, list[Sample]], config: HealthConfig, warmup: int, faulted: int
) -> dict[str, Any]:
    """Fraction of faulted frames DEGRADED (and graded mild), over every condition's stream."""
    degraded = mild = total = 0
    reasons: dict[str, int] = {}
    for frames in streams.values():
        monitor = HealthMonitor(config)
        list(feed(monitor, frames[:warmup], (case.modality,)))
        for health in feed(monitor, frames[warmup : warmup + faulted], (case.modality,), case, first=warmup):
            h = health[case.modality]
            total += 1
            if h.state is not HealthState.OK:
                degraded += 1
                mild += h.grade is Grade.MILD
                for reason in h.reasons:
                    key = reason.split(":")[0].split(" ")[0]
                    reasons[key] = reasons.get(key, 0) + 1
    return {
        "detection_rate": round(degraded / total, 3),
        "mild_rate": round(mild / total, 3),
        "frames": total,
        "reasons": reasons,
    }


def false_alarms(
    monitor: HealthMonitor, frames: list[Sample], *, rate_hz: float = STREAM_HZ, skip: int = 2
) -> dict[str, Any]:
    """Fraction of frames after the first ``skip`` (start-up) on which each modality is not OK."""
    bad = dict.fromkeys(MODALITIES, 0)
    reasons: list[str] = []
    counted = 0
    for index, health in enumerate(feed(monitor, frames, MODALITIES, rate_hz=rate_hz)):
        if index < skip:
            continue
        counted += 1
        for modality, h in health.items():
            if h.state is not HealthState.OK:
                bad[modality] += 1
                reasons.extend(f"frame {index} {modality}: {r}" for r in h.reasons)
    return {
        "rates": {m: round(n / counted, 4) for m, n in bad.items()},
        "frames": counted,
        "reasons": reasons[:10],
    }


def signal_cost_ms(samples: list[Sample], config: HealthConfig) -> dict[str, float]:
    """Median time of ``check_frame`` (content checks and signals) per modality at SIZE."""
    out = {}
    for modality in MODALITIES:
        times = []
        for sample in samples:
            start = time.perf_counter()
            check_frame(modality, getattr(sample, modality), config)
            times.append(time.perf_counter() - start)
        out[modality] = round(1e3 * statistics.median(times), 3)
    return out


# --------------------------------------------------------------------------- the run


def policy_miou(row: dict[str, Any]) -> dict[str, float]:
    """Expected relative mIoU under each policy: detected frames masked (mask), or masked unless mild."""
    kept, masked = row["kept_relative"], row["masked_relative"]
    severe = row["detection_rate"] - row["mild_rate"]
    return {
        "mask": round(row["detection_rate"] * masked + (1 - row["detection_rate"]) * kept, 3),
        "keep_mild": round(severe * masked + (1 - severe) * kept, 3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = HealthConfig()  # the node's defaults
    started = time.perf_counter()
    sequence = SequenceGenerator(
        SIZE, TEST_SEED, rate_hz=STREAM_HZ, segment_s=STREAM_S, conditions=CONDITIONS
    )
    length = sequence.frame_count(STREAM_S)
    if args.warmup + args.faulted > length:
        raise SystemExit(f"--warmup + --faulted must be at most {length} frames")
    frames = render(sequence, 0, length * len(CONDITIONS))
    streams = {"+".join(c): frames[i * length : (i + 1) * length] for i, c in enumerate(CONDITIONS)}
    demo = SequenceGenerator(SIZE, TEST_SEED, rate_hz=DEMO_HZ)
    demo_frames = render(demo, 0, demo.frame_count(DEMO_S))
    print(
        f"rendered {len(frames) + len(demo_frames)} frames in {time.perf_counter() - started:.0f} s",
        flush=True,
    )

    quiet = {name: false_alarms(HealthMonitor(config), stream) for name, stream in streams.items()}
    cuts = false_alarms(HealthMonitor(config), frames)
    demo_cuts = false_alarms(HealthMonitor(config), demo_frames, rate_hz=DEMO_HZ)
    print(f"false alarms done at {time.perf_counter() - started:.0f} s", flush=True)

    rig = CostRig(args.scenes)
    healthy = rig.miou()
    masked = {m: rig.miou(masked=m) / healthy for m in MODALITIES}
    rows = []
    for case in cases():
        kept = rig.miou(case) / healthy
        row = {
            "fault": case.name,
            "kind": case.kind,
            "modality": case.modality,
            "param": case.param or None,
            "strength": case.strength,
            "in_fault_model": case.in_fault_model,
            "kept_relative": round(kept, 3),
            "masked_relative": round(masked[case.modality], 3),
            "cost": round(1 - kept, 3),
            "costly": 1 - kept > COSTLY,
            "keep_beats_mask": kept > masked[case.modality],
            **detection(case, streams, config, args.warmup, args.faulted),
        }
        flagged = row["detection_rate"] >= DETECTED
        row["agrees"] = flagged if row["costly"] else row["detection_rate"] <= QUIET
        row["policy"] = policy_miou(row)
        rows.append(row)
        print(
            f"{case.name:34s} kept {kept:.3f} masked {masked[case.modality]:.3f} "
            f"detected {row['detection_rate']:.2f} mild {row['mild_rate']:.2f} "
            f"{'ok' if row['agrees'] else 'DISAGREES'}",
            flush=True,
        )

    graded = [r for r in rows if r["mild_rate"] > 0]
    policy = {
        name: round(statistics.mean(r["policy"][name] for r in graded), 4) if graded else None
        for name in ("mask", "keep_mild")
    }
    alarms = [rate for q in quiet.values() for rate in q["rates"].values()]
    alarms += [*cuts["rates"].values(), *demo_cuts["rates"].values()]
    return {
        "environment": environment(("numpy", "onnxruntime", "torch")),
        "setup": {
            "size": list(SIZE),
            "seed": TEST_SEED,
            "stream_hz": STREAM_HZ,
            "stream_s": STREAM_S,
            "demo_hz": DEMO_HZ,
            "demo_s": DEMO_S,
            "scenes_per_condition": args.scenes,
            "conditions": ["+".join(c) for c in CONDITIONS],
            "warmup_frames": args.warmup,
            "faulted_frames": args.faulted,
            "backend": "onnxruntime",
            "costly_above": COSTLY,
            "detected_at": DETECTED,
            "quiet_at": QUIET,
        },
        "thresholds": {k: v for k, v in vars(config).items() if k != "expected_rate_hz"},
        "healthy_miou": round(healthy, 4),
        "masked_relative": {m: round(v, 3) for m, v in masked.items()},
        "faults": rows,
        "false_alarms": {"per_condition": quiet, "all_conditions_with_cuts": cuts, "demo": demo_cuts},
        "policy": {
            "expected_relative_miou_over_graded_faults": policy,
            "graded_faults": [r["fault"] for r in graded],
        },
        "check_frame_ms": signal_cost_ms(frames[:20], config),
        "summary": {
            "faults_agreeing": f"{sum(r['agrees'] for r in rows)}/{len(rows)}",
            "fault_model_agreeing": f"{sum(r['agrees'] for r in rows if r['in_fault_model'])}/"
            f"{sum(r['in_fault_model'] for r in rows)}",
            "disagreeing": [r["fault"] for r in rows if not r["agrees"]],
            "max_false_alarm_rate": max(alarms),
            "seconds": round(time.perf_counter() - started, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenes", type=int, default=3, help="scenes per condition for the mIoU cost (default 3)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="healthy frames before a fault (default 20)")
    parser.add_argument("--faulted", type=int, default=20, help="faulted frames per stream (default 20)")
    result = run(parser.parse_args())
    path = write_result("health_faults", result)
    print(result["summary"])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
