"""``data.sources`` of a training config: where training samples come from, and in what mix.

Three kinds, each with a ``weight`` (its share of every batch, normalised over the sources)::

    data:
      sources:
        - {kind: procedural, seed: 7, scenes: 200, conditions: {night: 0.5}, holdout: 40}
        - {kind: dataset, format: mfnet, root: ~/data/MFNet, split: train, classmap: my_map.yaml}
        - {kind: dataset, format: njud, root: ~/data/NJUD, depth_polarity: near-dark, weight: 0.5}
        - {kind: bag, path: ~/bags/run1, remap: {/camera/color/image_raw: rgb/image}, weight: 2}

- ``procedural``: the project's world (``seed``, ``scenes``, ``conditions``: the probability of
  each condition, ``data.conditions.ConditionProbabilities``' fields); labels in our classes.
- ``dataset``: any reader (``format``: a name of ``eval.formats.DATASET_FORMATS``), with its
  ``split``, the stored units of ``data.stored_units`` (``depth_polarity``, ``depth_scale``,
  ``thermal_range`` "LOW:HIGH") and, for a semantic dataset, a ``classmap`` onto the run's
  class table.
- ``bag``: a labelled robot bag: camera topics (raw or compressed, ``remap`` as ``bag eval``)
  and labels from the ground-truth topics ``unimrseg bag make`` writes, or from ``labels``, a
  folder of label PNGs beside the bag named by the labelled image's header stamp
  (``<stamp_ns>.png``, class values through ``classmap``). Cameras pair with a label within
  ``max_skew_s`` of its stamp. ``depth_scale`` and ``thermal_range`` as for datasets.

Every kind takes ``weight``, ``name`` (for logs and ``eval --train-config``), ``limit`` (the
first N samples) and ``holdout`` (the last N samples are never trained on; ``unimrseg eval
--train-config`` scores them). Sources whose labels are in our classes (procedural, ``bag
make`` bags) need a ``classmap`` only when the run has its own class table.

Standard library only: the config is read before torch is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from unimrseg_core.data.conditions import ConditionProbabilities
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.data.stored_units import StoredUnits, parse_thermal_range

__all__ = ["KIND_KEYS", "SOURCE_KINDS", "SourceConfig", "parse_sources"]

SOURCE_KINDS: Final = ("procedural", "dataset", "bag")
_COMMON: Final = ("kind", "weight", "name", "limit", "holdout", "classmap")
KIND_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "procedural": (*_COMMON, "seed", "scenes", "conditions"),
    "dataset": (*_COMMON, "format", "root", "split", "depth_polarity", "depth_scale", "thermal_range"),
    "bag": (*_COMMON, "path", "remap", "labels", "max_skew_s", "depth_scale", "thermal_range"),
}
"""The keys each kind understands; any other is an error naming the source."""


@dataclass(frozen=True)
class SourceConfig:
    """One training source (see the module docstring); built by ``parse_sources``."""

    kind: str
    weight: float = 1.0
    name: str = ""
    limit: int | None = None
    holdout: int = 0
    classmap: str | None = None
    seed: int = 0
    scenes: int = 200
    conditions: dict[str, float] = field(default_factory=dict)
    format: str | None = None
    root: str | None = None
    split: str | None = None
    depth_polarity: str | None = None
    depth_scale: float | None = None
    thermal_range: str | None = None
    path: str | None = None
    remap: dict[str, str] = field(default_factory=dict)
    labels: str | None = None
    max_skew_s: float = 0.05

    @property
    def units(self) -> StoredUnits:
        """How this source stores depth and thermal (ValueError naming the flag when impossible)."""
        thermal = parse_thermal_range(self.thermal_range) if self.thermal_range else None
        return StoredUnits(
            depth_polarity=self.depth_polarity, depth_units_per_m=self.depth_scale, thermal_range_k=thermal
        )

    @property
    def probabilities(self) -> ConditionProbabilities:
        return ConditionProbabilities(**self.conditions)

    def where(self, path: str | None) -> Path | None:
        """A path option, ``~`` expanded (relative ones are relative to the working directory)."""
        return None if path is None else Path(path).expanduser()


def _check(source: SourceConfig, where: str) -> None:
    if not (isinstance(source.weight, int | float) and math.isfinite(source.weight) and source.weight > 0):
        raise ValueError(f"{where}.weight must be a number > 0, got {source.weight!r}")
    for key in ("limit", "holdout", "scenes", "seed"):
        value = getattr(source, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{where}.{key} must be an integer >= 0, got {value!r}")
    if source.limit == 0 or source.scenes == 0:
        raise ValueError(f"{where}: limit and scenes must be >= 1")
    if source.kind == "dataset" and (source.format is None or source.root is None):
        raise ValueError(f"{where}: a dataset source needs format and root")
    if source.kind == "bag" and source.path is None:
        raise ValueError(f"{where}: a bag source needs path")
    if source.kind == "procedural" and source.seed == TEST_SEED:
        raise ValueError(f"{where}.seed {TEST_SEED} is the held-out test split; pick another")
    if source.kind == "procedural":
        try:
            source.probabilities  # noqa: B018 (checks the condition names)
        except TypeError:
            valid = ", ".join(f.name for f in fields(ConditionProbabilities))
            raise ValueError(f"{where}.conditions: unknown condition; valid: {valid}") from None
    if not (isinstance(source.max_skew_s, int | float) and source.max_skew_s >= 0):
        raise ValueError(f"{where}.max_skew_s must be a number >= 0, got {source.max_skew_s!r}")
    try:
        source.units  # noqa: B018 (checks the stored-unit options)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def parse_sources(raw: Any) -> list[SourceConfig]:
    """``data.sources`` as written in YAML -> validated sources; ValueError naming the entry."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"data.sources must be a list, got {type(raw).__name__}")
    out: list[SourceConfig] = []
    for i, entry in enumerate(raw):
        where = f"data.sources[{i}]"
        if isinstance(entry, SourceConfig):
            entry = {f.name: getattr(entry, f.name) for f in fields(SourceConfig)}
            entry = {k: v for k, v in entry.items() if k in KIND_KEYS.get(entry["kind"], ())}
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a mapping")
        kind = entry.get("kind")
        if kind not in SOURCE_KINDS:
            raise ValueError(f"{where}.kind must be one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
        unknown = sorted(set(entry) - set(KIND_KEYS[kind]))
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} for a {kind} source")
        values = dict(entry)
        if isinstance(values.get("thermal_range"), list | tuple):
            values["thermal_range"] = ":".join(str(v) for v in values["thermal_range"])
        try:
            source = SourceConfig(**values)
        except TypeError as exc:
            raise ValueError(f"{where}: {exc}") from None
        _check(source, where)
        name = source.name or f"{source.format or kind}{i}"
        out.append(SourceConfig(**{**values, "name": name}))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"data.sources: names must differ, got {names}")
    return out
