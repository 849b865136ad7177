"""The frame assembler never stalls: a frame per healthy anchor, companions only when healthy,
fresh and close in time, the next anchor when the first dies, and a reason when nothing is usable.

Time is injected: messages carry nanosecond stamps and receive times, and the assembler is
polled the way the node's timer does.
"""

from __future__ import annotations

import pytest

from unimrseg_core.modalities import MODALITIES
from unimrseg_core.sync import Frame, FrameAssembler, Message, SyncConfig

MS = 1_000_000
PERIOD = 100 * MS
ALL = frozenset(MODALITIES)


def msg(modality: str, stamp: int, receive: int | None = None, *, healthy: bool = True) -> Message[str]:
    return Message(modality, stamp, stamp if receive is None else receive, f"{modality}@{stamp}", healthy)


def tick(
    assembler: FrameAssembler[str],
    t: int,
    order: tuple[str, ...] = MODALITIES,
    usable: frozenset[str] = ALL,
    delay: int = 2 * MS,
) -> list[Frame[str]]:
    """All ``order`` modalities with stamp ``t``, arriving ``delay`` apart; then a poll after the wait."""
    frames = []
    for k, modality in enumerate(order):
        frames += assembler.add(msg(modality, t, t + k * delay), usable, t + k * delay)
    frames += assembler.poll(usable, t + 60 * MS)
    return frames


def used(frames: list[Frame[str]]) -> list[str]:
    return [f.used.name for f in frames]


def test_synchronised_cameras_give_one_complete_frame_per_anchor_whatever_the_arrival_order():
    assembler: FrameAssembler[str] = FrameAssembler()
    frames = []
    for i, order in enumerate([MODALITIES, MODALITIES[::-1], ("depth", "rgb", "thermal")] * 3):
        frames += tick(assembler, (i + 1) * PERIOD, order)
    assert used(frames) == ["rgb+depth+thermal"] * 9
    assert [f.stamp_ns for f in frames] == [(i + 1) * PERIOD for i in range(9)]
    for f in frames:
        assert f.anchor == "rgb"
        assert {m.stamp_ns for m in f.messages.values()} == {f.stamp_ns}  # never the previous tick's image
        assert f.skipped == {}
    assert assembler.timed_out == 0


def test_the_anchor_waits_for_late_companions_at_most_the_wait():
    assembler: FrameAssembler[str] = FrameAssembler(SyncConfig(wait_ns=50 * MS))
    tick(assembler, PERIOD)
    t = 2 * PERIOD
    assert assembler.add(msg("rgb", t), ALL, t) == []  # depth and thermal of t not here yet
    assert assembler.poll(ALL, t + 49 * MS) == []
    frames = assembler.poll(ALL, t + 50 * MS)
    assert used(frames) == ["rgb"]  # the previous tick's images are 100 ms off: beyond max skew
    skew = "skew 0.100 s > max 0.050 s"
    assert frames[0].skipped == {"depth": skew, "thermal": skew}
    assert frames[0].waited_ns == 50 * MS
    assert assembler.timed_out == 1


def test_wait_zero_emits_on_the_anchor_at_once_with_the_closest_companions():
    assembler: FrameAssembler[str] = FrameAssembler(SyncConfig(wait_ns=0, max_skew_ns=60 * MS))
    assembler.add(msg("depth", 0), ALL, 0)
    assembler.add(msg("thermal", 30 * MS), ALL, 30 * MS)
    frames = assembler.add(msg("rgb", 50 * MS), ALL, 50 * MS)
    assert used(frames) == ["rgb+depth+thermal"]
    assert frames[0].messages["depth"].stamp_ns == 0


def test_the_closest_of_the_two_newest_companions_is_used_whichever_arrived_first():
    assembler: FrameAssembler[str] = FrameAssembler()
    assembler.add(msg("thermal", 70 * MS, 71 * MS), ALL, 71 * MS)
    assembler.add(msg("depth", 45 * MS, 46 * MS), ALL, 46 * MS)
    assembler.add(msg("depth", 100 * MS, 101 * MS), ALL, 101 * MS)
    frames = assembler.add(msg("rgb", 70 * MS, 105 * MS), ALL, 105 * MS)  # the anchor came late
    assert used(frames) == ["rgb+depth+thermal"]
    assert frames[0].messages["depth"].stamp_ns == 45 * MS  # 25 ms off, against 30 ms for the newer one
    assert frames[0].waited_ns == 0


def test_a_dead_companion_is_not_waited_for_and_not_used():
    assembler: FrameAssembler[str] = FrameAssembler()
    tick(assembler, PERIOD)
    usable = frozenset({"rgb", "depth"})  # the health monitor says thermal is LOST
    frames = tick(assembler, 2 * PERIOD, ("rgb", "depth"), usable)
    assert used(frames) == ["rgb+depth"]
    assert frames[0].skipped == {"thermal": "not healthy"}
    assert frames[0].waited_ns < 10 * MS  # emitted when depth came, not after the wait
    assert assembler.timed_out == 0


def test_a_healthy_but_stale_companion_is_left_out():
    assembler: FrameAssembler[str] = FrameAssembler(SyncConfig(max_skew_ns=PERIOD, max_age_ns=300 * MS))
    assembler.add(msg("thermal", 0), ALL, 0)
    assembler.add(msg("depth", 1000 * MS, 1000 * MS), ALL, 1000 * MS)
    # the thermal stamp is close to the anchor's, but the message arrived 1 s ago
    frames = assembler.add(msg("rgb", 90 * MS, 1001 * MS), ALL, 1001 * MS)
    frames += assembler.poll(ALL, 1100 * MS)
    assert used(frames) == ["rgb"]
    assert frames[0].skipped["thermal"] == "stale: age 1.100 s > max 0.300 s"


def test_a_message_that_made_its_modality_degraded_is_never_used():
    assembler: FrameAssembler[str] = FrameAssembler()
    assembler.add(msg("depth", 0, healthy=False), ALL, 0)
    assembler.add(msg("thermal", 0), ALL, 0)
    frames = assembler.add(msg("rgb", 0), ALL, 1 * MS) + assembler.poll(ALL, 60 * MS)
    assert used(frames) == ["rgb+thermal"]
    assert frames[0].skipped == {"depth": "no healthy message"}


def test_when_the_anchor_dies_the_next_in_the_priority_list_takes_over_and_gives_it_back():
    assembler: FrameAssembler[str] = FrameAssembler()
    frames = tick(assembler, PERIOD)
    assert [f.anchor for f in frames] == ["rgb"]
    no_rgb = frozenset({"depth", "thermal"})
    frames = tick(assembler, 2 * PERIOD, ("depth", "thermal"), no_rgb)
    assert [(f.anchor, f.used.name) for f in frames] == [("depth", "depth+thermal")]
    assert frames[0].skipped == {"rgb": "not healthy"}
    assert assembler.idle_reason is None
    frames = tick(assembler, 3 * PERIOD)
    assert [(f.anchor, f.used.name) for f in frames] == [("rgb", "rgb+depth+thermal")]


def test_the_priority_list_is_followed_and_non_anchors_never_anchor():
    config = SyncConfig(anchor_priority=("thermal",))
    assembler: FrameAssembler[str] = FrameAssembler(config)
    frames = tick(assembler, PERIOD)
    assert [(f.anchor, f.used.name) for f in frames] == [("thermal", "rgb+depth+thermal")]
    frames = tick(assembler, 2 * PERIOD, ("rgb", "depth"), frozenset({"rgb", "depth"}))
    assert frames == []
    assert assembler.idle_reason == "no usable anchor: none of thermal is healthy"


def test_nothing_is_emitted_without_a_usable_anchor_and_the_reason_is_kept():
    assembler: FrameAssembler[str] = FrameAssembler()
    assert assembler.idle_reason == "no message yet"
    assert assembler.poll(frozenset(), 0) == []
    assert assembler.idle_reason == "no message yet"  # not an error: nothing was ever received
    frames = tick(assembler, PERIOD, usable=frozenset())
    assert frames == []
    assert assembler.idle_reason == "no usable anchor: none of rgb, depth, thermal is healthy"
    assert assembler.poll(frozenset(), 2 * PERIOD) == []
    assert assembler.anchor(frozenset()) is None
    tick(assembler, 3 * PERIOD)
    assert assembler.idle_reason is None


def test_a_new_anchor_message_flushes_a_pending_frame_first():
    assembler: FrameAssembler[str] = FrameAssembler(SyncConfig(wait_ns=500 * MS))
    assembler.add(msg("rgb", 0), ALL, 0)
    frames = assembler.add(msg("rgb", PERIOD), ALL, PERIOD)
    assert [(f.stamp_ns, f.used.name) for f in frames] == [(0, "rgb")]


def test_disabled_modalities_are_ignored_entirely():
    assembler: FrameAssembler[str] = FrameAssembler(SyncConfig(enabled=("rgb", "depth")))
    frames = tick(assembler, PERIOD)
    assert used(frames) == ["rgb+depth"]
    assert frames[0].skipped == {}


def test_reset_forgets_messages_and_the_pending_frame():
    assembler: FrameAssembler[str] = FrameAssembler()
    assembler.add(msg("depth", 0), ALL, 0)
    assembler.add(msg("rgb", 0), ALL, 0)
    assembler.reset()
    assert assembler.poll(ALL, 10**9) == []
    frames = assembler.add(msg("rgb", 2 * 10**9), ALL, 2 * 10**9) + assembler.poll(ALL, 3 * 10**9)
    assert used(frames) == ["rgb"]
    assert frames[0].skipped == {"depth": "no healthy message", "thermal": "no healthy message"}


def test_many_ticks_with_random_order_jitter_and_a_dying_sensor_never_stall():
    import random

    rnd = random.Random(5)
    assembler: FrameAssembler[str] = FrameAssembler()
    frames: list[Frame[str]] = []
    for i in range(1, 300):
        t = i * PERIOD
        alive = MODALITIES if i < 150 else ("rgb", "depth")
        usable = ALL if i < 153 else frozenset(alive)  # the monitor notices thermal ~3 periods later
        order = list(alive)
        rnd.shuffle(order)
        now = t
        for modality in order:
            now += rnd.randrange(0, 5 * MS)
            frames += assembler.add(msg(modality, t, now), usable, now)
        for k in range(1, 6):
            frames += assembler.poll(usable, t + k * PERIOD // 5)
    assert len(frames) == 299  # one per anchor, none lost, none doubled
    assert used(frames[:149]) == ["rgb+depth+thermal"] * 149
    assert set(used(frames[149:])) == {"rgb+depth"}
    late = [f.waited_ns for f in frames[149:152]]  # thermal still "healthy": waited for, in vain
    assert max(late) <= 60 * MS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"anchor_priority": ("lidar",)}, "unknown modality"),
        ({"anchor_priority": ("rgb", "rgb")}, "listed twice"),
        ({"anchor_priority": ("thermal",), "enabled": ("rgb",)}, "no enabled modality can anchor"),
        ({"max_skew_ns": -1}, "max_skew_ns"),
        ({"wait_ns": 0.5}, "wait_ns"),
    ],
)
def test_config_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyncConfig(**kwargs)
