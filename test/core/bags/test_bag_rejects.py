"""``bag eval`` on a bag whose camera images the node cannot read: it fails loudly, with counts.

The bag (rosbags' Writer) holds a depth camera's 16UC1 images and a thermal camera
whose encoding string no decoder knows. Read with ``--remap`` depth as rgb (a wrong
remap) every image is rejected: exit status 1 with the reasons and counts on one
line, targets "no data" (never "passed"), every rejection in the JSON. Read as
recorded, the depth images are valid and the run scores (exit 0), with the thermal
rejections still counted.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Writer

from unimrseg_core.bags import messages as bag_messages
from unimrseg_core.bags.topics import IMAGE_TYPE, SENSORS
from unimrseg_core.cli import main

pytestmark = pytest.mark.timeout(300)

FRAMES = 20
BOGUS = "bogus_yuv9"


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rejects") / "robot"
    rng = np.random.default_rng(3)
    with Writer(path, version=9) as writer:
        store = bag_messages.typestore()
        depth = writer.add_connection("/depth/image", IMAGE_TYPE, typestore=store)
        thermal = writer.add_connection("thermal/image", IMAGE_TYPE, typestore=store)
        for k in range(FRAMES):
            stamp = 1_000_000_000 + k * 100_000_000
            metres = rng.uniform(0.5, 5.0, (30, 40)).astype(np.float32)
            msg = bag_messages.image_msg(SENSORS["depth"], metres, stamp, modality="depth")
            writer.write(depth, stamp, bag_messages.serialize(msg))
            kelvin = rng.uniform(280.0, 310.0, (30, 40)).astype(np.float32)
            msg = bag_messages.image_msg(SENSORS["thermal"], kelvin, stamp, modality="thermal")
            msg = dataclasses.replace(msg, encoding=BOGUS)
            writer.write(thermal, stamp + 1_000, bag_messages.serialize(msg))
    return path


def _eval(bag: Path, out: Path, *remap: str) -> int:
    args = ["bag", "eval", str(bag), "--backend", "onnxruntime", "--quiet", "--json", str(out)]
    return main(args + (["--remap", *remap] if remap else []))


def test_every_image_rejected_exits_1_with_the_reasons_and_counts(bag, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert _eval(bag, out, "/depth/image:=rgb/image") == 1
    captured = capsys.readouterr()
    (line,) = [x for x in captured.err.splitlines() if x.startswith("unimrseg bag eval:")]
    assert f"all {2 * FRAMES} camera messages were rejected" in line
    assert f"rgb {FRAMES} x " in line
    assert f"thermal {FRAMES} x " in line
    assert "all passed" not in captured.out
    assert "targets: no data" in captured.out
    result = json.loads(out.read_text())  # written all the same, for a look at why
    assert result["summary"]["all"]["outputs"] == 0
    assert result["targets"]["status"] == "no data"
    assert result["targets"]["passed"] is None
    assert result["summary"]["rejected"] == {"rgb": FRAMES, "depth": 0, "thermal": FRAMES}
    for modality in ("rgb", "thermal"):
        rejected = result["inputs"][modality]["rejected"]
        assert sum(rejected.values()) == FRAMES
        assert result["inputs"][modality]["messages"] == FRAMES


def test_valid_depth_scores_and_the_rejected_thermal_is_still_counted(bag, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert _eval(bag, out) == 0
    result = json.loads(out.read_text())
    assert result["summary"]["all"]["outputs"] >= FRAMES - 1
    assert result["targets"]["status"] == "no targets"
    assert result["targets"]["passed"] is None
    assert sum(result["inputs"]["thermal"]["rejected"].values()) == FRAMES
    assert "rejected thermal" in capsys.readouterr().out
