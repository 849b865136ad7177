"""``bag eval --live`` end to end: unimrseg_node and bag play in their own processes, over real DDS.

A 5 s bag (10 Hz, 120x160) whose thermal camera drops for 1.5 s is played against the
node; the outputs must arrive, the drop must be detected from the node's own reports, and
the live mIoU must agree with the offline evaluation of the same bag.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
pytest.importorskip("rclpy", reason="rclpy is not installed")

FAULTS = """seed: 0
faults:
  - {modality: thermal, kind: drop, start_s: 2.0, end_s: 3.5}
"""


@pytest.fixture(scope="module")
def short_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("live_bag")
    (tmp / "faults.yaml").write_text(FAULTS)
    bag = tmp / "bag"
    cmd = [str(Path(sys.prefix) / "bin" / "unimrseg"), "bag", "make", "--out", str(bag), "--duration", "5"]
    cmd += ["--rate", "10", "--size", "120x160", "--faults", str(tmp / "faults.yaml"), "--seed", "3"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return bag


def test_live_eval_scores_the_node_and_detects_the_drop(
    short_bag: Path, ros_env: dict[str, str], tmp_path: Path
) -> None:
    from unimrseg_core.bags.evaluate import evaluate_bag
    from unimrseg_ros.live_eval import SAMPLES, evaluate_live

    live = evaluate_live(short_bag, domain_id=int(ros_env["ROS_DOMAIN_ID"]), log_dir=tmp_path / "logs")
    offline = evaluate_bag(short_bag)
    assert live["mode"] == "live"
    assert set(live) - {"live"} == set(offline), "live and offline share one layout"
    # outputs arrive: nearly every anchor frame (the node may drop one while starting)
    assert live["live"]["outputs_received"] >= 0.9 * live["summary"]["all"]["anchor_frames"] > 0
    assert live["summary"]["all"]["scored"] == live["live"]["outputs_received"]
    # the drop is detected from the node's /diagnostics, within the target, and it recovers
    (fault,) = live["faults"]
    assert fault["modality"] == "thermal"
    assert fault["detection"] is not None
    assert fault["detection"]["state"] == "LOST"
    assert 0 <= fault["detection"]["delay_periods"] <= 3
    assert fault["recovery"] is not None
    assert fault["recovery"]["delay_periods"] <= 3
    assert fault["left_out"]["first_frame_without_s"] is not None
    assert 0 < live["live"]["receive_latency_ms"]["p50"] < 1000
    # live vs offline: what DDS and timing cost
    assert abs(live["summary"]["all"]["miou"] - offline["summary"]["all"]["miou"]) <= 0.02
    assert (tmp_path / "logs" / SAMPLES).exists()
