"""Image files -> sensor units for ``unimrseg infer``, through the same decoder as ROS messages.

A file's pixel layout is mapped onto the ``sensor_msgs/Image`` encoding it
corresponds to, and ``image_msg.decode`` does the rest, so a 16-bit thermal PNG is
raw counts exactly as on the robot's topics. What a file cannot say comes from
:class:`~unimrseg_core.data.stored_units.StoredUnits` (the same flags as ``unimrseg
eval --data``): integer depth units per metre (1000, millimetres, by default), the
polarity of 8-bit (relative) depth, and the thermal range, whose 8-bit default is the
readers' :data:`~unimrseg_core.data.stored_units.THERMAL_8BIT_RANGE_K`.

Files that look like something else are refused or warned about, never read wrongly
in silence: grey stored in three channels is grey, colour is not thermal or depth; a
4-channel PNG whose 4th channel varies is MFNet's R, G, B + thermal (``--rgbt``), not
an RGBA colour image; integer depth whose values suggest another scale, and images of
another aspect ratio than the anchor (resized, not registered), give warnings.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Final

import cv2
import numpy as np

from unimrseg_core.data.readers.errors import DatasetError
from unimrseg_core.data.readers.images import read_image
from unimrseg_core.data.readers.options import load_options
from unimrseg_core.data.stored_units import DEPTH_MM_UNITS_PER_M, THERMAL_8BIT_RANGE_K, StoredUnits
from unimrseg_core.image_msg import DEFAULT_THERMAL, ImageMsgError, ThermalMapping, decode
from unimrseg_core.modalities import MODALITIES

__all__ = [
    "ASPECT_TOLERANCE",
    "GREY_TOLERANCE",
    "PLAUSIBLE_DEPTH_M",
    "InputImages",
    "aspect_warnings",
    "depth_scale_warnings",
    "read_inputs",
    "read_modality",
    "split_rgbt",
    "thermal_mapping",
]

GREY_TOLERANCE: Final[int] = 2
"""Largest difference between the channels of a 3-channel image still read as grey (JPEG
rounds the colour planes of a grey picture by a level or two)."""

PLAUSIBLE_DEPTH_M: Final[tuple[float, float]] = (0.2, 10.0)
"""Median depth an RGB-D camera's view has; outside it the depth scale is probably wrong."""

ASPECT_TOLERANCE: Final[float] = 0.01
"""Relative difference of width/height from the anchor's beyond which a warning says so."""

_UINT16_TOP: Final[float] = 65535.0
_MIN_VALID_PIXELS: Final[int] = 100  # fewer valid depth pixels than this: no scale guesses
_TUM_UNITS_PER_M: Final[float] = 5000.0


@dataclass
class InputImages:
    """The images of one inference in sensor units (modality order), their files, and warnings."""

    images: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def thermal_mapping(
    units: StoredUnits, *, kelvin_per_count: float | None = None, offset_kelvin: float | None = None
) -> ThermalMapping:
    """How thermal files become kelvin: 8-bit over the shared range (or ``--thermal-range``),
    16-bit counts by ``--kelvin-per-count`` / ``--offset-kelvin`` or by ``--thermal-range``
    over 0..65535. Giving both ways for 16-bit is refused."""
    low, high = units.thermal_range_k or THERMAL_8BIT_RANGE_K
    if units.thermal_range_k is None:
        per_count = DEFAULT_THERMAL.kelvin_per_count if kelvin_per_count is None else kelvin_per_count
        offset = DEFAULT_THERMAL.offset_kelvin if offset_kelvin is None else offset_kelvin
    elif kelvin_per_count is not None or offset_kelvin is not None:
        raise ValueError(
            "--thermal-range already says what 16-bit counts 0..65535 are: "
            "give it or --kelvin-per-count / --offset-kelvin, not both"
        )
    else:
        per_count, offset = (high - low) / _UINT16_TOP, low
    return ThermalMapping(
        kelvin_per_count=per_count, offset_kelvin=offset, mono8_min_kelvin=low, mono8_max_kelvin=high
    )


def _load(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            return np.ascontiguousarray(np.load(path, allow_pickle=False))
        return np.ascontiguousarray(read_image(path))
    except DatasetError as exc:
        raise ValueError(str(exc)) from exc


def _encoding(image: np.ndarray, modality: str) -> str:
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype == np.uint8:
        return {1: "mono8", 3: "bgr8", 4: "bgra8"}.get(channels, f"{channels}-channel uint8")
    if image.dtype == np.uint16 and channels == 1:
        return "16UC1" if modality == "depth" else "mono16"
    if image.dtype == np.float32 and channels == 1:
        return "32FC1"
    return f"{channels}-channel {image.dtype}"


def _decode(image: np.ndarray, path: Path, modality: str, thermal: ThermalMapping) -> np.ndarray:
    """``image`` as the Image message it corresponds to, through ``image_msg.decode``."""
    image = np.ascontiguousarray(image)
    big = image.dtype.byteorder == ">" or (image.dtype.byteorder == "=" and sys.byteorder == "big")
    fields = SimpleNamespace(
        height=image.shape[0],
        width=image.shape[1] if image.ndim > 1 else 0,
        encoding=_encoding(image, modality),
        is_bigendian=int(big),
        step=image.strides[0] if image.ndim > 1 else 0,
        data=image.reshape(-1).view(np.uint8) if image.size else b"",
    )
    try:
        return decode(fields, modality, thermal=thermal)
    except ImageMsgError as exc:
        raise ValueError(f"{path}: cannot be read as {modality}: {exc}") from exc


def _grey(image: np.ndarray, path: Path, modality: str) -> np.ndarray:
    """One channel of grey stored in 3 or 4 channels; colour (a palette picture) is refused."""
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        return image
    colour = image[:, :, :3].astype(np.int16)
    spread = int(np.abs(colour - colour[:, :, :1]).max())
    if spread > GREY_TOLERANCE:
        raise ValueError(
            f"{path}: cannot be read as {modality}: its {image.shape[2]} channels differ by up to {spread} "
            f"levels, so it is a colour picture (a palette visualisation?), not grey values; give the "
            f"single-channel {modality} image"
        )
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)


def split_rgbt(image: np.ndarray, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An MFNet-style 4-channel 8-bit PNG (decoded B, G, R, thermal) -> (BGR, thermal grey)."""
    if image.ndim != 3 or image.shape[2] != 4 or image.dtype != np.uint8:
        raise ValueError(
            f"{path}: --rgbt needs an 8-bit 4-channel image (R, G, B, thermal), got "
            f"{image.shape[2] if image.ndim == 3 else 1} channel(s) of {image.dtype}"
        )
    return np.ascontiguousarray(image[:, :, :3]), np.ascontiguousarray(image[:, :, 3])


def _check_rgb(image: np.ndarray, path: Path) -> None:
    """A 4th channel that varies is not an alpha channel but MFNet's thermal: refuse, say how."""
    if image.ndim == 3 and image.shape[2] == 4 and image.dtype == np.uint8:
        fourth = image[:, :, 3]
        low, high = int(fourth.min()), int(fourth.max())
        if low != high:
            raise ValueError(
                f"{path}: 4 channels whose 4th varies ({low}..{high}), so it is not an alpha channel: "
                f"this looks like R, G, B + thermal in one PNG (as MFNet stores them). Pass it as "
                f"--rgbt {path} to use both, or split it and pass --rgb and --thermal"
            )


def depth_scale_warnings(raw: np.ndarray, units_per_m: float, *, given: bool) -> list[str]:
    """Warnings when integer depth looks stored at another scale than ``units_per_m``.

    Two signs: a median outside :data:`PLAUSIBLE_DEPTH_M`, and (when the scale was not
    given) every value a multiple of 5, as millimetres multiplied by 5 are (TUM RGB-D's
    5000 units per metre). These are hints, not proof: the depth is read as told.
    """
    valid = raw[raw > 0]
    if valid.size < _MIN_VALID_PIXELS:
        return []
    warnings = []
    median_m = float(np.median(valid)) / units_per_m
    low, high = PLAUSIBLE_DEPTH_M
    if not low <= median_m <= high:
        others = ", ".join(
            f"{float(np.median(valid)) / u:.2f} m at {u:g}"
            for u in (DEPTH_MM_UNITS_PER_M, _TUM_UNITS_PER_M, 1.0e4, 100.0)
            if u != units_per_m
        )
        warnings.append(
            f"median depth {median_m:.2f} m at {units_per_m:g} units per metre is outside what RGB-D "
            f"cameras see ({low:g}..{high:g} m): check --depth-scale (median {others} units per metre)"
        )
    distinct = np.unique(valid)
    if not given and distinct.size >= 10 and not np.any(distinct % 5):
        warnings.append(
            f"every depth value is a multiple of 5, as millimetres x 5 are (TUM RGB-D: 5000 units per "
            f"metre): read at {units_per_m:g} units per metre; if it is such a file, pass --depth-scale "
            f"5000 (median {float(np.median(valid)) / _TUM_UNITS_PER_M:.2f} m instead of {median_m:.2f} m)"
        )
    return warnings


def _depth(image: np.ndarray, path: Path, units: StoredUnits) -> tuple[np.ndarray, list[str]]:
    image = _grey(image, path, "depth")
    if image.dtype == np.uint8 and image.ndim == 2:
        if units.depth_polarity is None:
            raise ValueError(
                f"{path}: 8-bit depth is a relative visualisation (as in RGB-D SOD sets): pass "
                f"--depth-polarity near-bright|near-dark to read it, or give 16-bit or float depth"
            )
        options = load_options("rgbd_sod", ("depth",), units.reader_config()).depth
        if options is None:  # pragma: no cover - the rgbd_sod defaults always have depth
            raise ValueError("config/datasets.yaml: rgbd_sod has no depth section")
        note = (
            f"{path}: 8-bit depth read as relative, {options.near_m:g}..{options.far_m:g} m "
            f"({units.depth_polarity}), as the RGB-D SOD reader does"
        )
        return options.to_metres(image, path), [note]
    metres = _decode(image, path, "depth", DEFAULT_THERMAL)  # checks the layout
    if image.dtype.kind == "f":
        if units.depth_units_per_m is None:
            return metres, []
        return metres, [f"{path}: --depth-scale is for integer depth; this float file is read as metres"]
    per_m = units.depth_units_per_m or DEPTH_MM_UNITS_PER_M
    metres = image.astype(np.float32) / np.float32(per_m)
    warnings = depth_scale_warnings(image, per_m, given=units.depth_units_per_m is not None)
    return metres, [f"{path}: {w}" for w in warnings]


def read_modality(
    path: str | Path,
    modality: str,
    *,
    units: StoredUnits | None = None,
    thermal: ThermalMapping | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Read ``path`` (PNG/JPEG/TIFF/PGM via OpenCV, or ``.npy``) as ``modality`` in sensor units.

    Returns the image and warnings about it. Raises ValueError naming the file when it
    cannot be read or its layout does not suit the modality.
    """
    path = Path(path)
    units = units or StoredUnits()
    image = _load(path)
    if modality == "depth":
        return _depth(image, path, units)
    if modality == "thermal":
        image = _grey(image, path, "thermal")
    elif modality == "rgb":
        _check_rgb(image, path)
    return _decode(image, path, modality, thermal or thermal_mapping(units)), []


def aspect_warnings(images: Mapping[str, np.ndarray]) -> list[str]:
    """Warnings for images whose aspect ratio differs from the first (the anchor's): resized only."""
    if not images:
        return []
    anchor, first = next(iter(images.items()))
    height, width = first.shape[:2]
    warnings = []
    for modality, image in images.items():
        h, w = image.shape[:2]
        if abs((w / h) / (width / height) - 1.0) > ASPECT_TOLERANCE:
            warnings.append(
                f"{modality} {w}x{h} (aspect {w / h:.3f}) differs from the anchor {anchor} {width}x{height} "
                f"({width / height:.3f}): it is only resized onto {anchor}, not registered, so its pixels do "
                f"not line up with {anchor}'s; crop or register it first for a true result"
            )
    return warnings


def read_inputs(
    files: Mapping[str, str | Path],
    *,
    rgbt: str | Path | None = None,
    units: StoredUnits | None = None,
    thermal: ThermalMapping | None = None,
) -> InputImages:
    """Every given file (``files``: modality -> path; ``rgbt``: one R, G, B + thermal PNG) in
    sensor units, in modality order, with the warnings about them."""
    units = units or StoredUnits()
    thermal = thermal or thermal_mapping(units)
    given = {m: Path(p) for m, p in files.items()}
    if rgbt is not None:
        clash = [f"--{m}" for m in ("rgb", "thermal") if m in given]
        if clash:
            raise ValueError(f"--rgbt gives rgb and thermal already: drop {' and '.join(clash)}")
    if not given and rgbt is None:
        raise ValueError("give at least one of --rgb, --depth, --thermal, --rgbt")
    out = InputImages()
    read: dict[str, np.ndarray] = {}
    if rgbt is not None:
        path = Path(rgbt)
        bgr, grey = split_rgbt(_load(path), path)
        read["rgb"] = _decode(bgr, path, "rgb", thermal)
        read["thermal"] = _decode(grey, path, "thermal", thermal)
        out.files.update(rgb=str(path), thermal=str(path))
    for modality, path in given.items():
        read[modality], warnings = read_modality(path, modality, units=units, thermal=thermal)
        out.files[modality] = str(path)
        out.warnings += warnings
    out.images = {m: read[m] for m in MODALITIES if m in read}
    out.files = {m: out.files[m] for m in MODALITIES if m in out.files}
    out.warnings += aspect_warnings(out.images)
    return out
