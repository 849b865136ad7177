"""The demo report, written from the committed live and offline results of the demo bag."""

from __future__ import annotations

import json
from pathlib import Path

from unimrseg_core.bags.report import write_report

RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results"


def test_the_report_has_the_comparison_every_fault_and_the_missed_targets(tmp_path):
    live = json.loads((RESULTS / "bag_eval_demo_live.json").read_text())
    offline = json.loads((RESULTS / "bag_eval_demo.json").read_text())
    text = write_report(Path("demo_out/bag"), live, offline, tmp_path, seconds={"live": 61.0}).read_text()
    assert text.startswith("# UniMRSeg demo: live fault evaluation")
    assert "| mIoU, whole bag |" in text
    assert "|live − offline| mIoU =" in text
    for fault in live["faults"]:
        assert f"| {fault['fault']} |" in text
    missed = sum(r["passed"] is False for r in live["targets"]["rows"])
    assert f"Targets missed live: {missed} of {len(live['targets']['rows'])}." in text
    assert "- live: 61 s" in text
