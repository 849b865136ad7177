"""Fine-tuning from the shipped weights vs training from scratch, the same small budget, a new robot.

Usage::

    python benchmarks/finetune.py                 # about 15 CPU minutes for both runs on 2 cores
    python benchmarks/finetune.py --steps 40      # a quick look

The stand-in for a new robot is the procedural world with another generator seed and another
condition mix (mostly night and fog, frequent depth holes and thermal washout), 200 labelled
frames: the first 160 train, the last 40 are held out (``holdout``). Both runs get the same
training config (``data.sources``: that one source; stage 2 then stage 3, ``--steps`` in all,
batch 8 of 128x160 crops) and differ only in ``init``: the shipped checkpoint, or none. They run
side by side, one thread each, as ``unimrseg train`` processes. Each result, and the shipped model
untouched, is scored by ``unimrseg eval --train-config`` on the 40 held-out frames (all 7
combinations, no robustness protocols). Writes ``benchmarks/results/finetune.json`` with the
CPU seconds each run took.
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write_result

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "unimrseg_core" / "weights" / "unimrseg.pt"
SOURCE = {
    "kind": "procedural",
    "name": "new_robot",
    "seed": 4242,
    "scenes": 200,
    "holdout": 40,
    "conditions": {
        "day": 0.1,
        "night": 0.5,
        "fog": 0.3,
        "glare": 0.1,
        "depth_holes": 0.5,
        "thermal_washout": 0.4,
    },
}


def config(out: Path, steps: int, init: Path | None) -> dict[str, Any]:
    stage3 = steps // 5
    return {
        "seed": 0,
        "out_dir": str(out),
        "device": "cpu",
        "batch_size": 8,
        "log_every": 10,
        "checkpoint_every": 1000,
        "init": str(init) if init else None,
        "data": {"size": [240, 320], "crop": [128, 160], "workers": 1, "sources": [SOURCE]},
        "stages": {
            "stage1": {"steps": 0},
            "stage2": {"steps": steps - stage3, "lr": 1.0e-3},
            "stage3": {"steps": stage3, "lr": 5.0e-4},
        },
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "unimrseg_core.cli", *args]


def train_side_by_side(configs: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Both runs at once, one thread each; wall and CPU seconds of each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = {
        name: (time.perf_counter(), subprocess.Popen(cli("train", "--config", str(path), "--quiet"), env=env))
        for name, path in configs.items()
    }
    out = {}
    for name, (t0, proc) in started.items():
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"training {name} failed with {proc.returncode}")
        out[name] = {
            "wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        }
    return out


def score(config_path: Path, checkpoint: Path, json_path: Path) -> dict[str, Any]:
    subprocess.run(
        cli(
            "eval",
            "--train-config",
            str(config_path),
            "--checkpoint",
            str(checkpoint),
            "--backend",
            "torch",
            "--no-protocols",
            "--quiet",
            "--json",
            str(json_path),
        ),
        check=True,
    )
    result = json.loads(json_path.read_text())["sources"][0]
    res = result["results"]["rgb+depth+thermal"]
    return {
        "held_out_samples": result["samples"],
        "summary": res["summary"],
        "combinations": {
            r["combination"]: {"miou": r["miou"], "s_measure": r["s_measure"]} for r in res["combinations"]
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps of each run (default 300)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="finetune-") as tmp:
        root = Path(tmp)
        paths = {}
        for name, init in (("finetune", SHIPPED), ("scratch", None)):
            paths[name] = root / f"{name}.yaml"
            paths[name].write_text(yaml.safe_dump(config(root / name, args.steps, init)))
        cost = train_side_by_side(paths)
        scores = {name: score(paths[name], root / name / "model.pt", root / f"{name}.json") for name in paths}
        scores["shipped, not fine-tuned"] = score(paths["scratch"], SHIPPED, root / "shipped.json")
    payload = {
        "what": "fine-tuned from the shipped weights vs from scratch, same budget, new robot held out",
        "source": SOURCE,
        "training": {
            "steps": args.steps,
            "stages": config(Path("out"), args.steps, None)["stages"],
            "batch_size": 8,
            "crop": [128, 160],
            "threads_per_run": 1,
            "cost": cost,
        },
        "scores": scores,
        "environment": environment(),
    }
    path = write_result("finetune", payload)
    for name, s in scores.items():
        print(f"{name}: complete mIoU {s['summary']['complete_miou']}, mean of 7 {s['summary']['mean_miou']}")
    print(f"cost: {cost}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
