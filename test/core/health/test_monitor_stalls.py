"""A stall of the observer (the node's process starved, stopped or in a long GC) is not the
cameras' silence; a camera that really is silent is still found, as soon as before.

Time is injected: three 10 Hz cameras and an observer that polls every ``POLL_NS`` (the
node's 50 Hz timer). A stall is a stretch with no call at all while the cameras' frames
queue (keep-last, as the node's sensor QoS), then the poll and the queued frames in a burst.
"""

from __future__ import annotations

import numpy as np
import pytest

from unimrseg_core.health import HealthMonitor, HealthState, Transition
from unimrseg_core.modalities import MODALITIES

OK, DEGRADED, LOST = HealthState.OK, HealthState.DEGRADED, HealthState.LOST
PERIOD_NS = 100_000_000  # 10 Hz cameras
POLL_NS = PERIOD_NS // 5  # the observer's 50 Hz poll
SILENCE_NS = round(2.5 * PERIOD_NS)  # the default silence limit: 2.5 expected periods
BURST_STEP_NS = 1_000_000  # queued frames are taken 1 ms apart after a stall
SIZE = (48, 64)


def frame(modality: str, rng: np.random.Generator) -> np.ndarray:
    """A fresh healthy-looking frame in sensor units."""
    if modality == "rgb":
        return rng.integers(30, 220, (*SIZE, 3), dtype=np.uint8)
    if modality == "depth":
        return rng.uniform(0.5, 15.0, SIZE).astype(np.float32)
    return (290.0 + 8.0 * rng.standard_normal(SIZE)).astype(np.float32)


class Rig:
    """Cameras ticking every period; an observer that polls, or stalls and then takes a burst."""

    def __init__(self, monitor: HealthMonitor, *, queue_depth: int = 5, seed: int = 0) -> None:
        self.monitor = monitor
        self.queue_depth = queue_depth
        self.rng = np.random.default_rng(seed)
        self.alive = set(MODALITIES)
        self.now_ns = 0

    def run(self, periods: int, poll_ns: int = POLL_NS) -> None:
        """The observer running: each frame taken when it comes, polls every ``poll_ns`` in between."""
        for _ in range(periods):
            tick = self.now_ns
            for modality in sorted(self.alive):
                self.monitor.observe(modality, frame(modality, self.rng), stamp_ns=tick, receive_ns=tick)
            while self.now_ns + poll_ns < tick + PERIOD_NS:
                self.now_ns += poll_ns
                self.monitor.poll(self.now_ns)
            self.now_ns = tick + PERIOD_NS

    def stall(self, periods: int, *, first_call: str = "poll") -> int:
        """No call for ``periods`` ticks, then ``first_call`` (a poll, or the queued frames straight
        away) half a period after the last of them, the burst of frames that queued (the last
        ``queue_depth`` per camera, 1 ms apart) and polls; returns when the observer resumed."""
        ticks = [self.now_ns + k * PERIOD_NS for k in range(periods)]
        resumed = ticks[-1] + PERIOD_NS // 2
        now = resumed
        if first_call == "poll":
            self.monitor.poll(now)
        for stamp in ticks[-self.queue_depth :]:
            for modality in sorted(self.alive):
                self.monitor.observe(modality, frame(modality, self.rng), stamp_ns=stamp, receive_ns=now)
                now += BURST_STEP_NS
        self.now_ns = ticks[-1] + PERIOD_NS  # the cameras' next tick; the timer polls until then
        for poll_ns in range(resumed + POLL_NS, self.now_ns, POLL_NS):
            self.monitor.poll(poll_ns)
        return resumed

    def transitions_after(self, time_ns: int) -> list[Transition]:
        return [t for t in self.monitor.transitions if t.time_ns > time_ns]


def warm(monitor: HealthMonitor) -> Rig:
    """Every camera OK with its 10 Hz period learned."""
    rig = Rig(monitor)
    rig.run(10)
    assert monitor.usable(rig.now_ns) == MODALITIES
    return rig


@pytest.mark.parametrize("first_call", ["poll", "frame"])
@pytest.mark.parametrize("periods", [3, 10, 50])
def test_a_stalled_observer_reports_no_silence_when_the_queued_frames_arrive(periods, first_call):
    rig = warm(HealthMonitor(poll_period_ns=POLL_NS))
    began = rig.now_ns
    rig.stall(periods, first_call=first_call)
    rig.run(5)
    assert rig.transitions_after(began) == []
    assert rig.monitor.stalled_ns >= (periods - 2) * PERIOD_NS  # the stall beyond one period, measured


def test_without_a_poll_period_the_same_stall_reads_as_every_camera_lost():
    """What the poll period fixes: a monitor that counts every gap calls the stall silence."""
    rig = warm(HealthMonitor())
    began = rig.now_ns
    rig.stall(10)
    lost = {t.modality for t in rig.transitions_after(began) if t.new is LOST}
    assert lost == set(MODALITIES)


@pytest.mark.parametrize("seed", range(5))
def test_an_observer_on_time_sees_the_same_silence_as_the_clock(seed):
    """With every gap between calls at most one poll period, nothing changes: same transitions,
    at the same times, as a monitor that counts all time as silence."""
    rng = np.random.default_rng(seed)
    silent = [dict(zip(MODALITIES, rng.random(3) < 0.3, strict=True)) for _ in range(60)]
    polls = rng.integers(POLL_NS // 4, POLL_NS + 1, len(silent))
    runs = []
    for monitor in (HealthMonitor(poll_period_ns=POLL_NS), HealthMonitor()):
        rig = Rig(monitor, seed=seed)
        for periods_silent, poll_ns in zip(silent, polls, strict=True):
            rig.alive = {m for m, off in periods_silent.items() if not off}
            rig.run(1, poll_ns=int(poll_ns))
        runs.append(monitor.transitions)
    assert any(t.new is LOST for t in runs[0])
    assert runs[0] == runs[1]


def test_a_camera_silent_before_the_stall_is_lost_soon_after_it():
    rig = warm(HealthMonitor(poll_period_ns=POLL_NS))
    rig.alive.discard("rgb")
    rig.run(1)
    resumed = rig.stall(10)
    rig.run(3)
    changes = [(t.modality, t.new) for t in rig.transitions_after(resumed - 10 * PERIOD_NS)]
    assert changes == [("rgb", LOST)]
    lost = rig.transitions_after(resumed - 1)[0]
    assert 0 <= lost.time_ns - resumed <= SILENCE_NS - PERIOD_NS  # the period seen before the stall counts


def test_a_camera_that_died_during_the_stall_is_lost_within_the_silence_limit_after_it():
    rig = warm(HealthMonitor(poll_period_ns=POLL_NS))
    began = rig.now_ns
    rig.stall(2)  # the last frames rgb sent before it died are in the burst
    rig.alive.discard("rgb")
    resumed = rig.stall(8)
    rig.run(4)
    lost = rig.transitions_after(began)
    assert [(t.modality, t.new) for t in lost] == [("rgb", LOST)]
    assert 0 < lost[0].time_ns - resumed <= SILENCE_NS


def test_a_late_observer_still_finds_a_silent_camera():
    """Polls three times later than declared (a loaded machine), still within a camera period:
    each gap counts in full, so the silent camera is LOST as soon as a poll sees the limit."""
    rig = warm(HealthMonitor(poll_period_ns=POLL_NS))
    rig.alive.discard("thermal")
    last = rig.now_ns - PERIOD_NS
    rig.run(10, poll_ns=3 * POLL_NS)
    lost = [t for t in rig.transitions_after(last) if t.new is LOST]
    assert [t.modality for t in lost] == ["thermal"]
    assert lost[0].time_ns - last <= SILENCE_NS + 3 * POLL_NS


def test_a_gap_longer_than_a_camera_period_counts_one_period():
    """A poll 1.9 periods late counts one period of silence (the rest is the observer's stall)."""
    rig = warm(HealthMonitor(poll_period_ns=POLL_NS))
    before = rig.monitor.stalled_ns
    rig.monitor.poll(rig.now_ns + round(1.9 * PERIOD_NS))
    assert rig.monitor.stalled_ns - before == round(1.9 * PERIOD_NS) - PERIOD_NS
    assert rig.transitions_after(rig.now_ns) == []


def test_the_poll_period_must_be_positive():
    with pytest.raises(ValueError, match="poll_period_ns must be > 0"):
        HealthMonitor(poll_period_ns=0)


def test_a_frame_taken_on_time_but_delivered_late_is_not_silence():
    """Judged by its own stamp: nobody polled during the delay, and the frame that ends it was
    taken one period after the previous one, so the camera was never silent."""
    monitor = HealthMonitor()
    rng = np.random.default_rng(5)
    for i in range(8):
        monitor.observe("thermal", frame("thermal", rng), stamp_ns=i * PERIOD_NS, receive_ns=i * PERIOD_NS)
    late = monitor.observe(
        "thermal", frame("thermal", rng), stamp_ns=8 * PERIOD_NS, receive_ns=11 * PERIOD_NS
    )
    assert late.state is OK
    silent = monitor.observe(
        "thermal", frame("thermal", rng), stamp_ns=15 * PERIOD_NS, receive_ns=15 * PERIOD_NS
    )
    assert silent.state is DEGRADED  # the stamps show 0.7 s of silence: LOST, then recovering
    assert [t.new for t in monitor.transitions][-2:] == [LOST, DEGRADED]


@pytest.mark.parametrize(
    ("receive_steps", "expected_ns"),
    [
        ((0.2, 0.2, 2.6), PERIOD_NS),  # bunched deliveries under load: the stamps' period
        ((2.0,), 2 * PERIOD_NS),  # a replay at half speed: the arrivals' period
    ],
)
def test_the_learned_period_is_the_longer_of_the_arrivals_and_the_stamps(receive_steps, expected_ns):
    monitor = HealthMonitor()
    rng = np.random.default_rng(6)
    receive_ns = 0
    for i in range(30):
        receive_ns += round(receive_steps[i % len(receive_steps)] * PERIOD_NS)
        monitor.observe("rgb", frame("rgb", rng), stamp_ns=i * PERIOD_NS, receive_ns=receive_ns)
    assert monitor.expected_period_ns("rgb") == pytest.approx(expected_ns)
