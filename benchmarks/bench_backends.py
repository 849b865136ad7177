"""Latency of every available backend: the model alone and the whole ``Segmenter`` call.

Usage::

    python benchmarks/bench_backends.py                       # CPU: onnxruntime, torch, compiled
    python benchmarks/bench_backends.py --device cuda --precision fp16 \\
        --backends torch torch+graphs compiled compiled+graphs tensorrt   # on a GPU machine

A name with ``+graphs`` runs that backend under CUDA graphs: the model alone through
``cuda_graphs.GraphedFunction`` and the ``Segmenter`` with its device stages captured
as one graph; without it, a CUDA backend runs eagerly (device stages, no graph).

For each backend and network size (240x320, 480x640, 720x1280; the network is
fully convolutional, so each size is an export/engine of the shipped weights at
that size) and batch 1: warm-up, then timed runs until ``--seconds`` or
``--max-runs``. Reported: the network's parameters, GMACs and (ONNX backends)
graph nodes, p50/p95/p99 of the model alone (on-device tensors for
GPU backends, no host copies) and of ``Segmenter.segment`` (camera images in
sensor units at that size -> class ids and saliency: pre + model + post), fps
from the Segmenter p50, the p50 of every modality combination (they must cost
the same: one network, the mask is an input), the engine build or load time, and
peak memory (process RSS, which includes an export or engine build done in the same
process; torch's CUDA allocator peak on a GPU, which misses memory TensorRT allocates
itself). Each (backend, size)
runs in its own process so peak memory and thread pools do not leak between
them. Writes ``benchmarks/results/bench_backends_<device>.json`` and a PNG plot.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, write_result

SIZES = ((240, 320), (480, 640), (720, 1280))
SPREAD_WARNING = 1.15  # max/min p50 over the 7 combinations above which the run says so


def _percentiles(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "runs": len(times),
    }


def _timed(fn: Any, seconds: float, min_runs: int, max_runs: int, sync: Any) -> list[float]:
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def _combinations_p50(fns: dict[str, Any], timing: tuple[float, int, int], sync: Any) -> dict[str, float]:
    """p50 per combination, timed in interleaved rounds so that machine noise hits all alike."""
    seconds, min_runs, max_runs = timing
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    deadline = time.perf_counter() + seconds
    rounds = 0
    while rounds < max_runs and (rounds < max(5, min_runs // 2) or time.perf_counter() < deadline):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
        rounds += 1
    return {name: _percentiles(t)["p50_ms"] for name, t in times.items()}


def measure(
    variant: str, size: tuple[int, int], device: str, precision: str, cache_dir: str, args: dict
) -> dict[str, Any]:
    """One (backend, size) in this process; returns its figures."""
    import torch

    from unimrseg_core.data.generator import SceneGenerator
    from unimrseg_core.data.tensors import model_inputs
    from unimrseg_core.eval.protocols import drop
    from unimrseg_core.modalities import COMBINATIONS
    from unimrseg_core.model.network import INPUT_NAMES
    from unimrseg_core.runtime.cuda_graphs import GraphedFunction
    from unimrseg_core.runtime.segmenter import Segmenter
    from unimrseg_core.runtime.selection import BackendOptions, select_backend

    if args["threads"]:
        torch.set_num_threads(args["threads"])
    cuda = device.startswith("cuda")
    backend_name, _, graphs = variant.partition("+")
    if graphs not in ("", "graphs") or (graphs and not cuda):
        raise ValueError(f"{variant}: '+graphs' is the only variant, and it needs --device cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    start = time.perf_counter()
    backend = select_backend(
        backend_name,
        BackendOptions(
            cache_dir=Path(cache_dir),
            device=device,
            precision=precision,
            input_size=size,
            max_batch=args["max_batch"],
            threads=args["threads"],
        ),
    ).backend
    open_s = time.perf_counter() - start
    scenes = [SceneGenerator(size, seed=99).sample(i) for i in range(3)]
    feeds = [{k: v[None] for k, v in model_inputs(s).items()} for s in scenes]
    segmenter = Segmenter(backend, cuda_graphs=bool(graphs))

    if hasattr(backend, "run_device"):  # torch-based backends: the model alone on device tensors
        run = backend.run_device  # type: ignore[attr-defined]
        if graphs:
            run = GraphedFunction(run, backend.device)  # type: ignore[attr-defined]
        on_device = [
            [torch.from_numpy(f[k]).to(backend.device).contiguous() for k in INPUT_NAMES]  # type: ignore[attr-defined]
            for f in feeds
        ]

        def model_once(i: list[int] = [0]) -> None:  # noqa: B006 - a counter that cycles scenes
            i[0] += 1
            run(*on_device[i[0] % len(on_device)])

        def combo_once(combo: Any) -> Any:
            args_ = [torch.from_numpy(drop(feeds[0], combo)[k]).to(backend.device) for k in INPUT_NAMES]  # type: ignore[attr-defined]
            return lambda: run(*args_)
    else:

        def model_once(i: list[int] = [0]) -> None:  # noqa: B006
            i[0] += 1
            backend.infer(feeds[i[0] % len(feeds)])

        def combo_once(combo: Any) -> Any:
            dropped = drop(feeds[0], combo)
            return lambda: backend.infer(dropped)

    def segment_once(i: list[int] = [0]) -> None:  # noqa: B006
        i[0] += 1
        s = scenes[i[0] % len(scenes)]
        segmenter.segment(rgb=s.rgb, depth=s.depth, thermal=s.thermal)

    for _ in range(args["warmup"]):
        model_once()
        segment_once()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timing = (args["seconds"], args["min_runs"], args["max_runs"])
    model = _percentiles(_timed(model_once, *timing, sync))
    segment = _percentiles(_timed(segment_once, *timing, sync))
    per_combo = _combinations_p50({c.name: combo_once(c) for c in COMBINATIONS}, timing, sync)
    p50s = list(per_combo.values())
    cost = _cost(backend, size)
    return {
        **cost,
        "model_ms_per_gmac": round(model["p50_ms"] / cost["gmacs"], 2),
        "backend": variant,
        "cuda_graphs": bool(graphs),
        "stages": "device" if segmenter.device_stages(backend) is not None else "host",
        "size": list(size),
        "open_s": round(open_s, 2),
        "model": model,
        "segmenter": segment,
        "fps": 1e3 / segment["p50_ms"],
        "combinations_p50_ms": per_combo,
        "combination_spread": max(p50s) / min(p50s),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "precision": _precision_run(backend, precision, cuda),
    }


def _cost(backend: Any, size: tuple[int, int]) -> dict[str, Any]:
    """The shipped network's parameters and GMACs at ``size`` (``model.cost``), and the ONNX graph's
    node count where the backend runs one: the issue's "ms per GMAC" and "nodes" are read here."""
    import onnx

    from unimrseg_core.model.checkpoint import load_model
    from unimrseg_core.model.cost import model_cost

    cost = model_cost(load_model()[0], size)
    path = getattr(backend, "onnx_path", None)
    return {**cost, "onnx_nodes": len(onnx.load(str(path)).graph.node) if path else None}


def _precision_run(backend: Any, asked: str, cuda: bool) -> str:
    """The precision the model really ran in: GPU engines and torch on CUDA run ``asked``."""
    if not cuda or backend.name == "onnxruntime":
        return "fp32"
    return str(backend.metadata.get("precision", asked))


def _result(queue: Any, proc: Any, timeout: float) -> dict[str, Any]:
    """The child's figures; an error row when it dies (a crashing engine) or runs past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return queue.get(timeout=1.0)
        except Empty:
            if not proc.is_alive():
                try:
                    return queue.get(timeout=1.0)
                except Empty:
                    return {"error": f"the measuring process died (exit code {proc.exitcode})"}
            if time.monotonic() > deadline:
                proc.kill()
                return {"error": f"no result within {timeout} s"}


def _child(queue: Any, *params: Any) -> None:
    try:
        queue.put(measure(*params))
    except Exception as exc:  # reported in the JSON: a backend that cannot run here
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r]
    backends = sorted({r["backend"] for r in ok})
    sizes = sorted({tuple(r["size"]) for r in ok}, key=lambda s: s[0] * s[1])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    width = 0.8 / max(1, len(backends))
    for ax, part in zip(axes, ("model", "segmenter"), strict=True):
        for b, name in enumerate(backends):
            found = {tuple(r["size"]): r[part]["p50_ms"] for r in ok if r["backend"] == name}
            values = [found.get(s, np.nan) for s in sizes]
            ax.bar(np.arange(len(sizes)) + b * width, values, width, label=name)
        ax.set_xticks(np.arange(len(sizes)) + width * (len(backends) - 1) / 2)
        ax.set_xticklabels([f"{h}x{w}" for h, w in sizes])
        ax.set_yscale("log")
        ax.set_title(f"{part}: p50 latency (ms, log)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    from unimrseg_core.cli_types import parse_size
    from unimrseg_core.runtime.options import default_cache_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["onnxruntime", "torch", "compiled"])
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=list(SIZES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp16", help="GPU engines (tensorrt, compiled)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: every core)")
    parser.add_argument("--seconds", type=float, default=6.0, help="time budget per measurement")
    parser.add_argument("--min-runs", type=int, default=20)
    parser.add_argument("--max-runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--max-batch", type=int, default=4)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--name", help="result name (default bench_backends_<device>)")
    parser.add_argument(
        "--child-timeout", type=float, default=1800, help="seconds per (backend, size), builds included"
    )
    args = parser.parse_args()

    keys = ("threads", "seconds", "min_runs", "max_runs", "warmup", "max_batch")
    settings = {k: getattr(args, k) for k in keys}
    context = multiprocessing.get_context("spawn")
    rows = []
    for size in args.sizes:
        for name in args.backends:
            queue = context.Queue()
            proc = context.Process(
                target=_child,
                args=(queue, name, tuple(size), args.device, args.precision, str(args.cache_dir), settings),
            )
            proc.start()
            row = _result(queue, proc, args.child_timeout)
            proc.join()
            row.setdefault("backend", name)
            row.setdefault("size", list(size))
            rows.append(row)
            shown = row.get("error") or (
                f"model p50 {row['model']['p50_ms']:.2f} ms, "
                f"segmenter p50 {row['segmenter']['p50_ms']:.2f} ms ({row['fps']:.1f} fps), "
                f"combinations x{row['combination_spread']:.2f}"
            )
            print(f"{name:12s} {size[0]}x{size[1]}: {shown}", flush=True)

    env = environment(("numpy", "opencv-python-headless", "torch", "onnxruntime", "onnx", "tensorrt"))
    if args.device.startswith("cuda"):
        import torch

        env["machine"]["gpu"] = torch.cuda.get_device_name(0)
    ratios = _ratios(rows)
    name = args.name or f"bench_backends_{args.device.split(':')[0]}"
    payload = {**env, "settings": settings, "device": args.device, "rows": rows, "ratios": ratios}
    path = write_result(name, payload)
    plot(rows, RESULTS / f"{name}.png", f"{env['machine'].get('gpu') or env['machine']['cpu']}, batch 1")
    print(f"wrote {path}")
    for key, value in ratios.items():
        print(f"  {key}: {value:.2f}")
    if ratios.get("worst_combination_spread", 1.0) > SPREAD_WARNING:
        print(
            f"WARNING: a combination costs {ratios['worst_combination_spread']:.2f}x another "
            f"(> {SPREAD_WARNING}); one network should cost the same for every mask: check for noise"
        )
    return 0


def _ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Speed-ups against eager torch at each size, model alone, from this one run."""
    ok = {(r["backend"], tuple(r["size"])): r for r in rows if "error" not in r}
    out = {}
    for (name, size), row in ok.items():
        ref = ok.get(("torch", size))
        if ref and name != "torch":
            speedup = ref["model"]["p50_ms"] / row["model"]["p50_ms"]
            out[f"{name}_vs_torch_model_{size[0]}x{size[1]}"] = speedup
    spreads = [r["combination_spread"] for r in ok.values()]
    if spreads:
        out["worst_combination_spread"] = max(spreads)
        out["median_combination_spread"] = statistics.median(spreads)
    return out


if __name__ == "__main__":
    sys.exit(main())
