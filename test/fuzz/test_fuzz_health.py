"""Fuzzing the health monitor: any stream of frames, stamps and polls (backwards, duplicated, huge
gaps, any image) leaves every modality OK, DEGRADED or LOST with its reasons, every transition
explained, and memory bounded; any HealthConfig is valid or refused naming its field."""

from __future__ import annotations

import dataclasses
import math

import fuzzing
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from unimrseg_core.health import HealthConfig, HealthConfigError, HealthMonitor, HealthState
from unimrseg_core.modalities import MODALITIES

pytestmark = pytest.mark.timeout(fuzzing.TIMEOUT_S)

MS = 1_000_000
FIELDS = tuple(f.name for f in dataclasses.fields(HealthConfig))

# --------------------------------------------------------------------------- inputs

_EDGE_FLOATS = st.sampled_from([0.0, -0.0, 1.0, 295.0, 340.0, 25.0, -5.0, np.nan, np.inf, -np.inf, 3e38])
_SIDE = st.integers(1, 12)


def _constant(shape: tuple[int, ...], dtype: type, value: float) -> np.ndarray:
    return np.full(shape, value, dtype=dtype)


IMAGES = st.one_of(
    arrays(np.uint8, st.tuples(_SIDE, _SIDE, st.just(3))),  # random rgb
    st.builds(
        _constant, st.tuples(_SIDE, _SIDE, st.just(3)), st.just(np.uint8), st.sampled_from([0, 128, 255])
    ),
    arrays(
        np.float32, st.tuples(_SIDE, _SIDE), elements=st.floats(0.5, 400.0, width=32)
    ),  # random depth/thermal
    arrays(np.float32, st.tuples(_SIDE, _SIDE), elements=_EDGE_FLOATS),  # NaN, inf, black, saturated
    st.builds(_constant, st.tuples(_SIDE, _SIDE), st.just(np.float32), _EDGE_FLOATS),  # constant
    arrays(
        st.sampled_from([np.uint8, np.uint16, np.int32, np.float64, np.bool_, np.complex64]),
        array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    ),
    st.sampled_from([None, [], "image", 3.5, np.array(["a", "b"]), np.zeros((2, 2), dtype=object)]),
)
_HUGE = st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**64, 10**30, -(10**30)])
STEPS = st.one_of(
    st.integers(0, 200).map(lambda ms: ms * MS),  # on time, late, duplicated (0)
    st.integers(-200, 0).map(lambda ms: ms * MS),  # backwards
    st.integers(-(2**64), 2**64),  # anything, huge gaps both ways
)
EVENTS = st.lists(
    st.one_of(
        st.tuples(
            st.just("observe"),
            st.sampled_from(MODALITIES),
            IMAGES,
            st.one_of(STEPS, _HUGE),  # stamp: a step from the last one, or an absolute extreme
            STEPS,  # receive time: a step from the last one
            st.sampled_from([None, "rgb8", "32FC1", "16UC1", "mono8", ""]),
        ),
        st.tuples(st.just("poll"), STEPS),
        st.tuples(
            st.just("pop"),
        ),
        st.tuples(st.just("observe_unknown"), st.sampled_from(["ir", "", "RGB", "lidar"])),
    ),
    max_size=40,
)
CONFIGS = st.builds(
    HealthConfig,
    expected_rate_hz=st.sampled_from([{}, {"rgb": 10.0}, {"thermal": 1e-9, "depth": 1e9}, {"depth": None}]),
    default_rate_hz=st.sampled_from([1.0, 30.0, 1e-6, 1e6]),
    min_rate_samples=st.integers(1, 4),
    rate_window=st.integers(4, 6),
    silence_periods=st.sampled_from([1.01, 2.5, 1e6]),
    fault_frames=st.integers(1, 3),
    frozen_frames=st.integers(2, 4),
    recover_frames=st.integers(1, 3),
    check_stride=st.integers(1, 5),
    max_transitions=st.integers(1, 8),
)


# --------------------------------------------------------------------------- the property


def _check(monitor: HealthMonitor, config: HealthConfig, now: int) -> None:
    """What must hold after any call: valid states with reasons, bounded memory."""
    for modality, health in monitor.poll(now).items():
        assert health.modality == modality
        assert health.state in (HealthState.OK, HealthState.DEGRADED, HealthState.LOST)
        assert all(isinstance(r, str) and r for r in health.reasons)
        assert health.state is HealthState.OK or health.reasons, health
        assert health.rate_hz is None or (math.isfinite(health.rate_hz) and health.rate_hz > 0)
    transitions = monitor.transitions
    assert len(transitions) <= config.max_transitions
    for t in transitions:
        assert t.old is not t.new
        assert isinstance(t.reason, str)
        assert t.reason
    for track in monitor._tracks.values():  # internals, on purpose: memory must not grow with the stream
        assert len(track.rate._intervals) <= config.rate_window


@fuzzing.budget()
@given(config=CONFIGS, events=EVENTS)
@example(
    config=HealthConfig(), events=[("observe", "rgb", np.zeros((2, 2, 3), np.uint8), 2**64, 2**64, None)]
)
@fuzzing.counted
def test_any_stream_keeps_every_modality_in_a_valid_state_with_reasons(config, events) -> None:
    monitor = HealthMonitor(config)
    stamps = dict.fromkeys(MODALITIES, 0)
    now = 0
    messages = dict.fromkeys(MODALITIES, 0)
    for event in events:
        kind = event[0]
        if kind == "observe":
            _, modality, image, stamp, receive_step, encoding = event
            stamps[modality] += stamp
            now += receive_step
            health, error = fuzzing.attempt(
                lambda m=modality, i=image, s=stamps[modality], n=now, e=encoding: monitor.observe(
                    m, i, stamp_ns=s, receive_ns=n, encoding=e
                ),
                (),
            )
            messages[modality] += 1
            assert health.messages == messages[modality]
            assert not any(r.startswith("unreadable image") for r in health.reasons), health.reasons
        elif kind == "poll":
            now += event[1]
            polled, _ = fuzzing.attempt(lambda n=now: monitor.poll(n), ())
            assert list(polled) == list(MODALITIES)
            usable = monitor.usable(now)
            assert usable == tuple(m for m in MODALITIES if polled[m].usable)
        elif kind == "pop":
            popped, _ = fuzzing.attempt(monitor.pop_transitions, ())
            assert len(popped) <= config.max_transitions
            assert monitor.transitions == ()
        else:
            _, error = fuzzing.attempt(
                lambda m=event[1], n=now: monitor.observe(m, None, stamp_ns=0, receive_ns=n),
                (ValueError,),
                lambda e: "unknown modality",
            )
            assert "unknown modality" in str(error)
        _check(monitor, config, now)


# --------------------------------------------------------------------------- any config

_WILD = st.one_of(
    st.integers(-5, 40),
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**400, -(10**400), 2**63, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([True, False, None, "1", "", [], {}, 1 + 2j, np.float64(2.0), np.int64(3), np.nan]),
)
_RATES = st.one_of(
    st.dictionaries(st.sampled_from([*MODALITIES, "ir", "", 3]), st.one_of(st.none(), _WILD), max_size=4),
    st.sampled_from([None, [], "rgb", 10.0, {("rgb",): 1.0}]),
)


@fuzzing.budget()
@given(
    changes=st.dictionaries(st.sampled_from(FIELDS), _WILD, max_size=4), rates=st.one_of(st.none(), _RATES)
)
@example(changes={"default_rate_hz": 10**400}, rates=None)  # found: OverflowError from math.isfinite
@example(changes={"max_transitions": 2**64}, rates=None)  # found: OverflowError from the deque's maxlen
@example(changes={}, rates={"rgb": 10**400})
@fuzzing.counted
def test_any_config_is_valid_or_refused_naming_its_field(changes, rates) -> None:
    if rates is not None:
        changes = {**changes, "expected_rate_hz": rates}
    config, error = fuzzing.attempt(lambda: HealthConfig(**changes), (HealthConfigError,), lambda e: e.field)
    if error is not None:
        assert error.field in FIELDS
        assert str(error).startswith(f"HealthConfig.{error.field}: ")
        return
    monitor = HealthMonitor(config)  # a config that validates must run
    monitor.observe("rgb", np.full((4, 4, 3), 9, np.uint8), stamp_ns=0, receive_ns=0)
    monitor.observe("depth", np.full((4, 4), np.nan, np.float32), stamp_ns=1, receive_ns=10**18)
    for m in MODALITIES:
        assert monitor.expected_period_ns(m) > 0
    assert monitor.poll(10**30)["thermal"].state is HealthState.LOST
