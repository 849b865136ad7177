"""The fuzz figures: every property of ``test/fuzz`` run with the long hypothesis profile.

Usage: ``python benchmarks/fuzz.py [--examples 3000] [--seed 0]``
Writes ``benchmarks/results/fuzz.json``: per property, the examples tried, how the inputs
ended (accepted, or refused with which error and reason), the uncaught exceptions (the
property fails on the first; 0 is the target), its seconds; then the totals.

pytest runs ``test/fuzz`` in a child process (``HYPOTHESIS_PROFILE=long``,
``UNIMRSEG_FUZZ_EXAMPLES``, ``--hypothesis-seed``) and the properties' tally comes back
through the file named by ``UNIMRSEG_FUZZ_RECORD`` (see ``test/fuzz/fuzzing.py``).
IO-bound properties (bags, dataset folders) run half the examples.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write_result

REPO = Path(__file__).resolve().parent.parent

ENTRY_POINTS = {
    "test_fuzz_image_msg": "unimrseg_core.image_msg: decode / encode / fill_msg",
    "test_fuzz_health": "unimrseg_core.health: HealthMonitor, HealthConfig",
    "test_fuzz_sync": "unimrseg_core.sync / pipeline: FrameAssembler, FramePipeline, SyncConfig",
    "test_fuzz_parameters": "unimrseg_ros.parameters: validate, node_config",
    "test_fuzz_bags": "unimrseg_core.bags: BagReader, RawBag, check_bag_path",
    "test_fuzz_readers": "unimrseg_core.data.readers: open_dataset, read_header/read_image/read_index_image",
}


ENDS = ("accepted", "refused", "uncaught")


def _end(outcome: str) -> str:
    """``uncaught: X``, an error (``ImageMsgError: bad_step``) or ``refused: ...``, else accepted."""
    head = outcome.split(":")[0]
    if head == "uncaught":
        return "uncaught"
    return "refused" if head == "refused" or head.endswith("Error") else "accepted"


def run(examples: int, seed: int) -> tuple[dict[str, Any], int, float, list[str]]:
    """pytest on test/fuzz with the long profile: (the tally, pytest's exit code, seconds, its argv)."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "fuzz_record.json"
        env = {
            **os.environ,
            "HYPOTHESIS_PROFILE": "long",
            "UNIMRSEG_FUZZ_EXAMPLES": str(examples),
            "UNIMRSEG_FUZZ_RECORD": str(record),
        }
        argv = [sys.executable, "-m", "pytest", "test/fuzz", "-q", "-p", "no:cacheprovider"]
        argv.append(f"--hypothesis-seed={seed}")
        start = time.perf_counter()
        code = subprocess.run(argv, cwd=REPO, env=env, check=False).returncode
        seconds = time.perf_counter() - start
        tally = json.loads(record.read_text()) if record.is_file() else {"properties": {}}
    return tally, code, seconds, argv


def summarize(tally: dict[str, Any]) -> dict[str, Any]:
    """Per property: entry point, examples, calls, outcomes (most frequent first), uncaught, seconds."""
    out = {}
    for name, result in sorted(tally["properties"].items(), key=lambda item: item[1]["test"]):
        module = result["test"].split("::")[0].rpartition("/")[2].removesuffix(".py")
        outcomes = dict(sorted(result["outcomes"].items(), key=lambda item: (-item[1], item[0])))
        out[f"{module.removeprefix('test_fuzz_')}.{name.removeprefix('test_')}"] = {
            "entry_point": ENTRY_POINTS.get(module, module),
            "test": result["test"],
            "passed": result["outcome"] == "passed",
            "examples": result["examples"],
            "calls": sum(outcomes.values()),
            **{end: sum(n for k, n in outcomes.items() if _end(k) == end) for end in ENDS},
            "outcomes": outcomes,
            "seconds": round(result["seconds"], 2),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000, help="examples per property (IO-bound: half)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed, so a run can be repeated")
    args = parser.parse_args()

    tally, code, seconds, argv = run(args.examples, args.seed)
    properties = summarize(tally)
    pytest_command = " ".join(
        [
            "HYPOTHESIS_PROFILE=long",
            f"UNIMRSEG_FUZZ_EXAMPLES={args.examples}",
            "UNIMRSEG_FUZZ_RECORD=<file>",
            "python",
            *argv[1:],
        ]
    )
    payload = {
        **environment(("hypothesis", "numpy", "opencv-python-headless", "pillow", "rosbags", "pytest")),
        "pytest_command": pytest_command,
        "profile": tally.get("profile"),
        "examples_per_property": args.examples,
        "seed": args.seed,
        "pytest_exit_code": code,
        "properties": properties,
        "totals": {
            "properties": len(properties),
            "examples": sum(p["examples"] for p in properties.values()),
            "calls": sum(p["calls"] for p in properties.values()),
            "accepted": sum(p["accepted"] for p in properties.values()),
            "refused": sum(p["refused"] for p in properties.values()),
            "uncaught": sum(p["uncaught"] for p in properties.values()),
            "failed": [name for name, p in properties.items() if not p["passed"]],
            "seconds": round(seconds, 1),
        },
    }
    path = write_result("fuzz", payload)
    totals = payload["totals"]
    print(
        f"wrote {path}: {totals['properties']} properties, {totals['examples']} examples, "
        f"{totals['uncaught']} uncaught, {len(totals['failed'])} failed, {totals['seconds']} s"
    )
    return 0 if code == 0 and not totals["uncaught"] else 1


if __name__ == "__main__":
    sys.exit(main())
