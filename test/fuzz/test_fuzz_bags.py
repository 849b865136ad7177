"""Fuzzing bag reading: a small valid bag (sqlite3 and mcap) truncated anywhere, overwritten
anywhere, with one message's CDR, a topic's type or metadata.yaml replaced, or opened through an
odd path, is either read through by BagReader and RawBag or refused with a BagError naming the
bag; never another exception, never a hang."""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import fuzzing
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from unimrseg_core.bags import BagError, BagReader
from unimrseg_core.bags import messages as bag_messages
from unimrseg_core.bags.raw import RawBag
from unimrseg_core.bags.read import READ_TOPICS, parse_remap
from unimrseg_core.bags.topics import IMAGE_TYPE, SENSORS, STRING_TYPE
from unimrseg_core.faults import FaultSchedule

pytestmark = pytest.mark.timeout(fuzzing.TIMEOUT_S)

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
CUSTOM_TYPE = "fuzz_msgs/msg/Reading"
READ_SECONDS = 20.0  # reading a damaged 10 KB bag takes milliseconds; this long is a hang


def _write_bag(path: Path, storage: str) -> Path:
    """Three cameras' tiny images, the fault timeline, and a topic of a type only the bag defines."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg("float64 value\nstring unit", CUSTOM_TYPE))
    with Writer(path, version=9, storage_plugin=STORAGES[storage]) as writer:
        writer.set_custom_data("unimrseg.sequence", '{"seed": 1, "size": [2, 3]}')
        cameras = {m: writer.add_connection(t.topic, IMAGE_TYPE, typestore=store) for m, t in SENSORS.items()}
        timeline = writer.add_connection("faults/timeline", STRING_TYPE, typestore=store)
        custom = writer.add_connection("/robot/reading", CUSTOM_TYPE, typestore=store)
        writer.write(
            timeline, 1_000, bag_messages.serialize(bag_messages.string_msg(FaultSchedule().to_yaml()))
        )
        rng = np.random.default_rng(0)
        for k in range(3):
            stamp = 1_000_000 + k * 100_000_000
            for modality, topic in SENSORS.items():
                image = (
                    rng.integers(0, 256, (2, 3, 3), dtype=np.uint8)
                    if modality == "rgb"
                    else rng.uniform(1.0, 300.0, (2, 3)).astype(np.float32)
                )
                msg = bag_messages.image_msg(topic, image, stamp, modality=modality)
                writer.write(cameras[modality], stamp + 1_000, bag_messages.serialize(msg))
            reading = store.types[CUSTOM_TYPE](value=float(k), unit="m")
            writer.write(custom, stamp + 2_000, bytes(store.serialize_cdr(reading, CUSTOM_TYPE)))
    return path


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz_bags")
    return {storage: _write_bag(root / storage, storage) for storage in STORAGES}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    return tmp_path_factory.mktemp("fuzz_bag_copies")


def _storage_file(bag: Path) -> Path:
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


def _why(exc: BagError) -> str:
    """The kind of refusal (``cannot open: corrupt storage file``), without the varying details."""
    text = re.sub(r"(['\"]).*?(?<!\\)\1", "N", exc.reason)  # quoted names first: they may hold ':'
    text = re.sub(r"\(.*", "", text)  # drop the library's own words
    text = ":".join(text.split(";")[0].split(":")[:2]).strip()
    return re.sub(r"\d+", "N", text)[:70]


def _read(path: Path) -> int:
    """Everything a tool asks of a bag, through both readers: the messages read."""
    count = 0
    with BagReader(path) as bag:
        assert bag.storage in STORAGES
        _ = (bag.topics, bag.bag_topics, bag.start_ns, bag.end_ns, bag.message_count, bag.custom_data)
        bag.sequence()
        bag.fault_schedule()
        count += sum(1 for _ in bag.messages())
    with RawBag(path) as raw:
        _ = (raw.topics, raw.start_ns, raw.end_ns, raw.message_count)
        for message in raw.messages():
            assert isinstance(message.data, bytes)
            count += 1
    return count


def _check(path: Path) -> None:
    start = time.perf_counter()
    count, error = fuzzing.attempt(lambda: _read(path), (BagError,), _why, lambda n: f"read {n} messages")
    assert time.perf_counter() - start < READ_SECONDS
    if error is not None:
        assert str(error).startswith(f"bag {path}: ")
        assert error.path == path
    else:
        assert count >= 0


# --------------------------------------------------------------------------- damage

_WHERE = st.floats(0.0, 1.0)
DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), _WHERE),
    st.tuples(
        st.just("overwrite"),
        st.lists(st.tuples(_WHERE, st.binary(min_size=1, max_size=8)), min_size=1, max_size=6),
    ),
    st.tuples(st.just("cdr"), st.integers(0, 12), st.binary(max_size=64)),
    st.tuples(
        st.just("type"),
        st.sampled_from(["rgb/image", "faults/timeline", "/robot/reading"]),
        st.sampled_from(
            ["sensor_msgs/msg/CompressedImage", "nope/msg/Nope", "", "x", CUSTOM_TYPE, "std_msgs/msg/String"]
        ),
    ),
    st.tuples(
        st.just("metadata"),
        st.sampled_from(["delete", "empty", "truncate", "garbage", "edit"]),
        _WHERE,
        st.text(max_size=12),
    ),
)


def _damage(bag: Path, storage: str, damage: tuple) -> None:
    kind = damage[0]
    data = _storage_file(bag)
    if kind == "truncate":
        with data.open("r+b") as f:
            f.truncate(int(data.stat().st_size * damage[1]))
    elif kind == "overwrite":
        raw = bytearray(data.read_bytes())
        for where, chunk in damage[1]:
            at = min(int(len(raw) * where), len(raw) - 1)
            raw[at : at + len(chunk)] = chunk
        data.write_bytes(bytes(raw))
    elif kind in ("cdr", "type") and storage == "sqlite3":
        with sqlite3.connect(data) as db:
            if kind == "cdr":  # one message's bytes replaced: a valid database, a corrupt message
                ids = [row[0] for row in db.execute("SELECT id FROM messages ORDER BY id")]
                db.execute(
                    "UPDATE messages SET data = ? WHERE id = ?", (damage[2], ids[damage[1] % len(ids)])
                )
            else:
                db.execute("UPDATE topics SET type = ? WHERE name = ?", (damage[2], damage[1]))
        db.close()
    elif kind in ("cdr", "type"):  # mcap: the same, as bytes
        raw = data.read_bytes()
        needle = b"fuzz_msgs/msg/Reading" if kind == "type" else b"faults:"
        replacement = (
            (damage[2].encode()[: len(needle)].ljust(len(needle), b"_"))
            if kind == "type"
            else damage[2][:7].ljust(7, b"\0")
        )
        data.write_bytes(raw.replace(needle, replacement, 1))
    else:
        action, where, text = damage[1], damage[2], damage[3]
        meta = bag / "metadata.yaml"
        original = meta.read_text()
        if action == "delete":
            meta.unlink()
        elif action == "empty":
            meta.write_text("")
        elif action == "truncate":
            meta.write_text(original[: int(len(original) * where)])
        elif action == "garbage":
            meta.write_bytes(bytes(range(256)) * 4)
        else:
            at = int(len(original) * where)
            meta.write_text(original[:at] + text + original[at + len(text) :])


def _copy(source: Path, scratch: Path) -> Path:
    target = Path(tempfile.mkdtemp(dir=scratch)) / source.name
    shutil.copytree(source, target)
    return target


@fuzzing.budget(0.5, deadline=None)
@given(storage=st.sampled_from(sorted(STORAGES)), damage=DAMAGE, as_file=st.booleans())
@example(storage="sqlite3", damage=("cdr", 3, b"\x00\x01"), as_file=False)
@example(storage="mcap", damage=("truncate", 0.5), as_file=False)
@example(storage="sqlite3", damage=("metadata", "delete", 0.0, ""), as_file=False)
@fuzzing.counted
def test_a_damaged_bag_is_read_or_refused_with_a_bag_error(
    bags: dict[str, Path], scratch: Path, storage: str, damage: tuple, as_file: bool
) -> None:
    bag = _copy(bags[storage], scratch)
    try:
        _damage(bag, storage, damage)
        _check(_storage_file(bag) if as_file else bag)
    finally:
        shutil.rmtree(bag.parent, ignore_errors=True)


# --------------------------------------------------------------------------- paths

PATHS = st.one_of(
    st.sampled_from(["missing", "empty_dir", "ros1.bag", "file.mcap", "file.db3", "file.txt", "nested"]),
    st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20),
    st.sampled_from(["a" * 300, "\x00", "..", ".", "~nosuchuser_zz"]),
)


@fuzzing.budget(0.25, deadline=None)
@given(kind=PATHS, content=st.binary(max_size=64))
@example(kind="a" * 300, content=b"")  # found: OSError (name too long) from Path.exists
@example(kind="file.txt", content=b"")  # found: AnyReaderError from AnyReader's constructor
@fuzzing.counted
def test_any_path_is_read_or_refused_with_a_bag_error(scratch: Path, kind: str, content: bytes) -> None:
    root = Path(tempfile.mkdtemp(dir=scratch))
    try:
        if kind == "empty_dir":
            path = root / "bag"
            path.mkdir()
        elif kind in ("ros1.bag", "file.mcap", "file.db3", "file.txt"):
            path = root / kind
            path.write_bytes(content)
        elif kind == "nested":
            path = root / "bag"
            (path / "inner").mkdir(parents=True)
            (path / "metadata.yaml").write_bytes(content)
        else:
            path = root / kind
        _check(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- remaps

_TOPIC = st.one_of(
    st.sampled_from(
        [*READ_TOPICS, "/rgb/image", "/robot/reading", "robot/reading", "/faults/timeline", "nope"]
    ),
    st.text(max_size=12),
)
REMAPS = st.lists(
    st.one_of(st.tuples(_TOPIC, _TOPIC).map(":=".join), st.text(max_size=16)),
    max_size=4,
)


@fuzzing.budget(0.5, deadline=None)
@given(storage=st.sampled_from(sorted(STORAGES)), items=REMAPS)
@example(storage="sqlite3", items=["/robot/reading:=rgb/image"])  # a topic of another type read as images
@fuzzing.counted
def test_any_remap_reads_or_is_refused_with_a_clear_error(bags: dict[str, Path], storage: str, items) -> None:
    """``--remap OLD:=NEW`` items from a command line: a ValueError naming the item, else read or BagError."""
    remap, error = fuzzing.attempt(lambda: parse_remap(items), (ValueError,), lambda e: "bad remap item")
    if error is not None:
        assert any(
            repr(item) in str(error) or repr(item.partition(":=")[0].strip()) in str(error) for item in items
        )
        return
    path = bags[storage]

    def read() -> int:
        with BagReader(path, remap=remap) as bag:
            return sum(1 for _ in bag.messages())

    _, error = fuzzing.attempt(read, (BagError,), _why, lambda n: f"read {n} messages")
    if error is not None:
        assert str(error).startswith(f"bag {path}: ")
