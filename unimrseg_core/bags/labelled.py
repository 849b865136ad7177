"""Labelled frames of a robot bag as training samples (``data.sources`` of kind ``bag``).

Labels come from the bag's ground-truth topics (``segmentation/ground_truth/...``, as
``unimrseg bag make`` writes them: a mono8 class mask and a mono8 saliency mask per frame),
or from a folder of label PNGs beside the bag, one per labelled image, named by that image's
header stamp (``1700000000123456789.png``: class values, mapped through the source's class
map). Each label's stamp picks, per camera, the message whose header stamp is nearest, within
``max_skew_s``; a camera with none is absent from that sample (its modality mask says so).

Two passes over the bag: the labels first (their stamps), then the cameras, keeping only the
nearest message per label and camera, so memory grows with the labelled frames, not the bag.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unimrseg_core.bags.evaluate import truth_mono8
from unimrseg_core.bags.messages import stamp_to_ns
from unimrseg_core.bags.read import CAMERA_TOPICS, BagError, BagReader
from unimrseg_core.bags.topics import GROUND_TRUTH
from unimrseg_core.compressed_msg import decode_compressed, is_compressed
from unimrseg_core.data.readers import ClassMap, DatasetError
from unimrseg_core.data.readers.images import read_index_image
from unimrseg_core.data.sample import Sample
from unimrseg_core.data.stored_units import DEPTH_MM_UNITS_PER_M, StoredUnits
from unimrseg_core.eval.sources import resize_array
from unimrseg_core.image_msg import MAX_PIXELS, ImageMsgError, ThermalMapping, decode
from unimrseg_core.modalities import MODALITIES

__all__ = ["bag_samples", "thermal_mapping"]

_UINT16_MAX = 65535
_Labels = dict[int, dict[str, np.ndarray]]
"""Ground truth by header stamp: ``{"label": class ids}``, from topics also ``"saliency"``."""


def thermal_mapping(units: StoredUnits) -> ThermalMapping:
    """The bag's thermal as ``units`` says (``thermal_range``: kelvin at 0 and full scale), else
    the decoders' defaults (mono16: 0.01 K per count)."""
    if units.thermal_range_k is None:
        return ThermalMapping()
    low, high = units.thermal_range_k
    return ThermalMapping(
        kelvin_per_count=(high - low) / _UINT16_MAX,
        offset_kelvin=low,
        mono8_min_kelvin=low,
        mono8_max_kelvin=high,
    )


def _label_pngs(folder: Path, classmap: ClassMap) -> tuple[_Labels, dict[int, Path]]:
    """``<stamp_ns>.png`` label files -> ({stamp: {"label": ids}}, {stamp: file}); other names,
    or two files of one stamp (``017.png``, ``17.png``), are an error."""
    if not folder.is_dir():
        raise DatasetError(folder, "labels folder does not exist")
    out: _Labels = {}
    where: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() != ".png" or not path.stem.isdigit():
            raise DatasetError(path, "a label file is named <header stamp in ns>.png")
        stamp = int(path.stem)
        if stamp in where:
            raise DatasetError(path, f"a second label file for stamp {stamp} (the first: {where[stamp]})")
        raw = read_index_image(path)
        if raw.ndim != 2:
            raise DatasetError(path, f"a label PNG has one channel of class values, got shape {raw.shape}")
        out[stamp], where[stamp] = {"label": classmap.apply(raw, path)}, path
    if not out:
        raise DatasetError(folder, "no <stamp_ns>.png label files")
    return out, where


def _topic_labels(bag: BagReader, classmap: ClassMap) -> _Labels:
    """The ground-truth topics' masks by header stamp (class ids through ``classmap``)."""
    out: _Labels = {}
    kinds = {t.topic: name for name, t in GROUND_TRUTH.items()}
    for m in bag.messages([t for t in kinds if t in bag.topics]):
        mono8 = truth_mono8(bag.path, m.topic, m.msg, MAX_PIXELS)
        entry = out.setdefault(stamp_to_ns(m.msg.header.stamp), {})
        if kinds[m.topic] == "class_mask":
            entry["label"] = classmap.apply(mono8, f"{bag.path}:{m.topic}")
        else:
            entry["saliency"] = (mono8 > 127).astype(np.uint8)
    if not out:
        topics = ", ".join(kinds)
        raise BagError(bag.path, f"no labels: none of {topics} in the bag, and no labels folder given")
    return out


def _nearest_cameras(bag: BagReader, stamps: list[int], max_skew_ns: int) -> dict[int, dict[str, Any]]:
    """Per label stamp and camera, the message with the nearest header stamp within ``max_skew_ns``."""
    best: dict[int, dict[str, tuple[int, Any]]] = {}
    for m in bag.messages([t for t in CAMERA_TOPICS if t in bag.topics]):
        stamp = stamp_to_ns(m.msg.header.stamp)
        i = bisect.bisect_left(stamps, stamp)
        near = min(stamps[max(0, i - 1) : i + 1], key=lambda s: abs(s - stamp))
        skew = abs(near - stamp)
        modality = CAMERA_TOPICS[m.topic]
        held = best.setdefault(near, {}).get(modality)
        if skew <= max_skew_ns and (held is None or skew < held[0]):
            best[near][modality] = (skew, m.msg)
    return {s: {k: msg for k, (_, msg) in cams.items()} for s, cams in best.items()}


def _size_problem(truth: dict[str, np.ndarray], images: dict[str, np.ndarray]) -> str | None:
    """A label drawn on one of its cameras has that camera's size; any other would be resized onto
    the images, misaligned, so it is a problem naming the label's and the cameras' sizes."""
    sizes = {m: image.shape[:2] for m, image in images.items()}
    for kind, array in truth.items():
        if array.shape[:2] not in sizes.values():
            shown = ", ".join(f"{m} {w}x{h}" for m, (h, w) in sizes.items())
            return f"{kind} is {array.shape[1]}x{array.shape[0]}, the size of none of its cameras ({shown})"
    return None


def _decode(path: Path, modality: str, msg: Any, units: StoredUnits) -> np.ndarray:
    decoder = decode_compressed if is_compressed(msg) else decode
    try:
        image = decoder(msg, modality, thermal=thermal_mapping(units))
    except ImageMsgError as exc:
        raise BagError(path, f"{modality} at {stamp_to_ns(msg.header.stamp)} ns: {exc}") from None
    if modality == "depth" and units.depth_units_per_m is not None:  # decoded as REP 118 millimetres
        image = image * np.float32(DEPTH_MM_UNITS_PER_M / units.depth_units_per_m)
    return image


def bag_samples(
    path: str | Path,
    size: tuple[int, int],
    classmap: ClassMap,
    *,
    remap: Mapping[str, str] | None = None,
    labels: str | Path | None = None,
    max_skew_s: float = 0.05,
    units: StoredUnits | None = None,
) -> list[Sample]:
    """Every labelled frame of the bag at ``path`` as a Sample at ``size``, in stamp order.

    Raises BagError (a bag that cannot be read, no labels, a label with no camera near it) or
    DatasetError (a label file; a label the size of none of its cameras), each naming the file.
    """
    path, units = Path(path), units or StoredUnits()
    if units.depth_polarity is not None:
        raise ValueError(f"{path}: depth_polarity is for 8-bit depth images; a bag's depth is metric")
    with BagReader(path, remap=remap) as bag:
        files: dict[int, Path] = {}
        if labels:
            truth, files = _label_pngs(Path(labels).expanduser(), classmap)
        else:
            truth = _topic_labels(bag, classmap)
        stamps = sorted(truth)
        cameras = _nearest_cameras(bag, stamps, round(max_skew_s * 1e9))
    samples = []
    for stamp in stamps:
        found = cameras.get(stamp, {})
        if not found:
            label = f"label {files[stamp].name}" if stamp in files else f"label at {stamp} ns"
            raise BagError(path, f"{label} has no camera image within {max_skew_s} s of its stamp")
        images = {m: _decode(path, m, found[m], units) for m in MODALITIES if m in found}
        problem = _size_problem(truth[stamp], images)
        if problem and stamp in files:
            raise DatasetError(files[stamp], problem)
        if problem:
            raise BagError(path, f"ground truth at {stamp} ns: {problem}")
        arrays = {m: resize_array(m, image, size) for m, image in images.items()}
        arrays |= {k: resize_array(k, v, size) for k, v in truth[stamp].items()}
        meta = {"name": str(stamp), "bag": str(path), "stamp_ns": stamp}
        samples.append(Sample(**arrays, meta=meta).validate())
    return samples
