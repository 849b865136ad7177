"""How a source stores depth and thermal: the options a user gives for files the code cannot judge.

A file does not say whether its 8-bit depth shows near things bright or dark, how many
integer units make a metre (1000 for most drivers' millimetres, 5000 for TUM RGB-D) or
which temperatures its grey levels span. :class:`StoredUnits` holds those three facts,
:func:`add_arguments` gives every command the same flags for them (``unimrseg eval
--data``, ``unimrseg infer``; training sources can reuse them), and
:meth:`StoredUnits.reader_config` turns them into the dataset readers' options
(``config/datasets.yaml`` keys). Unset fields keep the source's own default.

Standard library only, so that building the ``unimrseg`` parser stays fast.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEPTH_MM_UNITS_PER_M",
    "DEPTH_POLARITIES",
    "THERMAL_8BIT_RANGE_K",
    "StoredUnits",
    "add_arguments",
    "parse_thermal_range",
    "units_per_metre",
]

THERMAL_8BIT_RANGE_K: Final[tuple[float, float]] = (263.15, 323.15)
"""Kelvin of grey 0 and grey 255 of an 8-bit thermal visualisation (-10..+50 C), for every
reader and for ``unimrseg infer``. Such images come from cameras with automatic gain: the
temperatures are only relative, in a band the network's normalisation covers."""

DEPTH_POLARITIES: Final[dict[str, str]] = {"near-bright": "near", "near-dark": "far"}
"""``--depth-polarity`` value -> the readers' ``depth.bright`` (which end grey 255 is)."""

DEPTH_MM_UNITS_PER_M: Final[float] = 1000.0
"""Integer depth units per metre when nothing else is said: millimetres (ROS ``16UC1``)."""

_UINT16_MAX: Final[int] = 65535
_RANGE = re.compile(r"\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*:\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*")


@dataclass(frozen=True, kw_only=True)
class StoredUnits:
    """Depth polarity and scale, thermal range of a source; None keeps the source's default.

    - ``depth_polarity``: ``near-bright`` or ``near-dark``, for 8-bit (relative) depth.
    - ``depth_units_per_m``: integer depth units per metre (1000: mm; 5000: TUM RGB-D).
    - ``thermal_range_k``: kelvin at stored 0 and at full scale (255 for 8-bit images,
      65535 for 16-bit ones).

    Raises ValueError for a value that cannot be right, naming the flag.
    """

    depth_polarity: str | None = None
    depth_units_per_m: float | None = None
    thermal_range_k: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.depth_polarity is not None and self.depth_polarity not in DEPTH_POLARITIES:
            raise ValueError(
                f"--depth-polarity must be one of {', '.join(DEPTH_POLARITIES)}, got {self.depth_polarity!r}"
            )
        if self.depth_units_per_m is not None:
            _check_units(self.depth_units_per_m)
        if self.thermal_range_k is not None:
            low, high = self.thermal_range_k
            _check_thermal_range(low, high)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> StoredUnits:
        """The options parsed by the flags of :func:`add_arguments`."""
        return cls(
            depth_polarity=args.depth_polarity,
            depth_units_per_m=args.depth_scale,
            thermal_range_k=args.thermal_range,
        )

    @property
    def given(self) -> list[str]:
        """The flags that were set (for "applies to ... only" checks and reports)."""
        flags = {
            "--depth-polarity": self.depth_polarity,
            "--depth-scale": self.depth_units_per_m,
            "--thermal-range": self.thermal_range_k,
        }
        return [flag for flag, value in flags.items() if value is not None]

    @property
    def depth_given(self) -> bool:
        return self.depth_polarity is not None or self.depth_units_per_m is not None

    def reader_config(self) -> dict[str, Any]:
        """The set options as a ``config=`` mapping of the dataset readers (only what was given).

        The thermal range applies to 8-bit and to 16-bit files (``low_k_16bit``), since a
        user who states it knows what the file's full scale means.
        """
        config: dict[str, Any] = {}
        depth: dict[str, Any] = {}
        if self.depth_polarity is not None:
            depth["bright"] = DEPTH_POLARITIES[self.depth_polarity]
        if self.depth_units_per_m is not None:
            depth["scale_16bit"] = 1.0 / self.depth_units_per_m
        if depth:
            config["depth"] = depth
        if self.thermal_range_k is not None:
            low, high = self.thermal_range_k
            config["thermal"] = {"low_k": low, "high_k": high, "low_k_16bit": low, "high_k_16bit": high}
        return config

    def as_json(self) -> dict[str, Any]:
        """The options for a result file (None where the source's default applies)."""
        return {
            "depth_polarity": self.depth_polarity,
            "depth_units_per_m": self.depth_units_per_m,
            "thermal_range_k": list(self.thermal_range_k) if self.thermal_range_k else None,
        }


def _check_thermal_range(low: float, high: float) -> None:
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 < low < high):
        raise ValueError(f"--thermal-range needs 0 < LOW < HIGH kelvin, got {low:g}:{high:g}")


def _check_units(value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"--depth-scale must be a finite number of units per metre > 0, got {value:g}")


def units_per_metre(text: str) -> float:
    """``--depth-scale``: a finite number of integer depth units per metre, > 0."""
    try:
        value = float(text)
        _check_units(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--depth-scale is units per metre > 0 (1000 = mm, 5000 = TUM RGB-D), got {text!r}"
        ) from None
    return value


def parse_thermal_range(text: str) -> tuple[float, float]:
    """``--thermal-range``: ``"LOW:HIGH"`` kelvin, 0 < LOW < HIGH (e.g. ``263.15:323.15``)."""
    match = _RANGE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"--thermal-range is LOW:HIGH in kelvin like 263.15:323.15, got {text!r}"
        )
    try:
        low, high = float(match.group(1)), float(match.group(2))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--thermal-range: {text!r} holds no two numbers") from None
    try:
        _check_thermal_range(low, high)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return low, high


def add_arguments(parser: argparse.ArgumentParser, *, applies_to: str) -> None:
    """Add ``--depth-polarity``, ``--depth-scale`` and ``--thermal-range`` to ``parser``.

    ``applies_to`` names what they describe in the help (``--data``, "the input files").
    """
    group = parser.add_argument_group(
        "stored units", f"how depth and thermal are stored in {applies_to} (default: the source's own)"
    )
    group.add_argument(
        "--depth-polarity",
        choices=tuple(DEPTH_POLARITIES),
        help="8-bit depth (a relative visualisation, as in RGB-D SOD sets): which grey near things "
        "have; near-bright for disparity-like maps",
    )
    group.add_argument(
        "--depth-scale",
        type=units_per_metre,
        metavar="UNITS_PER_M",
        help=f"16-bit depth units per metre ({DEPTH_MM_UNITS_PER_M:g} = millimetres, the ROS "
        "convention; 5000 for TUM RGB-D)",
    )
    low, high = THERMAL_8BIT_RANGE_K
    group.add_argument(
        "--thermal-range",
        type=parse_thermal_range,
        metavar="LOW:HIGH",
        help=f"kelvin at stored 0 and at full scale (255 for 8-bit, {_UINT16_MAX} for 16-bit thermal); "
        f"8-bit default {low:g}:{high:g}",
    )
