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

The file is validated when loaded, and every problem names the file and the key:
an unknown target, a source class without a target, a target for a class that does
not exist, duplicate names or values outside 0..255.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from unimrseg_core.data.readers.errors import DatasetError
from unimrseg_core.data.readers.options import load_yaml
from unimrseg_core.modalities import CLASS_NAMES, IGNORE_INDEX, class_id

__all__ = ["IGNORE_NAME", "ClassMap", "load_classmap"]

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


def _fail(path: Path, key: str, reason: str) -> DatasetError:
    return DatasetError(path, f"{key}: {reason}")


def load_classmap(path: str | Path) -> ClassMap:
    """Load and validate a class-map YAML (see the module docstring for the format)."""
    path = Path(path)
    data: Any = load_yaml(path)
    if not isinstance(data, Mapping):
        raise DatasetError(path, "a class map must be a YAML mapping with source_classes and mapping")
    for key in data:
        if key not in _KEYS:
            raise _fail(path, str(key), f"unknown key; valid: {', '.join(_KEYS)}")
    for key in ("source_classes", "mapping"):
        if not isinstance(data.get(key), Mapping) or not data[key]:
            raise _fail(path, key, "missing or not a non-empty mapping")
    unlisted = data.get("unlisted", "error")
    if unlisted not in _UNLISTED:
        raise _fail(path, "unlisted", f"expected one of {', '.join(_UNLISTED)}, got {unlisted!r}")

    source: dict[int, str] = {}
    for value, name in data["source_classes"].items():
        where = f"source_classes.{value}"
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            raise _fail(path, where, "label values must be integers in 0..255")
        if not isinstance(name, str) or not name:
            raise _fail(path, where, f"class name must be a non-empty string, got {name!r}")
        if name in source.values():
            raise _fail(path, where, f"duplicate class name {name!r}")
        source[value] = name

    mapping: dict[str, str] = {}
    valid = (*CLASS_NAMES, IGNORE_NAME)
    for name, target in data["mapping"].items():
        where = f"mapping.{name}"
        if name not in source.values():
            raise _fail(path, where, "not a class of source_classes")
        if target not in valid:
            raise _fail(path, where, f"unknown target class {target!r}; valid: {', '.join(valid)}")
        mapping[name] = target
    for value, name in source.items():
        if name not in mapping:
            raise _fail(path, f"mapping.{name}", f"source class {name!r} (value {value}) has no target")

    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for value, name in source.items():
        target = mapping[name]
        lut[value] = IGNORE_INDEX if target == IGNORE_NAME else class_id(target)
    lut.flags.writeable = False
    return ClassMap(path=path, source_classes=source, mapping=mapping, unlisted=unlisted, lut=lut)
