"""Sensor faults, one model for ``unimrseg bag make`` and the live fault injector node.

- :mod:`.model`: the kinds (:data:`KINDS`: drop, freeze, blackout, saturate, noise,
  depth_holes, rate_drop, delay), their parameters, and a validated :class:`Fault`.
- :mod:`.schedule`: :class:`FaultSchedule`, a timeline of faults read from and written
  to YAML; which faults are active when; the seeded damage of content faults.
- :mod:`.injector`: :class:`FaultInjector`, whether, when and with which stamp each
  message goes out (drop, freeze, rate_drop, delay), for any payload type.
- :mod:`.effects`: the image functions of the content faults, in sensor units.
"""

from unimrseg_core.faults.injector import Delivery, FaultInjector
from unimrseg_core.faults.model import CONTENT_KINDS, KINDS, TIMING_KINDS, Fault, FaultError, KindSpec, Param
from unimrseg_core.faults.schedule import FaultEvent, FaultSchedule

__all__ = [
    "CONTENT_KINDS",
    "KINDS",
    "TIMING_KINDS",
    "Delivery",
    "Fault",
    "FaultError",
    "FaultEvent",
    "FaultInjector",
    "FaultSchedule",
    "KindSpec",
    "Param",
]
