"""Faults of a running fault injector: a schedule file's timeline plus faults commanded live.

The injector node keeps one time axis, seconds since it started (``t``). A schedule
file's faults are placed on it from the moment the schedule was armed (``t0``: node
start, the first message, or when the file was set at run time). A commanded fault
(``thermal.fault: drop``) starts at the command and lasts ``duration_s`` or until
cleared. :meth:`LiveFaults.schedule` merges both into one :class:`FaultSchedule` for
the :class:`FaultInjector`; where a command and a scheduled fault of the same kind on
the same modality overlap, the command wins while it lasts (the scheduled one keeps
the parts before and after).

:meth:`LiveFaults.changes` reports each fault that started or ended since the last
call, so the node can publish exact start and end times for evaluation. No ROS here:
the node feeds times in, this module decides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from unimrseg_core.faults.model import Fault
from unimrseg_core.faults.schedule import FaultSchedule
from unimrseg_core.modalities import MODALITIES

__all__ = ["UNTIL_CLEARED_S", "ActiveFault", "FaultChange", "LiveFaults"]

UNTIL_CLEARED_S: Final = 1e9
"""Length of a commanded fault without a duration: in practice, until cleared."""


@dataclass(frozen=True)
class ActiveFault:
    """A fault on the injector's time axis and where it came from."""

    fault: Fault
    source: Literal["schedule", "command"]

    def to_dict(self) -> dict[str, Any]:
        end = None if self.fault.duration_s >= UNTIL_CLEARED_S / 2 else self.fault.end_s
        return {
            "modality": self.fault.modality,
            "kind": self.fault.kind,
            "source": self.source,
            "start_s": self.fault.start_s,
            "end_s": end,
            "params": dict(self.fault.params),
        }


@dataclass(frozen=True)
class FaultChange:
    """A fault that started or ended, with the exact time it did (not when it was noticed)."""

    event: Literal["start", "end"]
    t_s: float
    active: ActiveFault

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "t_s": self.t_s, **self.active.to_dict()}


def _without(fault: Fault, start_s: float, end_s: float) -> list[Fault]:
    """The parts of ``fault`` outside ``[start_s, end_s)``."""
    parts = []
    if fault.start_s < start_s:
        parts.append(
            Fault(fault.modality, fault.kind, fault.start_s, min(fault.end_s, start_s), fault.params)
        )
    if fault.end_s > end_s:
        parts.append(Fault(fault.modality, fault.kind, max(fault.start_s, end_s), fault.end_s, fault.params))
    return parts


class LiveFaults:
    """A schedule file armed at ``t0`` plus one commanded fault per modality; all times in node seconds."""

    def __init__(self) -> None:
        self._file: FaultSchedule | None = None
        self._t0: float | None = None
        self._cancelled_after: float = math.inf  # scheduled faults are cut here by clear()
        self._commanded: dict[str, Fault] = {}
        self._merged: FaultSchedule | None = None
        self._sources: dict[int, str] = {}  # id(fault in merged) -> source
        self._last_active: dict[tuple[str, str, str], ActiveFault] = {}
        self._ended_at: dict[int, float] = {}  # id(commanded fault) -> when a command ended it

    # ------------------------------------------------------------------ inputs

    @property
    def file_schedule(self) -> FaultSchedule | None:
        return self._file

    @property
    def t0(self) -> float | None:
        """When the file schedule's time 0 is on the node's axis (None: not armed yet)."""
        return self._t0

    def load(self, schedule: FaultSchedule | None, t0: float | None) -> None:
        """Use ``schedule`` from ``t0`` (None: armed later by :meth:`arm`)."""
        self._file, self._t0, self._cancelled_after = schedule, t0, math.inf
        self._merged = None

    def arm(self, t0: float) -> bool:
        """Start the loaded schedule at ``t0`` if it is waiting; True if it was armed now."""
        if self._file is None or self._t0 is not None:
            return False
        self._t0 = t0
        self._merged = None
        return True

    def command(
        self,
        modality: str,
        kind: str | None,
        params: Mapping[str, Any],
        now_s: float,
        duration_s: float = 0.0,
    ) -> Fault | None:
        """Command ``kind`` on ``modality`` from ``now_s`` (None or "none": end the commanded fault).

        ``duration_s`` 0: until cleared. Raises FaultError for a kind or parameter the
        modality does not take, before anything changes.
        """
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
        fault = None
        if kind not in (None, "none"):
            start = max(0.0, now_s)
            end = start + (duration_s if duration_s > 0 else UNTIL_CLEARED_S)
            fault = Fault(modality, kind, start, end, params)
        previous = self._commanded.pop(modality, None)
        if previous is not None:
            self._ended_at[id(previous)] = now_s
        if fault is not None:
            self._commanded[modality] = fault
        self._merged = None
        return fault

    def commanded(self, modality: str) -> Fault | None:
        return self._commanded.get(modality)

    def expired(self, now_s: float) -> list[str]:
        """Modalities whose commanded fault (with a duration) has ended by ``now_s``."""
        return [m for m, f in self._commanded.items() if f.end_s <= now_s]

    def clear(self, now_s: float) -> None:
        """End every fault now: commanded ones are dropped, the schedule file is cut at ``now_s``."""
        for fault in self._commanded.values():
            self._ended_at[id(fault)] = now_s
        self._commanded.clear()
        self._cancelled_after = now_s
        self._merged = None

    # ------------------------------------------------------------------ outputs

    def schedule(self) -> FaultSchedule:
        """Scheduled and commanded faults on the node's axis, one validated schedule."""
        if self._merged is not None:
            return self._merged
        faults: list[tuple[Fault, str]] = []
        if self._file is not None and self._t0 is not None:
            for fault in self._file:
                start, end = fault.start_s + self._t0, min(fault.end_s + self._t0, self._cancelled_after)
                if end <= start:
                    continue
                pieces = [Fault(fault.modality, fault.kind, start, end, fault.params)]
                command = self._commanded.get(fault.modality)
                if command is not None and command.kind == fault.kind:
                    pieces = [p for piece in pieces for p in _without(piece, command.start_s, command.end_s)]
                faults += [(p, "schedule") for p in pieces]
        faults += [(f, "command") for f in self._commanded.values()]
        seed = self._file.seed if self._file is not None else 0
        self._merged = FaultSchedule([f for f, _ in faults], seed=seed)
        sources = [source for _, source in faults]
        self._sources = {id(f): s for f, s in zip(self._merged.faults, sources, strict=True)}
        return self._merged

    def active(self, now_s: float) -> list[ActiveFault]:
        """Every fault active at ``now_s``, in modality order."""
        schedule = self.schedule()
        return [
            ActiveFault(f, self._sources.get(id(f), "schedule"))  # type: ignore[arg-type]
            for m in MODALITIES
            for f in schedule.active(m, now_s)
        ]

    def changes(self, now_s: float) -> list[FaultChange]:
        """Faults that started or ended since the previous call, with their own start / end times."""
        current = {(a.fault.modality, a.fault.kind, a.source): a for a in self.active(now_s)}
        out = []
        for key, previous in self._last_active.items():
            now = current.get(key)
            if now is None or now.fault is not previous.fault:
                end = min(previous.fault.end_s, self._ended_at.get(id(previous.fault), now_s), now_s)
                out.append(FaultChange("end", end, previous))
        for key, active in current.items():
            previous = self._last_active.get(key)
            if previous is None or previous.fault is not active.fault:
                out.append(FaultChange("start", active.fault.start_s, active))
        self._last_active = current
        self._ended_at.clear()
        return out
