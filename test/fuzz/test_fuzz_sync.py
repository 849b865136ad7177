"""Fuzzing frame assembly: any interleaving of messages, polls and resets, with any stamps and
times, emits each anchor message at most once, only for enabled modalities, with companions that
keep the skew and age rules, and keeps two messages per modality; the same through FramePipeline;
any SyncConfig is valid or a ValueError."""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection

import fuzzing
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unimrseg_core.health import HealthConfig
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.pipeline import FramePipeline, Step
from unimrseg_core.sync import Frame, FrameAssembler, Message, SyncConfig

pytestmark = pytest.mark.timeout(fuzzing.TIMEOUT_S)

MS = 1_000_000
_SUBSETS = [c for n in range(1, len(MODALITIES) + 1) for c in itertools.permutations(MODALITIES, n)]


def _mostly(usual: st.SearchStrategy, *unusual: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` 80% of the time: enough frames get built to test the rules on them."""
    return st.integers(0, 9).flatmap(lambda k: usual if k < 8 else st.one_of(*unusual))


_NS = _mostly(
    st.sampled_from([20 * MS, 50 * MS, 100 * MS, 500 * MS]),
    st.sampled_from([0, 1, 2**62]),
    st.integers(0, 10**9),
    st.integers(0, 2**64),
)


@st.composite
def sync_configs(draw: st.DrawFn) -> SyncConfig:
    enabled = draw(st.sampled_from(_SUBSETS))
    anchors = [m for m in draw(st.sampled_from(_SUBSETS)) if m in enabled] or [enabled[0]]
    extra = [m for m in MODALITIES if m not in anchors and m not in enabled]
    return SyncConfig(
        anchor_priority=(*anchors, *draw(st.sampled_from([(), tuple(extra)]))),
        enabled=tuple(sorted(enabled, key=MODALITIES.index)),
        max_age_ns=draw(_NS),
        max_skew_ns=draw(_NS),
        wait_ns=draw(_NS),
    )


_STEP = _mostly(
    st.integers(0, 40).map(lambda ms: ms * MS),  # in order, jittered, duplicated (0)
    st.integers(-60, 0).map(lambda ms: ms * MS),  # backwards
    st.integers(40, 2000).map(lambda ms: ms * MS),  # late
    st.integers(-(2**64), 2**64),  # huge gaps both ways
)
_USABLE = _mostly(st.just(MODALITIES), st.sampled_from([(), *_SUBSETS, ("rgb", "ir")]))
_JITTER = _mostly(st.integers(0, 5).map(lambda ms: ms * MS), st.integers(-(2**64), 2**64), _STEP)
EVENTS = st.lists(
    st.integers(0, 19).flatmap(
        lambda k: (
            st.tuples(
                st.just("add"),
                st.sampled_from(MODALITIES),
                _JITTER,  # its stamp: the camera frame's time, plus jitter
                _STEP,  # receive time: a step from the last one
                _mostly(st.just(True), st.just(False)),
                _USABLE,
            )
            if k < 12
            else st.tuples(st.just("tick"), _STEP)  # the cameras' next frame time
            if k < 15
            else st.tuples(st.just("poll"), _STEP, _USABLE)
            if k < 19
            else st.tuples(st.just("reset"))
        )
    ),
    min_size=4,
    max_size=60,
)


def _frames(frames: list[Frame[int]]) -> str:
    """How a call ended: the anchors and companions of what it emitted."""
    if not frames:
        return "no frame"
    return "frame " + ", ".join("+".join(f.messages) for f in frames)


def _steps(step: Step[int]) -> str:
    """How a pipeline call ended: its frames, and whether health changed."""
    return _frames(list(step.frames)) + (", health changed" if step.transitions else "")


def _check_frame(
    frame: Frame[int], config: SyncConfig, usable: Collection[str], now: int, added: dict[int, Message[int]]
) -> None:
    """One emitted frame keeps every rule of the assembler."""
    anchor = frame.messages[frame.anchor]  # the anchor is among its messages
    assert anchor.modality == frame.anchor
    assert frame.anchor in config.anchors
    assert anchor.healthy
    assert frame.stamp_ns == anchor.stamp_ns
    assert list(frame.messages) == [m for m in MODALITIES if m in frame.messages]
    assert set(frame.messages) | set(frame.skipped) == set(config.enabled)
    assert not set(frame.messages) & set(frame.skipped)
    assert all(reason for reason in frame.skipped.values())
    assert frame.waited_ns >= 0
    for modality, message in frame.messages.items():
        assert added[message.payload] is message  # a message that was added, unchanged
        if modality == frame.anchor:
            continue
        assert message.healthy
        assert modality in usable
        assert abs(message.stamp_ns - anchor.stamp_ns) <= config.max_skew_ns
        assert now - message.receive_ns <= config.max_age_ns


@fuzzing.budget()
@given(config=sync_configs(), events=EVENTS)
@fuzzing.counted
def test_any_interleaving_emits_each_anchor_once_within_the_rules(config: SyncConfig, events) -> None:
    assembler: FrameAssembler[int] = FrameAssembler(config)
    frame_time, now = 10**15, 10**15
    added: dict[int, Message[int]] = {}
    anchors_seen: set[int] = set()
    emitted = 0
    for event in events:
        frames: list[Frame[int]] = []
        if event[0] == "tick":
            frame_time += event[1]
        elif event[0] == "add":
            _, modality, jitter, receive_step, healthy, usable = event
            now += receive_step
            message = Message(modality, frame_time + jitter, now, len(added), healthy)
            added[message.payload] = message
            frames, _ = fuzzing.attempt(
                lambda m=message, u=usable, n=now: assembler.add(m, u, n), (), what=_frames
            )
            if modality not in config.enabled:
                assert frames == []
            assert len(frames) <= 2
        elif event[0] == "poll":
            _, step, usable = event
            now += step
            frames, _ = fuzzing.attempt(lambda u=usable, n=now: assembler.poll(u, n), (), what=_frames)
            assert len(frames) <= 1
            has_anchor = any(m in usable for m in config.anchors)
            assert (assembler.idle_reason is None) == has_anchor
        else:
            fuzzing.attempt(assembler.reset, (), what=lambda _: "reset")
        for frame in frames:
            _check_frame(frame, config, usable, now, added)
            anchor = frame.messages[frame.anchor].payload
            assert anchor not in anchors_seen  # never twice for one anchor message
            anchors_seen.add(anchor)
        emitted += len(frames)
        assert assembler.emitted == emitted
        assert all(len(kept) <= 2 for kept in assembler._recent.values())  # internals: bounded memory


# --------------------------------------------------------------------------- the pipeline


def _textured(modality: str, seed: int) -> np.ndarray:
    """A frame that passes every content check: noise in the modality's usual range."""
    rng = np.random.default_rng(seed)
    if modality == "rgb":
        return rng.integers(30, 220, (6, 8, 3), dtype=np.uint8)
    low, high = (0.5, 10.0) if modality == "depth" else (280.0, 320.0)
    return rng.uniform(low, high, (6, 8)).astype(np.float32)


_BAD_IMAGES = {
    "rgb": st.sampled_from(
        [np.zeros((6, 8, 3), np.uint8), np.zeros((2, 2), np.uint8), np.full((6, 8, 3), 255, np.uint8)]
    ),
    "depth": st.one_of(
        arrays(np.float32, (6, 8), elements=st.floats(allow_nan=True, width=32)),
        st.sampled_from([np.full((6, 8), np.nan, np.float32), np.zeros((6, 8), np.float32)]),
    ),
    "thermal": st.sampled_from(
        [np.full((6, 8), np.inf, np.float32), None, np.full((6, 8), 300.0, np.float32)]
    ),
}
_IMAGES = {
    m: _mostly(st.integers(0, 2**32 - 1).map(lambda k, m=m: _textured(m, k)), bad)
    for m, bad in _BAD_IMAGES.items()
}


@st.composite
def pipeline_events(draw: st.DrawFn) -> list[tuple]:
    """Cameras of one rig: frames share a time (plus jitter), polls and late frames in between."""
    events = []
    for _ in range(draw(st.integers(8, 60))):
        kind = draw(st.integers(0, 9))
        if kind < 2:
            events.append(("tick", draw(_STEP)))
        elif kind < 4:
            events.append(("poll", draw(_STEP)))
        else:
            modality = draw(st.sampled_from(MODALITIES))
            events.append(("receive", modality, draw(_IMAGES[modality]), draw(_JITTER), draw(_STEP)))
    return events


@fuzzing.budget(0.5)
@given(config=sync_configs(), events=pipeline_events(), rate=st.sampled_from([None, 10.0, 1e-3]))
@fuzzing.counted
def test_the_pipeline_emits_frames_only_for_enabled_modalities(config: SyncConfig, events, rate) -> None:
    health = HealthConfig(expected_rate_hz=dict.fromkeys(MODALITIES, rate), min_rate_samples=2, rate_window=4)
    pipeline: FramePipeline[int] = FramePipeline(health, config)
    frame_time, now = 10**15, 10**15
    added: dict[int, Message[int]] = {}
    anchors_seen: set[int] = set()
    for event in events:
        frames: list[Frame[int]] = []
        if event[0] == "tick":
            frame_time += event[1]
        elif event[0] == "receive":
            _, modality, image, jitter, receive_step = event
            now += receive_step
            payload = len(added)
            step, _ = fuzzing.attempt(
                lambda m=modality, i=image, p=payload, s=frame_time + jitter, n=now: pipeline.receive_image(
                    m, i, p, stamp_ns=s, receive_ns=n
                ),
                (),
                what=_steps,
            )
            frames = list(step.frames)
            if modality not in config.enabled:
                assert frames == []
            added[payload] = Message(modality, frame_time + jitter, now, payload, True)
        else:
            now += event[1]
            step, _ = fuzzing.attempt(lambda n=now: pipeline.poll(n), (), what=_steps)
            frames = list(step.frames)
            assert {t.modality for t in step.transitions} <= set(config.enabled)
        usable = pipeline.usable(now)
        assert set(usable) <= set(config.enabled)
        for frame in frames:
            assert set(frame.messages) <= set(config.enabled)
            anchor = frame.messages[frame.anchor]
            assert anchor.payload not in anchors_seen
            anchors_seen.add(anchor.payload)
            for message in frame.messages.values():
                original = added[message.payload]
                assert (message.modality, message.stamp_ns, message.receive_ns) == (
                    original.modality,
                    original.stamp_ns,
                    original.receive_ns,
                )
                assert abs(message.stamp_ns - anchor.stamp_ns) <= config.max_skew_ns
        for frame in frames:
            assert set(frame.notes) <= set(frame.skipped)


# --------------------------------------------------------------------------- any config

_NAMES = st.one_of(
    st.sampled_from(_SUBSETS),
    st.lists(st.sampled_from([*MODALITIES, "ir", "", "RGB"]), max_size=4).map(tuple),
    st.sampled_from(
        [None, "rgb", 3, ["rgb"], ("rgb", "rgb"), (("rgb",),), (["rgb"],), {"rgb": 1}, frozenset({"rgb"})]
    ),
)
_WILD_NS = st.one_of(
    st.integers(-5, 10**10),
    st.sampled_from([2**64, 10**400, -1, True, 1.5, float("nan"), None, "5", np.int64(5)]),
)


@fuzzing.budget()
@given(anchor_priority=_NAMES, enabled=_NAMES, ages=st.tuples(_WILD_NS, _WILD_NS, _WILD_NS))
@example(anchor_priority=None, enabled=MODALITIES, ages=(0, 0, 0))  # found: TypeError, not iterable
@example(anchor_priority=MODALITIES, enabled=5, ages=(0, 0, 0))
@fuzzing.counted
def test_any_sync_config_is_valid_or_a_value_error(anchor_priority, enabled, ages) -> None:
    kwargs = dict(zip(("max_age_ns", "max_skew_ns", "wait_ns"), ages, strict=True))
    config, error = fuzzing.attempt(
        lambda: SyncConfig(anchor_priority=anchor_priority, enabled=enabled, **kwargs),
        (ValueError,),
        lambda e: re.split(r"[:;]|,? got ", str(e))[0][:50],
    )
    if error is not None:
        assert str(error)
        return
    assert config.anchors
    assembler: FrameAssembler[int] = FrameAssembler(config)
    first = config.anchors[0]
    frames = assembler.add(Message(first, 0, 0, 0, True), config.enabled, 0)
    frames += assembler.poll(config.enabled, config.wait_ns + 1)  # the wait is over: never stalls
    assert [f.anchor for f in frames] == [first]
