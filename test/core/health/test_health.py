"""The sensor-health monitor on synthetic 10 Hz streams: each fault is detected, and cleared,
within 3 expected periods, and no input, however malformed, makes it raise.

Time is injected, so a stream here is a loop over nanosecond integers; a poll every
fifth of a period stands in for the node's timer.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from unimrseg_core.data.conditions import LIGHTING
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.health import (
    NO_MESSAGE,
    HealthConfig,
    HealthConfigError,
    HealthMonitor,
    HealthState,
    ModalityHealth,
    Transition,
)
from unimrseg_core.health.checks import check_frame
from unimrseg_core.modalities import MODALITIES

OK, DEGRADED, LOST = HealthState.OK, HealthState.DEGRADED, HealthState.LOST
PERIOD_NS = 100_000_000  # 10 Hz
TARGET_NS = 3 * PERIOD_NS  # detection and recovery target: 3 expected periods
SIZE = (96, 128)


def texture(modality: str, rng: np.random.Generator, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A fresh, healthy-looking frame in sensor units (every call differs, as real sensor noise does)."""
    if modality == "rgb":
        return rng.integers(30, 220, (*size, 3), dtype=np.uint8)
    if modality == "depth":
        depth = rng.uniform(0.5, 15.0, size).astype(np.float32)
        depth[rng.random(size) < 0.2] = 0.0  # some no-returns, as outdoors
        return depth
    return (290.0 + 8.0 * rng.standard_normal(size)).astype(np.float32)


class Feed:
    """One modality's frames delivered to a monitor every ``period_ns``, polled in between."""

    def __init__(self, monitor: HealthMonitor, modality: str, *, period_ns: int = PERIOD_NS, seed: int = 0):
        self.monitor = monitor
        self.modality = modality
        self.period_ns = period_ns
        self.rng = np.random.default_rng(seed)
        self.now_ns = 0

    def frame(
        self, image: np.ndarray | None = None, *, stamp_ns: int | None = None, encoding: str | None = None
    ) -> ModalityHealth:
        """Deliver one frame now (fresh texture and stamp = now unless given), then wait one period."""
        health = self.monitor.observe(
            self.modality,
            texture(self.modality, self.rng) if image is None else image,
            stamp_ns=self.now_ns if stamp_ns is None else stamp_ns,
            receive_ns=self.now_ns,
            encoding=encoding,
        )
        self.wait(1)
        return health

    def frames(
        self, count: int, make: Callable[[], np.ndarray] | None = None, **kwargs
    ) -> list[ModalityHealth]:
        return [self.frame(None if make is None else make(), **kwargs) for _ in range(count)]

    def wait(self, periods: float) -> None:
        """Advance time with no frame, polling five times per period like the node's timer."""
        end = self.now_ns + round(periods * self.period_ns)
        while self.now_ns < end:
            self.now_ns = min(self.now_ns + self.period_ns // 5, end)
            self.monitor.poll(self.now_ns)


def delay(monitor: HealthMonitor, modality: str, state: HealthState, since_ns: int) -> int:
    """Time from ``since_ns`` to the modality's first transition into ``state`` at or after it."""
    for t in monitor.transitions:
        if t.modality == modality and t.new is state and t.time_ns >= since_ns:
            return t.time_ns - since_ns
    pytest.fail(f"{modality} never became {state} after {since_ns} ns: {monitor.transitions}")


def warm(modality: str, config: HealthConfig | None = None) -> Feed:
    """A monitor whose ``modality`` has run healthy long enough to learn its rate."""
    feed = Feed(HealthMonitor(config), modality)
    healths = feed.frames(10)
    assert healths[-1].state is OK
    assert feed.monitor.expected_period_ns(modality) == pytest.approx(PERIOD_NS)
    return feed


# ---------------------------------------------------------------------------- healthy


def test_a_modality_never_seen_is_lost_with_a_reason():
    monitor = HealthMonitor()
    health = monitor.poll(0)
    assert list(health) == list(MODALITIES)
    for h in health.values():
        assert (h.state, h.reasons, h.since_ns, h.messages, h.rate_hz) == (LOST, (NO_MESSAGE,), None, 0, None)
    assert monitor.usable(10**12) == ()


def test_healthy_streams_stay_ok_and_are_usable_in_modality_order():
    monitor = HealthMonitor()
    rng = np.random.default_rng(1)
    for i in range(60):
        now = i * PERIOD_NS
        for modality in reversed(MODALITIES):  # arrival order must not matter
            monitor.observe(modality, texture(modality, rng), stamp_ns=now - 5_000_000, receive_ns=now)
        monitor.poll(now + PERIOD_NS // 2)
    assert monitor.usable(59 * PERIOD_NS + PERIOD_NS // 2) == MODALITIES
    for modality in MODALITIES:  # start-up only: LOST (no message) -> DEGRADED (first frame) -> OK (second)
        changes = [(t.old, t.new, t.time_ns) for t in monitor.transitions if t.modality == modality]
        assert changes == [(LOST, DEGRADED, 0), (DEGRADED, OK, PERIOD_NS)]
    health = monitor.poll(59 * PERIOD_NS)["depth"]
    assert (health.messages, health.last_stamp_ns) == (60, 59 * PERIOD_NS - 5_000_000)
    assert health.rate_hz == pytest.approx(10.0)
    assert health.summary == "OK"


@pytest.mark.parametrize(
    "conditions", [[light, *faults] for light in LIGHTING for faults in ([], ["depth_holes"])]
)
def test_every_generator_condition_passes_the_content_checks(conditions):
    """Night, fog, glare, depth holes and thermal washout are hard scenes, not sensor faults."""
    generator = SceneGenerator(SIZE, seed=7)
    config = HealthConfig()
    extra = [] if conditions[0] == "night" else [["thermal_washout"]]
    for index, more in itertools.product(range(3), [[], *extra]):
        sample = generator.sample(index, [*conditions, *more])
        for modality in MODALITIES:
            assert check_frame(modality, getattr(sample, modality), config).reasons == ()


# ----------------------------------------------------------------------------- drop


@pytest.mark.parametrize("modality", MODALITIES)
def test_drop_is_lost_within_three_periods_and_recovers_within_three(modality):
    feed = warm(modality)
    last_frame_ns = feed.now_ns - PERIOD_NS
    feed.wait(10)
    assert delay(feed.monitor, modality, LOST, last_frame_ns) <= TARGET_NS
    lost = feed.monitor.poll(feed.now_ns)[modality]
    assert lost.reasons == ("silent for 1.10 s (expected period 0.10 s, learned)",)
    assert feed.monitor.usable(feed.now_ns) == ()

    resumed_ns = feed.now_ns
    assert [h.state for h in feed.frames(3)] == [DEGRADED, OK, OK]
    assert delay(feed.monitor, modality, OK, resumed_ns) <= TARGET_NS


def test_one_missing_frame_and_jitter_are_not_silence():
    monitor = HealthMonitor()
    rng = np.random.default_rng(3)
    now = 0
    for i in range(200):
        if i % 17 != 5:  # a frame lost now and then
            monitor.observe("rgb", texture("rgb", rng), stamp_ns=now, receive_ns=now)
        step = round(PERIOD_NS * rng.uniform(0.8, 1.2))
        for k in range(1, 6):
            monitor.poll(now + step * k // 5)
        now += step
    assert [t.new for t in monitor.transitions] == [DEGRADED, OK]


def test_silence_is_applied_by_observe_when_nobody_polled():
    monitor = HealthMonitor(HealthConfig(expected_rate_hz={"thermal": 10.0}))
    rng = np.random.default_rng(4)
    for i in [0, 1, 2, 3, 9]:
        health = monitor.observe(
            "thermal", texture("thermal", rng), stamp_ns=i * PERIOD_NS, receive_ns=i * PERIOD_NS
        )
    assert health.state is DEGRADED
    assert health.reasons == ("recovering: 1 of 2 good frames",)
    lost = [t for t in monitor.transitions if t.new is LOST]
    assert lost == [
        Transition(
            "thermal", 9 * PERIOD_NS, OK, LOST, "silent for 0.60 s (expected period 0.10 s, configured)"
        )
    ]


# ---------------------------------------------------------------------------- frozen


@pytest.mark.parametrize("modality", MODALITIES)
def test_identical_content_is_frozen_within_three_periods(modality):
    feed = warm(modality)
    still = texture(modality, feed.rng)
    frozen_since_ns = feed.now_ns  # this frame is fine; the ones repeating it are the fault
    states = [h.state for h in feed.frames(6, lambda: still)]
    assert states == [OK, OK, DEGRADED, DEGRADED, DEGRADED, DEGRADED]
    assert delay(feed.monitor, modality, DEGRADED, frozen_since_ns) <= TARGET_NS
    assert feed.monitor.poll(feed.now_ns)[modality].reasons == ("frozen: 6 identical frames",)

    thawed_ns = feed.now_ns
    assert [h.state for h in feed.frames(2)] == [DEGRADED, OK]
    assert delay(feed.monitor, modality, OK, thawed_ns) <= TARGET_NS


def test_repeated_stamp_is_frozen_even_with_new_content():
    feed = warm("rgb")
    stamp = feed.now_ns
    frozen_since_ns = feed.now_ns
    healths = feed.frames(4, stamp_ns=stamp)
    assert [h.state for h in healths] == [OK, OK, DEGRADED, DEGRADED]
    assert healths[-1].reasons == ("frozen: same stamp in 4 frames",)
    assert delay(feed.monitor, "rgb", DEGRADED, frozen_since_ns) <= TARGET_NS
    thawed_ns = feed.now_ns
    feed.frames(2)
    assert delay(feed.monitor, "rgb", OK, thawed_ns) <= TARGET_NS


def test_a_duplicated_message_is_tolerated_but_says_so_when_frozen():
    feed = warm("depth")
    image = texture("depth", feed.rng)
    assert feed.frame(image, stamp_ns=feed.now_ns).state is OK
    assert feed.frame(image, stamp_ns=feed.now_ns - PERIOD_NS).state is OK  # the same message again
    assert feed.frame().state is OK
    frozen = feed.frames(3, lambda: image, stamp_ns=0)
    assert frozen[-1].reasons[0] == "frozen: 3 identical frames with the same stamp"


# ---------------------------------------------------------------------------- content


def _mostly(value: float, fraction: float, modality: str) -> Callable[[np.random.Generator], np.ndarray]:
    def make(rng: np.random.Generator) -> np.ndarray:
        image = texture(modality, rng)
        image[rng.random(SIZE) < fraction] = value
        return image

    return make


def _noisy(value: float, sigma: float) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: (value + sigma * rng.standard_normal(SIZE)).astype(np.float32)


CONTENT_FAULTS = {
    "rgb blackout": ("rgb", lambda rng: rng.integers(0, 4, (*SIZE, 3), dtype=np.uint8), "blackout: mean "),
    "rgb saturated": ("rgb", _mostly(255, 0.95, "rgb"), "saturated: 9"),
    "rgb flat": ("rgb", lambda rng: np.full((*SIZE, 3), 128, np.uint8), "flat: std 0.00 levels < 2"),
    "depth blackout": ("depth", lambda rng: np.zeros(SIZE, np.float32), "blackout: no valid depth"),
    "depth nan blackout": (
        "depth",
        lambda rng: np.full(SIZE, np.nan, np.float32),
        "blackout: no valid depth",
    ),
    "depth holes": ("depth", _mostly(0.0, 0.95, "depth"), "holes: 9"),
    "depth inf holes": ("depth", _mostly(np.inf, 0.95, "depth"), "holes: 9"),
    "depth flat": ("depth", lambda rng: np.full(SIZE, 3.0, np.float32), "flat: std 0.0000 m"),
    "depth saturated": ("depth", _noisy(25.0, 1.0), "saturated: 100% of valid pixels at or beyond 20 m"),
    "thermal flat field": ("thermal", _noisy(295.0, 0.02), "blackout: flat field"),
    "thermal nan": ("thermal", _mostly(np.nan, 0.25, "thermal"), "nan: 2"),
    "thermal inf": ("thermal", _mostly(-np.inf, 0.25, "thermal"), "nan: 2"),
    "thermal all nan": (
        "thermal",
        lambda rng: np.full(SIZE, np.nan, np.float32),
        "blackout: no finite pixels",
    ),
    "thermal saturated": ("thermal", _noisy(360.0, 3.0), "saturated: 100% of pixels at or above 340 K"),
}


@pytest.mark.parametrize("fault", CONTENT_FAULTS)
def test_content_fault_is_degraded_at_once_and_clears_within_three_periods(fault):
    modality, make, reason = CONTENT_FAULTS[fault]
    feed = warm(modality)
    start_ns = feed.now_ns
    healths = feed.frames(3, lambda: make(feed.rng))
    assert [h.state for h in healths] == [DEGRADED] * 3
    assert any(r.startswith(reason) for r in healths[0].reasons), healths[0].reasons
    assert delay(feed.monitor, modality, DEGRADED, start_ns) == 0
    assert feed.monitor.usable(feed.now_ns) == ()

    cleared_ns = feed.now_ns
    assert [h.state for h in feed.frames(2)] == [DEGRADED, OK]
    assert delay(feed.monitor, modality, OK, cleared_ns) <= TARGET_NS


@pytest.mark.parametrize(
    ("modality", "make"),
    [("depth", _mostly(0.0, 0.2, "depth")), ("thermal", _mostly(np.nan, 0.01, "thermal"))],
    ids=["depth a fifth more invalid", "thermal few nan"],
)
def test_tolerable_invalid_pixels_stay_ok(modality, make):
    feed = warm(modality)
    assert {h.state for h in feed.frames(5, lambda: make(feed.rng))} == {OK}


def test_size_change_is_degraded_until_the_new_size_is_stable():
    feed = warm("rgb")
    small = feed.frames(3, lambda: texture("rgb", feed.rng, (48, 64)))
    assert [h.state for h in small] == [DEGRADED, DEGRADED, OK]
    assert small[0].reasons == ("size changed: 96x128x3 -> 48x64x3",)


def test_encoding_change_is_degraded_until_stable():
    feed = warm("depth")
    feed.frames(2, encoding="32FC1")
    changed = feed.frames(3, encoding="16UC1")
    assert [h.state for h in changed] == [DEGRADED, DEGRADED, OK]
    assert changed[0].reasons == ("encoding changed: 32FC1 -> 16UC1",)
    assert feed.frame().state is OK  # an unknown encoding is no change


def test_stamp_going_back_is_a_bad_frame_and_the_new_timeline_recovers():
    feed = warm("thermal")
    base = feed.now_ns
    back = feed.frame(stamp_ns=base - 500_000_000)
    assert (back.state, back.reasons) == (DEGRADED, ("stamp went back 0.40 s",))
    assert [feed.frame(stamp_ns=base - 400_000_000 + i * PERIOD_NS).state for i in range(2)] == [DEGRADED, OK]


# ------------------------------------------------------------------------ hysteresis


def test_one_bad_frame_masks_it_and_the_next_one():
    """Default fault_frames=1, recover_frames=2: the bad frame and the first good one are not used."""
    feed = warm("rgb")
    dark = np.zeros((*SIZE, 3), np.uint8)
    states = [feed.frame(dark).state, *(h.state for h in feed.frames(3))]
    assert states == [DEGRADED, DEGRADED, OK, OK]
    assert [t.new for t in feed.monitor.transitions][-2:] == [DEGRADED, OK]
    assert feed.monitor.transitions[-1].reason == "recovered: 2 good frames"


def test_fault_frames_two_ignores_a_single_bad_frame_but_reports_it():
    feed = warm("rgb", HealthConfig(fault_frames=2, recover_frames=3))
    dark = np.zeros((*SIZE, 3), np.uint8)
    single = feed.frame(dark)
    assert (single.state, single.reasons) == (OK, ("blackout: mean 0.0 levels < 8",))
    assert feed.frame().reasons == ()
    assert [feed.frame(dark).state, feed.frame(dark).state] == [OK, DEGRADED]
    assert [h.state for h in feed.frames(3)] == [DEGRADED, DEGRADED, OK]


# ------------------------------------------------------------------------------ rate


def test_rate_is_learned_from_receive_times_and_sets_the_silence_limit():
    feed = Feed(HealthMonitor(), "depth", period_ns=33_333_333)
    healths = feed.frames(12)
    assert [h.rate_hz is None for h in healths[:6]] == [True] * 5 + [False]
    assert healths[-1].rate_hz == pytest.approx(30.0)
    last_frame_ns = feed.now_ns - feed.period_ns
    feed.wait(5)
    assert delay(feed.monitor, "depth", LOST, last_frame_ns) <= 3 * feed.period_ns


def test_default_rate_keeps_a_slow_sensor_ok_while_learning():
    feed = Feed(HealthMonitor(), "thermal", period_ns=500_000_000)  # 2 Hz, slower than a 10 Hz guess
    feed.frames(20)
    assert [t.new for t in feed.monitor.transitions] == [DEGRADED, OK]
    assert feed.monitor.expected_period_ns("thermal") == pytest.approx(5e8)


def test_learned_period_shrugs_off_a_long_gap():
    feed = warm("rgb")
    feed.wait(30)
    feed.frames(3)
    assert feed.monitor.expected_period_ns("rgb") == pytest.approx(PERIOD_NS)


def test_configured_rate_is_used_before_any_learning():
    feed = Feed(HealthMonitor(HealthConfig(expected_rate_hz={"rgb": 10.0})), "rgb")
    feed.frames(2)
    feed.wait(4)
    lost = feed.monitor.poll(feed.now_ns)["rgb"]
    assert lost.state is LOST
    assert lost.reasons == ("silent for 0.50 s (expected period 0.10 s, configured)",)


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (np.zeros(SIZE, np.uint8), "bad format: expected 3-D uint8 with 3 channels, got 2-D uint8 96x128"),
        (
            np.zeros((*SIZE, 4), np.uint8),
            "bad format: expected 3-D uint8 with 3 channels, got 3-D uint8 96x128x4",
        ),
        (np.zeros((*SIZE, 3), np.float32), "bad format: expected 3-D uint8 with 3 channels, got 3-D float32"),
        (np.zeros((0, 128, 3), np.uint8), "empty image: 0x128x3"),
        (np.array(7, np.uint8), "bad format: expected 3-D uint8 with 3 channels, got 0-D uint8 scalar"),
        ([[1, 2, 3]], "not an image array: list"),
        (None, "not an image array: NoneType"),
    ],
)
def test_malformed_image_is_a_bad_frame_not_an_exception(image, reason):
    feed = warm("rgb")
    health = feed.monitor.observe("rgb", image, stamp_ns=feed.now_ns, receive_ns=feed.now_ns)
    assert health.state is DEGRADED
    assert health.reasons[-1].startswith(reason), health.reasons


def test_unknown_modality_is_a_programming_error():
    monitor = HealthMonitor()
    with pytest.raises(ValueError, match="unknown modality 'lidar'; valid: rgb, depth, thermal"):
        monitor.observe("lidar", np.zeros((4, 4), np.float32), stamp_ns=0, receive_ns=0)
    with pytest.raises(ValueError, match="unknown modality"):
        monitor.expected_period_ns("ir")


# ---------------------------------------------------------------------- transitions


def test_transitions_are_kept_bounded_and_popped_once():
    feed = Feed(HealthMonitor(HealthConfig(max_transitions=3, expected_rate_hz={"rgb": 10.0})), "rgb")
    for _ in range(3):
        feed.frames(2)
        feed.wait(4)
    assert len(feed.monitor.transitions) == 3
    popped = feed.monitor.pop_transitions()
    assert [(t.old, t.new) for t in popped] == [(LOST, DEGRADED), (DEGRADED, OK), (OK, LOST)]
    assert feed.monitor.transitions == ()
    assert feed.monitor.poll(feed.now_ns)["rgb"].since_ns == popped[-1].time_ns


# --------------------------------------------------------------------------- config


def test_default_config_is_valid_and_validate_returns_it():
    config = HealthConfig()
    assert config.validate() is config
    assert dict(config.expected_rate_hz) == dict.fromkeys(MODALITIES)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expected_rate_hz", {"lidar": 10.0}),
        ("expected_rate_hz", {"rgb": 0.0}),
        ("expected_rate_hz", {"depth": math.inf}),
        ("expected_rate_hz", [10.0]),
        ("default_rate_hz", 0.0),
        ("min_rate_samples", 0),
        ("rate_window", 4),  # fewer than min_rate_samples
        ("silence_periods", 1.0),
        ("silence_periods", math.nan),
        ("fault_frames", 0),
        ("frozen_frames", 1),
        ("recover_frames", 1.5),
        ("check_stride", True),
        ("dark_mean_level", 256.0),
        ("min_std_level", -1.0),
        ("saturated_fraction", 0.0),
        ("min_std_m", "0.001"),
        ("max_invalid_depth_fraction", 1.5),
        ("min_std_k", -0.1),
        ("max_nonfinite_fraction", -0.01),
        ("max_transitions", 0),
    ],
)
def test_config_rejects_a_bad_field_by_name(field, value):
    with pytest.raises(HealthConfigError, match=rf"HealthConfig\.{field}: ") as info:
        HealthConfig(**{field: value})
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    with pytest.raises(HealthConfigError):
        dataclasses.replace(HealthConfig(), **{field: value})


# ------------------------------------------------------------------------- property

_FLOAT_EDGES = st.sampled_from([0.0, -0.0, 1.0, 3.0, 295.0, 400.0, -5.0, np.nan, np.inf, -np.inf, 3e38])
_SIDE = st.integers(0, 10)
IMAGES = st.one_of(
    arrays(np.uint8, st.tuples(_SIDE, _SIDE, st.just(3))),
    arrays(np.uint8, st.tuples(_SIDE, _SIDE, st.just(3)), elements=st.sampled_from([0, 1, 254, 255])),
    arrays(np.float32, st.tuples(_SIDE, _SIDE), elements=st.floats(width=32)),
    arrays(np.float32, st.tuples(_SIDE, _SIDE), elements=_FLOAT_EDGES),
    arrays(
        st.sampled_from([np.uint8, np.uint16, np.int32, np.float64, np.bool_, np.complex64]),
        array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    ),
    st.sampled_from([None, [], "image", 3.5, np.array(["a", "b"])]),
)
STAMPS = st.one_of(st.integers(0, 6).map(lambda k: k * PERIOD_NS), st.integers(-(2**63), 2**63))
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(MODALITIES),
        IMAGES,
        STAMPS,
        st.integers(-PERIOD_NS, 20 * PERIOD_NS),  # receive-time step, may even go back
        st.sampled_from([None, "32FC1", "16UC1"]),
    ),
    max_size=25,
)
CONFIGS = st.builds(
    HealthConfig,
    expected_rate_hz=st.sampled_from([{}, {"rgb": 10.0}, {"thermal": 30.0, "depth": 5.0}]),
    fault_frames=st.integers(1, 3),
    frozen_frames=st.integers(2, 4),
    recover_frames=st.integers(1, 3),
    check_stride=st.integers(1, 5),
)


def _valid(health: ModalityHealth) -> None:
    assert isinstance(health.state, HealthState)
    assert isinstance(health.reasons, tuple)
    assert all(isinstance(r, str) and r for r in health.reasons)
    assert health.state is OK or health.reasons, health
    assert not any(r.startswith("unreadable image") for r in health.reasons), health.reasons


def _replay(config: HealthConfig, events: list) -> tuple[HealthMonitor, list[ModalityHealth]]:
    monitor = HealthMonitor(config)
    now = 0
    seen = dict.fromkeys(MODALITIES, 0)
    out = []
    for modality, image, stamp, step, encoding in events:
        now += step
        health = monitor.observe(modality, image, stamp_ns=stamp, receive_ns=now, encoding=encoding)
        seen[modality] += 1
        assert health.messages == seen[modality]
        out.append(health)
        polled = monitor.poll(now + step // 2)
        assert list(polled) == list(MODALITIES)
        out.extend(polled.values())
    return monitor, out


@settings(max_examples=150, deadline=None)
@given(config=CONFIGS, events=EVENTS)
def test_any_input_sequence_gives_valid_states_and_replays_identically(config, events):
    monitor, healths = _replay(config, events)
    for health in healths:
        _valid(health)
    assert all(t.old is not t.new for t in monitor.transitions)
    again, _ = _replay(config, events)
    assert again.transitions == monitor.transitions  # time is injected: deterministic
    usable = monitor.usable(10**19)
    assert usable == tuple(m for m in MODALITIES if m in usable)
