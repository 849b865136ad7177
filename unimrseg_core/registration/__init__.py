"""Registration: each camera's image brought into the anchor camera's pixels (ROS-free).

- :mod:`.intrinsics`: CameraInfo's size, K and distortion, validated, scaled to an image size;
- :mod:`.extrinsics`: rigid transforms between optical frames (tf2's translation + quaternion);
- :mod:`.reproject`: depth z-buffered into another camera, images sampled via depth or a plane;
- :mod:`.registrar`: what is known of the cameras, the per-frame plan and why each modality
  was registered or only resized.
"""

from unimrseg_core.registration.extrinsics import Transform
from unimrseg_core.registration.intrinsics import DISTORTION_MODELS, CalibrationError, Intrinsics
from unimrseg_core.registration.registrar import (
    DEFAULT_PLANE_M,
    METHODS,
    Outcome,
    Registrar,
    RegistrationConfig,
    RegistrationPlan,
)
from unimrseg_core.registration.reproject import plane_homography, register_depth, remap, sampling_maps

__all__ = [
    "DEFAULT_PLANE_M",
    "DISTORTION_MODELS",
    "METHODS",
    "CalibrationError",
    "Intrinsics",
    "Outcome",
    "Registrar",
    "RegistrationConfig",
    "RegistrationPlan",
    "Transform",
    "plane_homography",
    "register_depth",
    "remap",
    "sampling_maps",
]
