"""What evaluation runs on: the held-out procedural split, or a real dataset resized to the model.

Both are lazy :class:`LazySamples`: a sample is made or read when asked for, so a
large test set never has to fit in memory and generation overlaps nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final, overload

import cv2
import numpy as np

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.readers import READERS, DatasetReader, open_dataset
from unimrseg_core.data.sample import ARRAYS, Sample
from unimrseg_core.data.splits import TEST_SCENES, TEST_SEED
from unimrseg_core.data.stored_units import StoredUnits
from unimrseg_core.eval.formats import DATASET_FORMATS
from unimrseg_core.modalities import CLASSES, ClassInfo

__all__ = [
    "CONDITION_CYCLE",
    "UNSCORED_METRICS",
    "LazySamples",
    "default_split",
    "held_out_split",
    "load_real",
    "resize_array",
    "resize_sample",
    "unscored",
]

UNSCORED_METRICS: Final[dict[str, str]] = {"label": "mIoU", "saliency": "S-measure, max F, mean E, MAE"}
"""Ground truth kind -> the metrics that are "-" without it."""

CONDITION_CYCLE: Final[tuple[tuple[str, ...], ...]] = (
    ("day",),
    ("night",),
    ("fog",),
    ("glare",),
    ("day", "depth_holes"),
    ("day", "thermal_washout"),
    ("night", "depth_holes"),
)
"""Scene ``i`` of the held-out split gets ``CONDITION_CYCLE[i % 7]``: every condition is
scored on a fixed, balanced share (the generator's random mix would leave fog or
washout with a handful of scenes), and the first 7k scenes are k of each mix."""

# cv2 interpolation per Sample array. Depth is nearest, not linear: 0 m means "no
# return", and blending it with valid neighbours would invent depths at hole edges.
_INTERPOLATION: Final[dict[str, int]] = {
    "rgb": cv2.INTER_LINEAR,
    "depth": cv2.INTER_NEAREST,
    "thermal": cv2.INTER_LINEAR,
    "label": cv2.INTER_NEAREST,
    "saliency": cv2.INTER_NEAREST,
}


class LazySamples(Sequence[Sample]):
    """``count`` samples made on access by ``make(i)``; ``info`` describes the source for reports."""

    def __init__(self, count: int, make: Callable[[int], Sample], info: dict[str, Any]) -> None:
        if count < 1:
            raise ValueError(f"need at least 1 sample, got {count}")
        self._count = count
        self._make = make
        self.info = {**info, "scenes": count}

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if not -self._count <= index < self._count:
            raise IndexError(f"sample {index} out of range for {self._count}")
        return self._make(index % self._count)


def held_out_split(size: tuple[int, int], count: int = TEST_SCENES) -> LazySamples:
    """The procedural test split: ``SceneGenerator(size, TEST_SEED)`` with :data:`CONDITION_CYCLE`."""
    generator = SceneGenerator(size, TEST_SEED)
    info = {
        "source": "procedural",
        "seed": TEST_SEED,
        "size": list(size),
        "condition_cycle": ["+".join(c) for c in CONDITION_CYCLE],
    }
    return LazySamples(count, lambda i: generator.sample(i, CONDITION_CYCLE[i % len(CONDITION_CYCLE)]), info)


def resize_array(name: str, array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One Sample array (``name`` of ``ARRAYS``) at ``size`` (H, W), in its own units and dtype."""
    height, width = size
    if array.shape[:2] == (height, width):
        return array
    return cv2.resize(array, (width, height), interpolation=_INTERPOLATION[name])


def resize_sample(sample: Sample, size: tuple[int, int]) -> Sample:
    """Every array of ``sample`` at ``size`` (H, W), in its own units and dtype; meta kept."""
    given = {name: array for name in ARRAYS if (array := getattr(sample, name)) is not None}
    arrays = {name: resize_array(name, array, size) for name, array in given.items()}
    return Sample(**arrays, meta=sample.meta).validate()


def default_split(root: str | Path) -> str | None:
    """``"test"`` when the dataset has a test sub-root (VT5000) or a ``test.txt`` list, else None (all)."""
    root = Path(root)
    if (root / "test.txt").is_file():
        return "test"
    has_dir = root.is_dir() and any(p.is_dir() and p.name.lower() == "test" for p in root.iterdir())
    return "test" if has_dir else None


def _check_units(units: StoredUnits, kind: str, fmt: str) -> None:
    """Refuse a stored-units flag for a modality the format does not have."""
    sections = READERS[kind].OPTION_SECTIONS
    if units.depth_given and "depth" not in sections:
        flags = [f for f in units.given if f.startswith("--depth")]
        raise ValueError(f"{', '.join(flags)}: {fmt} has no depth")
    if units.thermal_range_k is not None and "thermal" not in sections:
        raise ValueError(f"--thermal-range: {fmt} has no thermal")


def unscored(reader: DatasetReader) -> dict[str, str]:
    """Metrics that will be "-" on this dataset -> why (the ground truth it lacks, and where it looked)."""
    return {UNSCORED_METRICS[field]: why for field, why in reader.missing_truth().items()}


def load_real(
    fmt: str,
    root: str | Path,
    size: tuple[int, int],
    *,
    split: str | None = None,
    limit: int | None = None,
    units: StoredUnits | None = None,
    classes: Sequence[ClassInfo] = CLASSES,
    classmap: str | Path | None = None,
) -> LazySamples:
    """A real dataset (``fmt``: a key of :data:`DATASET_FORMATS`) via ``open_dataset``, resized to ``size``.

    Scores are then computed at the model's input size. ``limit`` keeps the first N scenes;
    ``units`` (the ``--depth-polarity`` / ``--depth-scale`` / ``--thermal-range`` flags) are
    merged over the dataset's default options; ``classmap`` replaces a semantic dataset's class
    map, whose targets are ``classes`` (a fine-tuned model's table; default ours). ``info``
    records the options used, the files ignored and why metrics without ground truth are "-".
    """
    if fmt not in DATASET_FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; valid: {', '.join(DATASET_FORMATS)}")
    kind = DATASET_FORMATS[fmt]
    units = units or StoredUnits()
    _check_units(units, kind, fmt)
    config = units.reader_config() | ({"classmap": str(classmap)} if classmap is not None else {})
    reader = open_dataset(kind, root, split=split, config=config or None, classes=classes)
    options = reader.options
    info = {
        "source": fmt,
        "reader": kind,
        "root": str(root),
        "split": split,
        "size": list(size),
        "skipped": len(reader.skipped),
        "ignored": [f"{path}: {why}" for path, why in reader.ignored],
        "stored_units": units.as_json(),
        "options": {
            name: asdict(section)
            for name in ("depth", "thermal")
            if (section := getattr(options, name)) is not None
        },
        "unscored": unscored(reader),
        "note": "every sample resized to the model input size and scored there",
    }
    count = len(reader) if limit is None else min(limit, len(reader))
    return LazySamples(count, lambda i: resize_sample(reader[i], size), info)
