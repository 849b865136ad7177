"""A fault timeline: which faults hit which modality when, as YAML, and the damage they do.

The YAML form (``config/faults_demo.yaml`` is an example)::

    seed: 0            # optional: seeds the random damage (noise, holes, saturation blobs)
    faults:
      - {modality: thermal, kind: drop, start_s: 10, end_s: 18}
      - {modality: depth, kind: noise, start_s: 42, end_s: 48, sigma: 0.02}

Every entry is a :class:`~unimrseg_core.faults.model.Fault`: ``modality``, ``kind``,
``start_s``, ``end_s`` and the kind's parameters. Two faults of the same kind on the
same modality may not overlap; different kinds may (a delayed and noisy stream).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import yaml

from unimrseg_core.faults.effects import apply_effect
from unimrseg_core.faults.model import KINDS, Fault, FaultError

__all__ = ["FaultEvent", "FaultSchedule"]

_TOP_LEVEL: Final[tuple[str, ...]] = ("seed", "faults")


@dataclass(frozen=True)
class FaultEvent:
    """A fault starting or ending: what ``faults/events`` carries in a bag."""

    t_s: float
    event: Literal["start", "end"]
    index: int  # position of the fault in its schedule
    fault: Fault

    def to_dict(self) -> dict[str, Any]:
        return {
            "t_s": self.t_s,
            "event": self.event,
            "index": self.index,
            "modality": self.fault.modality,
            "kind": self.fault.kind,
        }


class FaultSchedule(Sequence[Fault]):
    """An ordered, validated list of faults with a seed for their random damage."""

    def __init__(self, faults: Iterable[Fault] = (), *, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise FaultError("seed", f"must be an integer >= 0, got {seed!r}")
        self.seed = seed
        self.faults: tuple[Fault, ...] = tuple(faults)
        for i, fault in enumerate(self.faults):
            if not isinstance(fault, Fault):
                raise FaultError(f"faults[{i}]", f"must be a Fault, got {type(fault).__name__}")
            for j in range(i):
                other = self.faults[j]
                same = other.modality == fault.modality and other.kind == fault.kind
                if same and other.overlaps(fault):
                    raise FaultError(
                        f"faults[{i}]",
                        f"{fault} overlaps faults[{j}] ({other}): the same kind on one modality "
                        "may not overlap; merge them",
                    )

    # -------------------------------------------------------------- Sequence

    def __len__(self) -> int:
        return len(self.faults)

    def __getitem__(self, index: int) -> Fault:  # type: ignore[override]
        return self.faults[index]

    def __iter__(self) -> Iterator[Fault]:
        return iter(self.faults)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FaultSchedule):
            return NotImplemented
        return self.seed == other.seed and self.faults == other.faults

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FaultSchedule({list(self.faults)!r}, seed={self.seed})"

    # -------------------------------------------------------------- queries

    @property
    def end_s(self) -> float:
        """When the last fault ends (0 for an empty schedule)."""
        return max((f.end_s for f in self.faults), default=0.0)

    def active(self, modality: str, t_s: float) -> tuple[Fault, ...]:
        """Faults of ``modality`` active at ``t_s`` (``start_s <= t_s < end_s``), in schedule order."""
        return tuple(f for f in self.faults if f.modality == modality and f.active(t_s))

    def events(self, until_s: float | None = None) -> list[FaultEvent]:
        """Every start and end in time order (ends before starts at the same time), up to ``until_s``."""
        out = [FaultEvent(f.start_s, "start", i, f) for i, f in enumerate(self.faults)]
        out += [FaultEvent(f.end_s, "end", i, f) for i, f in enumerate(self.faults)]
        out.sort(key=lambda e: (e.t_s, e.event == "start", e.index))
        return [e for e in out if until_s is None or e.t_s <= until_s]

    # -------------------------------------------------------------- damage

    def rng(self, fault: Fault, key: int) -> np.random.Generator:
        """The generator for ``fault``'s damage to the frame ``key`` (its stamp in ns, or an index)."""
        if key < 0:
            raise ValueError(f"key must be >= 0, got {key}")
        index = self.faults.index(fault)
        return np.random.default_rng(np.random.SeedSequence([self.seed, index, int(key)]))

    def apply(self, faults: Iterable[Fault], image: np.ndarray, key: int) -> np.ndarray:
        """``image`` with the content faults among ``faults`` applied in schedule order.

        Timing faults (drop, freeze, rate_drop, delay) are skipped: they decide whether
        and when a message goes out (:class:`~unimrseg_core.faults.injector.FaultInjector`),
        not what it holds. ``key`` identifies the frame (its stamp in ns); the same
        (schedule, fault, key) always gives the same damage. The input is not modified.
        """
        for fault in faults:
            if KINDS[fault.kind].effect == "content":
                image = apply_effect(fault, image, self.rng(fault, key))
        return image

    # -------------------------------------------------------------- YAML

    @classmethod
    def from_dict(cls, data: object, source: str | None = None) -> FaultSchedule:
        """The parsed YAML form -> schedule; errors name ``source`` and the field."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise FaultError("", f"expected a mapping with 'faults:', got {type(data).__name__}", source)
        unknown = sorted(str(k) for k in data if k not in _TOP_LEVEL)
        if unknown:
            raise FaultError(unknown[0], f"unknown key; valid: {', '.join(_TOP_LEVEL)}", source)
        entries = data.get("faults") or []
        if not isinstance(entries, list):
            raise FaultError("faults", f"must be a list, got {type(entries).__name__}", source)
        faults = []
        for i, entry in enumerate(entries):
            try:
                faults.append(Fault.from_dict(entry))
            except FaultError as exc:
                raise exc.at(f"faults[{i}]", source) from None
        try:
            return cls(faults, seed=data.get("seed", 0))
        except FaultError as exc:
            raise FaultError(exc.field, exc.reason, source) from None

    @classmethod
    def from_yaml(cls, text: str, source: str | None = None) -> FaultSchedule:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            reason = " ".join(str(exc).split())
            raise FaultError("", f"not valid YAML: {reason}", source) from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | Path) -> FaultSchedule:
        """Read a schedule file; FileNotFoundError if it is missing, FaultError if it is wrong."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise FaultError("", f"not a UTF-8 text file ({exc.reason})", str(path)) from None
        return cls.from_yaml(text, str(path))

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "faults": [f.to_dict() for f in self.faults]}

    def to_yaml(self) -> str:
        """YAML that :meth:`from_yaml` reads back to an equal schedule (one fault per line)."""
        lines = [f"seed: {self.seed}", "faults:" if self.faults else "faults: []"]
        for fault in self.faults:
            flow = yaml.safe_dump(fault.to_dict(), default_flow_style=True, sort_keys=False, width=1 << 16)
            lines.append(f"  - {flow.strip()}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path
