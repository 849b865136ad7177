"""The soak's health analysis (``benchmarks/soak.py``): hog blocks, false transitions, detection delays.

The analysis reads what a run recorded (the node's log lines, the schedule, the hog's on/off
times); here a run is written by hand, so each figure has a known answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from soak import RECOVERY_S, Analysis, RunData, health_changes, hog_blocks

from unimrseg_core.faults import Fault, FaultSchedule

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
RATE_HZ = 30.0


def test_hog_blocks_load_exactly_the_fraction_after_warmup() -> None:
    assert hog_blocks(60.0, 600.0, 0.5, 60.0) == [
        (60.0, 127.5),
        (195.0, 262.5),
        (330.0, 397.5),
        (465.0, 532.5),
    ]
    for fraction in (0.1, 0.3, 0.5, 0.9):
        blocks = hog_blocks(60.0, 600.0, fraction, 45.0)
        assert sum(b - a for a, b in blocks) == pytest.approx(fraction * 540.0)
        assert all(60.0 <= a < b <= 600.0 for a, b in blocks)
    assert hog_blocks(12.0, 60.0, 0.5, 60.0) == [(12.0, 36.0)]  # shorter than a pair: one pair
    assert hog_blocks(12.0, 60.0, 0.0, 60.0) == []
    assert hog_blocks(12.0, 60.0, 1.0, 60.0) == [(12.0, 60.0)]
    with pytest.raises(ValueError, match="fraction"):
        hog_blocks(12.0, 60.0, 1.5, 60.0)


def _log(t_s: float, text: str) -> tuple[int, str]:
    return T0 + round(t_s * NS), text


def _ticks(pause_s: tuple[float, float] | None = None) -> list[int]:
    """A 30 Hz camera's stamps for 40 s, half a period off the schedule's whole seconds (as the soak's
    cycle is); none in ``pause_s`` (the machine paused)."""
    stamps = [(k + 0.5) / RATE_HZ for k in range(round(40 * RATE_HZ))]
    return [T0 + round(t * NS) for t in stamps if pause_s is None or not pause_s[0] <= t < pause_s[1]]


def _run(
    node_log: list[tuple[int, str]],
    hog_s: list[tuple[float, float]],
    pause_s: tuple[float, float] | None = None,
) -> RunData:
    schedule = FaultSchedule(
        [Fault("rgb", "blackout", 10.0, 11.5, {}), Fault("depth", "drop", 20.0, 21.5, {})], seed=0
    )
    return RunData(
        t0_ns=T0,
        schedule=schedule,
        camera_ticks={m: _ticks(pause_s) for m in ("rgb", "depth", "thermal")},
        masks=[],
        shed={},
        inference={},
        diagnostics=[],
        samples={},
        injector={},
        node_log=[
            _log(-5.0, f"{m}: LOST -> OK (recovered: 2 good frames)") for m in ("rgb", "depth", "thermal")
        ]
        + node_log,
        hog=[(T0 + round(a * NS), T0 + round(b * NS)) for a, b in hog_s],
    )


def test_transitions_are_parsed_from_the_node_log() -> None:
    changes = health_changes(
        [
            _log(1.0, "thermal: OK -> LOST (silent for 0.090 s (expected period 0.033 s, learned))"),
            _log(0.5, "output resumed"),
            _log(2.0, "camera: OK -> LOST (not a modality)"),
        ]
    )
    assert [(c.modality, c.old, c.new) for c in changes] == [("thermal", "OK", "LOST")]
    assert changes[0].reason == "silent for 0.090 s (expected period 0.033 s, learned)"


def test_false_transitions_and_detection_delays() -> None:
    period = 1.0 / RATE_HZ
    data = _run(
        [
            _log(10.0 + 0.8 * period, "rgb: OK -> DEGRADED (blackout: mean 0.0 levels < 8.0)"),
            _log(11.6, "rgb: DEGRADED -> OK (recovered: 2 good frames)"),
            # depth drop: LOST 2.3 periods after its first withheld frame, OK 3 periods after the end
            _log(20.0 + 2.8 * period, "depth: OK -> LOST (silent for 0.090 s)"),
            _log(21.5 + 3 * period, "depth: LOST -> OK (recovered: 2 good frames)"),
            # thermal leaves OK during the rgb fault (another modality's window): false, hog on
            _log(10.5, "thermal: OK -> DEGRADED (noise)"),
            _log(10.6, "thermal: DEGRADED -> OK (recovered: 2 good frames)"),
            # rgb leaves OK outside every window, hog off
            _log(30.0, "rgb: OK -> LOST (silent for 0.1 s)"),
            _log(30.2, "rgb: LOST -> OK (recovered: 2 good frames)"),
            # rgb within the recovery margin after its own fault: not false
            _log(11.5 + RECOVERY_S / 2, "rgb: OK -> DEGRADED (x)"),
        ],
        hog_s=[(5.0, 15.0)],
    )
    analysis = Analysis(data, seconds=40.0, rate_hz=RATE_HZ)

    false = analysis.false_transitions()
    assert (false["count_hog_on"], false["count_hog_off"]) == (1, 1)
    on, off = false["hog_on"][0], false["hog_off"][0]
    assert (on["modality"], on["t_s"], on["to"], on["during_other_fault"]) == (
        "thermal",
        10.5,
        "DEGRADED",
        "rgb blackout 10-11.5 s",
    )
    assert (off["modality"], off["t_s"], off["reason"], off["during_other_fault"]) == (
        "rgb",
        30.0,
        "silent for 0.1 s",
        None,
    )

    detection = analysis.detections()
    kinds = detection["per_kind"]
    assert kinds["blackout"]["worst_periods"] == pytest.approx(0.3, abs=0.01)  # from the first frame
    assert kinds["drop"]["worst_periods"] == pytest.approx(2.3, abs=0.01)
    assert kinds["drop"]["worst_ok_again_periods_after_end"] == pytest.approx(3.0, abs=0.01)
    assert kinds["blackout"]["worst_periods_hog_on"] == pytest.approx(0.3, abs=0.01)
    assert kinds["drop"]["worst_periods_hog_off"] == pytest.approx(2.3, abs=0.01)
    assert all(k["met"] for k in kinds.values())
    assert detection["not_exercised"] == []


def test_a_window_the_machine_paused_through_is_not_exercised_and_a_late_first_frame_moves_the_reference():
    """A machine-wide pause: the cameras publish nothing from 9.9 s to 20.2 s. The blackout had no
    frame to damage (not exercised, not undetected); the drop's first withheld frame is the first
    one after the pause, and its delay counts from there."""
    period = 1.0 / RATE_HZ
    data = _run([_log(20.2 + 2.3 * period, "depth: OK -> LOST (silent for 0.090 s)")], [], (9.9, 20.2))
    detection = Analysis(data, seconds=40.0, rate_hz=RATE_HZ).detections()
    assert [w["fault"] for w in detection["not_exercised"]] == ["rgb blackout 10-11.5 s"]
    assert "blackout" not in detection["per_kind"]
    (drop,) = detection["windows"]
    assert drop["delay_periods"] == pytest.approx(2.3 - 0.5, abs=0.02)  # first tick: 20.2 + half a period
    assert detection["per_kind"]["drop"]["met"]


def test_a_fault_the_node_never_reported_is_undetected() -> None:
    data = _run([_log(20.0 + 5 * (1 / RATE_HZ), "depth: OK -> LOST (silent)")], hog_s=[])
    kinds = Analysis(data, seconds=40.0, rate_hz=RATE_HZ).detections()["per_kind"]
    assert (kinds["blackout"]["detected"], kinds["blackout"]["windows"], kinds["blackout"]["met"]) == (
        0,
        1,
        False,
    )
    assert kinds["drop"]["worst_periods"] == pytest.approx(4.5, abs=0.01)
    assert not kinds["drop"]["met"]  # detected, but later than 2.5 periods after its first frame
