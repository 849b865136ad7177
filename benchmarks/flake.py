"""Do the ROS tests pass on a busy machine? The DDS suite, N times, with every core taken.

Each run is ``python -m pytest -m ros test/ros`` (or the ``--tests`` given) in a child
process while a CPU hog (``benchmarks/hog.py``: one busy loop per core, nice 0, the same
priority as the tests) runs; pytest's JUnit XML gives every test's outcome, duration and
failure message. The result, rewritten after every run so a stopped benchmark keeps what
it measured, is ``benchmarks/results/flake.json``: per test the passes, failures, errors
and skips, the durations, and each failure's message with its run; per run the counts and
wall time; machine, versions and command (``common.environment``).

    python benchmarks/flake.py                  # 10 loaded runs of the ROS tests
    python benchmarks/flake.py --runs 3 --no-hog
    python benchmarks/flake.py --runs 2 --tests test/ros/test_segmentation_node.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import environment, write_result  # noqa: E402
from hog import cpu_hog  # noqa: E402

DEFAULT_TESTS = ("-m", "ros", "test/ros")
VERSIONS = ("numpy", "onnxruntime", "pytest", "ros-rclpy", "ros-fastdds", "ros-rmw-fastrtps-cpp")
MESSAGE_CHARS = 1500
"""A failure message is kept to its first characters: the assertion, its values, some log."""


@dataclass
class TestRecord:
    """One test over all runs."""

    outcomes: list[str] = field(default_factory=list)
    durations_s: list[float] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        count = {o: self.outcomes.count(o) for o in ("passed", "failed", "error", "skipped")}
        durations = self.durations_s or [0.0]
        return {
            **count,
            "runs": len(self.outcomes),
            "duration_s": {
                "median": round(statistics.median(durations), 2),
                "max": round(max(durations), 2),
            },
            "messages": self.messages,
        }


def outcomes(junit: Path) -> list[tuple[str, str, float, str]]:
    """(``module.path::test``, outcome, seconds, message) for every test case of a pytest JUnit XML file."""
    results = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = _message(element)
                break
        results.append((name, outcome, float(case.get("time", 0.0)), message))
    return results


def _message(element: ET.Element) -> str:
    """pytest's one-line message, then the report's ``E`` lines (what the assertion saw)."""
    lines = (element.text or "").splitlines()
    explained = "\n".join(line for line in lines if line.startswith("E ")) or "\n".join(lines[-20:])
    return f"{element.get('message') or ''}\n{explained}".strip()[:MESSAGE_CHARS]


def one_run(tests: list[str], junit: Path, timeout_s: float) -> tuple[int, float, str]:
    """Run pytest once; its exit code, wall time and the last lines of its output."""
    cmd = [sys.executable, "-m", "pytest", *tests, "-p", "no:cacheprovider", "-q", f"--junitxml={junit}"]
    began = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)
        code, tail = done.returncode, (done.stdout + done.stderr)[-2000:]
    except subprocess.TimeoutExpired as exc:
        code, tail = -1, f"timed out after {timeout_s:g} s\n{str(exc.stdout or '')[-2000:]}"
    return code, time.monotonic() - began, tail


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, choices=range(1, 1001), metavar="N")
    parser.add_argument("--no-hog", action="store_true", help="run on an otherwise idle machine")
    parser.add_argument("--hog-processes", type=int, default=None, help="busy loops (default: one per core)")
    parser.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS), help="pytest arguments")
    parser.add_argument("--run-timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument("--name", default="flake", help="benchmarks/results/NAME.json")
    args = parser.parse_args()

    records: dict[str, TestRecord] = {}
    runs: list[dict[str, Any]] = []
    payload: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="flake_") as tmp:
        for index in range(args.runs):
            junit = Path(tmp) / f"run_{index}.xml"
            if args.no_hog:
                code, wall_s, tail = one_run(args.tests, junit, args.run_timeout)
            else:
                with cpu_hog(args.hog_processes):
                    code, wall_s, tail = one_run(args.tests, junit, args.run_timeout)
            cases = outcomes(junit) if junit.exists() else []
            for name, outcome, seconds, message in cases:
                record = records.setdefault(name, TestRecord())
                record.outcomes.append(outcome)
                record.durations_s.append(seconds)
                if outcome in ("failed", "error"):
                    record.messages.append({"run": index, "outcome": outcome, "message": message})
            counts = {o: sum(c[1] == o for c in cases) for o in ("passed", "failed", "error", "skipped")}
            runs.append({"run": index, "exit_code": code, "wall_s": round(wall_s, 1), **counts})
            if code not in (0, 1) or not cases:
                runs[-1]["output_tail"] = tail
            print(f"run {index + 1}/{args.runs}: exit {code}, {counts}, {wall_s:.0f} s", flush=True)
            failing = {n: r.as_json() for n, r in records.items() if set(r.outcomes) & {"failed", "error"}}
            payload = {
                **environment(VERSIONS),
                "tests": args.tests,
                "hog": None
                if args.no_hog
                else {"processes": args.hog_processes or "one per core", "nice": 0},
                "runs_requested": args.runs,
                "runs_done": len(runs),
                "runs": runs,
                "tests_seen": len(records),
                "runs_with_a_failure": sum(
                    bool(r["failed"] + r["error"]) or r["exit_code"] != 0 for r in runs
                ),
                "failures_per_test": {n: r["failed"] + r["error"] for n, r in failing.items()},
                "per_test": {n: r.as_json() for n, r in sorted(records.items())},
            }
            path = write_result(args.name, payload)
    print(f"wrote {path}: failures per test {payload['failures_per_test']}")
    return 0 if not payload["failures_per_test"] else 1


if __name__ == "__main__":
    sys.exit(main())
