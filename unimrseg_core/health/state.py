"""What the monitor says about a modality: its state, why, and each change of state.

These are plain frozen values, so the ROS layer can turn them into /diagnostics
and an offline evaluator can compare them with injected faults, without either
reaching into the monitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Grade", "HealthState", "ModalityHealth", "Transition"]


class HealthState(IntEnum):
    """Health of one modality, ordered by severity (so ``max()`` gives the worst).

    - ``OK``: messages arrive on time and their content looks usable; the model uses it.
    - ``DEGRADED``: messages arrive but are not trusted (a content or stream fault, or
      not yet enough good frames since one); the modality is masked out, unless its
      :class:`Grade` is mild and the policy keeps mild ones (``degraded_policy``).
    - ``LOST``: no message yet, or silent for longer than the silence limit.
    """

    OK = 0
    DEGRADED = 1
    LOST = 2

    def __str__(self) -> str:
        return self.name


class Grade(IntEnum):
    """How bad a DEGRADED modality is, ordered by severity.

    - ``NONE``: OK.
    - ``MILD``: noisy or partly lost, but the model still does better with it than without
      (measured per fault kind and strength by ``benchmarks/health_faults.py``).
    - ``SEVERE``: every other fault, and LOST.
    """

    NONE = 0
    MILD = 1
    SEVERE = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class ModalityHealth:
    """A snapshot of one modality's health.

    ``reasons`` explain a DEGRADED or LOST state in short human sentences (for
    /diagnostics); for OK they are empty, or list the problems of a fault not yet
    confirmed when ``fault_frames`` > 1. ``since_ns`` is when the state last changed
    (None while no message was ever seen); ``rate_hz`` is the measured arrival rate
    (None until enough messages). ``grade`` says how bad a DEGRADED state is (a recovering
    modality keeps the grade of its fault); ``usable`` whether the model may use it: OK, or
    DEGRADED with a mild grade under the ``keep_mild`` policy.
    """

    modality: str
    state: HealthState
    reasons: tuple[str, ...]
    since_ns: int | None
    last_stamp_ns: int | None
    messages: int
    rate_hz: float | None
    grade: Grade
    usable: bool

    @property
    def summary(self) -> str:
        """One line: the reasons joined, or the state name when there are none."""
        return "; ".join(self.reasons) if self.reasons else str(self.state)


@dataclass(frozen=True)
class Transition:
    """One change of state, at the (injected) time the monitor learned it.

    An evaluator subtracts the injected fault's start from ``time_ns`` to get the
    detection (or recovery) delay.
    """

    modality: str
    time_ns: int
    old: HealthState
    new: HealthState
    reason: str
