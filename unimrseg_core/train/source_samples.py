"""One training source opened: its samples at the training size, labels in the run's class table.

``open_source`` is the one place a ``SourceConfig`` becomes samples, for training (the first
``len - holdout``) and for ``unimrseg eval --train-config`` (the held-out rest), so both read a
source with the same options: class map, stored units, split, limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.readers import ClassMap, identity_classmap, load_classmap
from unimrseg_core.data.sample import Sample
from unimrseg_core.eval.formats import DATASET_FORMATS
from unimrseg_core.eval.sources import LazySamples, load_real
from unimrseg_core.modalities import CLASSES, ClassInfo
from unimrseg_core.train.sources import SourceConfig

__all__ = ["OpenedSource", "open_source", "own_classmap"]


@dataclass(frozen=True)
class OpenedSource:
    """A source's samples (lazy where the source allows) and which of them train."""

    config: SourceConfig
    samples: Sequence[Sample]
    info: dict[str, Any]

    @property
    def train_count(self) -> int:
        return len(self.samples) - self.config.holdout

    def training(self) -> Sequence[Sample]:
        return self.samples[: self.train_count]

    def held_out(self) -> Sequence[Sample]:
        """The held-out samples; all of them when the source holds none out (say so in reports)."""
        return self.samples[self.train_count :] if self.config.holdout else self.samples


def own_classmap(source: SourceConfig, classes: Sequence[ClassInfo]) -> ClassMap:
    """The class map of a source labelled in our classes (the world, ``bag make`` bags): its
    ``classmap`` (source classes default to ours), or none needed when the run uses our table."""
    if source.classmap:
        return load_classmap(source.where(source.classmap), classes, default_source=CLASSES)
    if tuple(classes) != CLASSES:
        raise ValueError(
            f"source {source.name}: its labels are our {len(CLASSES)} classes, the run has its own "
            "class table: give the source a classmap onto it"
        )
    return identity_classmap(classes)


def _relabelled(sample: Sample, classmap: ClassMap) -> Sample:
    if sample.label is not None:
        sample.label = classmap.apply(sample.label, sample.meta.get("name", "sample"))
    return sample


def _procedural(source: SourceConfig, size: tuple[int, int], classes: Sequence[ClassInfo]) -> LazySamples:
    generator = SceneGenerator(size, source.seed, source.probabilities)
    classmap = own_classmap(source, classes)
    count = min(source.scenes, source.limit or source.scenes)
    info = {"source": "procedural", "seed": source.seed, "conditions": dict(source.conditions)}
    return LazySamples(count, lambda i: _relabelled(generator.sample(i), classmap), info)


def _dataset(source: SourceConfig, size: tuple[int, int], classes: Sequence[ClassInfo]) -> LazySamples:
    if source.format not in DATASET_FORMATS:
        raise ValueError(
            f"source {source.name}: unknown format {source.format!r}; valid: {', '.join(DATASET_FORMATS)}"
        )
    return load_real(
        source.format,
        source.where(source.root),
        size,
        split=source.split,
        limit=source.limit,
        units=source.units,
        classes=classes,
        classmap=source.where(source.classmap),
    )


def _bag(source: SourceConfig, size: tuple[int, int], classes: Sequence[ClassInfo]) -> Sequence[Sample]:
    from unimrseg_core.bags.labelled import bag_samples  # rosbags only when a bag is a source

    samples = bag_samples(
        source.where(source.path),
        size,
        own_classmap(source, classes) if not source.labels else _label_map(source, classes),
        remap=source.remap,
        labels=source.where(source.labels),
        max_skew_s=source.max_skew_s,
        units=source.units,
    )
    return samples[: source.limit] if source.limit else samples


def _label_map(source: SourceConfig, classes: Sequence[ClassInfo]) -> ClassMap:
    """Label PNGs beside a bag hold the user's class values: a classmap, or ids of ``classes``."""
    if source.classmap:
        return load_classmap(source.where(source.classmap), classes, default_source=classes)
    return identity_classmap(classes)


def open_source(
    source: SourceConfig, size: tuple[int, int], classes: Sequence[ClassInfo] = CLASSES
) -> OpenedSource:
    """``source``'s samples at ``size`` (H, W); ValueError (DatasetError, BagError: naming the file)
    when it cannot be read, or holds out all of its samples."""
    if source.kind == "procedural":
        samples: Sequence[Sample] = _procedural(source, size, classes)
    elif source.kind == "dataset":
        samples = _dataset(source, size, classes)
    else:
        samples = _bag(source, size, classes)
    info = dict(getattr(samples, "info", {"source": source.kind, "path": source.path}))
    if source.holdout >= len(samples):
        raise ValueError(
            f"source {source.name}: holdout {source.holdout} leaves none of its {len(samples)} "
            "samples to train"
        )
    info |= {"name": source.name, "samples": len(samples), "holdout": source.holdout}
    return OpenedSource(source, samples, info)
