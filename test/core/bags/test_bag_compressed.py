"""``bag eval`` on robot bags whose cameras were recorded through image_transport (CompressedImage).

A 3 s, 10 Hz bag from ``bag make`` is copied with rosbags' Writer, each camera re-encoded as
image_transport's plugins write it (``compressed_msg.encode_compressed``: rgb JPEG on
``rgb/image/compressed``, depth on ``depth/image/compressedDepth``, thermal 16-bit PNG on
``thermal/image/compressed``), under those names or a driver's. The readers take the
CompressedImage topic as the camera (detected by its type), prefer raw when a camera was
recorded both ways unless told otherwise, say which they read, and count damaged payloads
with their reason in the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compressed_bags import TRANSPORT, compressed_copy  # test/ is on sys.path (beside conftest.py)

from unimrseg_core.bags import BagError, BagReader, make_bag
from unimrseg_core.bags.cli import nothing_scored
from unimrseg_core.bags.evaluate import evaluate_bag
from unimrseg_core.bags.topics import COMPRESSED_IMAGE_TYPE, SENSORS
from unimrseg_core.runtime.segmenter import Segmenter
from unimrseg_core.runtime.selection import BackendOptions, select_backend
from unimrseg_core.topics import input_topic

pytestmark = pytest.mark.timeout(300)

SIZE = (60, 80)
FRAMES = 30


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("compressed") / "made"
    make_bag(path, duration_s=FRAMES / 10, rate_hz=10.0, size=SIZE, progress=False)
    return path


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter(select_backend("onnxruntime", BackendOptions(threads=1)).backend)


def test_a_compressed_bag_scores_as_its_raw_original_within_jpeg_loss(made, segmenter, tmp_path) -> None:
    raw = evaluate_bag(made, segmenter=segmenter)
    bag = compressed_copy(made, tmp_path / "compressed")
    result = evaluate_bag(bag, segmenter=segmenter)
    topics = result["bag"]["topics"]
    for modality, transport in TRANSPORT.items():
        row = topics[SENSORS[modality].topic]
        assert row["bag_topic"] == input_topic(modality, transport)
        assert (row["type"], row["transport"], row["messages"]) == (COMPRESSED_IMAGE_TYPE, transport, FRAMES)
    # every frame but the first (its companions are still recovering: LOST -> 2 good frames -> OK)
    assert result["summary"]["all"]["outputs"] == raw["summary"]["all"]["outputs"] == FRAMES - 1
    assert result["summary"]["rejected"] == {"rgb": 0, "depth": 0, "thermal": 0}
    # PNG depth and thermal are lossless; JPEG rgb moves the mIoU a little (measured 0.013 here)
    assert abs(result["summary"]["all"]["miou"] - raw["summary"]["all"]["miou"]) < 0.03
    assert abs(result["summary"]["all"]["mae"] - raw["summary"]["all"]["mae"]) < 0.01


def test_a_drivers_compressed_topic_is_read_through_a_remap(made, segmenter, tmp_path) -> None:
    names = {"rgb": "/camera/color/image_raw/compressed"}
    bag = compressed_copy(made, tmp_path / "driver", names=names)
    with pytest.raises(BagError, match="remap source 'nope' is not in the bag"):
        evaluate_bag(bag, segmenter=segmenter, remap={"/nope": "rgb/image"})
    result = evaluate_bag(bag, segmenter=segmenter, remap={names["rgb"]: "rgb/image"})
    row = result["bag"]["topics"]["rgb/image"]
    assert (row["bag_topic"], row["transport"]) == (names["rgb"], "compressed")
    assert result["summary"]["all"]["outputs"] == FRAMES - 1


def test_raw_is_read_when_both_were_recorded_unless_a_transport_is_asked_for(made, tmp_path) -> None:
    bag = compressed_copy(made, tmp_path / "both", keep_raw=True)
    with BagReader(bag) as reader:
        assert reader.transports == {"rgb": "raw", "depth": "raw", "thermal": "raw"}
        assert reader.topics["rgb/image"].lstrip("/") == "rgb/image"
    with BagReader(bag, transports={"rgb": "compressed", "depth": "compressedDepth"}) as reader:
        assert reader.transports == {"rgb": "compressed", "depth": "compressedDepth", "thermal": "raw"}
        first = next(reader.messages(["rgb/image"]))
        assert first.msgtype == COMPRESSED_IMAGE_TYPE
        assert first.msg.format == "rgb8; jpeg compressed bgr8"
    with pytest.raises(BagError, match=r"--transport thermal=compressedDepth: the bag has thermal as raw"):
        BagReader(bag, transports={"thermal": "compressedDepth"}).open()
    with pytest.raises(BagError, match="rgb has no transport 'compressedDepth'"):
        BagReader(bag, transports={"rgb": "compressedDepth"})


def test_damaged_payloads_are_counted_by_reason_in_the_json(made, segmenter, tmp_path) -> None:
    def cut_rgb(modality: str, data: bytes) -> bytes:
        return data[: len(data) // 3] if modality == "rgb" else data  # a JPEG cut short

    bag = compressed_copy(made, tmp_path / "damaged", damage=cut_rgb)
    result = evaluate_bag(bag, segmenter=segmenter)
    assert result["inputs"]["rgb"]["rejected"] == {"bad_compressed": FRAMES}
    assert result["summary"]["rejected"]["rgb"] == FRAMES
    assert result["summary"]["all"]["outputs"] > 0  # the depth anchor took over
    assert result["inputs"]["depth"]["rejected"] == result["inputs"]["thermal"]["rejected"] == {}

    def cut_all(modality: str, data: bytes) -> bytes:
        return data[:20]

    bag = compressed_copy(made, tmp_path / "all_damaged", damage=cut_all)
    result = evaluate_bag(bag, segmenter=segmenter)
    assert result["summary"]["all"]["outputs"] == 0
    reason = nothing_scored(result)
    assert reason is not None
    assert f"all {3 * FRAMES} camera messages were rejected" in reason
    assert "bad_compressed" in reason


def test_the_command_line_reads_the_asked_transport_and_names_a_bad_one(made, tmp_path, capsys) -> None:
    from unimrseg_core.cli import main

    bag = compressed_copy(made, tmp_path / "both_cli", keep_raw=True)
    out = tmp_path / "eval.json"
    assert (
        main(["bag", "eval", str(bag), "--quiet", "--transport", "rgb=compressed", "--json", str(out)]) == 0
    )
    topics = json.loads(out.read_text())["bag"]["topics"]
    assert (topics["rgb/image"]["transport"], topics["depth/image"]["transport"]) == ("compressed", "raw")
    capsys.readouterr()
    assert main(["bag", "eval", str(bag), "--quiet", "--transport", "rgb=compressedDepth"]) == 2
    assert "rgb has no transport 'compressedDepth'; valid: raw, compressed" in capsys.readouterr().err
    assert main(["bag", "eval", str(bag), "--quiet", "--transport", "lidar=raw"]) == 2
    assert "MODALITY=TRANSPORT" in capsys.readouterr().err
