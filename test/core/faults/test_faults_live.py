"""LiveFaults: a schedule file armed on the injector's time axis plus faults commanded live."""

from __future__ import annotations

import pytest

from unimrseg_core.faults import Fault, FaultError, FaultInjector, FaultSchedule
from unimrseg_core.faults.live import LiveFaults

SCHEDULE = FaultSchedule(
    [
        Fault("thermal", "drop", 1.0, 3.0),
        Fault("depth", "freeze", 2.0, 4.0),
    ],
    seed=3,
)


def kinds(live: LiveFaults, t: float) -> set[tuple[str, str, str]]:
    return {(a.fault.modality, a.fault.kind, a.source) for a in live.active(t)}


def test_schedule_waits_to_be_armed_then_runs_from_t0() -> None:
    live = LiveFaults()
    live.load(SCHEDULE, None)
    assert kinds(live, 11.5) == set()  # not armed: the first message has not come
    assert live.arm(10.0) is True
    assert live.arm(12.0) is False  # armed once
    assert kinds(live, 10.5) == set()
    assert kinds(live, 11.5) == {("thermal", "drop", "schedule")}
    assert kinds(live, 12.5) == {("thermal", "drop", "schedule"), ("depth", "freeze", "schedule")}
    assert kinds(live, 14.0) == set()
    assert live.schedule().seed == 3


def test_command_overrides_the_same_kind_while_it_lasts() -> None:
    live = LiveFaults()
    live.load(SCHEDULE, 0.0)
    fault = live.command("thermal", "drop", {}, 2.0, duration_s=0.5)
    assert fault == Fault("thermal", "drop", 2.0, 2.5)
    drops = [f for f in live.schedule() if f.kind == "drop"]
    # the scheduled drop keeps its parts before and after the command; no overlap error
    assert [(f.start_s, f.end_s) for f in drops] == [(1.0, 2.0), (2.5, 3.0), (2.0, 2.5)]
    assert {a.source for a in live.active(2.2)} == {"command", "schedule"}  # + the depth freeze
    assert live.expired(2.4) == []
    assert live.expired(2.5) == ["thermal"]
    live.command("thermal", "none", {}, 2.5)
    assert live.commanded("thermal") is None


def test_command_validates_through_the_fault_model() -> None:
    live = LiveFaults()
    with pytest.raises(FaultError, match="sigma"):
        live.command("thermal", "noise", {"sigma": 0.0}, 1.0)
    with pytest.raises(FaultError, match="depth_holes applies to depth"):
        live.command("rgb", "depth_holes", {}, 1.0)
    assert live.commanded("rgb") is None
    assert live.commanded("thermal") is None
    untimed = live.command("rgb", "noise", {"sigma": 0.1}, 1.0)
    assert untimed is not None
    assert untimed.params == {"sigma": 0.1}
    assert live.active(1e6)[0].to_dict()["end_s"] is None  # until cleared


def test_clear_ends_commands_and_the_rest_of_the_schedule() -> None:
    live = LiveFaults()
    live.load(SCHEDULE, 0.0)
    live.command("rgb", "blackout", {}, 1.5)
    live.clear(2.5)
    assert kinds(live, 2.6) == set()
    assert kinds(live, 2.4) == {("thermal", "drop", "schedule"), ("depth", "freeze", "schedule")}


def test_changes_carry_the_exact_start_and_end_times() -> None:
    live = LiveFaults()
    live.load(SCHEDULE, 5.0)
    assert live.changes(5.5) == []
    started = live.changes(6.07)  # noticed late; the change says when it really began
    assert [(c.event, c.t_s, c.active.fault.kind) for c in started] == [("start", 6.0, "drop")]
    ended = live.changes(8.2)
    assert [(c.event, c.t_s) for c in ended] == [("end", 8.0), ("start", 7.0)]
    assert ended[1].to_dict()["kind"] == "freeze"
    assert ended[1].to_dict()["source"] == "schedule"


def test_the_injector_follows_a_schedule_swapped_under_it() -> None:
    """A freeze commanded live repeats the last message delivered before it (stream state survives)."""
    live = LiveFaults()
    injector: FaultInjector[str] = FaultInjector(live.schedule())
    injector.schedule = live.schedule()
    first = injector.process("depth", 0.0, 1, "frame-1")
    assert first is not None
    assert first.payload == "frame-1"
    live.command("depth", "freeze", {}, 0.05)
    injector.schedule = live.schedule()
    frozen = injector.process("depth", 0.1, 2, "frame-2")
    assert frozen is not None
    assert frozen.frozen
    assert frozen.payload == "frame-1"
    assert frozen.stamp_ns == 1
    live.command("depth", None, {}, 0.15)
    injector.schedule = live.schedule()
    resumed = injector.process("depth", 0.2, 3, "frame-3")
    assert resumed is not None
    assert resumed.payload == "frame-3"
    assert not resumed.frozen
