"""Architecture sweep: what each candidate network costs on the CPU runtime, before any training.

Usage::

    python benchmarks/bench_arch.py                    # the candidates below, ONNX Runtime, 2 threads
    python benchmarks/bench_arch.py --threads 1 --runs 60

First today's shipped ONNX file as it was exported, then for each candidate ``ModelConfig``
(randomly initialised: the cost does not depend on the
weights): parameters and GMACs at 240x320 (``model.cost``), the ONNX graph's node count
(``runtime.export.export_graph``, the exporter ``unimrseg export`` uses), and ONNX Runtime's
latency at batch 1 with every modality present (p50 of ``--runs`` runs after warm-up, all
candidates interleaved round by round, so a busy spell of the machine hits them alike), and
ms per GMAC, the efficiency the issue asks to double. Writes ``benchmarks/results/bench_arch.json``;
MODEL_CARD's sweep table is read from it. Each candidate's accuracy comes from training it
(``scripts/train_models.sh``), not from here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write_result

SIZE = (240, 320)
CANDIDATES: dict[str, dict[str, Any]] = {
    "separate 16-64": {"encoder": "separate", "attention_from_stage": 0},
    "grouped 16-64": {"encoder": "grouped", "attention_from_stage": 0},
    "shared 16-64": {"encoder": "shared", "attention_from_stage": 0},
    "shared 16-64, attn from 2": {"encoder": "shared", "attention_from_stage": 1},
    "grouped 16-64, attn from 2": {"encoder": "grouped", "attention_from_stage": 1},
    "shared 24-96, attn from 2": {
        "encoder": "shared",
        "attention_from_stage": 1,
        "widths": [24, 48, 72, 96],
        "depths": [1, 2, 2, 2],
    },
    "shared 32-128, attn from 2": {
        "encoder": "shared",
        "attention_from_stage": 1,
        "widths": [32, 64, 96, 128],
        "depths": [1, 2, 2, 2],
        "decoder_width": 48,
    },
}
"""Name -> ``ModelConfig`` fields (the rest default)."""


def build(fields: dict[str, Any], tmp: Path, name: str) -> dict[str, Any]:
    """Export one candidate; returns its costs and an ONNX Runtime session factory's path."""
    import onnx
    import torch

    from unimrseg_core.model.config import ModelConfig
    from unimrseg_core.model.cost import model_cost
    from unimrseg_core.model.network import UniMRSegNet
    from unimrseg_core.runtime.export import export_graph

    torch.manual_seed(0)
    cfg = ModelConfig.from_dict(fields)
    net = UniMRSegNet(cfg).eval()
    path = tmp / f"{len(list(tmp.iterdir()))}.onnx"
    export_graph(net, path, SIZE, max_batch=4)
    return {
        "name": name,
        "model": cfg.to_dict(),
        **model_cost(net, SIZE),
        "onnx_nodes": len(onnx.load(str(path)).graph.node),
        "path": path,
    }


def shipped_row() -> dict[str, Any]:
    """Today's shipped ONNX file as it was exported (``unimrseg_core/weights``), the reference the
    per-GMAC target is measured against; its costs from its checkpoint."""
    import onnx

    from unimrseg_core.model.checkpoint import SHIPPED, load_model
    from unimrseg_core.model.cost import model_cost

    net, meta = load_model()
    path = SHIPPED.with_suffix(".onnx")
    return {
        "name": "shipped ONNX (as exported)",
        "model": meta["model"],
        **model_cost(net, SIZE),
        "onnx_nodes": len(onnx.load(str(path)).graph.node),
        "path": path,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (default 2)")
    parser.add_argument("--runs", type=int, default=40, help="timed runs per candidate (default 40)")
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), help="a subset of the candidates")
    args = parser.parse_args()

    import onnxruntime as ort

    names = args.only or list(CANDIDATES)
    rng = np.random.default_rng(0)
    feeds = {
        "rgb": rng.random((1, 3, *SIZE), dtype=np.float32),
        "depth": rng.random((1, 1, *SIZE), dtype=np.float32),
        "thermal": rng.random((1, 1, *SIZE), dtype=np.float32),
        "modality_mask": np.ones((1, 3), np.float32),
    }
    with tempfile.TemporaryDirectory() as tmp:
        rows = [shipped_row(), *(build(CANDIDATES[n], Path(tmp), n) for n in names)]
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        sessions = [
            ort.InferenceSession(str(r.pop("path")), options, providers=["CPUExecutionProvider"])
            for r in rows
        ]
        for session in sessions:  # warm-up
            for _ in range(3):
                session.run(None, feeds)
        times: list[list[float]] = [[] for _ in rows]
        for _ in range(args.runs):  # round-robin: a busy spell of the machine hits every candidate
            for k, session in enumerate(sessions):
                start = time.perf_counter()
                session.run(None, feeds)
                times[k].append((time.perf_counter() - start) * 1e3)
    for row, t in zip(rows, times, strict=True):
        row["ort_p50_ms"] = round(statistics.median(t), 2)
        row["ort_p10_ms"] = round(float(np.percentile(t, 10)), 2)
        row["ms_per_gmac"] = round(row["ort_p50_ms"] / row["gmacs"], 2)
        row["fps"] = round(1e3 / row["ort_p50_ms"], 1)
        print(
            f"{row['name']:26s} {row['params'] / 1e6:6.2f} M params {row['gmacs']:6.3f} GMACs "
            f"{row['onnx_nodes']:4d} nodes  p50 {row['ort_p50_ms']:7.2f} ms "
            f"{row['ms_per_gmac']:6.1f} ms/GMAC",
            flush=True,
        )
    env = environment(("numpy", "torch", "onnxruntime", "onnx"))
    path = write_result(
        "bench_arch",
        {**env, "size": list(SIZE), "threads": args.threads, "runs": args.runs, "batch": 1, "rows": rows},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
