"""The training pool at scale: render a cached pool of N scenes, then decode it as training does.

Usage: ``python benchmarks/bench_pool.py [--scenes 20000] [--workers 2] [--cache-dir DIR] [--keep]``

Renders through the trainer's own ``ensure_pool`` (the pool ``data.mode: cache`` uses, same
layout and key) into ``--cache-dir`` (default a temporary folder, deleted afterwards unless
``--keep``), then decodes it with ``decode_pool`` (the ``tensors`` loader's first step) and
reports: render wall time and scenes/s, bytes on disk per scene, decode time, the decoded
arrays' size and the process's peak RSS. Writes ``benchmarks/results/bench_pool.json``.
One run (a pool of 20,000 is minutes of rendering); the machine's load is recorded with it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write_result

from unimrseg_core.train.batches import ensure_pool
from unimrseg_core.train.config import DataConfig
from unimrseg_core.train.pool import decode_pool


def _bytes_under(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def pool_config(scenes: int, workers: int, cache_dir: Path) -> DataConfig:
    """The trainer's data config (every other field its default) for a pool of ``scenes``."""
    return dataclasses.replace(DataConfig(), scenes=scenes, workers=workers, cache_dir=str(cache_dir))


def run(scenes: int, workers: int, cache_dir: Path) -> dict[str, object]:
    cfg = pool_config(scenes, workers, cache_dir)
    load_before = os.getloadavg()
    start = time.perf_counter()
    root = ensure_pool(cfg, progress=False)
    render_s = time.perf_counter() - start
    disk = _bytes_under(root)
    start = time.perf_counter()
    arrays = decode_pool(root)
    decode_s = time.perf_counter() - start
    decoded = sum(a.nbytes for a in arrays.values())
    return {
        "scenes": scenes,
        "size": list(cfg.size),
        "render_workers": workers,
        "render_s": round(render_s, 1),
        "render_scenes_per_s": round(scenes / render_s, 1),
        "disk_gib": round(disk / 2**30, 2),
        "disk_kib_per_scene": round(disk / scenes / 1024, 1),
        "decode_s": round(decode_s, 1),
        "decoded_gib": round(decoded / 2**30, 2),
        "decoded_mb_per_scene": round(decoded / scenes / 1e6, 3),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "arrays": {k: [str(a.dtype), list(a.shape)] for k, a in arrays.items()},
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (data.workers)")
    parser.add_argument("--cache-dir", type=Path, help="where to render (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the rendered pool")
    args = parser.parse_args()
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="bench_pool_"))
    try:
        result = run(args.scenes, args.workers, cache)
    finally:
        if not args.keep:
            shutil.rmtree(cache, ignore_errors=True)
    payload = {"environment": environment(), "pool": result}
    print(result)
    print(f"wrote {write_result('bench_pool', payload)}")


if __name__ == "__main__":
    main()
