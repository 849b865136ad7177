"""The node's parameters: one table that declares them, maps them onto the core configs, writes the docs.

Each :class:`Param` has its default, a description, a range or choices, and whether it
is read-only; :func:`declare` turns them into ROS parameter descriptors,
:func:`node_config` maps the values onto the core's own validated configs
(:class:`HealthConfig`, :class:`BackendOptions`, :class:`ThermalMapping`,
:class:`SyncConfig`) and names the offending parameter on error, and
``python -m unimrseg_ros.parameters yaml|markdown`` writes ``config/unimrseg.yaml``
and the README table from the same table (a test keeps them equal).

The health thresholds' defaults are read from ``HealthConfig()`` itself, and
``health_poll_rate_hz`` from :data:`unimrseg_core.pipeline.DEFAULT_POLL_RATE_HZ`, so the
node and the offline tools can never disagree on them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from unimrseg_core.health import DEGRADED_POLICIES, HealthConfig, HealthConfigError
from unimrseg_core.image_msg import MAX_PIXELS, ThermalMapping
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.model.checkpoint import SHIPPED_WEIGHTS_DIR
from unimrseg_core.pipeline import DEFAULT_POLL_RATE_HZ
from unimrseg_core.registration import DEFAULT_PLANE_M, CalibrationError, RegistrationConfig, Transform
from unimrseg_core.runtime.options import BACKENDS, BackendOptions, default_cache_dir
from unimrseg_core.sync import SyncConfig
from unimrseg_core.topics import CAMERA_INFOS, NODE_NAME, TRANSPORTS, input_topic
from unimrseg_core.trust import UntrustedPathError, confined

__all__ = [
    "PARAMS",
    "RELIABILITIES",
    "NodeConfig",
    "Param",
    "ParameterError",
    "QosSettings",
    "declare",
    "markdown_table",
    "node_config",
    "validate",
    "yaml_text",
]

Value = bool | int | float | str | list[str]
RELIABILITIES: Final = ("best_effort", "reliable")


@dataclass(frozen=True)
class Param:
    """One parameter: name (dots nest it in YAML), default (its type is the parameter's type), docs."""

    name: str
    default: Value
    description: str
    low: float | None = None
    high: float | None = None
    step: int = 0
    """Integers only: the allowed values are ``low + k * step`` (0: any integer in range)."""
    choices: tuple[str, ...] = ()
    """Strings, or each element of a string list, must be one of these."""
    read_only: bool = False

    @property
    def kind(self) -> str:
        return type(self.default).__name__ if not isinstance(self.default, list) else "string[]"


class ParameterError(ValueError):
    """A parameter value the node cannot use; ``name`` is the ROS parameter."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"parameter {name}: {message}")


_HEALTH = HealthConfig()


def _health(field_name: str, description: str, low: float, high: float) -> Param:
    return Param(f"health.{field_name}", getattr(_HEALTH, field_name), description, low, high)


def _modality(modality: str) -> list[Param]:
    return [
        Param(f"{modality}.enabled", True, f"Subscribe to {modality}/image and use it while it is healthy."),
        Param(
            f"{modality}.transport",
            "raw",
            f"image_transport of the {modality} input: raw subscribes to sensor_msgs/Image on "
            f"{input_topic(modality)}, the others to sensor_msgs/CompressedImage on "
            f"{input_topic(modality)}/<transport> (compressed: jpeg/png; "
            "compressedDepth: a 16UC1/32FC1 PNG).",
            choices=TRANSPORTS[modality],
        ),
        Param(
            f"{modality}.expected_rate_hz",
            0.0,
            f"The {modality} camera's frame rate, for silence detection; 0: learned from arrivals "
            "(median interval).",
            0.0,
            1000.0,
        ),
        Param(
            f"{modality}.extrinsic",
            "",
            f"Pose of the {modality} camera's optical frame in the reference camera's (the first enabled "
            "of sync.anchor_priority): 'x y z qx qy qz qw' in metres, as static_transform_publisher "
            "takes it (the reference's own is the identity); empty: unknown. With CameraInfo on "
            f"{CAMERA_INFOS[modality]}, {modality} is registered into the anchor camera.",
        ),
        Param(
            f"{modality}.homography",
            "",
            f"3x3 mapping {modality} pixels to the reference camera's (9 numbers, row-major, at the "
            "CameraInfo sizes), used when a frame has no depth to reproject by; empty: the plane at "
            "registration.plane_distance_m from the calibrations, if known.",
        ),
    ]


_THERMAL_DEFAULT = ThermalMapping()
_BACKEND_DEFAULT = BackendOptions()

PARAMS: Final[tuple[Param, ...]] = (
    # --- lifecycle
    Param(
        "autostart",
        True,
        "Configure and activate on start; false: wait for lifecycle transitions (e.g. a lifecycle manager).",
        read_only=True,
    ),
    # --- model and backend (read in on_configure)
    Param(
        "backend",
        "auto",
        "Inference backend. auto: tensorrt (TensorRT and a GPU), else compiled (GPU), else torch then "
        "onnxruntime on a GPU, onnxruntime then torch on a CPU; the choice and the reasons are on "
        "/diagnostics.",
        choices=BACKENDS,
    ),
    Param(
        "model_dir",
        "",
        "The folder checkpoint and onnx must lie in (relative paths are taken in it; '..' and symbolic "
        "links that leave it are refused), so a parameter client cannot make the node read other files; "
        "empty: the shipped model's folder.",
        read_only=True,
    ),
    Param(
        "checkpoint",
        "",
        "PyTorch checkpoint (.pt, read with torch.load(weights_only=True)) in model_dir, for the torch "
        "and compiled backends (exported to ONNX once, into the engine cache, when no onnx is given); "
        "empty: the shipped model.",
    ),
    Param(
        "onnx",
        "",
        "ONNX model in model_dir for onnxruntime and tensorrt (checked: onnx.checker, self-contained, "
        "standard operators, the model contract); empty: the shipped model's ONNX.",
    ),
    Param(
        "engine_cache_dir",
        "",
        "Where engines (TensorRT plans, compiled packages) are cached, keyed by model, runtime, GPU, "
        "precision and shape, each with a sha256 sidecar. Engines are code: the folder must be writable by "
        "this user only (it is created 0700); empty: $UNIMRSEG_CACHE or ~/.cache/unimrseg.",
        read_only=True,
    ),
    Param(
        "force_engine_update",
        False,
        "Rebuild the cached engine at configure even if it is valid, and re-run its smoke test (also "
        "retries an engine whose recorded smoke test or build failed).",
    ),
    Param(
        "engine_build_timeout_seconds",
        _BACKEND_DEFAULT.engine_build_timeout_s,
        "An engine (TensorRT plan, compiled package) is built in a child process; one that takes longer "
        "is killed, recorded as failed in its cache sidecar and not tried again until force_engine_update "
        "(a compiled CPU build takes 1-2 min on 2 cores; GPU and TensorRT builds can take many).",
        10.0,
        86400.0,
    ),
    Param(
        "engine_check_timeout_seconds",
        _BACKEND_DEFAULT.engine_check_timeout_s,
        "Before its first use an engine is loaded and run once in a child process against a reference "
        "(eager torch / ONNX Runtime on the CPU); a crash, a mismatch or a check slower than this is "
        "recorded in its sidecar and the engine refused (auto takes the next backend; the reason is on "
        "/diagnostics).",
        5.0,
        3600.0,
    ),
    Param(
        "fallback_after_failures",
        3,
        "When the backend fails this many frames in a row at runtime (an engine error, CUDA out of "
        "memory), open the next backend of the auto order (tensorrt, compiled, torch, onnxruntime on a "
        "GPU) and go on; the switch is on /diagnostics. 0: never switch.",
        0,
        1000,
    ),
    Param("fp16", True, "GPU backends (tensorrt, compiled, torch) in FP16; false: FP32. CPUs run FP32."),
    Param(
        "cuda_graphs",
        True,
        "On a CUDA backend, resize, normalisation, the network, argmax and the masks run on the GPU as one "
        "CUDA graph per image-size combination (a few launches per frame instead of hundreds); false: the "
        "same device stages without graphs (for debugging).",
    ),
    Param("device", "", "cpu, cuda or cuda:N; empty: cuda when available (onnxruntime: cpu unless asked)."),
    Param(
        "threads",
        1,
        "ONNX Runtime intra-op threads; 0: every core this process may use. 1 leaves the other cores to "
        "DDS, the camera drivers and this node's callbacks (on 2 cores, measured: 2 spinning threads "
        "cost twice the CPU per frame for 13 % less latency alone, and doubled it under load).",
        0,
        256,
    ),
    Param(
        "input_height",
        0,
        "Network input height (multiple of 16); 0 (with input_width 0): the model's own size. Images of "
        "any size are resized to it and the masks come back at the anchor image's size.",
        0,
        4096,
        16,
    ),
    Param("input_width", 0, "Network input width (multiple of 16); 0: the model's own size.", 0, 4096, 16),
    # --- inputs
    *(p for m in MODALITIES for p in _modality(m)),
    Param(
        "thermal.kelvin_per_count",
        _THERMAL_DEFAULT.kelvin_per_count,
        "mono16/16UC1 thermal: kelvin = counts * kelvin_per_count + offset_kelvin (0.01: radiometric "
        "TLinear output of FLIR Lepton/Boson cores).",
        1e-6,
        10.0,
    ),
    Param("thermal.offset_kelvin", _THERMAL_DEFAULT.offset_kelvin, "See kelvin_per_count.", -1000.0, 1000.0),
    Param(
        "thermal.mono8_min_kelvin",
        _THERMAL_DEFAULT.mono8_min_kelvin,
        "mono8 thermal: the temperature of level 0.",
        0.0,
        1000.0,
    ),
    Param(
        "thermal.mono8_max_kelvin",
        _THERMAL_DEFAULT.mono8_max_kelvin,
        "mono8 thermal: the temperature of level 255.",
        0.0,
        1000.0,
    ),
    Param(
        "max_pixels",
        MAX_PIXELS,
        "Largest height x width accepted; larger images are rejected (counted) before any allocation.",
        1,
        1 << 28,
    ),
    Param("input_qos.reliability", "best_effort", "Input subscriptions' reliability.", choices=RELIABILITIES),
    Param("input_qos.depth", 5, "Input subscriptions' history depth.", 1, 1000),
    # --- frame assembly
    Param(
        "sync.anchor_priority",
        list(MODALITIES),
        "Modalities that may anchor a frame, best first: a frame is emitted when the first healthy one "
        "arrives, and carries its header.",
        choices=MODALITIES,
    ),
    Param(
        "sync.max_age_seconds",
        0.5,
        "A companion image received longer ago than this is not used.",
        0.0,
        60.0,
    ),
    Param(
        "sync.max_skew_seconds",
        0.05,
        "A companion image whose stamp differs from the anchor's by more than this is not used.",
        0.0,
        60.0,
    ),
    Param(
        "sync.wait_seconds",
        0.05,
        "Longest wait, after the anchor arrived, for a healthy companion's matching image (0: never wait).",
        0.0,
        1.0,
    ),
    # --- registration into the anchor camera
    Param(
        "registration.enabled",
        True,
        "Bring each image into the anchor camera's pixels where its calibration is known (CameraInfo "
        "of both cameras and <modality>.extrinsic, or <modality>.homography): depth reprojected with a "
        "z-buffer, rgb/thermal sampled via that depth or a plane. Without calibration an image is only "
        "resized, and /diagnostics says why; false: always resize.",
    ),
    Param(
        "registration.plane_distance_m",
        DEFAULT_PLANE_M,
        "Distance of the plane assumed where no depth is known (a frame without depth, depth holes).",
        0.1,
        1000.0,
    ),
    Param(
        "registration.fill_upsampling_holes",
        True,
        "A depth pixel fills every anchor pixel its footprint covers (depth_image_proc's option), so a "
        "lower-resolution depth camera leaves no grid of holes.",
    ),
    # --- sensor health (HealthConfig)
    _health(
        "default_rate_hz",
        "Rate assumed for silence detection until min_rate_samples intervals are seen.",
        1e-3,
        1000.0,
    ),
    _health("min_rate_samples", "Arrival intervals needed before the learned rate is used.", 1, 10_000),
    _health("rate_window", "The learned rate is the median of this many last intervals.", 1, 10_000),
    _health("silence_periods", "LOST when silent for more than this many expected periods.", 1.0, 1000.0),
    _health("fault_frames", "Bad frames in a row before an OK modality is DEGRADED.", 1, 10_000),
    _health("frozen_frames", "Identical frames (or stamps) in a row that count as frozen.", 2, 10_000),
    _health("recover_frames", "Good frames in a row before a DEGRADED or LOST modality is OK.", 1, 10_000),
    _health("check_stride", "Content checks read every n-th row and column.", 1, 64),
    _health("dark_mean_level", "rgb blackout: mean below this (uint8 levels).", 0.0, 255.0),
    _health("min_std_level", "rgb flat image: standard deviation below this (uint8 levels).", 0.0, 255.0),
    _health(
        "saturated_fraction",
        "Saturated when at least this fraction of pixels is at the top of the range.",
        0.0,
        1.0,
    ),
    _health("min_std_m", "depth flat image: std of valid pixels below this (metres).", 0.0, 100.0),
    _health(
        "max_invalid_depth_fraction",
        "depth holes: DEGRADED above this fraction of invalid pixels.",
        0.0,
        1.0,
    ),
    _health("min_std_k", "thermal blackout (flat field): std below this (kelvin).", 0.0, 100.0),
    _health("max_nonfinite_fraction", "thermal: DEGRADED above this fraction of NaN/inf pixels.", 0.0, 1.0),
    # --- partial damage, against each stream's own baseline (benchmarks/health_faults.py)
    _health(
        "baseline_frames", "A signal's baseline is its median over this many last good frames.", 1, 10_000
    ),
    _health(
        "baseline_min_frames",
        "Good frames before the baseline checks start (again after a size change or a new depth scene).",
        1,
        10_000,
    ),
    _health(
        "clear_ratio",
        "Hysteresis: a baseline check that fired clears at this fraction of its threshold.",
        0.0,
        1.0,
    ),
    _health("min_noise_ratio", "Noise is flagged only when also this many times its baseline.", 1.0, 1000.0),
    _health(
        "max_noise_level",
        "rgb: DEGRADED when noise above its baseline (in quadrature) exceeds this (uint8 levels).",
        0.0,
        255.0,
    ),
    _health(
        "severe_noise_level",
        "rgb: added noise from which the grade is severe, not mild (uint8 levels).",
        0.0,
        255.0,
    ),
    _health(
        "max_noise_m", "depth: DEGRADED when noise above its baseline exceeds this (metres).", 0.0, 100.0
    ),
    _health(
        "severe_noise_m", "depth: added noise from which the grade is severe, not mild (metres).", 0.0, 100.0
    ),
    _health(
        "max_noise_k", "thermal: DEGRADED when noise above its baseline exceeds this (kelvin).", 0.0, 100.0
    ),
    _health(
        "severe_noise_k",
        "thermal: added noise from which the grade is severe, not mild (kelvin).",
        0.0,
        100.0,
    ),
    _health(
        "max_depth_loss_fraction",
        "depth holes: DEGRADED when more than this fraction of the baseline's valid pixels is lost.",
        0.0,
        1.0,
    ),
    _health(
        "severe_depth_loss_fraction", "depth holes: loss from which the grade is severe, not mild.", 0.0, 1.0
    ),
    _health(
        "max_rgb_saturated_rise",
        "rgb: DEGRADED when the saturated fraction exceeds its baseline's by this (1: never).",
        0.0,
        1.0,
    ),
    _health(
        "max_depth_saturated_rise",
        "depth: DEGRADED when the fraction pinned at 20 m exceeds its baseline's by this.",
        0.0,
        1.0,
    ),
    _health(
        "max_thermal_saturated_rise",
        "thermal: DEGRADED when the fraction pinned at 340 K exceeds its baseline's by this.",
        0.0,
        1.0,
    ),
    _health(
        "min_rgb_contrast_ratio",
        "rgb washout: DEGRADED when the 5-95 % spread is below this x its baseline.",
        0.0,
        1.0,
    ),
    _health(
        "min_depth_contrast_ratio",
        "depth washout: DEGRADED when the 5-95 % spread is below this x its baseline.",
        0.0,
        1.0,
    ),
    _health(
        "min_thermal_contrast_ratio",
        "thermal washout: DEGRADED when the 5-95 % spread is below this x its baseline.",
        0.0,
        1.0,
    ),
    _health(
        "depth_scene_change_fraction",
        "A new depth scene (its valid and saturated baselines are learned again): more than this fraction "
        "of the pixels valid in two frames changed depth by over 10 %.",
        0.0,
        1.0,
    ),
    _health(
        "thermal_scene_correlation",
        "A new thermal scene (its contrast baseline is learned again): two frames whose pixels correlate "
        "below this (a washout keeps the correlation: it is affine).",
        0.0,
        1.0,
    ),
    Param(
        "health.degraded_policy",
        _HEALTH.degraded_policy,
        "mask: leave every DEGRADED modality out of the model's input; keep_mild: keep one whose grade "
        "is mild (noise or depth loss below its severe threshold, where the model still does better "
        "with it).",
        choices=DEGRADED_POLICIES,
    ),
    Param(
        "health_poll_rate_hz",
        DEFAULT_POLL_RATE_HZ,
        "How often silence is checked and waiting frames are flushed; keep it >= 4x the camera rate.",
        1.0,
        1000.0,
    ),
    # --- outputs
    Param("output_qos.reliability", "reliable", "Output publishers' reliability.", choices=RELIABILITIES),
    Param("output_qos.depth", 5, "Output publishers' history depth.", 1, 1000),
    Param(
        "publish_colored_mask",
        True,
        "Publish segmentation/colored_mask (rgb8), computed only while someone subscribes.",
    ),
    Param(
        "publish_probability",
        True,
        "Publish saliency/probability (32FC1), computed only while someone subscribes.",
    ),
    Param(
        "publish_overlay",
        True,
        "Publish segmentation/overlay (rgb8: class colours blended on the anchor image, depth and "
        "thermal as grey), computed only while someone subscribes.",
    ),
    Param("diagnostics_period_seconds", 1.0, "Period of the /diagnostics status.", 0.1, 60.0),
    Param(
        "warn_period_seconds",
        5.0,
        "Least time between two log warnings of one kind (e.g. one malformed-message reason).",
        0.0,
        3600.0,
    ),
)

BY_NAME: Final[Mapping[str, Param]] = {p.name: p for p in PARAMS}
# expected_rate_hz is per modality (<modality>.expected_rate_hz); max_transitions only bounds the
# monitor's memory, which the node empties as it logs each transition.
_NOT_PARAMETERS: Final = ("expected_rate_hz", "max_transitions")
_HEALTH_FIELDS: Final = tuple(f.name for f in fields(HealthConfig) if f.name not in _NOT_PARAMETERS)


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class QosSettings:
    reliability: str
    depth: int


@dataclass(frozen=True)
class NodeConfig:
    """Everything the node reads at configure, in the core's own types."""

    backend: str
    backend_options: BackendOptions
    fallback_after_failures: int
    enabled: tuple[str, ...]
    transports: Mapping[str, str]
    """image_transport per modality (``topics.TRANSPORTS``): which topic and message type to read."""
    thermal: ThermalMapping
    max_pixels: int
    health: HealthConfig
    sync: SyncConfig
    registration: RegistrationConfig
    input_qos: QosSettings
    output_qos: QosSettings
    publish_colored_mask: bool
    publish_probability: bool
    publish_overlay: bool
    health_poll_rate_hz: float
    diagnostics_period_s: float
    warn_period_s: float


def _type_problem(param: Param, value: Any) -> str | None:
    """Why ``value`` is not of ``param``'s type (ROS types it, but callers of node_config may not)."""
    kind = param.kind
    if kind == "string[]":
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    elif kind == "float":  # an integer is a fine double
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, bool if kind == "bool" else str)
    if not ok:
        return f"expected {'a list of strings' if kind == 'string[]' else kind}, got {value!r}"
    return _text_problem(value) if kind == "str" else None


def _text_problem(value: str) -> str | None:
    """Why a string parameter (a file, folder or device name) can name nothing, or None.

    A NUL cannot be in a ROS string (or a path), and ``~nosuchuser/x`` cannot be expanded:
    both would escape from pathlib as ValueError or RuntimeError.
    """
    if "\x00" in value:
        return f"{value!r} holds a NUL character"
    if value.startswith("~"):
        try:
            Path(value).expanduser()
        except RuntimeError as exc:
            return f"{value!r} cannot be expanded: {exc}"
    return None


def validate(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name`` (type, choices, range, step), or None."""
    param = BY_NAME.get(name)
    if param is None:
        return None
    problem = _type_problem(param, value)
    if problem:
        return problem
    if param.choices:
        items = value if isinstance(value, (list, tuple)) else [value]
        bad = [v for v in items if v not in param.choices]
        if bad:
            return f"{bad!r} not in {', '.join(param.choices)}"
        if isinstance(value, (list, tuple)) and len(set(value)) != len(value):
            return f"a value is listed twice: {list(value)!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and param.low is not None:
        high = param.high if param.high is not None else math.inf
        if not param.low <= value <= high:  # also refuses NaN
            return f"{value!r} outside [{param.low:g}, {high:g}]"
        if param.step and (value - param.low) % param.step:
            return f"{value!r} is not {param.low:g} + a multiple of {param.step}"
    return None


MODEL_FILES: Final = ("checkpoint", "onnx")


def model_file(name: str, value: str, model_dir: str) -> Path | None:
    """The file parameter ``name`` names, resolved inside ``model_dir`` (None when empty).

    ParameterError when it leaves the folder (``..``, an absolute path elsewhere, a
    symbolic link out of it): parameters can be set by any DDS peer, the folder only at launch.
    """
    if not value:
        return None
    root = Path(model_dir).expanduser() if model_dir else SHIPPED_WEIGHTS_DIR
    try:
        return confined(value, root, what=name)
    except UntrustedPathError as exc:
        raise ParameterError(name, f"{exc}; set model_dir at launch to use another folder") from None


def _seconds_ns(values: Mapping[str, Any], name: str) -> int:
    return round(float(values[name]) * 1e9)


def _backend_options(values: Mapping[str, Any]) -> BackendOptions:
    """The backend's options from the checked parameter values (model files, engines, input size)."""
    height, width = int(values["input_height"]), int(values["input_width"])
    if (height == 0) != (width == 0):
        raise ParameterError(
            "input_height", f"set both input_height and input_width or neither ({height}x{width})"
        )
    return BackendOptions(
        checkpoint=model_file("checkpoint", values["checkpoint"], values["model_dir"]),
        onnx=model_file("onnx", values["onnx"], values["model_dir"]),
        cache_dir=Path(values["engine_cache_dir"]).expanduser()
        if values["engine_cache_dir"]
        else default_cache_dir(),
        device=values["device"] or None,
        precision="fp16" if values["fp16"] else "fp32",
        cuda_graphs=bool(values["cuda_graphs"]),
        force_engine_update=bool(values["force_engine_update"]),
        engine_build_timeout_s=float(values["engine_build_timeout_seconds"]),
        engine_check_timeout_s=float(values["engine_check_timeout_seconds"]),
        threads=int(values["threads"]) or None,
        input_size=(height, width) if height else None,
    )


def node_config(values: Mapping[str, Any]) -> NodeConfig:
    """Map parameter values (name -> value, every name of :data:`PARAMS`) onto the configs.

    Raises :class:`ParameterError` naming the first parameter that is wrong.
    """
    missing = [p.name for p in PARAMS if p.name not in values]
    if missing:
        raise ParameterError(missing[0], "missing")
    for name, value in values.items():
        problem = validate(name, value)
        if problem:
            raise ParameterError(name, problem)

    enabled = tuple(m for m in MODALITIES if values[f"{m}.enabled"])
    if not enabled:
        raise ParameterError(f"{MODALITIES[0]}.enabled", "at least one modality must be enabled")
    rates = {m: (float(values[f"{m}.expected_rate_hz"]) or None) for m in MODALITIES}
    try:
        health = HealthConfig(expected_rate_hz=rates, **{f: values[f"health.{f}"] for f in _HEALTH_FIELDS})
    except HealthConfigError as exc:
        raise ParameterError(f"health.{exc.field}", str(exc)) from None
    try:
        thermal = ThermalMapping(
            **{f.name: float(values[f"thermal.{f.name}"]) for f in fields(ThermalMapping)}
        )
    except ValueError as exc:
        name = "thermal.mono8_max_kelvin" if "mono8" in str(exc) else "thermal.kelvin_per_count"
        raise ParameterError(name, str(exc)) from None
    try:
        sync = SyncConfig(
            anchor_priority=tuple(values["sync.anchor_priority"]),
            enabled=enabled,
            max_age_ns=_seconds_ns(values, "sync.max_age_seconds"),
            max_skew_ns=_seconds_ns(values, "sync.max_skew_seconds"),
            wait_ns=_seconds_ns(values, "sync.wait_seconds"),
        )
    except ValueError as exc:
        raise ParameterError("sync.anchor_priority", str(exc)) from None

    registration = _registration(values, reference=sync.anchors[0])
    options = _backend_options(values)
    return NodeConfig(
        backend=str(values["backend"]),
        backend_options=options,
        fallback_after_failures=int(values["fallback_after_failures"]),
        enabled=enabled,
        transports={m: str(values[f"{m}.transport"]) for m in MODALITIES},
        thermal=thermal,
        max_pixels=int(values["max_pixels"]),
        health=health,
        sync=sync,
        registration=registration,
        input_qos=QosSettings(values["input_qos.reliability"], int(values["input_qos.depth"])),
        output_qos=QosSettings(values["output_qos.reliability"], int(values["output_qos.depth"])),
        publish_colored_mask=bool(values["publish_colored_mask"]),
        publish_probability=bool(values["publish_probability"]),
        publish_overlay=bool(values["publish_overlay"]),
        health_poll_rate_hz=float(values["health_poll_rate_hz"]),
        diagnostics_period_s=float(values["diagnostics_period_seconds"]),
        warn_period_s=float(values["warn_period_seconds"]),
    )


def _registration(values: Mapping[str, Any], *, reference: str) -> RegistrationConfig:
    """The cameras' extrinsics and homographies relative to ``reference`` (the first anchor)."""
    extrinsics, homographies = {}, {}
    for modality in MODALITIES:
        name = f"{modality}.extrinsic"
        if values[name].strip():
            try:
                pose = Transform.parse(values[name])
            except CalibrationError as exc:
                raise ParameterError(name, str(exc)) from None
            if modality == reference and not pose.is_identity(1e-9):
                raise ParameterError(
                    name,
                    f"{modality} is the reference camera (the first enabled of sync.anchor_priority): its "
                    "pose is the identity; give the other cameras' relative to it",
                )
            extrinsics[modality] = pose
        name = f"{modality}.homography"
        if values[name].strip():
            try:
                numbers = [float(w) for w in values[name].replace(",", " ").split()]
            except ValueError:
                raise ParameterError(name, f"expected 9 numbers, got {values[name]!r}") from None
            if modality == reference:
                raise ParameterError(
                    name, f"{modality} is the reference camera: its homography is the identity"
                )
            homographies[modality] = numbers
    extrinsics.pop(reference, None)
    try:
        return RegistrationConfig(
            enabled=bool(values["registration.enabled"]),
            reference=reference,
            extrinsics=extrinsics,
            homographies=homographies,
            plane_m=float(values["registration.plane_distance_m"]),
            fill_upsampling_holes=bool(values["registration.fill_upsampling_holes"]),
        )
    except CalibrationError as exc:
        modality = next((m for m in MODALITIES if m in str(exc)), reference)
        raise ParameterError(f"{modality}.homography", str(exc)) from None


def defaults() -> dict[str, Value]:
    return {p.name: p.default for p in PARAMS}


# --------------------------------------------------------------------------- ROS


def descriptor(param: Param) -> Any:
    """The rcl_interfaces ParameterDescriptor of ``param`` (type, description, range, read-only)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {
        "bool": ParameterType.PARAMETER_BOOL,
        "int": ParameterType.PARAMETER_INTEGER,
        "float": ParameterType.PARAMETER_DOUBLE,
        "str": ParameterType.PARAMETER_STRING,
        "string[]": ParameterType.PARAMETER_STRING_ARRAY,
    }
    desc = ParameterDescriptor(
        name=param.name, type=types[param.kind], description=param.description, read_only=param.read_only
    )
    if param.choices:
        desc.additional_constraints = f"one of: {', '.join(param.choices)}"
    if param.low is not None and param.high is not None:
        if param.kind == "int":
            desc.integer_range = [
                IntegerRange(from_value=int(param.low), to_value=int(param.high), step=param.step)
            ]
        elif param.kind == "float":
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(param.low), to_value=float(param.high))
            ]
    return desc


def declare(node: Any) -> None:
    """Declare every parameter on ``node`` with its descriptor (values from --params-file / -p override)."""
    node.declare_parameters("", [(p.name, p.default, descriptor(p)) for p in PARAMS])


def values_of(node: Any) -> dict[str, Any]:
    """The current value of every parameter of the table on ``node``."""
    return {p.name: node.get_parameter(p.name).value for p in PARAMS}


# --------------------------------------------------------------------------- docs


def _yaml_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # always with a decimal point or exponent: ROS reads it as a double
    return json.dumps(value)  # ints, quoted strings, inline lists: valid YAML


def _constraint(param: Param) -> str:
    if param.choices:
        return f" One of: {', '.join(param.choices)}."
    if param.low is not None and param.high is not None:
        step = f", step {param.step}" if param.step else ""
        if param.kind == "int":
            return f" Range [{int(param.low)}, {int(param.high)}{step}]."
        return f" Range [{param.low:g}, {param.high:g}]."
    return ""


def _wrap(text: str, indent: str, width: int = 100) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(indent) + 2 + len(line) + 1 + len(word) > width:
            lines.append(f"{indent}# {line}")
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(f"{indent}# {line}")
    return lines


def yaml_text() -> str:
    """``config/unimrseg.yaml``: every parameter with its default and documentation."""
    out = [
        "# Parameters of unimrseg_node, each at its default (written by",
        "# `python -m unimrseg_ros.parameters yaml > config/unimrseg.yaml`; edit a copy).",
        "# Use: unimrseg_node --ros-args --params-file config/unimrseg.yaml",
        "# Floats need a decimal point (ROS parameters are typed). The key matches the node",
        "# in any namespace.",
        f"/**/{NODE_NAME}:",
        "  ros__parameters:",
    ]
    group: str | None = None
    seen: set[str] = set()
    for param in PARAMS:
        prefix, _, leaf = param.name.rpartition(".")
        if prefix != group:
            if prefix in seen:  # a YAML mapping cannot repeat a key: keep each group together in PARAMS
                raise ValueError(f"parameter group {prefix!r} is split in PARAMS")
            if prefix:
                out.append(f"    {prefix}:")
                seen.add(prefix)
            group = prefix
        indent = "      " if prefix else "    "
        read_only = " Read-only." if param.read_only else ""
        out.extend(_wrap(param.description + _constraint(param) + read_only, indent))
        out.append(f"{indent}{leaf}: {_yaml_value(param.default)}")
    return "\n".join(out) + "\n"


def markdown_table() -> str:
    """The README's parameter table."""
    rows = ["| parameter | type | default | meaning |", "|---|---|---|---|"]
    for p in PARAMS:
        text = (p.description + _constraint(p) + (" Read-only." if p.read_only else "")).replace("|", "\\|")
        rows.append(f"| `{p.name}` | {p.kind} | `{_yaml_value(p.default)}` | {text} |")
    return "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the node's parameter documentation.")
    parser.add_argument("format", choices=["yaml", "markdown"])
    args = parser.parse_args(argv)
    sys.stdout.write(yaml_text() if args.format == "yaml" else markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
