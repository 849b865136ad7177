"""Per-dataset conversion options (8-bit depth / thermal visualisations -> metres / kelvin).

The defaults live in ``config/datasets.yaml`` (one section per reader kind; the 8-bit
thermal range is :data:`~unimrseg_core.data.stored_units.THERMAL_8BIT_RANGE_K`); a user's
``config=`` (a YAML file with the same keys, or a mapping, e.g.
``StoredUnits.reader_config()`` from the command line's flags) is merged over them, so a
dataset whose depth is stored the other way round needs one line, not code.
Unknown keys are errors naming the file and key, so a typo never falls back to a
default silently.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
import yaml

from unimrseg_core.data.readers.errors import DatasetError
from unimrseg_core.data.stored_units import THERMAL_8BIT_RANGE_K

__all__ = [
    "DATASETS_FILE",
    "DatasetOptions",
    "DepthOptions",
    "ThermalOptions",
    "config_dir",
    "load_options",
    "load_yaml",
    "yaml_key_lines",
]

DATASETS_FILE: Final[str] = "datasets.yaml"
_PACKAGE: Final[str] = "unimrseg_ros"
_USER: Final[str] = "<config argument>"
_THERMAL_DEFAULT: Final[str] = "unimrseg_core.data.stored_units.THERMAL_8BIT_RANGE_K"


def config_dir() -> Path:
    """The package's ``config/`` folder: the source tree (editable install) or ``share/``.

    ``UNIMRSEG_CONFIG_DIR`` overrides it; otherwise the source checkout is tried first,
    then ``<prefix>/share/unimrseg_ros/config`` of this install, the venv and every
    entry of ``AMENT_PREFIX_PATH`` (colcon).
    """
    env = os.environ.get("UNIMRSEG_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    source_root = here.parents[3]
    if (source_root / "package.xml").is_file():
        candidates.append(source_root / "config")
    prefixes = [*here.parents, Path(sys.prefix)]
    prefixes += [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    candidates += [p / "share" / _PACKAGE / "config" for p in prefixes]
    for candidate in candidates:
        if (candidate / DATASETS_FILE).is_file():
            return candidate
    raise DatasetError(
        candidates[0] if candidates else DATASETS_FILE,
        f"cannot find {DATASETS_FILE}; set UNIMRSEG_CONFIG_DIR to the package's config folder",
    )


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error names the file."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise DatasetError(path, f"cannot read: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise DatasetError(path, f"invalid YAML: {e}") from e


def yaml_key_lines(path: str | Path) -> dict[tuple[str, ...], int]:
    """Line (1-based) of every mapping key and sequence item of a YAML file, by its path of keys
    (``("mapping", "car")``, ``("classes", "2")``), so an error can name the line a user fixes.
    Empty when the file cannot be parsed (``load_yaml`` reports that)."""
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node | None, where: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*where, str(key.value))
                lines[here] = key.start_mark.line + 1
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*where, str(i))] = item.start_mark.line + 1
                walk(item, (*where, str(i)))

    walk(root, ())
    return lines


def _number(section: Mapping[str, Any], key: str, source: str, where: str) -> float:
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise DatasetError(source, f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


def _check_keys(
    section: Any,
    allowed: tuple[str, ...],
    source: str,
    where: str,
    *,
    complete: bool = False,
) -> Mapping[str, Any]:
    """A mapping with only ``allowed`` keys (and all of them when ``complete``)."""
    if not isinstance(section, Mapping):
        raise DatasetError(source, f"{where}: expected a mapping, got {type(section).__name__}")
    unknown = sorted(str(k) for k in section if k not in allowed)
    if unknown:
        raise DatasetError(source, f"{where}.{unknown[0]}: unknown key; valid: {', '.join(allowed)}")
    missing = [k for k in allowed if k not in section] if complete else []
    if missing:
        raise DatasetError(source, f"{where}.{missing[0]}: missing key")
    return section


@dataclass(frozen=True)
class DepthOptions:
    """How stored depth becomes metres.

    - 8-bit (a normalised visualisation, as in RGB-D SOD sets): a linear map of
      0..255 onto ``near_m..far_m``; ``bright`` says which end 255 is (``near`` for
      disparity-like maps). Such depth is only RELATIVE: the true range is unknown.
      ``zero_invalid`` makes raw 0 "no return" (0 m) instead of a depth.
    - 16-bit: ``value * scale_16bit`` metres (0.001 = millimetres); 0 stays invalid.
    - float: taken as metres; NaN / inf become 0 (invalid).
    """

    near_m: float
    far_m: float
    bright: str
    zero_invalid: bool
    scale_16bit: float

    KEYS: ClassVar[tuple[str, ...]] = ("near_m", "far_m", "bright", "zero_invalid", "scale_16bit")

    @classmethod
    def from_mapping(cls, section: Any, source: str, where: str = "depth") -> DepthOptions:
        section = _check_keys(section, cls.KEYS, source, where, complete=True)
        if section["bright"] not in ("near", "far"):
            raise DatasetError(source, f"{where}.bright: expected 'near' or 'far', got {section['bright']!r}")
        if not isinstance(section["zero_invalid"], bool):
            raise DatasetError(source, f"{where}.zero_invalid: expected true or false")
        options = cls(
            near_m=_number(section, "near_m", source, where),
            far_m=_number(section, "far_m", source, where),
            bright=section["bright"],
            zero_invalid=section["zero_invalid"],
            scale_16bit=_number(section, "scale_16bit", source, where),
        )
        if not 0.0 <= options.near_m < options.far_m:
            raise DatasetError(
                source, f"{where}: need 0 <= near_m < far_m, got {options.near_m}, {options.far_m}"
            )
        if options.scale_16bit <= 0:
            raise DatasetError(source, f"{where}.scale_16bit: must be > 0")
        return options

    def to_metres(self, raw: np.ndarray, path: str | Path) -> np.ndarray:
        """Stored depth (single channel) -> ``HxW`` float32 metres, 0 = invalid."""
        if raw.dtype == np.uint8:
            fraction = raw.astype(np.float32) * np.float32(1.0 / 255.0)
            if self.bright == "near":
                fraction = 1.0 - fraction
            metres = np.float32(self.near_m) + fraction * np.float32(self.far_m - self.near_m)
            if self.zero_invalid:
                metres[raw == 0] = 0.0
            return metres.astype(np.float32, copy=False)
        if raw.dtype == np.uint16:
            return raw.astype(np.float32) * np.float32(self.scale_16bit)
        if raw.dtype.kind == "f":
            metres = raw.astype(np.float32)
            metres[~np.isfinite(metres)] = 0.0
            return metres
        raise DatasetError(path, f"depth must be 8-bit, 16-bit or float, got {raw.dtype}")


@dataclass(frozen=True)
class ThermalOptions:
    """How stored thermal becomes kelvin: a linear map of the stored range onto ``low_k..high_k``.

    8-bit grey 0..255 maps onto ``low_k..high_k`` (default
    :data:`~unimrseg_core.data.stored_units.THERMAL_8BIT_RANGE_K`, the one range every
    reader and ``unimrseg infer`` use). The cameras' automatic gain changes the true
    range from frame to frame, so the result is only RELATIVE temperature in a plausible
    band, not a measurement. 16-bit counts 0..65535 map onto ``low_k_16bit..high_k_16bit``
    only when a user gives that range (``--thermal-range``): radiometric counts are
    camera-specific and have no safe default.
    """

    low_k: float
    high_k: float
    low_k_16bit: float | None = None
    high_k_16bit: float | None = None

    KEYS: ClassVar[tuple[str, ...]] = ("low_k", "high_k", "low_k_16bit", "high_k_16bit")

    @classmethod
    def from_mapping(cls, section: Any, source: str, where: str = "thermal") -> ThermalOptions:
        section = _check_keys(section, cls.KEYS, source, where)
        missing = [key for key in ("low_k", "high_k") if key not in section]
        if missing:
            raise DatasetError(source, f"{where}.{missing[0]}: missing key")
        values = {key: _number(section, key, source, where) for key in cls.KEYS if key in section}
        if ("low_k_16bit" in values) != ("high_k_16bit" in values):
            raise DatasetError(source, f"{where}: low_k_16bit and high_k_16bit go together")
        options = cls(**values)
        for low, high, suffix in (
            (options.low_k, options.high_k, ""),
            (options.low_k_16bit, options.high_k_16bit, "_16bit"),
        ):
            if low is not None and high is not None and not 0.0 < low < high:
                raise DatasetError(
                    source, f"{where}: need 0 < low_k{suffix} < high_k{suffix}, got {low}, {high}"
                )
        return options

    @property
    def reads_16bit(self) -> bool:
        """Whether a 16-bit range was given (else 16-bit thermal files are refused)."""
        return self.low_k_16bit is not None and self.high_k_16bit is not None

    def to_kelvin(self, raw: np.ndarray, path: str | Path) -> np.ndarray:
        """8-bit grey (or 16-bit counts, with their range) -> ``HxW`` float32 kelvin."""
        if raw.dtype == np.uint8:
            low, high, top = self.low_k, self.high_k, 255.0
        elif raw.dtype == np.uint16 and self.low_k_16bit is not None and self.high_k_16bit is not None:
            low, high, top = self.low_k_16bit, self.high_k_16bit, 65535.0
        else:
            raise DatasetError(path, self.refusal(raw.dtype.itemsize * 8))
        scale = np.float32((high - low) / top)
        return (np.float32(low) + raw.astype(np.float32) * scale).astype(np.float32, copy=False)

    def refusal(self, bits: int | None) -> str:
        """Why thermal of ``bits`` per value cannot be read with these options."""
        if bits == 16:
            return (
                "16-bit thermal needs its range: pass --thermal-range LOW:HIGH (kelvin at 0 and "
                "65535), or thermal.low_k_16bit / high_k_16bit in the config"
            )
        return f"thermal must be 8-bit (or 16-bit with --thermal-range), got {bits}-bit"


@dataclass(frozen=True)
class DatasetOptions:
    """The merged options of one reader; ``sources`` are the files they came from."""

    depth: DepthOptions | None
    thermal: ThermalOptions | None
    classmap: Path | None
    sources: tuple[str, ...]


def _layer(data: Any, source: str, base_dir: Path, sections: tuple[str, ...], where: str) -> dict[str, Any]:
    """One config layer checked for unknown keys, with a relative classmap made absolute."""
    if data is None:
        return {}
    data = dict(_check_keys(data, sections, source, where))
    if "classmap" in data:
        if not isinstance(data["classmap"], str | Path):
            raise DatasetError(source, f"{where}.classmap: expected a file name")
        data["classmap"] = (base_dir / Path(data["classmap"]).expanduser()).resolve()
    return data


def load_options(
    kind: str,
    sections: tuple[str, ...],
    config: str | Path | Mapping[str, Any] | None,
) -> DatasetOptions:
    """Defaults for ``kind`` from ``config/datasets.yaml``, with ``config`` merged over them.

    ``sections`` are the keys this reader understands (``depth``, ``thermal``,
    ``classmap``). ``config`` is a YAML file or a mapping with those keys (a relative
    ``classmap`` is resolved against the file's folder, or the working directory).
    """
    defaults_file = config_dir() / DATASETS_FILE
    all_defaults = load_yaml(defaults_file) or {}
    if not isinstance(all_defaults, Mapping) or kind not in all_defaults:
        raise DatasetError(defaults_file, f"no section {kind!r}")
    layers: list[dict[str, Any]] = []
    sources: list[str] = []
    if "thermal" in sections:  # the one 8-bit thermal range, unless a layer below overrides it
        layers.append({"thermal": dict(zip(("low_k", "high_k"), THERMAL_8BIT_RANGE_K, strict=True))})
        sources.append(_THERMAL_DEFAULT)
    layers.append(_layer(all_defaults[kind], str(defaults_file), defaults_file.parent, sections, kind))
    sources.append(str(defaults_file))
    if isinstance(config, str | Path):
        path = Path(config)
        layers.append(_layer(load_yaml(path), str(path), path.parent, sections, "config"))
        sources.append(str(path))
    elif config is not None:
        layers.append(_layer(config, _USER, Path.cwd(), sections, "config"))
        sources.append(_USER)

    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for layer, source in zip(layers, sources, strict=True):
        for key, value in layer.items():
            if (
                key in ("depth", "thermal")
                and isinstance(value, Mapping)
                and isinstance(merged.get(key), Mapping)
            ):
                _check_keys(value, DepthOptions.KEYS if key == "depth" else ThermalOptions.KEYS, source, key)
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
            origin[key] = source
    return DatasetOptions(
        depth=DepthOptions.from_mapping(merged["depth"], origin["depth"]) if "depth" in merged else None,
        thermal=ThermalOptions.from_mapping(merged["thermal"], origin["thermal"])
        if "thermal" in merged
        else None,
        classmap=merged.get("classmap"),
        sources=tuple(sources),
    )
