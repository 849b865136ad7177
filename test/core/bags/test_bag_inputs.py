"""Robot bags the readers used to get wrong: a metadata.yaml whose QoS differs from its storage file's
(rosbags yielded no message at all), an index listing more messages than the storage holds (a short
read went unnoticed), a rosbag2 directory named ``*.bag`` (refused as ROS 1). Each test writes its
own bag with rosbags' Writer and reads it through both BagReader (eval) and RawBag (play)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer

from unimrseg_core.bags import BagError, BagReader
from unimrseg_core.bags import messages as bag_messages
from unimrseg_core.bags.raw import RawBag
from unimrseg_core.bags.topics import IMAGE_TYPE, SENSORS

COUNT = 20
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}


def _qos(reliability: QosReliability) -> Qos:
    zero = QosTime(sec=0, nsec=0)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=10,
        reliability=reliability,
        durability=QosDurability.VOLATILE,
        deadline=zero,
        lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


def _write(path: Path, storage: str) -> Path:
    """``COUNT`` rgb images offered reliable, as a driver's recording stores them."""
    with Writer(path, version=9, storage_plugin=STORAGES[storage]) as writer:
        rgb = writer.add_connection(
            "/rgb/image",
            IMAGE_TYPE,
            typestore=bag_messages.typestore(),
            offered_qos_profiles=[_qos(QosReliability.RELIABLE)],
        )
        image = np.zeros((4, 6, 3), np.uint8)
        for k in range(COUNT):
            stamp = 1_000_000_000 + k * 100_000_000
            msg = bag_messages.image_msg(SENSORS["rgb"], image, stamp)
            writer.write(rgb, stamp, bag_messages.serialize(msg))
    return path


def _edit_metadata(bag: Path, edit) -> None:
    meta = bag / "metadata.yaml"
    data = yaml.safe_load(meta.read_text())
    edit(data["rosbag2_bagfile_information"])
    meta.write_text(yaml.safe_dump(data))


def _read_both(bag: Path) -> tuple[int, int, list[str], list[str]]:
    with BagReader(bag) as reader:
        evaluated = sum(1 for _ in reader.messages())
        eval_warnings = list(reader.warnings)
    with RawBag(bag) as raw:
        played = sum(1 for _ in raw.messages())
        play_warnings = list(raw.warnings)
    return evaluated, played, eval_warnings, play_warnings


@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_metadata_qos_differing_from_the_storage_still_reads_every_message(tmp_path, storage):
    bag = _write(tmp_path / "bag", storage)

    def best_effort(info: dict) -> None:
        topic = info["topics_with_message_count"][0]["topic_metadata"]
        topic["offered_qos_profiles"][0]["reliability"] = QosReliability.BEST_EFFORT.value

    _edit_metadata(bag, best_effort)
    evaluated, played, eval_warnings, play_warnings = _read_both(bag)
    assert (evaluated, played) == (COUNT, COUNT)
    for warnings in (eval_warnings, play_warnings):
        assert len(warnings) == 1
        assert "'/rgb/image'" in warnings[0]
        assert "QoS" in warnings[0]
    with RawBag(bag) as raw:  # the replay offers what metadata.yaml says the driver offered
        assert raw.topic("/rgb/image").qos.reliability == "best_effort"


@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_an_index_listing_more_messages_than_read_is_a_short_read_error(tmp_path, storage):
    bag = _write(tmp_path / "bag", storage)

    def more(info: dict) -> None:
        info["topics_with_message_count"][0]["message_count"] = COUNT + 5
        info["message_count"] = COUNT + 5

    _edit_metadata(bag, more)
    with BagReader(bag) as reader, pytest.raises(BagError, match=rf"short read.*/rgb/image: {COUNT} of 25"):
        list(reader.messages())
    with RawBag(bag) as raw, pytest.raises(BagError, match=rf"short read.*/rgb/image: {COUNT} of 25"):
        list(raw.messages())
    with RawBag(bag) as raw:  # a time slice is not a whole read: no count to compare with
        assert len(list(raw.messages(start_ns=1_000_000_000, stop_ns=1_500_000_000))) == 5


def test_a_rosbag2_directory_named_dot_bag_is_read(tmp_path):
    bag = _write(tmp_path / "run_01.bag", "mcap")
    evaluated, played, _, _ = _read_both(bag)
    assert (evaluated, played) == (COUNT, COUNT)
    with BagReader(bag) as reader:
        assert reader.storage == "mcap"


def test_a_ros1_bag_file_is_still_refused_by_its_header_whatever_its_name(tmp_path):
    for name in ("old.bag", "renamed.mcap"):
        path = tmp_path / name
        path.write_bytes(b"#ROSBAG V2.0\n" + bytes(64))
        with pytest.raises(BagError, match="a ROS 1 bag; convert"):
            BagReader(path).open()
    fake = tmp_path / "notes.bag"
    fake.write_bytes(b"hello")
    with pytest.raises(BagError, match="without the ROS 1 header"):
        RawBag(fake).open()
