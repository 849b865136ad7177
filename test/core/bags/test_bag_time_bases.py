"""``bag eval`` on bags whose header stamps run on another clock than their record times.

One 4 s, 10 Hz bag with a thermal drop is written by ``bag make`` and copied with
rosbags' Writer onto other record times: stamps equal to record times, stamps a year
behind (a recording of a replay, which keeps no custom_data), stamps an hour ahead (a
camera clock), simulation time from 0. Each copy must score as the original: 4 s at
10 Hz, two 2 s windows, the fault detected as quickly, the same mIoU, and the JSON
says which clock it scored on and the measured offset.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader, Writer

from unimrseg_core.bags import make_bag
from unimrseg_core.bags import messages as bag_messages
from unimrseg_core.bags.evaluate import evaluate_bag
from unimrseg_core.bags.write import DEFAULT_START_NS
from unimrseg_core.faults import Fault, FaultSchedule
from unimrseg_core.runtime.segmenter import Segmenter
from unimrseg_core.runtime.selection import BackendOptions, select_backend

pytestmark = pytest.mark.timeout(300)

SIZE = (60, 80)
RATE = 10.0
DURATION = 4.0
FAULTS = FaultSchedule([Fault("thermal", "drop", 1.5, 2.5)], seed=1)
HOUR = 3600 * 1_000_000_000
YEAR = 365 * 24 * HOUR
CASES = {
    # name: (header stamp of the first frame, record time - stamp, keep bag make's custom_data)
    "same_clock": (DEFAULT_START_NS, 0, True),
    "replay_recorded_a_year_later": (DEFAULT_START_NS, YEAR, False),
    "camera_clock_an_hour_ahead": (DEFAULT_START_NS + HOUR, -HOUR, True),
    "simulation_time_from_zero": (0, DEFAULT_START_NS, True),
}


def _copy(src: Path, dst: Path, record_shift_ns: int, *, custom: bool) -> Path:
    """``src`` rewritten with every record time moved by ``record_shift_ns`` (stamps untouched)."""
    store = bag_messages.typestore()
    with Reader(src) as reader, Writer(dst, version=9) as writer:
        if custom:
            for key, value in (reader.storage.metadata.custom or {}).items():
                writer.set_custom_data(key, value)
        out = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        for connection, record_ns, data in reader.messages():
            writer.write(out[connection.id], record_ns + record_shift_ns, data)
    return dst


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter(select_backend("onnxruntime", BackendOptions(threads=1)).backend)


@pytest.fixture(scope="module")
def results(tmp_path_factory, segmenter) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("time_bases")
    made: dict[int, Path] = {}
    out = {}
    for name, (start_ns, shift_ns, custom) in CASES.items():
        if start_ns not in made:
            made[start_ns] = root / f"made_{len(made)}"
            make_bag(
                made[start_ns],
                duration_s=DURATION,
                rate_hz=RATE,
                size=SIZE,
                faults=FAULTS,
                start_ns=start_ns,
                progress=False,
            )
        bag = _copy(made[start_ns], root / name, shift_ns, custom=custom)
        out[name] = evaluate_bag(bag, segmenter=segmenter, faults=None if custom else FAULTS)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_span_rate_and_windows_are_those_of_the_recording(results, name):
    result = results[name]
    summary = result["summary"]
    assert summary["span_s"] == pytest.approx(DURATION)
    assert summary["all"]["anchor_rate_hz"] == pytest.approx(RATE)
    assert summary["all"]["outputs"] >= round(DURATION * RATE) - 1  # the first frame has no health yet
    assert summary["all"]["scored"] == summary["all"]["outputs"]
    assert [w["start_s"] for w in result["windows"]] == [0.0, 2.0]
    assert [w["anchor_frames"] for w in result["windows"]] == [20, 20]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_json_names_the_clock_and_the_measured_offset(results, name):
    _, shift_ns, _ = CASES[name]
    time_base = results[name]["bag"]["time_base"]
    assert time_base["scored_in"].startswith("record time")
    for modality in ("rgb", "depth", "thermal"):
        assert time_base["stamp_minus_record_ns"][modality] == -shift_ns
    assert time_base["warnings"] == []
    assert results[name]["schedule"]["t0_ns"] == results[name]["bag"]["start_ns"]


@pytest.mark.parametrize("name", sorted(set(CASES) - {"same_clock"}))
def test_any_clock_scores_exactly_as_the_same_clock(results, name):
    same, other = results["same_clock"], results[name]
    assert other["summary"]["all"]["miou"] == same["summary"]["all"]["miou"]
    assert [p["outputs"] for p in other["phases"]] == [p["outputs"] for p in same["phases"]]
    (fault,) = other["faults"]
    assert fault["detection"]["delay_s"] == same["faults"][0]["detection"]["delay_s"]
    assert 0.0 < fault["detection"]["delay_periods"] <= 3.0
    assert other["targets"]["passed"] == same["targets"]["passed"]
