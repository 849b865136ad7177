"""Throughput of the procedural world: scenes/s on the fly and to disk, at 240x320 and 480x640.

Usage: ``python benchmarks/bench_data.py [--scenes 60] [--repeats 3]``
Writes ``benchmarks/results/bench_data.json``. Each figure is the median of
``--repeats`` runs over ``--scenes`` scenes (after one warm-up scene per process).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, median_rate, write_result

from unimrseg_core.data.disk import write_dataset
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.torch_dataset import ProceduralDataset

SIZES = ((240, 320), (480, 640))


def bench_size(size: tuple[int, int], scenes: int, repeats: int) -> dict[str, dict[str, float]]:
    generator = SceneGenerator(size, seed=123)
    generator.sample(0)  # warm-up: texture bank, imports

    def one_process() -> int:
        for i in range(scenes):
            generator.sample(i)
        return scenes

    def loader(workers: int) -> int:
        data = ProceduralDataset(scenes, size=size, seed=123)
        done = 0
        for batch in DataLoader(data, batch_size=4, num_workers=workers, persistent_workers=False):
            done += batch["rgb"].shape[0]
        return done

    def to_disk(workers: int) -> int:
        root = Path(tempfile.mkdtemp(prefix="bench_data_"))
        try:
            write_dataset(root / "d", scenes, seed=123, size=size, workers=workers, progress=False)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return scenes

    return {
        "on_the_fly_1_process": median_rate(one_process, repeats),
        "dataloader_2_workers": median_rate(lambda: loader(2), repeats),
        "to_disk_1_worker": median_rate(lambda: to_disk(1), repeats),
        "to_disk_2_workers": median_rate(lambda: to_disk(2), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for h, w in SIZES:
        n = args.scenes if h * w <= 240 * 320 else max(args.scenes // 3, 8)
        print(f"{h}x{w}: {n} scenes x {args.repeats} runs ...", flush=True)
        results[f"{h}x{w}"] = {"scenes_per_run": n, **bench_size((h, w), n, args.repeats)}
        for key, value in results[f"{h}x{w}"].items():
            if isinstance(value, dict):
                lo, hi = value["min"], value["max"]
                print(f"  {key:24s} {value['median']:6.1f} scenes/s (min {lo:.1f}, max {hi:.1f})")
    path = write_result(
        "bench_data",
        {**environment(), "unit": "scenes/s", "target": "50 scenes/s at 240x320", "results": results},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
