"""``make_bag`` / ``unimrseg bag make``: a rosbag2 round trip in both storages, read back with rosbags'
own Reader: topics, counts, stamps, encodings, images equal to the generated ones, faults visible."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import Reader

from unimrseg_core.bags import FAULTS_SIDECAR, make_bag
from unimrseg_core.bags.messages import stamp_to_ns, typestore
from unimrseg_core.bags.topics import (
    GROUND_TRUTH,
    IMAGE_TYPE,
    SENSORS,
    STRING_TYPE,
)
from unimrseg_core.bags.write import DEFAULT_START_NS
from unimrseg_core.cli import main
from unimrseg_core.data.sequence import SequenceGenerator
from unimrseg_core.faults import Fault, FaultSchedule
from unimrseg_core.image_msg import decode
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.topics import FAULT_EVENTS, FAULT_TIMELINE

SIZE = (64, 96)
RATE = 10.0
DURATION = 3.0
SEED = 11
SEGMENT = 1.5  # a scene change inside the bag
MS = 1_000_000
FAULTS = FaultSchedule(
    [
        Fault("thermal", "drop", 0.5, 1.0),
        Fault("depth", "freeze", 1.0, 1.5),
        Fault("rgb", "blackout", 1.5, 2.0),
        Fault("rgb", "delay", 2.2, 2.6, {"delay_s": 0.25}),
        Fault("thermal", "rate_drop", 2.0, 3.0, {"rate_hz": 3.0}),
        Fault("depth", "depth_holes", 2.0, 2.5, {"fraction": 0.5}),
    ],
    seed=2,
)


def _read(path: Path) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(record time ns, message)] in bag order."""
    out: dict[str, list[tuple[int, object]]] = defaultdict(list)
    store = typestore()
    with Reader(path) as reader:
        for connection, timestamp, raw in reader.messages():
            out[connection.topic].append((timestamp, store.deserialize_cdr(raw, connection.msgtype)))
    return out


@pytest.fixture(scope="module")
def frames():
    seq = SequenceGenerator(SIZE, SEED, rate_hz=RATE, segment_s=SEGMENT)
    return [seq.frame(k) for k in range(seq.frame_count(DURATION))]


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def bag(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "bag"
    summary = make_bag(
        out,
        duration_s=DURATION,
        rate_hz=RATE,
        size=SIZE,
        faults=FAULTS,
        storage=request.param,
        seed=SEED,
        segment_s=SEGMENT,
        progress=False,
    )
    return summary, _read(out)


def test_topics_types_and_metadata(bag):
    summary, _ = bag
    with Reader(summary.path) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert reader.message_count == sum(summary.counts.values())
        assert reader.start_time == DEFAULT_START_NS
    image_topics = [t.topic for t in (*SENSORS.values(), *GROUND_TRUTH.values())]
    assert types == {
        **dict.fromkeys(image_topics, IMAGE_TYPE),
        FAULT_TIMELINE: STRING_TYPE,
        FAULT_EVENTS: STRING_TYPE,
    }
    info = yaml.safe_load((summary.path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == summary.storage
    assert FaultSchedule.from_yaml(info["custom_data"]["unimrseg.faults"]) == FAULTS
    sequence = json.loads(info["custom_data"]["unimrseg.sequence"])
    assert sequence["seed"] == SEED
    assert sequence["size"] == list(SIZE)
    assert sequence["frames"] == 30
    assert FaultSchedule.load(summary.path / FAULTS_SIDECAR) == FAULTS
    assert not list(summary.path.parent.glob(".*partial*"))


def test_counts_and_time_order(bag):
    summary, topics = bag
    assert summary.frames == 30
    counts = {topic: len(msgs) for topic, msgs in topics.items()}
    assert counts == summary.counts
    # thermal: 5 dropped (0.5-1.0 s), then 3 of 10 frames at 3 Hz (2.0-3.0 s)
    assert counts == {
        "rgb/image": 30,
        "depth/image": 30,
        "thermal/image": 30 - 5 - 7,
        "ground_truth/class_mask": 30,
        "ground_truth/saliency": 30,
        FAULT_TIMELINE: 1,
        FAULT_EVENTS: 11,  # 6 starts, 5 ends up to the last frame (the rate drop ends at 3.0 s)
    }
    for msgs in topics.values():
        times = [t for t, _ in msgs]
        assert times == sorted(times)


def test_headers_encodings_and_images_equal_the_generated_ones(bag, frames):
    _, topics = bag
    healthy = {m: {} for m in MODALITIES}
    for modality in MODALITIES:
        spec = SENSORS[modality]
        for record_ns, msg in topics[spec.topic]:
            assert msg.encoding == spec.encoding
            assert msg.header.frame_id == spec.frame_id
            assert (msg.height, msg.width) == SIZE
            stamp = stamp_to_ns(msg.header.stamp)
            if stamp == record_ns:
                healthy[modality][(stamp - DEFAULT_START_NS) // (100 * MS)] = decode(msg, modality)
    clean = {"rgb": (0, 3, 9, 12, 28), "depth": (0, 3, 9, 16, 27), "thermal": (0, 3, 16, 27)}  # no fault then
    for k in clean["rgb"]:
        np.testing.assert_array_equal(healthy["rgb"][k], frames[k].sample.rgb)
    for k in clean["depth"]:
        np.testing.assert_allclose(healthy["depth"][k], frames[k].sample.depth, rtol=0, atol=1e-6)
    for k in clean["thermal"]:
        np.testing.assert_allclose(healthy["thermal"][k], frames[k].sample.thermal, rtol=0, atol=1e-3)
    for name, key in (("class_mask", "label"), ("saliency", "saliency")):
        msgs = topics[GROUND_TRUTH[name].topic]
        assert [stamp_to_ns(m.header.stamp) for _, m in msgs] == [
            DEFAULT_START_NS + k * 100 * MS for k in range(30)
        ]
        for k in (0, 20):
            expected = getattr(frames[k].sample, key) * (255 if name == "saliency" else 1)
            np.testing.assert_array_equal(decode_mono8(msgs[k][1]), expected)


def decode_mono8(msg) -> np.ndarray:
    assert msg.encoding == "mono8"
    return np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width)


def _by_record_time(topics, topic):
    return {round((t - DEFAULT_START_NS) / (100 * MS)): m for t, m in topics[topic]}


def test_faults_are_visible_in_the_bag(bag, frames):
    _, topics = bag
    thermal = _by_record_time(topics, "thermal/image")
    assert not {5, 6, 7, 8, 9} & set(thermal)  # drop
    assert {k for k in thermal if k >= 20} == {20, 24, 27}  # rate_drop at 3 Hz
    depth = _by_record_time(topics, "depth/image")
    for k in range(10, 15):  # freeze: frame 9 again, with its stamp
        assert stamp_to_ns(depth[k].header.stamp) == DEFAULT_START_NS + 9 * 100 * MS
        np.testing.assert_array_equal(np.asarray(depth[k].data), np.asarray(depth[9].data))
    assert stamp_to_ns(depth[15].header.stamp) == DEFAULT_START_NS + 15 * 100 * MS
    holes = decode(depth[21], "depth")
    assert (holes == 0).mean() > (frames[21].sample.depth == 0).mean() + 0.2
    rgb = topics["rgb/image"]
    stamps = {round((stamp_to_ns(m.header.stamp) - DEFAULT_START_NS) / (100 * MS)): (t, m) for t, m in rgb}
    for k in range(15, 20):  # blackout
        assert not decode(stamps[k][1], "rgb").any()
    assert decode(stamps[20][1], "rgb").any()
    for k in range(22, 26):  # delay: stamp kept, recorded 250 ms later
        assert stamps[k][0] - DEFAULT_START_NS == k * 100 * MS + 250 * MS
    assert stamps[26][0] - DEFAULT_START_NS == 26 * 100 * MS + 150 * MS  # behind the queue, in order
    timeline = topics[FAULT_TIMELINE][0]
    assert timeline[0] == DEFAULT_START_NS
    assert FaultSchedule.from_yaml(timeline[1].data) == FAULTS
    first_event = topics[FAULT_EVENTS][0]
    assert first_event[0] == DEFAULT_START_NS + 500 * MS
    assert yaml.safe_load(first_event[1].data) == {
        "t_s": 0.5,
        "event": "start",
        "index": 0,
        "modality": "thermal",
        "kind": "drop",
    }


def test_refuses_to_overwrite(tmp_path):
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        make_bag(out, duration_s=0.2, size=SIZE, progress=False)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(ValueError, match="storage"):
        make_bag(tmp_path / "other", duration_s=0.2, size=SIZE, storage="zip", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]


def test_cli_makes_a_bag_and_rejects_bad_input(tmp_path, capsys):
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - {modality: rgb, kind: drop, start_s: 0.1, end_s: 0.2}\n")
    out = tmp_path / "bag"
    args = ["bag", "make", "--out", str(out), "--duration", "0.3", "--size", "32x48", "--quiet"]
    assert main([*args, "--faults", str(faults), "--storage", "sqlite3", "--seed", "3"]) == 0
    assert FaultSchedule.load(out / FAULTS_SIDECAR)[0].kind == "drop"
    assert len(_read(out)["rgb/image"]) == 2
    capsys.readouterr()

    assert main(args) == 2  # exists
    assert "refusing to overwrite" in capsys.readouterr().err
    faults.write_text("faults:\n  - {modality: rgb, kind: drop, start_s: 2, end_s: 1}\n")
    assert main([*args[:3], str(tmp_path / "b2"), *args[4:], "--faults", str(faults)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"unimrseg: error: {faults}: faults[0].end_s: must be > start_s (2), got 1"
    assert not (tmp_path / "b2").exists()
    with pytest.raises(SystemExit) as info:
        main(["bag", "make", "--out", str(tmp_path / "b3"), "--rate", "0"])
    assert info.value.code == 2
