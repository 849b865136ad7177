"""Partial damage against each stream's own baseline, on moving-camera streams of the procedural world.

Every fault here is one of the fault model's, at a strength ``benchmarks/health_faults.py``
measured on the shipped model: those that cost more than 10 % mIoU are DEGRADED with their
measured value in the reason, the cheaper ones stay OK, and no healthy stream of any
condition (nor a cut between conditions) is flagged. Time is injected; nothing is timed.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from soak import soak_cycle

from unimrseg_core.data.conditions import LIGHTING
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.sequence import SequenceGenerator
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.faults import CONTENT_KINDS, Fault, FaultSchedule
from unimrseg_core.health import (
    Grade,
    HealthConfig,
    HealthConfigError,
    HealthMonitor,
    HealthState,
    ModalityHealth,
)
from unimrseg_core.health.signals import noise_sigma
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.pipeline import FramePipeline
from unimrseg_core.sync import SyncConfig

OK, DEGRADED = HealthState.OK, HealthState.DEGRADED
SIZE = (240, 320)  # the benchmark's: the thresholds are in sensor units per pixel at this size
RATE_HZ = 10.0
PERIOD_NS = 100_000_000
WARMUP = 12  # healthy frames before a fault: more than baseline_min_frames
FAULTED = 8
QUIET = 0.1
"""A fault that costs less than 10 % mIoU may be flagged on at most this fraction of its frames."""
CONDITIONS = (
    *((light,) for light in LIGHTING),
    *((light, "depth_holes") for light in LIGHTING),
    *((light, "thermal_washout") for light in LIGHTING if light != "night"),
)
DEMO_FAULTS = Path(__file__).resolve().parents[3] / "config" / "faults_demo.yaml"


@pytest.fixture(scope="module")
def streams() -> dict[str, list[Sample]]:
    """``WARMUP + FAULTED`` frames of a moving camera per condition, one segment each."""
    length = WARMUP + FAULTED
    sequence = SequenceGenerator(SIZE, 7, rate_hz=RATE_HZ, segment_s=length / RATE_HZ, conditions=CONDITIONS)
    frames = [sequence.frame(k).sample for k in range(length * len(CONDITIONS))]
    return {"+".join(c): frames[i * length : (i + 1) * length] for i, c in enumerate(CONDITIONS)}


def fault(modality: str, kind: str, **params: float) -> Callable[[np.ndarray, int], np.ndarray]:
    """The fault model's damage of ``kind`` to frame ``key``."""
    schedule = FaultSchedule([Fault(modality, kind, 0.0, 1.0, params)], seed=0)
    return lambda image, key: schedule.apply(schedule, image, key)


def run(
    monitor: HealthMonitor,
    modality: str,
    frames: Iterable[Sample],
    damage: Callable[[np.ndarray, int], np.ndarray] | None = None,
    *,
    first: int = 0,
) -> list[ModalityHealth]:
    """Deliver ``frames`` of ``modality`` at 10 Hz from frame ``first`` on, damaged if asked."""
    out = []
    for key, sample in enumerate(frames, start=first):
        image = getattr(sample, modality)
        if damage is not None:
            image = damage(image, key)
        out.append(monitor.observe(modality, image, stamp_ns=key * PERIOD_NS, receive_ns=key * PERIOD_NS))
    return out


def faulted(
    stream: list[Sample],
    modality: str,
    damage: Callable[[np.ndarray, int], np.ndarray],
    config: HealthConfig | None = None,
) -> list[ModalityHealth]:
    """A fresh monitor: the healthy warm-up, then the faulted frames; their health."""
    monitor = HealthMonitor(config)
    assert run(monitor, modality, stream[:WARMUP])[-1].state is OK
    return run(monitor, modality, stream[WARMUP:], damage, first=WARMUP)


# ---------------------------------------------------------------------------- quiet


def test_healthy_streams_of_every_condition_stay_ok(streams):
    for name, stream in streams.items():
        monitor = HealthMonitor()
        for modality in MODALITIES:
            healths = run(monitor, modality, stream)[2:]  # start-up: LOST, then recovering
            assert {h.state for h in healths} == {OK}, (name, modality, [h.reasons for h in healths])


def test_a_cut_between_any_two_conditions_is_a_new_scene_not_a_fault(streams):
    monitor = HealthMonitor()
    everything = [sample for stream in streams.values() for sample in stream]
    for modality in MODALITIES:
        healths = run(monitor, modality, everything)[2:]
        assert {h.state for h in healths} == {OK}, [h.reasons for h in healths if h.reasons][:3]


@pytest.mark.parametrize(
    ("modality", "kind", "params"),
    [
        ("rgb", "noise", {"sigma": 0.2}),
        ("depth", "noise", {"sigma": 0.2}),
        ("thermal", "noise", {"sigma": 0.01}),
        ("rgb", "saturate", {"fraction": 0.75}),
        ("depth", "saturate", {"fraction": 0.02}),
        ("thermal", "saturate", {"fraction": 0.25}),
        ("depth", "depth_holes", {"fraction": 0.2}),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_faults_that_cost_less_than_ten_percent_are_not_flagged(streams, modality, kind, params):
    """At most one frame in ten, the benchmark's bar: 20 % holes in blobs that happen to miss the
    sky and the glass lose up to 30 % of the valid pixels, as 30 % holes (10 % mIoU) lose at least."""
    healths = [
        h for stream in streams.values() for h in faulted(stream, modality, fault(modality, kind, **params))
    ]
    flagged = [h.reasons for h in healths if h.state is not OK]
    assert len(flagged) <= QUIET * len(healths), flagged


# ---------------------------------------------------------------------------- detected


@pytest.mark.parametrize(
    ("modality", "kind", "params", "reason"),
    [
        ("rgb", "noise", {"sigma": 0.5}, "noise "),
        ("thermal", "noise", {"sigma": 0.02}, "noise "),
        ("depth", "saturate", {"fraction": 0.1}, "saturated: "),
        ("thermal", "saturate", {"fraction": 0.5}, "saturated: "),
        ("depth", "depth_holes", {"fraction": 0.4}, "holes: "),
        ("depth", "depth_holes", {"fraction": 0.6}, "holes: "),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_faults_that_cost_more_than_ten_percent_are_degraded_at_once_with_their_value(
    streams, modality, kind, params, reason
):
    for name, stream in streams.items():
        healths = faulted(stream, modality, fault(modality, kind, **params))
        assert {h.state for h in healths} == {DEGRADED}, (name, [h.reasons for h in healths])
        assert all(any(r.startswith(reason) for r in h.reasons) for h in healths), healths[0].reasons


def washout(contrast: float) -> Callable[[np.ndarray, int], np.ndarray]:
    """Every temperature pulled towards the frame's mean (a thermal crossover coming on at once)."""

    def damage(image: np.ndarray, key: int) -> np.ndarray:
        mean = image.mean(dtype=np.float64)
        return (mean + (image - mean) * contrast).astype(image.dtype)

    return damage


def test_every_content_fault_of_the_soak_cycle_is_degraded_at_once(streams):
    """The soak (``benchmarks/soak.py``) demands that each of its faults is detected; its strengths
    must be ones the thresholds flag, which a change of threshold can silently break."""
    cycle = soak_cycle(RATE_HZ)
    content = [f for f in cycle if f.kind in CONTENT_KINDS]
    assert {f.modality for f in content if f.kind == "noise"} == set(MODALITIES)
    for f in content:
        for name, stream in streams.items():
            healths = faulted(stream, f.modality, fault(f.modality, f.kind, **f.params))
            assert healths[0].state is DEGRADED, (f.modality, f.kind, f.params, name, healths[0].reasons)


def test_a_thermal_washout_that_costs_is_flagged_and_a_cheap_one_is_not(streams):
    """To the shipped model 0.1 costs 15 % mIoU, 0.25 costs 9.7 % (benchmarks/health_faults.py). The
    natural crossover of the same strength is a new scene, not a fault (the cut test above)."""
    for name, stream in streams.items():
        healths = faulted(stream, "thermal", washout(0.1))
        assert {h.state for h in healths} == {DEGRADED}, (name, [h.reasons for h in healths])
        # a field this flat can also pass for a closed shutter: DEGRADED either way
        first = {h.reasons[0].split(":")[0] for h in healths}
        assert first <= {"washout", "blackout"}, first
        assert {h.state for h in faulted(stream, "thermal", washout(0.25))} == {OK}, name


def test_noise_reason_says_how_much_above_the_baseline(streams):
    healths = faulted(streams["fog"], "thermal", fault("thermal", "noise", sigma=0.03))
    (reason,) = healths[0].reasons
    measured, times, baseline = re.fullmatch(
        r"noise (\S+) K, (\S+)x baseline (\S+) K \(\+\S+ > \+1.1 K\)", reason
    ).groups()
    assert float(measured) == pytest.approx(3.0, rel=0.05)  # 3 K of noise: sigma 0.03 of the 100 K span
    assert float(baseline) == pytest.approx(0.06, rel=0.2)  # the camera's own noise (NETD 50 mK)
    assert float(times) == pytest.approx(float(measured) / float(baseline), rel=0.01)


def test_the_demo_thermal_noise_is_detected_within_its_window_and_masked():
    """config/faults_demo.yaml's thermal noise, on the demo bag's own frames (fog, 46-56 s)."""
    schedule = FaultSchedule.load(DEMO_FAULTS)
    (noise,) = [f for f in schedule if f.modality == "thermal" and f.kind == "noise"]
    sequence = SequenceGenerator(SIZE, TEST_SEED, rate_hz=RATE_HZ)  # what `bag make` renders
    monitor = HealthMonitor()
    states = []
    for index in range(460, 560):
        t_s = sequence.frame_time(index)
        image = schedule.apply(schedule.active("thermal", t_s), sequence.frame(index).sample.thermal, index)
        health = monitor.observe("thermal", image, stamp_ns=index * PERIOD_NS, receive_ns=index * PERIOD_NS)
        states.append((noise.active(t_s), health.state, health.grade, health.usable))
        if noise.active(t_s):
            assert health.reasons[0].startswith("noise "), health.reasons
    during = {(s, g, u) for active, s, g, u in states if active}
    assert during == {(DEGRADED, Grade.SEVERE, False)}
    end = max(i for i, (active, *_) in enumerate(states) if active)
    outside = [s for i, (active, s, *_) in enumerate(states) if not active and i >= 2 and i != end + 1]
    assert set(outside) == {OK}  # start-up takes 2 frames, recovery 2 good frames


def test_far_returns_beyond_the_range_are_not_saturation_but_pinned_values_are(streams):
    """A depth camera sees further as the robot turns to open ground: values beyond 20 m are
    returns; a clipped sensor pins them at exactly 20 m."""

    def far(value: float | None) -> Callable[[np.ndarray, int], np.ndarray]:
        def damage(image: np.ndarray, key: int) -> np.ndarray:
            out = image.copy()
            rows, cols = np.nonzero(out > 0)
            pick = np.random.default_rng(key).random(rows.size) < 0.1
            beyond = np.random.default_rng(key).uniform(20.5, 25.0, int(pick.sum()))
            out[rows[pick], cols[pick]] = beyond if value is None else value
            return out

        return damage

    assert {h.state for h in faulted(streams["day"], "depth", far(None))} == {OK}
    pinned = faulted(streams["day"], "depth", far(20.0))
    assert {h.state for h in pinned} == {DEGRADED}
    assert pinned[0].reasons[0].startswith("saturated: 1")


# ---------------------------------------------------------------------------- hysteresis


def holes(fraction: float) -> Callable[[np.ndarray, int], np.ndarray]:
    """Exactly ``fraction`` of the valid depth set to 0, the rows from the top first (no randomness)."""

    def damage(image: np.ndarray, key: int) -> np.ndarray:
        out = image.copy()
        rows, _ = np.nonzero(out > 0)
        out[: rows[int(fraction * (rows.size - 1))]] = 0.0
        return out

    return damage


def test_depth_loss_has_hysteresis_between_its_thresholds(streams):
    config = HealthConfig()
    enter, clear = config.max_depth_loss_fraction, config.max_depth_loss_fraction * config.clear_ratio
    between = (enter + clear) / 2
    stream = streams["day"]
    monitor = HealthMonitor(config)
    run(monitor, "depth", stream[:WARMUP])
    assert [h.state for h in run(monitor, "depth", stream[WARMUP:14], holes(between), first=WARMUP)] == [
        OK
    ] * 2
    assert run(monitor, "depth", stream[14:15], holes(enter + 0.1), first=14)[0].state is DEGRADED
    stays = run(monitor, "depth", stream[15:17], holes(between), first=15)
    assert [h.state for h in stays] == [DEGRADED] * 2
    assert stays[-1].reasons[0].startswith("holes: ")
    assert [h.state for h in run(monitor, "depth", stream[17:19], holes(clear / 3), first=17)] == [
        DEGRADED,
        OK,
    ]


# ---------------------------------------------------------------------------- grades and policy


@pytest.mark.parametrize(
    ("fraction", "grade"), [(0.4, Grade.MILD), (0.85, Grade.SEVERE)], ids=["mild", "severe"]
)
@pytest.mark.parametrize("policy", ["keep_mild", "mask"])
def test_depth_holes_are_graded_and_the_policy_decides_whether_mild_ones_are_kept(
    streams, fraction, grade, policy
):
    config = HealthConfig(degraded_policy=policy)
    healths = faulted(streams["night"], "depth", holes(fraction), config)
    assert {(h.state, h.grade) for h in healths} == {(DEGRADED, grade)}
    kept = grade is Grade.MILD and policy == "keep_mild"
    assert {h.usable for h in healths} == {kept}


def test_a_recovering_modality_keeps_its_grade_and_ok_has_none(streams):
    monitor = HealthMonitor()
    stream = streams["day"]
    run(monitor, "depth", stream[:WARMUP])
    assert run(monitor, "depth", stream[WARMUP:13], holes(0.45), first=WARMUP)[0].grade is Grade.MILD
    recovering, ok = run(monitor, "depth", stream[13:15], first=13)
    assert (recovering.state, recovering.grade, recovering.usable) == (DEGRADED, Grade.MILD, True)
    assert (ok.state, ok.grade, ok.usable) == (OK, Grade.NONE, True)


def test_a_lost_modality_is_severe_and_never_kept():
    health = HealthMonitor(HealthConfig(degraded_policy="keep_mild")).poll(0)["depth"]
    assert (health.state, health.grade, health.usable) == (HealthState.LOST, Grade.SEVERE, False)


def test_the_pipeline_keeps_a_mildly_damaged_depth_only_under_keep_mild(streams):
    stream = streams["day"]
    used = {}
    for policy in ("keep_mild", "mask"):
        pipeline: FramePipeline[int] = FramePipeline(HealthConfig(degraded_policy=policy), SyncConfig())
        frames = []
        for key, sample in enumerate(stream):
            t = key * PERIOD_NS
            for k, modality in enumerate(MODALITIES):
                image = getattr(sample, modality)
                if modality == "depth" and key >= WARMUP:
                    image = holes(0.45)(image, key)
                step = pipeline.receive_image(modality, image, key, stamp_ns=t, receive_ns=t + k)
                frames.extend(step.frames)
            frames.extend(pipeline.poll(t + PERIOD_NS // 2).frames)
        used[policy] = {f.used.name for f in frames if f.stamp_ns >= WARMUP * PERIOD_NS}
    assert used == {"keep_mild": {"rgb+depth+thermal"}, "mask": {"rgb+thermal"}}


# ---------------------------------------------------------------------------- parts


def test_noise_estimate_reads_white_noise_through_scene_edges_and_column_patterns():
    rng = np.random.default_rng(0)
    scene = np.where(np.arange(320) < 160, 280.0, 300.0)[None, :].repeat(240, axis=0)  # an edge
    columns = rng.normal(0.0, 0.5, (1, 320))  # fixed pattern: constant down each column
    image = (scene + columns + rng.normal(0.0, 0.2, (240, 320))).astype(np.float32)
    assert noise_sigma(image[:, ::4], "K") == pytest.approx(0.2, rel=0.05)
    assert noise_sigma(image[:2], "K") is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"severe_noise_k": 0.0}, "severe_noise_k"),
        ({"severe_depth_loss_fraction": 1.5}, "severe_depth_loss_fraction"),
        ({"baseline_min_frames": 60}, "baseline_min_frames"),  # more than baseline_frames
        ({"clear_ratio": 0.0}, "clear_ratio"),
        ({"min_noise_ratio": 0.9}, "min_noise_ratio"),
        ({"max_depth_saturated_rise": 0.0}, "max_depth_saturated_rise"),
        ({"min_rgb_contrast_ratio": 1.5}, "min_rgb_contrast_ratio"),
        ({"degraded_policy": "keep"}, "degraded_policy"),
        ({"degraded_policy": 1}, "degraded_policy"),
    ],
)
def test_config_refuses_inconsistent_baseline_thresholds_by_name(changes, field):
    """A severe threshold below its detection threshold is allowed (every detection is then
    severe, see the next test), so changing one parameter never invalidates another."""
    with pytest.raises(HealthConfigError, match=rf"HealthConfig\.{field}: ") as info:
        dataclasses.replace(HealthConfig(), **changes)
    assert info.value.field == field


def test_a_severe_threshold_below_detection_makes_every_detection_severe():
    config = HealthConfig(severe_noise_k=0.5, severe_depth_loss_fraction=0.2)
    assert config.noise_limits("thermal") == (config.max_noise_k, 0.5)
