"""``bag eval --live`` scoring when the cameras' header stamps run on another clock than the bag's
record time and the node's: simulation time from 0, a camera clock an hour ahead.

No DDS here: what the live collector would have received is built from the bag itself (the
node's outputs are the ground truth, stamped with the anchor's stamp and received on the
system clock, a fixed offset after the record time), and scored by the live path
(``live_eval.read_bag``, ``live_score.score_live``). Every clock must score alike: 4 s at
10 Hz, two 2 s windows, every output scored with mIoU 1, the thermal drop's frames found
without thermal at once. Without the measured time base the same outputs land an hour away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, Writer

from unimrseg_core.bags import BagReader, make_bag
from unimrseg_core.bags import messages as bag_messages
from unimrseg_core.bags.timebase import TimeBase
from unimrseg_core.bags.topics import GROUND_TRUTH
from unimrseg_core.bags.write import DEFAULT_START_NS
from unimrseg_core.faults import Fault, FaultSchedule
from unimrseg_core.image_msg import decode
from unimrseg_ros.live_collect import Collected
from unimrseg_ros.live_eval import read_bag
from unimrseg_ros.live_score import node_outputs, score_live

pytestmark = pytest.mark.timeout(300)

SIZE = (60, 80)
DURATION = 4.0
FAULTS = FaultSchedule([Fault("thermal", "drop", 1.5, 2.5)], seed=1)
HOUR = 3600 * 1_000_000_000
RECEIVE_OFFSET_NS = 7 * HOUR + 12_345_678  # the node's system clock minus the bag's record time
REJECTED = {"rejected.bad_compressed": "3", "rejected_total": "3"}
"""What the node's rgb status says it rejected."""
CASES = {
    # name: (header stamp of the first frame, record time - stamp)
    "same_clock": (DEFAULT_START_NS, 0),
    "camera_clock_an_hour_ahead": (DEFAULT_START_NS + HOUR, -HOUR),
    "simulation_time_from_zero": (0, DEFAULT_START_NS),
}


def _copy(src: Path, dst: Path, record_shift_ns: int) -> Path:
    """``src`` with every record time moved by ``record_shift_ns`` (stamps and custom_data kept)."""
    store = bag_messages.typestore()
    with Reader(src) as reader, Writer(dst, version=9) as writer:
        for key, value in (reader.storage.metadata.custom or {}).items():
            writer.set_custom_data(key, value)
        out = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        for connection, record_ns, data in reader.messages():
            writer.write(out[connection.id], record_ns + record_shift_ns, data)
    return dst


def _as_received(bag: Path, t0_ns: int, time_base: TimeBase) -> Collected:
    """A perfect node's outputs for every ground-truth frame, received 30 ms after the frame's record
    time on the node's clock; frames in the thermal drop say they left thermal out."""
    masks: dict[str, dict[int, tuple[np.ndarray, int]]] = {"class_mask": {}, "saliency": {}}
    status = {}
    kinds = {t.topic: k for k, t in GROUND_TRUTH.items()}
    drop = (t0_ns + round(FAULTS[0].start_s * 1e9), t0_ns + round(FAULTS[0].end_s * 1e9))
    with BagReader(bag) as reader:
        for message in reader.messages(list(kinds)):
            stamp = bag_messages.stamp_to_ns(message.msg.header.stamp)
            received = message.record_ns + 30_000_000 + RECEIVE_OFFSET_NS
            image = np.ascontiguousarray(decode(message.msg, "rgb")[..., 0])
            masks["class_mask" if kinds[message.topic] == "class_mask" else "saliency"][stamp] = (
                image,
                received,
            )
            values = {"anchor": "rgb", "used": "rgb+depth+thermal"}
            if drop[0] <= time_base.stamp_on_clock_ns(stamp, "rgb") < drop[1]:
                values = {"anchor": "rgb", "used": "rgb+depth", "skipped.thermal": "not healthy (LOST)"}
            status[stamp] = (values, received)
    return Collected(
        masks=masks, status=status, diagnostics=_diagnostics(t0_ns), clock_offsets=[RECEIVE_OFFSET_NS]
    )


def _diagnostics(t0_ns: int) -> list:
    """The node's /diagnostics: every camera OK from the start, thermal LOST 0.3 s into the drop and OK
    0.3 s after it (``state_since_s`` on the node's clock, as the node reports it)."""

    start_s = (t0_ns + RECEIVE_OFFSET_NS) / 1e9

    def report(at_ns: int, thermal: str) -> tuple[int, list]:
        node_ns = at_ns + RECEIVE_OFFSET_NS
        since = {"rgb": ("OK", start_s), "depth": ("OK", start_s), "thermal": (thermal, node_ns / 1e9)}
        rows = [
            (f"unimrseg_node: {m}", 0, {"state": state, "state_since_s": repr(at_s)})
            for m, (state, at_s) in since.items()
        ]
        rows[0][2].update(REJECTED)  # counts since activation: the last report holds the run's
        return node_ns, rows

    lost = t0_ns + round((FAULTS[0].start_s + 0.3) * 1e9)
    back = t0_ns + round((FAULTS[0].end_s + 0.3) * 1e9)
    return [report(t0_ns, "OK"), report(lost, "LOST"), report(back, "OK")]


def _score(bag: Path, *, measured: bool = True) -> dict:
    """The live scoring of a perfect node; ``measured`` False: as before the time base (no stamp
    offsets, the schedule's zero from ``bag make``'s start stamp as it is)."""
    live_bag = read_bag(bag, None, None, None)
    time_base = live_bag.time_base if measured else TimeBase()
    t0_ns = live_bag.t0_ns if measured else time_base.schedule_zero_ns(0, live_bag.info["sequence"])
    collected = _as_received(bag, live_bag.t0_ns, live_bag.time_base)
    result = score_live(
        bag,
        remap=None,
        time_base=time_base,
        schedule=live_bag.schedule,
        t0_ns=t0_ns,
        scene_s=live_bag.scene_s,
        window_s=2.0,
        collected=collected,
        outputs=node_outputs(collected, RECEIVE_OFFSET_NS),
        offset_ns=RECEIVE_OFFSET_NS,
    )
    result["bag"] = live_bag.info
    return result


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("live_time_bases")
    out = {}
    for name, (start_ns, shift_ns) in CASES.items():
        made = root / f"made_{name}"
        make_bag(
            made,
            duration_s=DURATION,
            rate_hz=10.0,
            size=SIZE,
            faults=FAULTS,
            start_ns=start_ns,
            progress=False,
        )
        out[name] = _copy(made, root / name, shift_ns)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_live_scores_alike_whatever_clock_the_camera_stamps_run_on(bags, name) -> None:
    result = _score(bags[name])
    summary = result["summary"]
    assert 3.8 <= summary["span_s"] <= 4.1, summary["span_s"]
    assert len(result["windows"]) == 2
    assert summary["all"]["outputs"] == summary["all"]["scored"] == round(DURATION * 10)
    assert summary["all"]["miou"] == pytest.approx(1.0)
    assert summary["all"]["anchor_rate_hz"] == pytest.approx(10.0, abs=0.5)
    (fault,) = result["faults"]
    assert 0.0 <= fault["left_out"]["first_frame_without_s"] <= 0.1
    assert fault["detection"]["delay_s"] == pytest.approx(0.3, abs=0.01)
    assert fault["recovery"]["delay_s"] == pytest.approx(0.3, abs=0.01)
    offsets = result["bag"]["time_base"]["stamp_minus_record_s"]
    assert set(offsets) == {"rgb", "depth", "thermal"}
    assert result["bag"]["warnings"] == []
    assert result["inputs"]["rgb"]["rejected"] == {"bad_compressed": 3}  # the node's count, by reason
    assert result["summary"]["rejected"] == {"rgb": 3, "depth": 0, "thermal": 0}


def test_without_the_measured_time_base_the_stamps_of_a_camera_an_hour_ahead_land_an_hour_away(bags) -> None:
    """The test above can fail: on the raw stamps, the node's health reports (on its own clock) are an
    hour away from the fault schedule, so the drop is never seen detected."""
    wrong = _score(bags["camera_clock_an_hour_ahead"], measured=False)
    (fault,) = wrong["faults"]
    assert fault["detection"] is None or abs(fault["detection"]["delay_s"] - 0.3) > 1
