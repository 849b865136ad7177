"""``unimrseg eval --train-config CONFIG``: score a model on each source of a training config.

Each source is opened exactly as training opens it (``source_samples.open_source``: the same
class map, stored units, split and limit) at the model's input size, and its held-out samples
(``holdout``; all of them when it holds none out, which the result says) are scored by
``eval.evaluate``. A source whose samples differ in modalities (a bag with a camera missing in
some frames) is scored per set of modalities. The model's class table must be the config's:
the labels are mapped onto it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unimrseg_core.data.sample import Sample
from unimrseg_core.eval.evaluate import evaluate
from unimrseg_core.modalities import CLASSES, class_table_json, model_classes
from unimrseg_core.train.config import TrainConfig, load
from unimrseg_core.train.source_samples import open_source

__all__ = ["evaluate_sources", "run_sources"]


def _by_modalities(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault("+".join(sample.present), []).append(sample)
    return groups


def evaluate_sources(
    model: Any,
    cfg: TrainConfig,
    *,
    names: Sequence[str] | None = None,
    protocols: bool = False,
    batch_size: int = 8,
    progress: bool = False,
) -> dict[str, Any]:
    """``{"sources": [{name, held_out, samples, results: {modalities: evaluate(...)}}]}`` for the
    sources of ``cfg`` (or those ``names``). ``model``: a runtime Backend, or a torch module with
    ``classes`` of ours. ValueError for an unknown name or a model of another class table."""
    from unimrseg_core.data.readers import load_class_table

    meta = getattr(model, "metadata", None)
    table = load_class_table(Path(cfg.classes).expanduser()) if cfg.classes else CLASSES
    if meta is not None and class_table_json(model_classes(meta)) != class_table_json(table):
        raise ValueError("the model's class table is not the training config's: the labels would not match")
    size = tuple(int(v) for v in meta["input_size"]) if meta is not None else cfg.data.size
    known = [s.name for s in cfg.data.sources]
    if not known:
        raise ValueError("the training config has no data.sources (score the procedural split without it)")
    unknown = [n for n in names or () if n not in known]
    if unknown:
        raise ValueError(f"no source {unknown[0]!r}; the config's: {', '.join(known)}")
    out = []
    for source in cfg.data.sources:
        if names and source.name not in names:
            continue
        opened = open_source(source, (size[0], size[1]), table)
        held = opened.held_out()
        results = {
            present: evaluate(
                model,
                group,
                protocols=protocols,
                batch_size=batch_size,
                progress=progress,
                data={**opened.info, "modalities": present},
                classes=table,
            )
            for present, group in _by_modalities(held).items()
        }
        out.append(
            {"name": source.name, "held_out": bool(source.holdout), "samples": len(held), "results": results}
        )
    return {"sources": out}


def run_sources(args: argparse.Namespace) -> int:
    """``eval --train-config``: the table per source, and the JSON with ``--json``."""
    from unimrseg_core.model.checkpoint import SHIPPED
    from unimrseg_core.runtime.selection import BackendOptions, select_backend

    try:
        cfg = load(args.train_config)
        checkpoint = args.checkpoint or SHIPPED
        options = BackendOptions(checkpoint=checkpoint, device=args.device, max_batch=args.batch_size)
        backend = select_backend(args.backend, options).backend
        result = evaluate_sources(
            backend,
            cfg,
            names=args.source,
            protocols=not args.no_protocols,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
    except (ValueError, KeyError, OSError) as exc:  # DatasetError, BagError, CheckpointError
        print(f"unimrseg eval: error: {exc}", file=sys.stderr)
        return 2
    for entry in result["sources"]:
        note = "" if entry["held_out"] else " (no holdout: these samples were trained on)"
        for present, res in entry["results"].items():
            s = res["summary"]
            print(
                f"{entry['name']} [{present}], {res['combinations'][0]['scenes']} samples{note}: "
                f"complete mIoU {s['complete_miou']}, mean over combinations {s['mean_miou']}, "
                f"complete S-measure {s['complete_s_measure']}"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**result, "checkpoint": str(checkpoint)}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0
