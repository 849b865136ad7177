"""Training throughput: the input pipelines alone, and whole optimisation steps of the shipped network.

Usage::

    python benchmarks/bench_train.py                  # CPU
    python benchmarks/bench_train.py --device cuda    # a GPU machine
    python benchmarks/bench_train.py --device cuda --quick   # under a minute on a GPU

Batch 32 of 128x160 crops from a cached pool of 240x320 scenes (rendered once into
``--cache-dir``), the shipped model (``config/train.yaml``). Input pipelines
(``data.loader``): ``dataloader_<k>w``, k DataLoader worker processes decoding each
batch's PNGs (pinned and copied to the device), and ``tensors``, the pool decoded once
and cut on the device (``train.pool``). Reported, each the median of ``--repeats``
runs after a warm-up run: samples/s of each pipeline alone (batches on the device),
steps/s of the trainer's ``train_step`` fed by the best DataLoader setting and by the
tensor pool for every phase (stage 1-3, and the modality-dropout baseline's
``supervised``), and the pool's one-off decode time (with what loading the decoded
arrays from ``.npy`` files would take instead). Writes
``benchmarks/results/bench_train_<device>.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, median_rate, write_result

from unimrseg_core.train.batches import Batch, batches, ensure_pool, pool_dir
from unimrseg_core.train.config import TrainConfig, load
from unimrseg_core.train.pool import TensorPool, decode_pool
from unimrseg_core.train.stages import STEPS
from unimrseg_core.train.trainer import Trainer, train_step

REPO = Path(__file__).resolve().parent.parent
BATCH, CROP, SIZE = 32, (128, 160), (240, 320)
PHASES = (
    ("unimrseg", "stage1"),
    ("unimrseg", "stage2"),
    ("unimrseg", "stage3"),
    ("modality-dropout", "supervised"),
)


def _config(device: str, scenes: int, cache_dir: str) -> TrainConfig:
    cfg = load(REPO / "config" / "train.yaml", {"device": device, "batch_size": BATCH})
    cores = os.cpu_count() or 1
    cfg.data = replace(cfg.data, size=SIZE, crop=CROP, scenes=scenes, cache_dir=cache_dir, workers=cores)
    return cfg


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _source(
    cfg: TrainConfig, pipeline: str, pool: TensorPool, device: torch.device
) -> Generator[Batch, None, None]:
    """Endless batches of ``pipeline`` on ``device``."""
    if pipeline == "tensors":
        return batches(cfg.data, BATCH, 0, 0, 1 << 30, pool=pool)
    data = replace(cfg.data, loader="dataloader", loader_workers=int(pipeline.split("_")[1][:-1]))
    return batches(data, BATCH, 0, 0, 1 << 30, pin_memory=device.type == "cuda")


def _to(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _measured(run: Callable[[], int], repeats: int) -> dict[str, float]:
    run()  # warm-up: workers started and prefetching, kernels chosen, allocator grown
    return median_rate(run, repeats)


def input_rate(source: Iterator[Batch], device: torch.device, per_run: int, repeats: int) -> dict[str, float]:
    """Samples/s of a pipeline alone, its batches landed on ``device``."""

    def run() -> int:
        for _ in range(per_run):
            _to(next(source), device)
        _sync(device)
        return per_run * BATCH

    return _measured(run, repeats)


def train_rate(
    cfg: TrainConfig, method: str, phase: str, source: Iterator[Batch], steps: int, repeats: int
) -> dict[str, float]:
    """Steps/s of the trainer's step (AdamW, clipped gradients) for ``phase``, fed by ``source``."""
    trainer = Trainer(replace(cfg, method=method), progress=False)
    params = trainer.set_phase(phase)
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(0)

    def run() -> int:
        loss = torch.zeros(())
        for _ in range(steps):
            batch = _to(next(source), trainer.device)
            loss, _ = train_step(trainer.model, STEPS[phase], batch, trainer.cfg, gen, optimizer, params)
        loss.item()  # waits for the device
        return steps

    return _measured(run, repeats)


def decode_cost(root: Path) -> dict[str, Any]:
    """Seconds to decode the pool's PNGs once, and to load the same arrays from ``.npy`` files."""
    start = time.perf_counter()
    arrays = decode_pool(root)
    decode_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        for key, array in arrays.items():
            np.save(Path(tmp) / f"{key}.npy", array)
        start = time.perf_counter()
        loaded = {key: np.load(Path(tmp) / f"{key}.npy") for key in arrays}
        npy_s = time.perf_counter() - start
    return {
        "scenes": len(arrays["rgb"]),
        "bytes": int(sum(a.nbytes for a in loaded.values())),
        "decode_s": decode_s,
        "npy_load_s": npy_s,
        "threads": os.cpu_count(),
    }


def _pipelines() -> list[str]:
    most = min(8, os.cpu_count() or 1)
    return [f"dataloader_{k}w" for k in sorted({1, most})] + ["tensors"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--quick", action="store_true", help="fewer scenes, batches and steps (< 1 min on a GPU)"
    )
    parser.add_argument("--scenes", type=int, help="pool size (default 200, quick 64)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", default="~/.cache/unimrseg/scenes")
    parser.add_argument("--name", help="result name (default bench_train_<device>)")
    args = parser.parse_args()
    scenes = args.scenes or (64 if args.quick else 200)
    input_batches, train_steps = (8, 3) if args.quick else (20, 3)
    cfg = _config(args.device, scenes, args.cache_dir)
    device = torch.device(args.device)
    root = ensure_pool(cfg.data, progress=False)
    print(f"{args.device}: batch {BATCH}, crops {CROP[0]}x{CROP[1]}, pool of {scenes} scenes", flush=True)
    decode = decode_cost(root)
    pool = TensorPool.load(pool_dir(cfg.data), device, cfg.data.pool_device_gib)
    pipelines = _pipelines()
    inputs: dict[str, dict[str, float]] = {}
    training: dict[str, dict[str, dict[str, float]]] = {}
    for pipeline in pipelines:
        source = _source(cfg, pipeline, pool, device)
        inputs[pipeline] = input_rate(source, device, input_batches, args.repeats)
        if pipeline in (pipelines[-2], "tensors"):  # end to end: the most workers, and the pool
            training[pipeline] = {
                phase: train_rate(cfg, method, phase, source, train_steps, args.repeats)
                for method, phase in PHASES
            }
        source.close()  # stops the DataLoader's workers
        steps = ", ".join(f"{p} {r['median']:.2f}" for p, r in training.get(pipeline, {}).items())
        print(
            f"{pipeline:14s} input {inputs[pipeline]['median']:8.1f} samples/s"
            + (f" | train steps/s: {steps}" if steps else ""),
            flush=True,
        )
    seconds, npy = decode["decode_s"], decode["npy_load_s"]
    print(f"pool decode {seconds:.2f} s for {decode['scenes']} scenes (from .npy files: {npy:.2f} s)")
    path = write_result(
        args.name or f"bench_train_{args.device}",
        {
            **environment(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "quick": args.quick,
            "batch_size": BATCH,
            "crop": list(CROP),
            "scene_size": list(SIZE),
            "pool_scenes": scenes,
            "torch_threads": torch.get_num_threads(),
            "model": cfg.model.to_dict(),
            "input_samples_per_s": inputs,
            "train_steps_per_s": training,
            "pool_decode": decode,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
