"""``evaluate``: one network, every modality combination, per condition, under the robustness protocols.

One pass over the samples, in batches: each batch is run once per combination
(EMM) and, for the first ``protocol_scenes`` scenes, once per RMM / NM setting on
the complete input. The result is a JSON-ready dict (layout in :func:`evaluate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch
from tqdm import tqdm

from unimrseg_core.data.conditions import CONDITIONS
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.data.tensor_ops import saliency_mono8_tensor
from unimrseg_core.data.tensors import model_inputs, targets
from unimrseg_core.eval.metrics import SaliencyMeter, SegmentationMeter
from unimrseg_core.eval.protocols import Damage, Inputs, drop, robustness_protocols
from unimrseg_core.modalities import COMBINATIONS, ClassInfo, Combination, combination, model_classes
from unimrseg_core.runtime.backends import Backend
from unimrseg_core.runtime.segmenter import saliency_mono8

__all__ = ["PROTOCOL_SCENES", "evaluate", "usable_combinations"]

PROTOCOL_SCENES: Final[int] = 21
"""RMM / NM run on the first 21 scenes (3 of each condition mix of the held-out split): their
9 extra passes over all 140 scenes would more than double the CPU evaluation (about 63 ms per
image and pass at 240x320 on 2 cores), far past its 2-minute budget."""

_DIGITS: Final[int] = 5


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, _DIGITS)


def usable_combinations(present: Sequence[str]) -> list[Combination]:
    """The combinations whose modalities are all in ``present`` (what a dataset can be scored on)."""
    return [c for c in COMBINATIONS if set(c.modalities) <= set(present)]


@dataclass(frozen=True)
class _Truth:
    """Ground truth of a batch: labels ``[B,H,W]``, saliency uint8 0/255 per image (or None), conditions."""

    label: torch.Tensor
    saliency: list[np.ndarray | None]
    conditions: list[frozenset[str]]

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> _Truth:
        truths = [targets(s) for s in samples]
        return cls(
            label=torch.from_numpy(np.stack([t["label"] for t in truths])),
            saliency=[
                (t["saliency"][0] * 255).astype(np.uint8) if t["has_saliency"] else None for t in truths
            ],
            conditions=[frozenset(s.meta.get("conditions", ())) for s in samples],
        )

    def head(self, n: int) -> _Truth:
        """The first ``n`` scenes (the protocol subset within a batch)."""
        return _Truth(self.label[:n], self.saliency[:n], self.conditions[:n])


class _Scores:
    """Accumulators of one evaluated setting: segmentation and saliency, optionally per condition."""

    def __init__(self, full: bool, num_classes: int) -> None:
        self.num_classes = num_classes
        self.seg = SegmentationMeter(num_classes)
        self.sal = SaliencyMeter(full)
        self.by_condition: dict[str, SegmentationMeter] = {}
        self.full = full
        self.scenes = 0

    def update(self, pred: torch.Tensor, prob255: np.ndarray, truth: _Truth) -> None:
        """Score one batch of predictions against ``truth`` (same rows)."""
        self.seg.update(pred, truth.label)
        for p, gt in zip(prob255, truth.saliency, strict=True):
            if gt is not None:
                self.sal.update(p, gt)
        if self.full:
            for cond in set().union(*truth.conditions):
                idx = [k for k, conds in enumerate(truth.conditions) if cond in conds]
                meter = self.by_condition.setdefault(cond, SegmentationMeter(self.num_classes))
                meter.update(pred[idx], truth.label[idx])
        self.scenes += len(truth.label)

    def headline(self) -> dict[str, float | None]:
        """mIoU and S-measure, what the protocol rows report (None without such ground truth)."""
        return {"miou": _round(self.seg.miou()), "s_measure": _round(self.sal.results()["s_measure"])}


def _stack(inputs: Sequence[Inputs]) -> Inputs:
    return {k: np.stack([x[k] for x in inputs]) for k in inputs[0]}


Predictor = Callable[[Inputs], tuple[torch.Tensor, np.ndarray]]
"""Model inputs -> class ids ``[B,H,W]`` (CPU int64) and saliency x 255 as uint8 ``[B,H,W]``."""


def _predictor(model: torch.nn.Module | Backend) -> Predictor:
    """A torch module (training, tests) runs on its parameters' device; a Backend runs itself."""
    if isinstance(model, torch.nn.Module):
        device = next(model.parameters()).device

        def run_module(inputs: Inputs) -> tuple[torch.Tensor, np.ndarray]:
            logits, prob = model(**{k: torch.from_numpy(v).to(device) for k, v in inputs.items()})
            return logits.argmax(1).cpu(), saliency_mono8_tensor(prob[:, 0]).cpu().numpy()

        return run_module

    def run_backend(inputs: Inputs) -> tuple[torch.Tensor, np.ndarray]:
        seg, sal = model.infer({k: np.ascontiguousarray(v) for k, v in inputs.items()})
        return torch.from_numpy(seg.argmax(1)), saliency_mono8(sal[:, 0])

    return run_backend


def _damage(damage: Damage, index: int, inputs: Sequence[Inputs], first: int) -> Inputs:
    """Apply one protocol to each sample with its own seed (scene, protocol): batch size cannot matter."""
    return _stack(
        [damage.apply(x, np.random.default_rng([TEST_SEED, first + k, index])) for k, x in enumerate(inputs)]
    )


def _spread(values: list[float | None], fn: Callable[[list[float]], Any]) -> float | None:
    known = [v for v in values if v is not None]
    return _round(float(fn(known))) if known else None


@dataclass(frozen=True)
class _Tally:
    """Every accumulator of one evaluation: per combination, and the protocols' subset."""

    combinations: dict[str, _Scores]
    clean: _Scores  # the complete input on the protocol subset: the RMM / NM reference
    damaged: list[_Scores]  # one per Damage, same order


def _score(
    predict: Predictor,
    samples: Sequence[Sample],
    chosen: list[Combination],
    damages: list[Damage],
    protocol_scenes: int,
    batch_size: int,
    progress: bool,
    num_classes: int,
) -> _Tally:
    """The one pass over ``samples``: every combination on every batch, protocols on the subset."""
    present = samples[0].present
    complete = combination(present)
    tally = _Tally(
        combinations={c.name: _Scores(True, num_classes) for c in chosen},
        clean=_Scores(False, num_classes),
        damaged=[_Scores(False, num_classes) for _ in damages],
    )
    starts = range(0, len(samples), batch_size)
    for first in tqdm(starts, desc="eval", unit="batch", disable=not progress):
        batch = [samples[i] for i in range(first, min(first + batch_size, len(samples)))]
        odd = [s.meta.get("name", "?") for s in batch if s.present != present]
        if odd:
            raise ValueError(f"sample {odd[0]} has other modalities than {'+'.join(present)}")
        inputs, truth = [model_inputs(s) for s in batch], _Truth.of(batch)
        stacked = _stack(inputs)
        n = max(0, min(len(batch), protocol_scenes - first))  # rows in the protocol subset
        for c in chosen:
            pred, prob255 = predict(drop(stacked, c))
            tally.combinations[c.name].update(pred, prob255, truth)
            if c == complete and n:
                tally.clean.update(pred[:n], prob255[:n], truth.head(n))
        for j, (damage, meter) in enumerate(zip(damages, tally.damaged, strict=True) if n else ()):
            pred, prob255 = predict(_damage(damage, j, inputs[:n], first))
            meter.update(pred, prob255, truth.head(n))
    return tally


def _row(name: str, scores: _Scores, classes: Sequence[ClassInfo]) -> dict[str, Any]:
    per_class = map(_round, scores.seg.per_class_iou())
    return {
        "combination": name,
        "miou": _round(scores.seg.miou()),
        "per_class_iou": dict(zip((c.name for c in classes), per_class, strict=True)),
        **{k: _round(v) for k, v in scores.sal.results().items()},
        "scenes": scores.scenes,
    }


def _conditions(scores: dict[str, _Scores]) -> dict[str, dict[str, float | None]]:
    """Condition -> combination -> mIoU (CONDITIONS order); a scene counts for each of its conditions."""
    seen = [c for c in CONDITIONS if any(c in s.by_condition for s in scores.values())]
    return {c: {name: _round(s.by_condition[c].miou()) for name, s in scores.items()} for c in seen}


def _complete_row(rows: list[dict[str, Any]], complete: Combination) -> dict[str, Any] | None:
    """The row of the complete input (all the data's modalities), if it was evaluated."""
    return next((r for r in rows if r["combination"] == complete.name), None)


def _summary(rows: list[dict[str, Any]], complete: Combination) -> dict[str, Any]:
    mious = [r["miou"] for r in rows]
    complete_row = _complete_row(rows, complete)
    return {
        "complete_combination": complete.name,
        "complete_miou": complete_row["miou"] if complete_row else None,
        "mean_miou": _spread(mious, np.mean),
        "std_miou": _spread(mious, np.std),
        "min_miou": _spread(mious, np.min),
        "complete_s_measure": complete_row["s_measure"] if complete_row else None,
        "mean_s_measure": _spread([r["s_measure"] for r in rows], np.mean),
    }


def _protocols(
    rows: list[dict[str, Any]], tally: _Tally, damages: list[Damage], scenes: int, complete: Combination
) -> dict[str, Any]:
    """EMM from the combination rows (each against the complete input); RMM / NM rows on their subset."""
    reference = _complete_row(rows, complete)

    def drop_of(row: dict[str, Any], key: str) -> float | None:
        if reference is None or row[key] is None or reference[key] is None:
            return None
        return _round(reference[key] - row[key])

    out: dict[str, Any] = {
        "emm": [
            {
                "combination": r["combination"],
                "miou": r["miou"],
                "s_measure": r["s_measure"],
                "miou_drop": drop_of(r, "miou"),
                "s_measure_drop": drop_of(r, "s_measure"),
            }
            for r in rows
        ],
        "rmm": [],
        "nm": [],
        "clean": tally.clean.headline(),
        "scenes": scenes,
        "note": f"RMM and NM damage the complete input of the first {scenes} scenes, seeded per scene; "
        "'clean' is the undamaged complete input on the same scenes",
    }
    for damage, meter in zip(damages, tally.damaged, strict=True):
        out[damage.group].append({**damage.row, **meter.headline()})
    return out


def evaluate(
    model: torch.nn.Module | Backend,
    samples: Sequence[Sample],
    *,
    combinations: Sequence[str | Combination] | None = None,
    protocols: bool = True,
    protocol_scenes: int = PROTOCOL_SCENES,
    batch_size: int = 8,
    progress: bool = True,
    data: Mapping[str, Any] | None = None,
    classes: Sequence[ClassInfo] | None = None,
) -> dict[str, Any]:
    """Score ``model`` on ``samples`` (all with the same modalities).

    ``model`` is a runtime Backend (ONNX Runtime is the fast path on a CPU) or a torch
    module, run on the device of its parameters. ``classes``: what its output channels mean
    (default: a Backend's metadata's class table, ours for a module); the samples' labels
    must use the same ids.

    ``combinations`` defaults to every combination the samples' modalities allow. The
    result: ``combinations`` (one row per combination: ``combination``, ``miou``,
    ``per_class_iou``, ``s_measure``, ``max_f``, ``e_measure``, ``mae``, ``scenes``),
    ``conditions`` (condition -> combination -> mIoU), ``protocols`` (``emm``, ``rmm``,
    ``nm``, their ``clean`` reference; None when ``protocols`` is False), ``summary``,
    ``data`` (``data`` as given) and ``seconds``. Numbers are finite or None.
    """
    start = time.perf_counter()
    if not len(samples):
        raise ValueError("no samples to evaluate")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    present = samples[0].present
    chosen = [
        combination(c) if isinstance(c, str) else c for c in combinations or usable_combinations(present)
    ]
    missing = [c.name for c in chosen if not set(c.modalities) <= set(present)]
    if missing:
        raise ValueError(f"the data has only {'+'.join(present)}; cannot evaluate {', '.join(missing)}")
    if classes is None:
        classes = model_classes(None if isinstance(model, torch.nn.Module) else model.metadata)
    damages = robustness_protocols(present) if protocols else []
    scenes = min(protocol_scenes, len(samples)) if protocols else 0

    was_training = isinstance(model, torch.nn.Module) and model.training
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        with torch.inference_mode():
            tally = _score(
                _predictor(model), samples, chosen, damages, scenes, batch_size, progress, len(classes)
            )
    finally:
        if was_training:
            model.train()
    rows = [_row(name, s, classes) for name, s in tally.combinations.items()]
    complete = combination(present)
    return {
        "combinations": rows,
        "conditions": _conditions(tally.combinations),
        "protocols": _protocols(rows, tally, damages, scenes, complete) if protocols else None,
        "summary": _summary(rows, complete),
        "data": dict(data or {}),
        "seconds": round(time.perf_counter() - start, 2),
    }
