"""The one place that defines modalities, their combinations, the mask convention,
the class table and how each modality is normalised.

Every other module (data, model, export, ROS nodes, bag tools) imports these
names; none repeats them. The ONNX/engine metadata is written from
:func:`model_metadata`, so a deployed model carries the same facts.

Mask convention: a float32 tensor ``[B, 3]`` in ``MODALITIES`` order
(rgb, depth, thermal); 1.0 = the modality is present and used, 0.0 = absent.
Absent image tensors are zeros, but only the mask tells the network which are absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Final

import numpy as np

__all__ = [
    "CLASSES",
    "CLASS_COLORS",
    "CLASS_NAMES",
    "COMBINATIONS",
    "IGNORE_INDEX",
    "INPUT_NAMES",
    "MODALITIES",
    "MODALITY_CHANNELS",
    "NEAREST_RESIZE",
    "NORMALIZATION",
    "NUM_CLASSES",
    "OUTPUT_NAMES",
    "SENSOR_FORMATS",
    "ClassInfo",
    "Combination",
    "ModalityNorm",
    "apply_mask",
    "class_id",
    "class_table_json",
    "classes_from_json",
    "color_table",
    "colorize",
    "combination",
    "combination_from_mask",
    "denormalize",
    "mask_array",
    "metadata_mismatch",
    "model_classes",
    "model_metadata",
    "normalize",
]

MODALITIES: Final[tuple[str, ...]] = ("rgb", "depth", "thermal")
"""Modality order: the order of the mask entries and of the model's image inputs."""

MODALITY_CHANNELS: Final[Mapping[str, int]] = {"rgb": 3, "depth": 1, "thermal": 1}

SENSOR_FORMATS: Final[Mapping[str, tuple[int, type]]] = {
    "rgb": (3, np.uint8),  # HxWx3, RGB order
    "depth": (2, np.float32),  # HxW metres, 0 = no return (REP 118)
    "thermal": (2, np.float32),  # HxW kelvin
}
"""(ndim, dtype) of each modality's image in sensor units: what decoders produce, what the health
checks, samples and the Segmenter accept, and what ``normalize`` maps to the network's range."""

NEAREST_RESIZE: Final[frozenset[str]] = frozenset({"depth"})
"""Modalities resized with nearest neighbour: interpolating depth would blend invalid zeros
(no return) with real ranges into false near returns. The others are resized bilinearly."""

INPUT_NAMES: Final[tuple[str, ...]] = (*MODALITIES, "modality_mask")
"""The model's inputs, in order (the network, ONNX and every engine): the images, then the mask."""
OUTPUT_NAMES: Final[tuple[str, ...]] = ("seg_logits", "saliency")

_SEPARATOR: Final = "+"


@dataclass(frozen=True)
class Combination:
    """A non-empty set of present modalities with its stable name (e.g. ``rgb+thermal``)."""

    modalities: tuple[str, ...]

    @property
    def name(self) -> str:
        return _SEPARATOR.join(self.modalities)

    @property
    def mask(self) -> np.ndarray:
        """float32 ``[3]`` in MODALITIES order, 1.0 where present."""
        return np.array([m in self.modalities for m in MODALITIES], dtype=np.float32)

    def __contains__(self, modality: object) -> bool:
        return modality in self.modalities

    def __str__(self) -> str:
        return self.name


def _all_combinations() -> tuple[Combination, ...]:
    """The 7 non-empty subsets, singles first, then pairs, then all three (stable order)."""
    out: list[Combination] = []
    n = len(MODALITIES)
    for size in range(1, n + 1):
        for bits in range(1, 1 << n):
            chosen = tuple(m for i, m in enumerate(MODALITIES) if bits >> i & 1)
            if len(chosen) == size:
                out.append(Combination(chosen))
    # bit order gives rgb, depth, thermal / rgb+depth, rgb+thermal, depth+thermal / all
    return tuple(out)


COMBINATIONS: Final[tuple[Combination, ...]] = _all_combinations()
"""rgb, depth, thermal, rgb+depth, rgb+thermal, depth+thermal, rgb+depth+thermal."""

_BY_NAME: Final[Mapping[str, Combination]] = {c.name: c for c in COMBINATIONS}


def combination(spec: str | Iterable[str]) -> Combination:
    """Parse ``"thermal+rgb"`` or ``["rgb", "thermal"]`` into its canonical Combination.

    Raises ValueError naming the unknown modality or the empty set.
    """
    parts = [p.strip() for p in spec.split(_SEPARATOR)] if isinstance(spec, str) else list(spec)
    unknown = [p for p in parts if p not in MODALITIES]
    if unknown:
        raise ValueError(f"unknown modality {unknown!r}; valid: {', '.join(MODALITIES)}")
    if not parts:
        raise ValueError("a combination needs at least one modality")
    return _BY_NAME[_SEPARATOR.join(m for m in MODALITIES if m in parts)]


def combination_from_mask(mask: Sequence[float] | np.ndarray) -> Combination:
    """The Combination of a ``[3]`` mask (values > 0.5 count as present)."""
    values = np.asarray(mask, dtype=np.float32).reshape(-1)
    if values.shape != (len(MODALITIES),):
        raise ValueError(f"modality mask must have {len(MODALITIES)} entries, got shape {values.shape}")
    return combination([m for m, v in zip(MODALITIES, values, strict=True) if v > 0.5])


def mask_array(present: Iterable[str]) -> np.ndarray:
    """float32 ``[3]`` mask from modality names; an empty set gives all zeros."""
    names = set(present)
    unknown = names - set(MODALITIES)
    if unknown:
        raise ValueError(f"unknown modality {sorted(unknown)!r}; valid: {', '.join(MODALITIES)}")
    return np.array([m in names for m in MODALITIES], dtype=np.float32)


def apply_mask(inputs: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """Model inputs with only ``mask``'s modalities: the others' images zeroed, ``modality_mask`` set.

    The one way inputs lose a modality (evaluation, export parity, engine checks and calibration;
    ``data.tensor_ops.apply_mask_tensor`` is the same on tensors), so absent images are zeros
    everywhere, as the I/O contract says. ``inputs`` as ``data.tensors.model_inputs`` makes them
    (images ``[..., C, H, W]``, ``modality_mask [..., 3]``), batched or not; ``mask`` is ``[3]``
    for every sample or ``[..., 3]`` per sample. ``inputs`` are left alone.
    """
    mask = np.broadcast_to(np.asarray(mask, np.float32), inputs["modality_mask"].shape)
    out = {m: inputs[m] * mask[..., i, None, None, None] for i, m in enumerate(MODALITIES)}
    out["modality_mask"] = mask.copy()
    return out


# --------------------------------------------------------------------------- classes


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    color: tuple[int, int, int]  # RGB, for coloured masks and previews
    is_thing: bool  # countable object (can be salient); stuff otherwise


CLASSES: Final[tuple[ClassInfo, ...]] = (
    ClassInfo(0, "background", (81, 0, 81), False),  # poles, fences, billboard boards, clutter
    ClassInfo(1, "ground", (128, 64, 128), False),  # road, pavement, grass ground, floor
    ClassInfo(2, "sky", (70, 130, 180), False),
    ClassInfo(3, "building", (70, 70, 70), False),  # walls and facades (and what is painted on them)
    ClassInfo(4, "vegetation", (107, 142, 35), False),
    ClassInfo(5, "person", (220, 20, 60), True),
    ClassInfo(6, "vehicle", (0, 0, 142), True),
    ClassInfo(7, "obstacle", (250, 170, 30), True),  # boxes, cones, barriers on the ground
)
NUM_CLASSES: Final[int] = len(CLASSES)
CLASS_NAMES: Final[tuple[str, ...]] = tuple(c.name for c in CLASSES)
IGNORE_INDEX: Final[int] = 255
"""Label value for pixels without ground truth (void in real datasets); never a class."""

CLASS_COLORS: Final[np.ndarray] = np.zeros((256, 3), dtype=np.uint8)
"""Lookup table id -> RGB colour; ids outside the table (and IGNORE_INDEX) are black."""
for _c in CLASSES:
    CLASS_COLORS[_c.id] = _c.color
CLASS_COLORS.flags.writeable = False


def class_id(name: str) -> int:
    for c in CLASSES:
        if c.name == name:
            return c.id
    raise KeyError(f"unknown class {name!r}; valid: {', '.join(CLASS_NAMES)}")


def colorize(label: np.ndarray, colors: np.ndarray = CLASS_COLORS) -> np.ndarray:
    """``HxW`` integer class ids -> ``HxWx3`` uint8 RGB colours (``colors``: a model's
    ``color_table``; default ours)."""
    return colors[np.asarray(label).astype(np.uint8, copy=False)]


# ----------------------------------------------------------------- a model's class table
# A model carries its class table in its metadata ("classes", as ``class_table_json`` writes it):
# ours (CLASSES) for the shipped model, a user's for a fine-tuned one. Whatever deploys a model
# (export, engines, the Segmenter's users, the node) reads the table from there with
# ``model_classes``; metadata without one means ours, so models from before tables travelled work.


def class_table_json(classes: Sequence[ClassInfo] = CLASSES) -> list[dict[str, object]]:
    """A class table as the metadata stores it (JSON types: colours as lists)."""
    return [{**asdict(c), "color": list(c.color)} for c in classes]


def classes_from_json(raw: object, source: str = "metadata") -> tuple[ClassInfo, ...]:
    """A class table read back from metadata (or a user's file, already parsed); ValueError naming
    ``source`` and the entry when it is not a table the masks can carry: ids 0..N-1 in order,
    1 <= N < IGNORE_INDEX, unique non-empty names, RGB colours 0..255."""
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{source}: classes must be a non-empty list, got {type(raw).__name__}")
    if len(raw) >= IGNORE_INDEX:
        raise ValueError(f"{source}: at most {IGNORE_INDEX - 1} classes (id {IGNORE_INDEX} means void)")
    out: list[ClassInfo] = []
    for i, entry in enumerate(raw):
        where = f"{source}: classes[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be a mapping with id, name, color, is_thing")
        name, color = entry.get("name"), entry.get("color")
        if entry.get("id", i) != i:
            raise ValueError(f"{where}: id {entry.get('id')!r}, expected {i} (ids are the list order)")
        if not isinstance(name, str) or not name.strip() or name == "ignore":
            raise ValueError(f"{where}: name must be a non-empty string other than 'ignore', got {name!r}")
        if name in (c.name for c in out):
            raise ValueError(f"{where}: duplicate class name {name!r}")
        if (
            not isinstance(color, Sequence)
            or len(color) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in color)
        ):
            raise ValueError(f"{where} ({name}): color must be three integers 0..255, got {color!r}")
        thing = entry.get("is_thing", False)
        if not isinstance(thing, bool):
            raise ValueError(f"{where} ({name}): is_thing must be true or false, got {thing!r}")
        out.append(ClassInfo(i, name, (int(color[0]), int(color[1]), int(color[2])), thing))
    return tuple(out)


def model_classes(meta: Mapping[str, object] | None) -> tuple[ClassInfo, ...]:
    """The class table of a model's metadata; ours when it has none (ValueError when malformed)."""
    raw = (meta or {}).get("classes")
    return CLASSES if raw is None else classes_from_json(raw)


def color_table(classes: Sequence[ClassInfo]) -> np.ndarray:
    """Lookup table id -> RGB colour of ``classes`` (as ``CLASS_COLORS`` is of ours)."""
    table = np.zeros((256, 3), dtype=np.uint8)
    for c in classes:
        table[c.id] = c.color
    table.flags.writeable = False
    return table


# --------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class ModalityNorm:
    """Linear map of a modality from sensor units to the network's fixed [0, 1] range.

    ``x_norm = clip((x - low) / (high - low), 0, 1)``. Values outside [low, high]
    saturate. For depth, 0 m means "no return" (REP 118 invalid) and stays 0.
    """

    unit: str
    low: float
    high: float


NORMALIZATION: Final[Mapping[str, ModalityNorm]] = {
    "rgb": ModalityNorm(unit="uint8", low=0.0, high=255.0),
    "depth": ModalityNorm(unit="m", low=0.0, high=20.0),
    "thermal": ModalityNorm(unit="K", low=240.0, high=340.0),
}


def normalize(modality: str, image: np.ndarray) -> np.ndarray:
    """Sensor units -> float32 in [0, 1], channels last as given.

    NaN and inf (invalid pixels of float depth/thermal images) become 0, like
    depth's "no return".
    """
    norm = NORMALIZATION[modality]
    x = np.asarray(image, dtype=np.float32)
    out = (x - np.float32(norm.low)) * np.float32(1.0 / (norm.high - norm.low))
    np.clip(out, 0.0, 1.0, out=out)
    if x.dtype.kind == "f":
        out[~np.isfinite(x)] = 0.0
    return out


def denormalize(modality: str, image: np.ndarray) -> np.ndarray:
    """[0, 1] -> sensor units (float32); for previews and tests."""
    norm = NORMALIZATION[modality]
    return (np.asarray(image, dtype=np.float32) * (norm.high - norm.low) + norm.low).astype(np.float32)


def model_metadata(classes: Sequence[ClassInfo] = CLASSES) -> dict[str, object]:
    """The facts a deployed model carries in its metadata (JSON-serialisable); ``classes``: its
    class table (ours unless it was trained on another)."""
    return {
        "modalities": list(MODALITIES),
        "modality_channels": dict(MODALITY_CHANNELS),
        "combinations": [c.name for c in COMBINATIONS],
        "classes": class_table_json(classes),
        "ignore_index": IGNORE_INDEX,
        "normalization": {m: asdict(n) for m, n in NORMALIZATION.items()},
    }


def metadata_mismatch(meta: Mapping[str, object]) -> str | None:
    """The first of classes / normalisation / modalities where a model's metadata cannot be served
    by this code (a model trained or exported elsewhere), or None when all fit. Normalisation and
    modalities must equal this code's; the class table is the model's own and must be well formed
    (``classes_from_json``)."""
    current = json.loads(json.dumps(model_metadata()))  # as read back from JSON: tuples become lists
    try:
        model_classes(meta)
    except ValueError:
        return "classes"
    for key in ("normalization", "modalities"):
        if meta.get(key) != current[key]:
            return key
    return None
