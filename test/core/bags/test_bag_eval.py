"""``unimrseg bag eval`` offline: a faulted bag replayed through the node's logic and the shipped model.

One short bag (8 s at 10 Hz, 120x160; the Segmenter resizes to the model's 240x320)
with a thermal drop and a depth freeze is evaluated once; the tests check the faults
were detected and recovered within 3 frame periods, the output rate held, the scores
are sane and the result is JSON-ready, that the CLI run gives the very same numbers
(determinism), that a bag written by rosbags' own Writer under a robot's topic names
is read through a remap, and that broken bags fail fast with a clear BagError.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from unimrseg_core.bags import BagError, BagReader, make_bag
from unimrseg_core.bags import messages as bag_messages
from unimrseg_core.bags.evaluate import RESULT_FORMAT, evaluate_bag
from unimrseg_core.bags.read import parse_remap
from unimrseg_core.bags.score import Output, Scoreboard
from unimrseg_core.bags.timeline import write_timeline
from unimrseg_core.bags.topics import IMAGE_TYPE, STRING_TYPE, ImageTopic
from unimrseg_core.cli import main
from unimrseg_core.data.sequence import SequenceGenerator
from unimrseg_core.faults import Fault, FaultSchedule
from unimrseg_core.health import HealthState, Transition
from unimrseg_core.pipeline import DEFAULT_POLL_RATE_HZ
from unimrseg_core.runtime.segmenter import Segmenter
from unimrseg_core.runtime.selection import BackendOptions, select_backend
from unimrseg_core.sync import SyncConfig

pytestmark = pytest.mark.timeout(300)

SIZE = (120, 160)
RATE = 10.0
DURATION = 8.0
FAULTS = FaultSchedule(
    [Fault("thermal", "drop", 2.0, 3.5), Fault("depth", "freeze", 4.5, 6.0)],
    seed=1,
)
VOLATILE = ("seconds", "latency")  # wall-clock numbers; everything else must repeat exactly


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter(select_backend("onnxruntime", BackendOptions(threads=1)).backend)


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "faulted"
    make_bag(out, duration_s=DURATION, rate_hz=RATE, size=SIZE, faults=FAULTS, progress=False)
    return out


@pytest.fixture(scope="module")
def result(bag, segmenter) -> dict:
    return evaluate_bag(bag, segmenter=segmenter)


def _stable(result: dict) -> dict:
    out = {k: v for k, v in result.items() if k not in VOLATILE}
    out["backend"] = {k: v for k, v in result["backend"].items() if k != "notes"}
    return out


# --------------------------------------------------------------------------- the faulted bag


def test_drop_and_freeze_detected_and_recovered_within_three_periods(result):
    drop, freeze = result["faults"]
    assert (drop["kind"], freeze["kind"]) == ("drop", "freeze")
    assert drop["detection"]["state"] == "LOST"
    assert "silent" in drop["detection"]["reason"]
    assert freeze["detection"]["state"] == "DEGRADED"
    assert "frozen" in freeze["detection"]["reason"]
    for fault in (drop, freeze):
        assert fault["period_s"] == pytest.approx(0.1, abs=1e-3)
        for event in (fault["detection"], fault["recovery"]):
            assert 0.0 < event["delay_s"] <= 3 * fault["period_s"] + 1e-9, fault
            assert 0.0 < event["delay_periods"] <= 3.0
        assert fault["recovery"]["state"] == "OK"
    delays = [r for r in result["targets"]["rows"] if r["target"].endswith("delay_periods")]
    assert len(delays) == 4
    assert all(r["passed"] for r in delays)


def test_outputs_continue_and_never_use_the_faulted_sensor(result):
    drop, freeze = result["faults"]
    for fault in (drop, freeze):
        during = fault["during"]
        assert fault["single_sensor"]
        assert during["anchor_frames"] == round((fault["end_s"] - fault["start_s"]) * RATE)
        assert during["rate_ratio"] >= 0.95
        assert during["output_rate_hz"] >= 0.95 * during["anchor_rate_hz"]
        # neither the silent thermal camera nor the frozen depth images reach the model
        assert all(fault["modality"] not in used.split("+") for used in during["used"]), during["used"]
    assert result["summary"]["all"]["rate_ratio"] >= 0.95


def test_scores_are_sane_per_phase_and_window(result):
    summary = result["summary"]
    healthy = summary["healthy"]
    assert 0.45 <= healthy["miou"] <= 0.98
    assert 0.0 <= healthy["mae"] <= 0.2
    assert 0.3 <= healthy["s_measure"] <= 1.0
    assert summary["unscored_outputs"] == 0
    assert summary["all"]["scored"] == summary["all"]["outputs"]
    assert summary["span_s"] == pytest.approx(DURATION)
    phases = {p["phase"]: p for p in result["phases"]}
    assert list(phases) == ["healthy", "thermal drop 2-3.5 s", "depth freeze 4.5-6 s restamp=False"]
    assert sum(p["duration_s"] for p in phases.values()) == pytest.approx(DURATION)
    for phase in phases.values():
        assert phase["outputs"] > 0
        assert phase["miou"] is not None
        assert phase["s_measure"] is not None
    windows = result["windows"]
    assert [w["start_s"] for w in windows] == [0.0, 2.0, 4.0, 6.0]
    assert sum(w["outputs"] for w in windows) == summary["all"]["outputs"]
    assert windows[1]["faults"] == [0]
    assert windows[2]["faults"] == [1]
    assert windows[3]["faults"] == []


def test_result_is_json_ready_and_says_what_ran(result, bag):
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text) == result
    assert (result["format"], result["version"], result["mode"]) == (RESULT_FORMAT, 1, "offline")
    assert result["bag"]["path"] == str(bag)
    assert result["bag"]["storage"] == "mcap"
    assert result["schedule"]["source"] == "custom_data unimrseg.faults"
    assert FaultSchedule.from_dict({"seed": 1, "faults": result["schedule"]["faults"]}) == FAULTS
    assert result["backend"]["name"] == "onnxruntime"
    assert len(result["backend"]["model_sha256"]) == 64
    assert result["versions"]["rosbags"]
    assert result["versions"]["unimrseg"]
    assert result["config"]["poll_rate_hz"] == DEFAULT_POLL_RATE_HZ
    assert result["latency"]["segmenter_ms"]["p50"] > 0
    transitions = result["health"]["transitions"]
    assert [t["t_s"] for t in transitions] == sorted(t["t_s"] for t in transitions)


def test_cli_writes_json_and_timeline_and_repeats_the_numbers(result, bag, tmp_path, capsys):
    out = tmp_path / "eval.json"
    plots = tmp_path / "plots"
    code = main(
        ["bag", "eval", str(bag), "--json", str(out), "--plots", str(plots), "--backend", "onnxruntime"]
    )
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "targets: " in printed
    assert "targets:" in printed
    again = json.loads(out.read_text())
    assert _stable(again) == _stable(result)  # no clock, no DDS: the same bag gives the same result
    png = plots / "timeline.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


def test_timeline_from_a_result_file(result, tmp_path):
    path = write_timeline(json.loads(json.dumps(result)), tmp_path / "deep" / "t.png")
    assert path.is_file()
    assert path.stat().st_size > 20_000


def test_live_mode_with_an_unreadable_bag_fails_at_once_naming_it(tmp_path, capsys):
    missing = tmp_path / "no_such_bag"
    assert main(["bag", "eval", str(missing), "--live"]) == 2  # before any process is started
    err = capsys.readouterr().err.strip()
    assert str(missing) in err
    assert len(err.splitlines()) == 1


# --------------------------------------------------------------------------- a robot's bag

ROBOT_TOPICS = {
    "rgb": ImageTopic("/camera/color/image_raw", "rgb8", "camera_color_optical_frame", ""),
    "depth": ImageTopic(
        "/camera/aligned_depth_to_color/image_raw", "16UC1", "camera_color_optical_frame", ""
    ),
    "thermal": ImageTopic("/lepton/image_raw", "mono16", "lepton_optical_frame", ""),
}
ROBOT_LABELS = ImageTopic("/annotations/semantic", "mono8", "camera_color_optical_frame", "")
REMAP = {
    **{t.topic: f"{m}/image" for m, t in ROBOT_TOPICS.items()},
    ROBOT_LABELS.topic: "ground_truth/class_mask",
}
ROBOT_START_NS = 1_700_000_000_123_000_000


def _robot_bag(path: Path, *, rgb_type: str = IMAGE_TYPE, frames: int = 12) -> Path:
    """A bag as ``ros2 bag record`` on a robot would write it: other names, an extra topic, sqlite3."""
    store = bag_messages.typestore()
    seq = SequenceGenerator((48, 64), seed=5, rate_hz=RATE)
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conns = {
            m: writer.add_connection(t.topic, IMAGE_TYPE, typestore=store) for m, t in ROBOT_TOPICS.items()
        }
        if rgb_type != IMAGE_TYPE:
            conns["rgb"] = writer.add_connection("/camera/color/compressed", rgb_type, typestore=store)
        labels = writer.add_connection(ROBOT_LABELS.topic, IMAGE_TYPE, typestore=store)
        chatter = writer.add_connection("/rosout_text", STRING_TYPE, typestore=store)
        for k in range(frames):
            stamp = ROBOT_START_NS + k * 100_000_000
            sample = seq.frame(k).sample
            for modality, topic in ROBOT_TOPICS.items():
                if modality == "rgb" and rgb_type != IMAGE_TYPE:
                    msg = store.types[rgb_type](
                        header=bag_messages.header(stamp, topic.frame_id),
                        format="jpeg",
                        data=np.zeros(4, np.uint8),
                    )
                    writer.write(conns["rgb"], stamp + 1_000_000, bag_messages.serialize(msg))
                    continue
                msg = bag_messages.image_msg(topic, getattr(sample, modality), stamp, modality=modality)
                writer.write(conns[modality], stamp + 2_000_000, bag_messages.serialize(msg))
            label = bag_messages.image_msg(ROBOT_LABELS, sample.label.astype(np.uint8), stamp)
            writer.write(labels, stamp + 3_000_000, bag_messages.serialize(label))
            writer.write(chatter, stamp + 4_000_000, bag_messages.serialize(bag_messages.string_msg("hi")))
    return path


@pytest.fixture(scope="module")
def robot_bag(tmp_path_factory) -> Path:
    return _robot_bag(tmp_path_factory.mktemp("robot") / "robot_bag")


def test_a_robot_bag_is_read_through_a_remap(robot_bag, segmenter):
    with BagReader(robot_bag, remap=REMAP) as bag:
        assert bag.storage == "sqlite3"
        assert bag.topics == {new: old for old, new in REMAP.items()}
        assert bag.fault_schedule() == (None, None)
        seen = [(m.topic, m.record_ns) for m in bag.messages()]
    assert len(seen) == 12 * 4
    assert [t for _, t in seen] == sorted(t for _, t in seen)
    result = evaluate_bag(robot_bag, segmenter=segmenter, remap=REMAP, window_s=0.5)
    assert result["schedule"] == {
        "source": None,
        "t0_ns": ROBOT_START_NS + 2_000_000,
        "seed": None,
        "faults": [],
    }
    summary = result["summary"]
    assert summary["all"]["outputs"] >= 10
    assert summary["all"]["miou"] is not None
    assert summary["all"]["s_measure"] is None  # this robot labels classes only
    assert [p["phase"] for p in result["phases"]] == ["healthy"]
    assert result["faults"] == []
    assert result["bag"]["topics"]["rgb/image"]["bag_topic"] == "/camera/color/image_raw"


def test_a_robot_bag_without_remap_names_the_fix(robot_bag, segmenter):
    with pytest.raises(BagError, match=r"no camera topic.*/camera/color/image_raw.*--remap"):
        evaluate_bag(robot_bag, segmenter=segmenter)


def test_remap_mistakes_are_named(robot_bag):
    with pytest.raises(BagError, match=r"remap target 'rgb/img' is not a topic"):
        BagReader(robot_bag, remap={"/camera/color/image_raw": "rgb/img"})
    with pytest.raises(
        BagError, match=r"remap source '/?camera/colour' is not in the bag; its topics: /annotations"
    ):
        BagReader(robot_bag, remap={"/camera/colour": "rgb/image"}).open()
    with pytest.raises(BagError, match="both read as 'rgb/image'"):
        BagReader(
            robot_bag, remap={"/lepton/image_raw": "rgb/image", "/camera/color/image_raw": "rgb/image"}
        ).open()
    assert parse_remap(["/a:=rgb/image", "b:=depth/image"]) == {"/a": "rgb/image", "b": "depth/image"}
    for bad in ("a=b", ":=b", "a:="):
        with pytest.raises(ValueError, match="OLD:=NEW"):
            parse_remap([bad])


def test_a_topic_of_the_wrong_type_is_named(tmp_path):
    path = _robot_bag(tmp_path / "compressed", rgb_type="sensor_msgs/msg/CompressedImage", frames=2)
    with pytest.raises(
        BagError,
        match=r"'/rosout_text'.*String.*expected 'sensor_msgs/msg/Image' or '.*CompressedImage'",
    ):
        BagReader(path, remap={"/rosout_text": "rgb/image"}).open()
    # a CompressedImage camera is read (test_bag_compressed.py scores them); this one's payload is no image
    with BagReader(path, remap={"/camera/color/compressed": "rgb/image"}) as bag:
        assert bag.transports["rgb"] == "compressed"


# --------------------------------------------------------------------------- broken bags


def _storage_file(bag: Path) -> Path:
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


def _broken(kind: str, bag: Path, robot_bag: Path, tmp_path: Path) -> Path:
    source = robot_bag if "sqlite3" in kind else bag
    path = tmp_path / kind
    shutil.copytree(source, path)
    data = _storage_file(path)
    size = data.stat().st_size
    if kind.startswith("truncated"):
        with data.open("r+b") as fh:
            fh.truncate(size // 2)
    elif kind == "garbage_mcap":
        data.write_bytes(bytes(range(256)) * 64)
    elif kind == "no_metadata":
        (path / "metadata.yaml").unlink()
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated_mcap", r"cannot open: truncated or unfinished recording .*recorder killed"),
        ("truncated_sqlite3", r"cannot open: corrupt storage file .*malformed"),
        ("garbage_mcap", r"cannot open: not an mcap file or corrupt"),
        (
            "no_metadata",
            r"no metadata\.yaml: not a rosbag2 bag directory, or a recording that did not finish",
        ),
    ],
)
def test_broken_bags_give_a_clear_error_fast(kind, reason, bag, robot_bag, tmp_path, segmenter):
    path = _broken(kind, bag, robot_bag, tmp_path)
    with pytest.raises(BagError, match=reason) as info:
        evaluate_bag(path, segmenter=segmenter, remap=REMAP if "sqlite3" in kind else None)
    assert str(info.value).startswith(f"bag {path}: ")


@pytest.mark.timeout(60)
def test_cli_reports_a_bad_bag_in_one_line(tmp_path, capsys):
    assert main(["bag", "eval", str(tmp_path / "missing"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"unimrseg: error: bag {tmp_path / 'missing'}: no such file or directory"
    assert main(["bag", "eval", str(tmp_path), "--remap", "nonsense", "--quiet"]) == 2
    assert "remap must be OLD:=NEW" in capsys.readouterr().err


# --------------------------------------------------------------------------- scoring alone


def _output(stamp_ns: int, used: str = "rgb+depth+thermal") -> Output:
    ids = np.zeros((4, 4), np.uint8)
    return Output(stamp_ns, stamp_ns, "rgb", used, ids, np.zeros((4, 4), np.uint8))


def test_scoreboard_sets_health_against_the_schedule():
    ms = 1_000_000
    schedule = FaultSchedule(
        [Fault("rgb", "blackout", 1.0, 2.0), Fault("thermal", "noise", 1.0, 3.0, {"sigma": 0.1})]
    )
    board = Scoreboard(schedule, 0, window_s=1.0)
    for k in range(40):  # 10 Hz for 4 s; rgb frames 1.5-1.7 s never became outputs
        for modality in ("rgb", "depth", "thermal"):
            board.add_input(modality, k * 100 * ms)
        if not 15 <= k < 18:
            board.add_output(_output(k * 100 * ms))
        board.add_truth("class_mask", k * 100 * ms, np.zeros((4, 4), np.uint8), k * 100 * ms)
        board.add_truth("saliency", k * 100 * ms, np.zeros((4, 4), np.uint8), k * 100 * ms)
    ok, degraded = HealthState.OK, HealthState.DEGRADED
    board.add_transitions(
        [
            Transition("rgb", 100 * ms, HealthState.LOST, ok, "recovered"),
            Transition("thermal", 100 * ms, HealthState.LOST, ok, "recovered"),
            Transition("rgb", 1000 * ms, ok, degraded, "blackout"),
            Transition("rgb", 2100 * ms, degraded, ok, "recovered: 2 good frames"),
        ]
    )
    board.note_period(0, 100 * ms)
    result = board.result()
    blackout, noise = result["faults"]
    assert blackout["detection"] == {
        "t_s": 1.0,
        "delay_s": 0.0,
        "delay_periods": 0.0,
        "state": "DEGRADED",
        "reason": "blackout",
    }
    assert blackout["recovery"]["delay_periods"] == pytest.approx(1.0)
    assert noise["detection"] is None
    assert noise["recovery"] is None
    assert not blackout["single_sensor"]
    assert not noise["single_sensor"]
    assert blackout["during"]["outputs"] == 7
    assert blackout["during"]["rate_ratio"] == pytest.approx(0.7)
    assert [p["phase"] for p in result["phases"]] == [
        "healthy",
        "rgb blackout 1-2 s + thermal noise 1-3 s sigma=0.1",
        "thermal noise 1-3 s sigma=0.1",
    ]
    rows = {(r["fault"], r["target"]): r["passed"] for r in result["targets"]["rows"]}
    assert rows[("rgb blackout 1-2 s", "detection_delay_periods")] is True
    assert result["targets"]["passed"] is True  # both are multi-sensor: no rate or mIoU target
    assert [w["outputs"] for w in result["windows"]] == [10, 7, 10, 10]
    assert result["summary"]["healthy"]["miou"] == 1.0
    assert result["summary"]["all"]["mae"] == 0.0


def test_pipeline_defaults_are_the_nodes():
    parameters = pytest.importorskip("unimrseg_ros.parameters")  # ROS-free module of the ROS package
    defaults = {p.name: p.default for p in parameters.PARAMS}
    assert defaults["health_poll_rate_hz"] == DEFAULT_POLL_RATE_HZ
    sync = SyncConfig()
    assert defaults["sync.anchor_priority"] == list(sync.anchor_priority)
    for name in ("max_age", "max_skew", "wait"):
        assert round(defaults[f"sync.{name}_seconds"] * 1e9) == getattr(sync, f"{name}_ns")
