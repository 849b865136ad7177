"""Readers for real public datasets, all yielding :class:`~unimrseg_core.data.sample.Sample`.

``open_dataset(kind, root, split=..., config=..., on_error=...)`` picks the reader
of a layout from :data:`READERS`. Readers are indexable sequences that pair files
by stem and check headers when they open, and decode pixels lazily per sample
(see :mod:`.base` for the raise-or-skip policy). Conversion options live in
``config/datasets.yaml``, class maps in ``config/classmap_<dataset>.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from unimrseg_core.data.readers.base import ON_ERROR, DatasetReader, Role, SceneFiles
from unimrseg_core.data.readers.classmap import (
    IGNORE_NAME,
    ClassMap,
    identity_classmap,
    load_class_table,
    load_classmap,
)
from unimrseg_core.data.readers.errors import DatasetError
from unimrseg_core.data.readers.images import ImageHeader, read_header, read_image
from unimrseg_core.data.readers.mfnet import MFNetReader
from unimrseg_core.data.readers.nyudv2 import NYUDv2Reader
from unimrseg_core.data.readers.options import DatasetOptions, DepthOptions, ThermalOptions, config_dir
from unimrseg_core.data.readers.sod import RgbdSodReader, RgbtSodReader, SodReader
from unimrseg_core.modalities import CLASSES, ClassInfo

__all__ = [
    "IGNORE_NAME",
    "ON_ERROR",
    "READERS",
    "ClassMap",
    "DatasetError",
    "DatasetOptions",
    "DatasetReader",
    "DepthOptions",
    "ImageHeader",
    "MFNetReader",
    "NYUDv2Reader",
    "RgbdSodReader",
    "RgbtSodReader",
    "Role",
    "SceneFiles",
    "SodReader",
    "ThermalOptions",
    "config_dir",
    "identity_classmap",
    "load_class_table",
    "load_classmap",
    "open_dataset",
    "read_header",
    "read_image",
]

READERS: Final[dict[str, type[DatasetReader]]] = {
    reader.KIND: reader for reader in (RgbdSodReader, RgbtSodReader, MFNetReader, NYUDv2Reader)
}
"""Dataset kind -> reader class."""


def open_dataset(
    kind: str,
    root: str | Path,
    *,
    split: str | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    on_error: str = "raise",
    classes: Sequence[ClassInfo] = CLASSES,
) -> DatasetReader:
    """Open the dataset at ``root`` with the reader for ``kind`` (a key of :data:`READERS`).

    ``split`` is a sub-root (``Train/``) or a ``<split>.txt`` list; ``config`` a YAML
    file or mapping merged over the kind's defaults in ``config/datasets.yaml``;
    ``on_error="skip"`` leaves bad scenes out (listed in ``reader.skipped``); ``classes`` is the
    class table a semantic dataset's class map targets (default ours).
    """
    try:
        reader = READERS[kind]
    except KeyError:
        raise KeyError(f"unknown dataset kind {kind!r}; valid: {', '.join(sorted(READERS))}") from None
    return reader(root, split=split, config=config, on_error=on_error, classes=classes)
