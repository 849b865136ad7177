"""Sensor health, ROS-free: is each modality OK, DEGRADED or LOST, and why.

The ROS node feeds every received image to :class:`HealthMonitor` with its stamp
and receive time, polls it on a timer, masks out of the model's input every
modality that is not usable (not OK, unless mildly DEGRADED and kept by
``degraded_policy``), and publishes the reasons on /diagnostics. The same code
scores injected faults offline from a bag, deterministically (time is injected).
"""

from unimrseg_core.health.config import DEGRADED_POLICIES, HealthConfig, HealthConfigError
from unimrseg_core.health.monitor import NO_MESSAGE, HealthMonitor
from unimrseg_core.health.state import Grade, HealthState, ModalityHealth, Transition

__all__ = [
    "DEGRADED_POLICIES",
    "NO_MESSAGE",
    "Grade",
    "HealthConfig",
    "HealthConfigError",
    "HealthMonitor",
    "HealthState",
    "ModalityHealth",
    "Transition",
]
