"""The GPU check: every GPU path of issue 14 run and measured in one go, within a wall-clock budget.

Run through ``scripts/gpu_check.sh`` on a machine with a CUDA GPU and only the preinstalled
packages of the GPU image (torch, onnx, onnxruntime, numpy, opencv, torchmetrics,
matplotlib, pyyaml, tqdm, rich, pytest): no rosbags, pysodmetrics or rclpy are needed.

Steps (each a child process with its own timeout, cut to what is left of ``--budget``):

1. ``gpu_tests``: ``pytest test/gpu`` (engines vetted in a child, CUDA graphs vs eager fp32,
   compiled fp16) and the core suite's CUDA training tests (``GPU_TESTS``), side by side with
2. ``train``: a real CUDA training run, 200 steps of each stage on a small cached pool, and
   ``baselines``: both baselines for 50 steps each (correctness, not speed).
3. ``backends_fp16`` / ``backends_fp32``: ``benchmarks/bench_backends.py`` at 480x640 and
   240x320 (eager, CUDA graphs, compiled), alone on the machine.
4. ``train_input``: ``benchmarks/bench_train.py --quick`` (samples/s of the input pipelines).

Writes ``gpu_check.json`` (steps, figures, targets with pass/fail, versions) into
``benchmarks/results/`` and into ``--out`` (with every step's log), prints one screen, and
exits 1 when a target is missed or a step failed. ``--cpu`` runs the same wiring on a CPU
with tiny budgets, to test the script without a GPU: its figures mean nothing, so they go to
``--out`` only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))

GPU_TESTS = (
    "test/gpu",
    "test/core/train/test_train.py::test_training_on_cuda",
    "test/core/train/test_train_pool.py::test_pool_on_the_gpu_and_in_host_memory_give_the_cpu_batches",
)
"""What step 1 runs: the GPU tests and the CUDA training tests of the core suite."""

TARGETS = {  # name: (comparison, threshold, what it is)
    "model_480x640_fp16_p50_ms": ("<=", 1.0, "model alone, 480x640, fp16, batch 1, best backend"),
    "segmenter_480x640_p50_ms": ("<=", 3.0, "Segmenter end to end, camera arrays in, 480x640"),
    "train_input_samples_per_s": (">=", 3000.0, "training input at 128x160, shipped network"),
}


@dataclass
class Step:
    name: str
    argv: list[str]
    timeout_s: float
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    name: str
    status: str  # passed | failed (exit code N) | timeout | skipped (reason)
    seconds: float
    log: str

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "seconds": round(self.seconds, 1), "log": self.log}


class Runner:
    """Starts steps as child processes, each cut to the time left of the whole budget."""

    def __init__(self, budget_s: float, logs: Path) -> None:
        self.deadline = time.monotonic() + budget_s
        self.logs = logs

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def start(self, step: Step) -> tuple[Step, subprocess.Popen, float, float, Any]:
        log = (self.logs / f"{step.name}.log").open("w")
        env = {**os.environ, **step.env}
        proc = subprocess.Popen(step.argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        limit = max(1.0, min(step.timeout_s, self.left()))
        return step, proc, time.monotonic(), limit, log

    def wait(self, started: tuple[Step, subprocess.Popen, float, float, Any]) -> Outcome:
        step, proc, begun, limit, log = started
        try:
            code = proc.wait(timeout=max(0.0, begun + limit - time.monotonic()))
            status = "passed" if code == 0 else f"failed (exit code {code})"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            status = f"timeout after {limit:.0f} s"
        log.close()
        outcome = Outcome(step.name, status, time.monotonic() - begun, str(self.logs / f"{step.name}.log"))
        print(f"[gpu_check] {step.name}: {status} in {outcome.seconds:.0f} s", flush=True)
        return outcome

    def run(self, step: Step) -> Outcome:
        if self.left() < 5:
            return Outcome(step.name, "skipped (budget spent)", 0.0, "")
        return self.wait(self.start(step))


def train_config(work: Path, name: str, device: str, steps: int, scenes: int) -> Path:
    """config/train.yaml with a short schedule and a small pool of its own (same model and losses)."""
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "train.yaml").read_text())
    cfg["device"] = device
    cfg["batch_size"] = 32 if device == "cuda" else 4
    cfg["log_every"] = max(1, min(10, steps))
    cfg["checkpoint_every"] = max(steps, 1)
    cfg["data"]["scenes"] = scenes
    cfg["data"]["cache_dir"] = str(work / "scenes")
    cfg["data"]["workers"] = min(8, os.cpu_count() or 1)
    for stage in cfg["stages"].values():
        stage["steps"] = steps
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def steps_for(args: argparse.Namespace, work: Path) -> dict[str, list[Step]]:
    py = sys.executable
    device = "cpu" if args.cpu else "cuda"
    quick = args.cpu
    scenes = 16 if quick else 256
    cli = [py, "-m", "unimrseg_core.cli", "train", "--quiet"]
    train = [*cli, "--config", str(train_config(work, "unimrseg", device, 2 if quick else 200, scenes))]
    baseline_cfg = str(train_config(work, "baselines", device, 1 if quick else 17, scenes))
    baselines = [
        [*cli, "--config", baseline_cfg, "--method", m, "--out-dir", str(work / f"runs-{m}")]
        for m in ("complete-only", "modality-dropout")
    ]
    timing = ["--seconds", "0.5" if quick else "1.5", "--max-runs", "20" if quick else "300"]
    sizes = ["--sizes", "64x80"] if quick else ["--sizes", "480x640", "240x320"]

    def backends(precision: str, variants: list[str], timeout: int) -> list[str]:
        bench = [py, "benchmarks/bench_backends.py", "--device", device, "--cache-dir", str(work / "cache")]
        named = ["--child-timeout", str(timeout), "--name", f"gpu_check_backends_{precision}"]
        return [*bench, "--precision", precision, "--backends", *variants, *sizes, *timing, *named]

    fp16 = ["torch", "compiled"] if quick else ["torch", "torch+graphs", "compiled", "compiled+graphs"]
    fp32 = ["torch"] if quick else ["torch", "torch+graphs"]
    pytest = [py, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider"]
    junit = work / "gpu_tests.xml"
    cache = {"UNIMRSEG_CACHE": str(work / "cache")}
    bench_train = [py, "benchmarks/bench_train.py", "--device", device, "--quick"]
    bench_train += ["--name", "gpu_check_train"]
    return {
        "parallel": [
            Step("gpu_tests", [*pytest, *GPU_TESTS, f"--junitxml={junit}"], 240, cache),
            Step("train", [*train, "--out-dir", str(work / "runs-unimrseg")], 240),
        ],
        "after_train": [Step(f"baseline_{i}", argv, 90) for i, argv in enumerate(baselines)],
        "alone": [
            Step("backends_fp16", backends("fp16", fp16, 150), 200),
            Step("backends_fp32", backends("fp32", fp32, 60), 90),
            Step("train_input", bench_train, 90),
        ],
    }


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def backend_figures(result: dict[str, Any] | None) -> dict[str, Any]:
    """Per "backend size precision": model and Segmenter p50; errors as they were."""
    if result is None:
        return {}
    asked = result.get("settings", {}).get("precision", "?")
    out = {}
    for row in result.get("rows", []):
        size = f"{row['size'][0]}x{row['size'][1]}"
        precision = row.get("precision", asked)
        figures: dict[str, Any] = {"size": size, "precision": precision}
        if "error" in row:
            figures["error"] = row["error"]
        else:
            figures |= {
                "model_p50_ms": round(row["model"]["p50_ms"], 3),
                "segmenter_p50_ms": round(row["segmenter"]["p50_ms"], 3),
                "stages": row.get("stages"),
            }
        out[f"{row['backend']} {size} {precision}"] = figures
    return out


def best(figures: dict[str, Any], size: str, part: str, precision: str | None = None) -> float | None:
    """The lowest ``part`` over the rows of ``size`` (and ``precision``)."""
    values = [
        f[part]
        for f in figures.values()
        if f["size"] == size and part in f and (precision is None or f["precision"] == precision)
    ]
    return min(values) if values else None


def test_figures(junit: Path) -> dict[str, Any]:
    """Each GPU test's outcome from pytest's JUnit XML."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return {}
    out = {}
    for case in root.iter("testcase"):
        name = f"{Path(case.get('classname', '').replace('.', '/')).name}::{case.get('name')}"
        verdict = "passed"
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                message = (element.get("message") or "").splitlines()
                verdict = f"{tag}: {message[0][:200] if message else ''}"
        out[name] = verdict
    return out


def train_figures(work: Path) -> dict[str, Any]:
    """Last logged loss and s/step per phase of every run, read from its metrics.csv."""
    import csv

    out: dict[str, Any] = {}
    for run in sorted(work.glob("runs-*")):
        path = run / "metrics.csv"
        if not path.is_file():
            out[run.name] = "no metrics.csv"
            continue
        phases: dict[str, Any] = {}
        with path.open() as f:
            for row in csv.DictReader(f):
                phases[row["phase"]] = {
                    "steps": int(row["step"]),
                    "loss": float(row["loss"]),
                    "sec_per_step": float(row["sec_per_step"]),
                }
        out[run.name] = {"phases": phases, "model": (run / "model.pt").is_file()}
    return out


def engine_verdicts(cache: Path) -> dict[str, Any]:
    """Every engine's smoke-test verdict from its sidecar (a crash keeps the child's traceback)."""
    out = {}
    for side in sorted(cache.glob("engines/*.json")):
        record = _json(side) or {}
        key = record.get("key", {})
        name = f"{key.get('backend')} {key.get('precision')} {'x'.join(map(str, key.get('input_size', [])))}"
        out[f"{name} ({side.name[:18]})"] = record.get("check")
    return out


def input_rate(result: dict[str, Any] | None) -> float | None:
    """The fastest input pipeline's samples/s in bench_train's JSON."""
    if not result:
        return None
    rates = [m.get("median") for m in result.get("input_samples_per_s", {}).values()]
    rates = [r for r in rates if r is not None]
    return max(rates) if rates else None


def verdicts(figures: dict[str, float | None]) -> dict[str, Any]:
    out = {}
    for name, (op, threshold, what) in TARGETS.items():
        value = figures.get(name)
        ok = value is not None and (value <= threshold if op == "<=" else value >= threshold)
        out[name] = {"what": what, "target": f"{op} {threshold}", "value": value, "pass": ok}
    return out


def print_screen(payload: dict[str, Any]) -> None:
    print("\n=== gpu_check", payload["machine"].get("gpu") or payload["machine"]["cpu"], "===")
    for name, step in payload["steps"].items():
        print(f"  step {name:15s} {step['status']} ({step['seconds']} s)")
    for name, verdict in payload["tests"].items():
        if verdict != "passed":
            print(f"  test {name}: {verdict}")
    passed = sum(v == "passed" for v in payload["tests"].values())
    print(f"  gpu tests: {passed}/{len(payload['tests'])} passed")
    for t in payload["targets"].values():
        value = "n/a" if t["value"] is None else f"{t['value']:.2f}"
        print(f"  {'PASS' if t['pass'] else 'FAIL'} {t['what']}: {value} (target {t['target']})")
    for key, f in payload["backends"].items():
        shown = f.get("error") or f"model {f['model_p50_ms']} ms, segmenter {f['segmenter_p50_ms']} ms"
        print(f"    {key}: {shown}")


def main() -> int:
    from common import environment

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON and the logs")
    parser.add_argument("--budget", type=float, default=480.0, help="wall-clock seconds for every step")
    parser.add_argument("--cpu", action="store_true", help="test the wiring on a CPU (tiny sizes)")
    args = parser.parse_args()

    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA GPU (use --cpu to test the wiring on a CPU)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    out = args.out or work / "out"
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(args.budget, out)
    plan = steps_for(args, work)
    outcomes: dict[str, Outcome] = {}

    started = [runner.start(s) for s in plan["parallel"]]
    train_step = started.pop()
    outcomes["train"] = runner.wait(train_step)
    for step in plan["after_train"]:
        outcomes[step.name] = runner.run(step)
    outcomes["gpu_tests"] = runner.wait(started[0])
    for step in plan["alone"]:
        outcomes[step.name] = runner.run(step)

    backends = {
        **backend_figures(_json(RESULTS / "gpu_check_backends_fp16.json")),
        **backend_figures(_json(RESULTS / "gpu_check_backends_fp32.json")),
    }
    train_input = _json(RESULTS / "gpu_check_train.json")
    figures = {
        "model_480x640_fp16_p50_ms": best(backends, "480x640", "model_p50_ms", "fp16"),
        "segmenter_480x640_p50_ms": best(backends, "480x640", "segmenter_p50_ms"),
        "train_input_samples_per_s": input_rate(train_input),
    }
    env = environment(("numpy", "opencv-python-headless", "torch", "onnxruntime", "onnx"))
    if torch.cuda.is_available():
        env["machine"]["gpu"] = torch.cuda.get_device_name(0)
    payload = {
        **env,
        "mode": "cpu wiring test" if args.cpu else "gpu",
        "budget_s": args.budget,
        "steps": {name: o.as_json() for name, o in outcomes.items()},
        "tests": test_figures(work / "gpu_tests.xml"),
        "backends": backends,
        "train_input": train_input,
        "training": train_figures(work),
        "engines": engine_verdicts(work / "cache"),
        "targets": verdicts(figures),
    }
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    (out / "gpu_check.json").write_text(text)
    for extra in sorted(RESULTS.glob("gpu_check_*")):  # a CPU wiring test leaves no figures in the repo
        (shutil.copy if not args.cpu else shutil.move)(extra, out / extra.name)
    if not args.cpu:
        (RESULTS / "gpu_check.json").write_text(text)
    print_screen(payload)
    print(f"wrote {out / 'gpu_check.json'}" + ("" if args.cpu else f" and {RESULTS / 'gpu_check.json'}"))
    failed = [n for n, o in outcomes.items() if o.status != "passed"]
    missed = [n for n, t in payload["targets"].items() if not t["pass"]]
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
