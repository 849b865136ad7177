"""A robot bag without ground-truth topics, labelled by ``<stamp_ns>.png`` files beside it.

The bag comes from ``bag make`` (64x80, 3 frames); a copy without its ground-truth topics is
what a robot records. Label PNGs are written from the known ground truth, named by the frames'
header stamps, and read back through the ``data.sources`` entry a user would write.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader, Writer

from unimrseg_core.bags import messages as bag_messages
from unimrseg_core.bags.evaluate import truth_mono8
from unimrseg_core.bags.read import BagError, BagReader
from unimrseg_core.bags.topics import GROUND_TRUTH
from unimrseg_core.data.readers import DatasetError
from unimrseg_core.image_msg import MAX_PIXELS
from unimrseg_core.train.source_samples import open_source
from unimrseg_core.train.sources import parse_sources

SIZE = (64, 80)
CLASS_MASK = GROUND_TRUTH["class_mask"].topic
TRUTH_TOPICS = {t.topic for t in GROUND_TRUTH.values()}


def _without_truth(src: Path, dst: Path) -> Path:
    """``src`` less its ground-truth topics (custom_data kept): cameras only, as a robot records."""
    store = bag_messages.typestore()
    with Reader(src) as reader, Writer(dst, version=9) as writer:
        for key, value in (reader.storage.metadata.custom or {}).items():
            writer.set_custom_data(key, value)
        out = {
            c.id: writer.add_connection(c.topic, c.msgtype, typestore=store)
            for c in reader.connections
            if c.topic.lstrip("/") not in TRUTH_TOPICS
        }
        for connection, record_ns, data in reader.messages():
            if connection.id in out:
                writer.write(out[connection.id], record_ns, data)
    return dst


@pytest.fixture(scope="module")
def robot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, np.ndarray]]:
    """The camera-only bag and the class ids of each frame by header stamp."""
    from unimrseg_core.bags.write import make_bag

    root = tmp_path_factory.mktemp("label_pngs")
    made = root / "made"
    make_bag(made, duration_s=0.6, rate_hz=5.0, size=SIZE, progress=False)
    with BagReader(made) as bag:
        truth = {
            bag_messages.stamp_to_ns(m.msg.header.stamp): truth_mono8(made, m.topic, m.msg, MAX_PIXELS)
            for m in bag.messages([CLASS_MASK])
        }
    robot_bag = _without_truth(made, root / "robot")
    with BagReader(robot_bag) as bag:
        assert not TRUTH_TOPICS & {t.lstrip("/") for t in bag.topics}
    return robot_bag, truth


def _open(bag: Path, labels: Path | None) -> list:
    entry = {"kind": "bag", "name": "robot", "path": str(bag)}
    if labels is not None:
        entry["labels"] = str(labels)
    return list(open_source(parse_sources([entry])[0], SIZE).samples)


def _write(folder: Path, labels: dict[str, np.ndarray]) -> Path:
    folder.mkdir()
    for name, label in labels.items():
        assert cv2.imwrite(str(folder / name), label)
    return folder


def test_samples_carry_exactly_the_labels_of_the_pngs_named_by_their_stamps(
    robot: tuple[Path, dict[int, np.ndarray]], tmp_path: Path
) -> None:
    bag, truth = robot
    stamps = sorted(truth)
    assert len(stamps) == 3
    assert len(np.unique(truth[stamps[0]])) > 2  # a scene with several classes, not a blank mask
    with pytest.raises(BagError, match="no labels"):  # the camera-only bag has none of its own
        _open(bag, None)

    # two of the three frames labelled, the middle one left out: it is no sample
    labelled = [stamps[0], stamps[2]]
    folder = _write(tmp_path / "labels", {f"{s}.png": truth[s] for s in labelled})
    samples = _open(bag, folder)
    assert [s.meta["stamp_ns"] for s in samples] == labelled
    for sample in samples:
        assert np.array_equal(sample.label, truth[sample.meta["stamp_ns"]])
        assert sample.saliency is None  # a PNG holds classes only
        assert all(getattr(sample, m) is not None for m in ("rgb", "depth", "thermal"))
    assert not np.array_equal(samples[0].label, samples[1].label)  # each frame its own PNG


def test_a_label_png_the_size_of_none_of_its_cameras_is_refused_naming_it(
    robot: tuple[Path, dict[int, np.ndarray]], tmp_path: Path
) -> None:
    bag, truth = robot
    stamp = min(truth)
    half = cv2.resize(truth[stamp], (SIZE[1] // 2, SIZE[0] // 2), interpolation=cv2.INTER_NEAREST)
    folder = _write(tmp_path / "labels", {f"{stamp}.png": half})
    wrong = r"label is 40x32, the size of none of its cameras \(rgb 80x64"
    with pytest.raises(DatasetError, match=wrong) as err:
        _open(bag, folder)
    assert err.value.path == folder / f"{stamp}.png"


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("frame_0001.png", DatasetError, r"frame_0001\.png: a label file is named <header stamp in ns>\.png"),
        ("{stamp}.jpg", DatasetError, r"a label file is named <header stamp in ns>\.png"),
        ("0{stamp}.png", DatasetError, r"a second label file for stamp \d+"),
        ("{far}.png", BagError, r"label \d+\.png has no camera image within 0\.05 s of its stamp"),
    ],
)
def test_a_misnamed_or_unmatched_label_png_is_refused(
    robot: tuple[Path, dict[int, np.ndarray]],
    tmp_path: Path,
    name: str,
    error: type[ValueError],
    match: str,
) -> None:
    bag, truth = robot
    stamp = min(truth)
    files = {f"{stamp}.png": truth[stamp], name.format(stamp=stamp, far=stamp + 10**9): truth[stamp]}
    with pytest.raises(error, match=match):
        _open(bag, _write(tmp_path / "labels", files))


def test_an_empty_or_missing_labels_folder_is_refused(
    robot: tuple[Path, dict[int, np.ndarray]], tmp_path: Path
) -> None:
    bag, _ = robot
    with pytest.raises(DatasetError, match="labels folder does not exist"):
        _open(bag, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no <stamp_ns>\.png label files"):
        _open(bag, tmp_path / "empty")
