"""The fault model: validation naming the field, YAML round trip, each kind's effect, determinism,
and the injector's timing (drop, freeze, rate_drop, delay, precedence)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from unimrseg_core.faults import (
    CONTENT_KINDS,
    KINDS,
    TIMING_KINDS,
    Fault,
    FaultError,
    FaultInjector,
    FaultSchedule,
)
from unimrseg_core.modalities import MODALITIES, NORMALIZATION

REPO_ROOT = Path(__file__).resolve().parents[3]
RNG = np.random.default_rng(0)
IMAGES = {
    "rgb": RNG.integers(20, 230, (48, 64, 3)).astype(np.uint8),
    "depth": np.where(RNG.random((48, 64)) < 0.2, 0.0, RNG.uniform(0.5, 15.0, (48, 64))).astype(np.float32),
    "thermal": RNG.uniform(280.0, 310.0, (48, 64)).astype(np.float32),
}


def _schedule(*faults: Fault, seed: int = 0) -> FaultSchedule:
    return FaultSchedule(faults, seed=seed)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ({"modality": "lidar", "kind": "drop", "start_s": 0, "end_s": 1}, "modality", "unknown modality"),
        ({"modality": "rgb", "kind": "blur", "start_s": 0, "end_s": 1}, "kind", "unknown kind"),
        ({"modality": "rgb", "kind": "depth_holes", "start_s": 0, "end_s": 1}, "kind", "applies to depth"),
        ({"modality": "rgb", "kind": "drop", "start_s": 2, "end_s": 2}, "end_s", "must be > start_s"),
        ({"modality": "rgb", "kind": "drop", "start_s": -1, "end_s": 2}, "start_s", ">= 0"),
        ({"modality": "rgb", "kind": "drop", "start_s": "soon", "end_s": 2}, "start_s", "finite number"),
        ({"modality": "rgb", "kind": "drop", "start_s": 0}, "end_s", "missing"),
        ({"modality": "rgb", "kind": "noise", "start_s": 0, "end_s": 1}, "sigma", "missing"),
        ({"modality": "rgb", "kind": "noise", "start_s": 0, "end_s": 1, "sigma": 0}, "sigma", "> 0"),
        ({"modality": "rgb", "kind": "noise", "start_s": 0, "end_s": 1, "sigma": True}, "sigma", "finite"),
        ({"modality": "rgb", "kind": "rate_drop", "start_s": 0, "end_s": 1, "rate_hz": -2}, "rate_hz", "> 0"),
        ({"modality": "rgb", "kind": "delay", "start_s": 0, "end_s": 1}, "delay_s", "missing"),
        ({"modality": "rgb", "kind": "drop", "start_s": 0, "end_s": 1, "rate_hz": 2}, "rate_hz", "unknown"),
        (
            {"modality": "rgb", "kind": "blackout", "start_s": 0, "end_s": 1, "value_k": 290},
            "value_k",
            "thermal",
        ),
        (
            {"modality": "depth", "kind": "freeze", "start_s": 0, "end_s": 1, "restamp": 1},
            "restamp",
            "true or",
        ),
    ],
)
def test_bad_fault_names_the_field(entry, field, words):
    with pytest.raises(FaultError, match=words) as info:
        Fault.from_dict(entry)
    assert info.value.field == field


def test_yaml_errors_name_the_file_and_entry(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("faults:\n  - {modality: rgb, kind: drop, start_s: 0, end_s: 1}\n  - {modality: rgb}\n")
    with pytest.raises(FaultError) as info:
        FaultSchedule.load(path)
    assert str(info.value).startswith(f"{path}: faults[1].kind: missing")
    for text, words in [
        ("fault: []", "fault: unknown key"),
        ("faults: {a: 1}", "faults: must be a list"),
        ("faults: [", "not valid YAML"),
        ("[1, 2]", "expected a mapping"),
        ("seed: -3", "seed: must be an integer"),
    ]:
        path.write_text(text)
        with pytest.raises(FaultError, match=words):
            FaultSchedule.load(path)


def test_the_same_kind_may_not_overlap_on_one_modality():
    a = Fault("rgb", "drop", 0, 2)
    with pytest.raises(FaultError, match=r"faults\[1\].*overlaps faults\[0\]"):
        _schedule(a, Fault("rgb", "drop", 1, 3))
    _schedule(
        a,
        Fault("rgb", "drop", 2, 3),
        Fault("depth", "drop", 1, 3),
        Fault("rgb", "noise", 1, 3, {"sigma": 0.1}),
    )


def test_kinds_table_is_complete():
    assert set(TIMING_KINDS) | set(CONTENT_KINDS) == set(KINDS)
    assert set(KINDS) == {
        "drop",
        "freeze",
        "blackout",
        "saturate",
        "noise",
        "depth_holes",
        "rate_drop",
        "delay",
    }


# ------------------------------------------------------------------ YAML and queries


def test_yaml_round_trip(tmp_path):
    schedule = _schedule(
        Fault("thermal", "drop", 10, 18),
        Fault("depth", "freeze", 22, 28, {"restamp": True}),
        Fault("thermal", "blackout", 30, 31, {"value_k": 300.5}),
        Fault("rgb", "rate_drop", 1.5, 2.25, {"rate_hz": 2}),
        seed=4,
    )
    assert FaultSchedule.load(schedule.save(tmp_path / "s.yaml")) == schedule
    assert FaultSchedule.from_yaml(schedule.to_yaml()).to_dict() == schedule.to_dict()
    assert schedule[1].params == {"restamp": True}
    assert schedule[0].params == {}  # defaults of other modalities are not filled in
    assert FaultSchedule.from_yaml("faults: []") == FaultSchedule.from_yaml("") == FaultSchedule()
    assert FaultSchedule().to_yaml() == "seed: 0\nfaults: []\n"


def test_demo_schedule_covers_drop_freeze_blackout_with_gaps():
    schedule = FaultSchedule.load(REPO_ROOT / "config" / "faults_demo.yaml")
    assert {"drop", "freeze", "blackout"} <= {f.kind for f in schedule}
    windows = sorted((f.start_s, f.end_s) for f in schedule)
    assert windows[0][0] >= 5.0  # a healthy start
    assert all(b[0] - a[1] >= 2.0 for a, b in itertools.pairwise(windows))
    assert schedule.end_s <= 60.0
    assert all(not (f.start_s < boundary < f.end_s) for f in schedule for boundary in (20.0, 40.0))


def test_active_and_events():
    drop, noise = Fault("thermal", "drop", 1, 2), Fault("thermal", "noise", 2, 3, {"sigma": 0.1})
    schedule = _schedule(noise, drop)
    assert schedule.active("thermal", 0.99) == ()
    assert schedule.active("thermal", 1.0) == (drop,)
    assert schedule.active("thermal", 2.0) == (noise,)  # [start, end)
    assert schedule.active("rgb", 1.5) == ()
    events = [(e.t_s, e.event, e.fault.kind) for e in schedule.events()]
    assert events == [(1, "start", "drop"), (2, "end", "drop"), (2, "start", "noise"), (3, "end", "noise")]
    assert len(schedule.events(until_s=2.5)) == 3


# ------------------------------------------------------------------ content effects


def _apply(modality: str, kind: str, key: int = 7, **params) -> np.ndarray:
    fault = Fault(modality, kind, 0, 1, params)
    return _schedule(fault).apply([fault], IMAGES[modality], key=key)


def test_blackout():
    assert not _apply("rgb", "blackout").any()
    assert not _apply("depth", "blackout").any()
    flat = _apply("thermal", "blackout", value_k=295.0)
    assert flat.dtype == np.float32
    np.testing.assert_array_equal(flat, 295.0)


@pytest.mark.parametrize("modality", MODALITIES)
def test_saturate(modality):
    top = NORMALIZATION[modality].high
    assert np.all(_apply(modality, "saturate") == top)
    part = _apply(modality, "saturate", fraction=0.3)
    hit = np.all(part == top, axis=-1) if modality == "rgb" else part == top
    assert 0.25 < hit.mean() < 0.35


@pytest.mark.parametrize("modality", MODALITIES)
def test_noise_sigma_is_relative_to_the_normalisation_span(modality):
    norm = NORMALIZATION[modality]
    out = _apply(modality, "noise", sigma=0.02)
    image = IMAGES[modality]
    assert out.dtype == image.dtype
    assert out.shape == image.shape
    diff = out.astype(np.float64) - image
    if modality == "depth":
        assert not out[image == 0].any()  # no return stays no return
        diff = diff[image > 0]
    assert diff.std() == pytest.approx(0.02 * (norm.high - norm.low), rel=0.1)


def test_depth_holes():
    out = _apply("depth", "depth_holes", fraction=0.6)
    valid = IMAGES["depth"] > 0
    assert 0.5 < (out[valid] == 0).mean() < 0.7  # blobs: 60 % of the image, about as much of the valid part
    kept = out > 0
    np.testing.assert_array_equal(out[kept], IMAGES["depth"][kept])


def test_damage_is_deterministic_per_frame_and_leaves_the_input_alone():
    before = IMAGES["depth"].copy()
    a, b = _apply("depth", "depth_holes", key=5), _apply("depth", "depth_holes", key=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _apply("depth", "depth_holes", key=6))
    np.testing.assert_array_equal(IMAGES["depth"], before)
    fault = Fault("depth", "noise", 0, 1, {"sigma": 0.1})
    other_seed = _schedule(fault, seed=1).apply([fault], before, key=5)
    assert not np.array_equal(other_seed, _schedule(fault).apply([fault], before, key=5))


def test_apply_skips_timing_faults():
    faults = [
        Fault("rgb", kind, 0, 1, {"rate_hz": 1} if kind == "rate_drop" else {})
        for kind in ("drop", "rate_drop")
    ]
    assert _schedule(*faults).apply(faults, IMAGES["rgb"], key=1) is IMAGES["rgb"]


# ------------------------------------------------------------------ injector timing


def _run(schedule: FaultSchedule, modality: str = "rgb", frames: int = 30, rate_hz: float = 10.0):
    """Feed frames 0..n-1 (payload = index, stamp = index * 100 ms); return (index, Delivery|None)."""
    injector: FaultInjector[int] = FaultInjector(schedule)
    return [(k, injector.process(modality, k / rate_hz, k * 100_000_000, k)) for k in range(frames)]


def test_drop_sends_nothing_in_its_window():
    out = _run(_schedule(Fault("rgb", "drop", 1.0, 2.0)))
    assert [k for k, d in out if d is None] == list(range(10, 20))
    assert all(d.payload == k and d.stamp_ns == k * 100_000_000 and d.delay_s == 0 for k, d in out if d)


def test_freeze_resends_the_last_message_with_its_stamp():
    out = dict(_run(_schedule(Fault("rgb", "freeze", 1.0, 2.0))))
    for k in range(10, 20):
        assert out[k].payload == 9
        assert out[k].stamp_ns == 900_000_000
        assert out[k].frozen
    assert out[20].payload == 20
    assert not out[20].frozen
    restamped = dict(_run(_schedule(Fault("rgb", "freeze", 1.0, 2.0, {"restamp": True}))))
    assert restamped[15].payload == 9
    assert restamped[15].stamp_ns == 1_500_000_000
    assert all(d is None for k, d in _run(_schedule(Fault("rgb", "freeze", 0.0, 1.0)), frames=10))


def test_rate_drop_keeps_the_first_frame_of_each_interval():
    out = _run(_schedule(Fault("rgb", "rate_drop", 1.0, 2.0, {"rate_hz": 2.5})))
    sent = [k for k, d in out if d is not None and 10 <= k < 20]
    assert sent == [10, 14, 18]  # slots of 0.4 s
    assert len([d for _, d in out if d]) == 30 - 7


def test_delay_keeps_stamps_and_order():
    out = dict(_run(_schedule(Fault("rgb", "delay", 1.0, 2.0, {"delay_s": 0.35}))))
    assert out[12].stamp_ns == 1_200_000_000
    assert out[12].delay_s == pytest.approx(0.35)
    release = [k / 10 + out[k].delay_s for k in range(30)]
    assert release == sorted(release)  # the messages queued when the delay ends go first
    assert out[20].delay_s == pytest.approx(0.25)  # after frame 19's release at 2.25 s
    assert out[25].delay_s == 0


def test_content_faults_come_back_and_drop_wins():
    noise = Fault("rgb", "noise", 0, 3, {"sigma": 0.1})
    out = dict(_run(_schedule(noise, Fault("rgb", "drop", 1.0, 2.0), Fault("rgb", "freeze", 1.5, 2.5))))
    assert out[5].content == (noise,)
    assert out[15] is None  # drop beats freeze
    assert out[22].frozen
    assert out[22].payload == 9
    assert out[22].content == ()
    with pytest.raises(ValueError, match="unknown modality"):
        FaultInjector(FaultSchedule()).process("lidar", 0.0, 0, None)
