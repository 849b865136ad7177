"""Class maps: a real dataset's label values -> this project's classes.

One YAML per dataset, ``config/classmap_<dataset>.yaml``::

    dataset: mfnet
    unlisted: error          # label values missing from source_classes: error | ignore
    source_classes:          # value stored in the label PNGs -> the dataset's class name
      0: unlabeled
      1: car
    mapping:                 # every source class name -> a name of modalities.CLASSES or "ignore"
      unlabeled: ignore
      car: vehicle

The targets are the names of a class table: ours by default, or a user's
(``load_class_table``, a fine-tuning run's ``classes:``), so one dataset can feed a model
with other classes. Labels of this project's own sources (the procedural world, bags
from ``unimrseg bag make``) are our class ids: their map may leave ``source_classes`` out.

The file is validated when loaded, and every problem names the file, the line and the
key: an unknown target, a source class without a target, a target for a class that does
not exist, duplicate names or values outside 0..255.

A class table file (``load_class_table``)::

    classes:                 # ids are the list order
      - {name: floor, color: [128, 64, 128]}
      - {name: person, color: [220, 20, 60], is_thing: true}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from unimrseg_core.data.readers.errors import DatasetError
from unimrseg_core.data.readers.options import load_yaml, yaml_key_lines
from unimrseg_core.modalities import CLASSES, IGNORE_INDEX, ClassInfo, classes_from_json

__all__ = ["IGNORE_NAME", "ClassMap", "identity_classmap", "load_class_table", "load_classmap"]

IGNORE_NAME: Final[str] = "ignore"
"""Target name that maps a source class to ``IGNORE_INDEX`` (no ground truth)."""

_KEYS: Final = ("dataset", "unlisted", "source_classes", "mapping")
_UNLISTED: Final = ("error", "ignore")


@dataclass(frozen=True)
class ClassMap:
    """A validated class map and its lookup table (source value -> our class id)."""

    path: Path
    source_classes: Mapping[int, str]
    mapping: Mapping[str, str]
    unlisted: str
    lut: np.ndarray  # uint8 [256]; unlisted values -> IGNORE_INDEX

    def apply(self, raw: np.ndarray, label_path: str | Path) -> np.ndarray:
        """Raw label values (``HxW`` integers) -> ``HxW`` uint8 class ids.

        Values not in ``source_classes`` are an error naming the label file (the
        usual sign of a label set that does not match the class map), or ignored
        when the map says ``unlisted: ignore``.
        """
        if raw.dtype.kind not in "ui":
            raise DatasetError(label_path, f"label values must be integers, got {raw.dtype}")
        values = np.unique(raw)
        unknown = [int(v) for v in values if int(v) not in self.source_classes]
        if unknown and self.unlisted == "error":
            shown = ", ".join(str(v) for v in unknown[:10])
            raise DatasetError(
                label_path,
                f"label values {shown} are not in the class map {self.path} "
                "(wrong label set? or set 'unlisted: ignore')",
            )
        if values.size and (int(values[0]) < 0 or int(values[-1]) > 255):
            clipped = np.where((raw < 0) | (raw > 255), IGNORE_INDEX, raw)
            return self.lut[clipped.astype(np.uint8)]
        return self.lut[raw.astype(np.uint8, copy=False)]


class _Fail:
    """Errors of one YAML file: ``DatasetError(path, "line N: key: reason")``."""

    def __init__(self, path: Path) -> None:
        self.path, self.lines = path, yaml_key_lines(path)

    def __call__(self, key: str, reason: str) -> DatasetError:
        line = self.lines.get(tuple(key.split(".")))
        return DatasetError(self.path, f"{f'line {line}: ' if line else ''}{key}: {reason}")


def identity_classmap(classes: Sequence[ClassInfo] = CLASSES) -> ClassMap:
    """Labels already in ``classes``' ids (this project's own sources with our table)."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    lut[: len(classes)] = np.arange(len(classes), dtype=np.uint8)
    lut.flags.writeable = False
    names = {c.id: c.name for c in classes}
    return ClassMap(Path("<identity>"), names, {n: n for n in names.values()}, "ignore", lut)


def load_classmap(
    path: str | Path,
    classes: Sequence[ClassInfo] = CLASSES,
    *,
    default_source: Sequence[ClassInfo] | None = None,
) -> ClassMap:
    """Load and validate a class-map YAML (see the module docstring for the format).

    ``classes``: the table the targets name (ours unless a model is trained on another);
    ``default_source``: the source classes when the file lists none (our table, for the
    project's own sources).
    """
    path = Path(path)
    fail = _Fail(path)
    data: Any = load_yaml(path)
    if not isinstance(data, Mapping):
        raise DatasetError(path, "a class map must be a YAML mapping with source_classes and mapping")
    for key in data:
        if key not in _KEYS:
            raise fail(str(key), f"unknown key; valid: {', '.join(_KEYS)}")
    if "source_classes" not in data and default_source is not None:
        data = {**data, "source_classes": {c.id: c.name for c in default_source}}
    for key in ("source_classes", "mapping"):
        if not isinstance(data.get(key), Mapping) or not data[key]:
            raise fail(key, "missing or not a non-empty mapping")
    unlisted = data.get("unlisted", "error")
    if unlisted not in _UNLISTED:
        raise fail("unlisted", f"expected one of {', '.join(_UNLISTED)}, got {unlisted!r}")

    source: dict[int, str] = {}
    for value, name in data["source_classes"].items():
        where = f"source_classes.{value}"
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            raise fail(where, "label values must be integers in 0..255")
        if not isinstance(name, str) or not name:
            raise fail(where, f"class name must be a non-empty string, got {name!r}")
        if name in source.values():
            raise fail(where, f"duplicate class name {name!r}")
        source[value] = name

    mapping: dict[str, str] = {}
    ids = {c.name: c.id for c in classes}
    valid = (*ids, IGNORE_NAME)
    for name, target in data["mapping"].items():
        where = f"mapping.{name}"
        if name not in source.values():
            raise fail(where, "not a class of source_classes")
        if target not in valid:
            raise fail(where, f"unknown target class {target!r}; valid: {', '.join(valid)}")
        mapping[name] = target
    for value, name in source.items():
        if name not in mapping:
            raise fail(f"mapping.{name}", f"source class {name!r} (value {value}) has no target")

    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for value, name in source.items():
        target = mapping[name]
        lut[value] = IGNORE_INDEX if target == IGNORE_NAME else ids[target]
    lut.flags.writeable = False
    return ClassMap(path=path, source_classes=source, mapping=mapping, unlisted=unlisted, lut=lut)


def load_class_table(path: str | Path) -> tuple[ClassInfo, ...]:
    """A user's class table from YAML (see the module docstring); errors name the file and line."""
    path = Path(path)
    data: Any = load_yaml(path)
    if not isinstance(data, Mapping) or set(data) != {"classes"}:
        raise DatasetError(path, "a class table is a YAML mapping with one key, classes: a list")
    entries = data["classes"]
    if isinstance(entries, list):
        entries = [{"id": i, **e} if isinstance(e, Mapping) else e for i, e in enumerate(entries)]
    try:
        return classes_from_json(entries, "classes")
    except ValueError as exc:
        text = str(exc)
        index = text.split("classes[", 1)[1].split("]", 1)[0] if "classes[" in text else None
        line = yaml_key_lines(path).get(("classes", index)) if index is not None else None
        raise DatasetError(path, f"{f'line {line}: ' if line else ''}{text}") from None
