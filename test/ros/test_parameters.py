"""The node's parameter table: the shipped YAML and README are generated from it, defaults come from
the core's configs, every value maps onto them, and a bad one names its parameter."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from unimrseg_core.health import HealthConfig
from unimrseg_core.image_msg import MAX_PIXELS, ThermalMapping
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.sync import SyncConfig
from unimrseg_ros import parameters
from unimrseg_ros.parameters import PARAMS, ParameterError, defaults, node_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_yaml_is_generated_from_the_table():
    text = (REPO_ROOT / "config" / "unimrseg.yaml").read_text()
    regenerate = "python -m unimrseg_ros.parameters yaml > config/unimrseg.yaml"
    assert text == parameters.yaml_text(), f"stale: {regenerate}"


def test_the_yaml_holds_every_parameter_at_its_default_with_its_type():
    doc = yaml.safe_load(parameters.yaml_text())
    (key,) = doc
    assert key == "/**/unimrseg_node"
    values = doc[key]["ros__parameters"]

    def lookup(name: str) -> object:
        node = values
        for part in name.split("."):
            node = node[part]
        return node

    for param in PARAMS:
        value = lookup(param.name)
        assert value == param.default, param.name
        assert type(value) is type(param.default), param.name  # 1.0 stays a double for ROS


def test_the_readme_has_the_parameter_table():
    assert parameters.markdown_table() in (REPO_ROOT / "README.md").read_text()


def test_every_health_threshold_is_a_parameter_with_the_core_default():
    # per modality as <modality>.expected_rate_hz; max_transitions only bounds the monitor's memory
    not_parameters = {"expected_rate_hz", "max_transitions"}
    health_fields = {f.name for f in dataclasses.fields(HealthConfig)} - not_parameters
    params = {p.name.removeprefix("health."): p for p in PARAMS if p.name.startswith("health.")}
    assert set(params) == health_fields
    for name, param in params.items():
        assert param.default == getattr(HealthConfig(), name)
        assert param.description


def test_defaults_map_onto_the_core_configs():
    config = node_config(defaults())
    assert config.health == HealthConfig()  # learned rates, the core's thresholds
    assert config.thermal == ThermalMapping()
    assert config.sync == SyncConfig()
    assert config.max_pixels == MAX_PIXELS
    assert config.enabled == MODALITIES
    assert config.backend == "auto"
    options = config.backend_options
    assert (options.checkpoint, options.onnx, options.device, options.input_size) == (None, None, None, None)
    assert options.threads == 1
    assert options.precision == "fp16"
    assert (config.input_qos.reliability, config.output_qos.reliability) == ("best_effort", "reliable")


def test_values_map_onto_their_fields():
    values = defaults() | {
        "depth.expected_rate_hz": 30.0,
        "thermal.enabled": False,
        "thermal.kelvin_per_count": 0.04,
        "health.silence_periods": 4.0,
        "sync.anchor_priority": ["depth", "rgb"],
        "sync.max_skew_seconds": 0.02,
        "fp16": False,
        "threads": 2,
        "input_height": 480,
        "input_width": 640,
        "model_dir": "~/models",
        "onnx": "robot.onnx",
    }
    config = node_config(values)
    assert config.health.expected_rate_hz == {"rgb": None, "depth": 30.0, "thermal": None}
    assert config.health.silence_periods == 4.0
    assert config.thermal.kelvin_per_count == 0.04
    assert config.enabled == ("rgb", "depth")
    assert config.sync.anchors == ("depth", "rgb")
    assert config.sync.max_skew_ns == 20_000_000
    assert config.backend_options.precision == "fp32"
    assert config.backend_options.threads == 2
    assert config.backend_options.input_size == (480, 640)
    assert config.backend_options.onnx == Path("~/models/robot.onnx").expanduser().resolve()


@pytest.mark.parametrize("name", ["checkpoint", "onnx"])
@pytest.mark.parametrize("value", ["../unimrseg.pt", "/etc/passwd", "~/model.onnx", "sub/../../x.onnx"])
def test_model_files_cannot_leave_model_dir(tmp_path, name, value):
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(ParameterError, match=f"parameter {name}: .* outside .*models; set model_dir") as err:
        node_config(defaults() | {"model_dir": str(models), name: value})
    assert err.value.name == name


def test_a_symbolic_link_out_of_model_dir_is_refused_and_one_inside_is_followed(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (tmp_path / "elsewhere.onnx").write_bytes(b"x")
    (models / "real.onnx").write_bytes(b"x")
    (models / "escape.onnx").symlink_to(tmp_path / "elsewhere.onnx")
    (models / "alias.onnx").symlink_to(models / "real.onnx")
    with pytest.raises(ParameterError, match=r"escape\.onnx' resolves to .*elsewhere\.onnx, outside"):
        node_config(defaults() | {"model_dir": str(models), "onnx": "escape.onnx"})
    config = node_config(defaults() | {"model_dir": str(models), "onnx": "alias.onnx"})
    assert config.backend_options.onnx == (models / "real.onnx").resolve()


def test_by_default_model_files_are_confined_to_the_shipped_weights():
    from unimrseg_core.model.checkpoint import SHIPPED_WEIGHTS_DIR

    config = node_config(defaults() | {"onnx": "unimrseg.onnx"})
    assert config.backend_options.onnx == SHIPPED_WEIGHTS_DIR / "unimrseg.onnx"
    with pytest.raises(ParameterError, match="parameter checkpoint"):
        node_config(defaults() | {"checkpoint": "/tmp/other.pt"})


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"backend": "tensorrtx"}, "backend"),
        ({"health.silence_periods": 1.0}, "health.silence_periods"),  # in the range, refused by HealthConfig
        ({"health.rate_window": 3}, "health.rate_window"),  # below min_rate_samples
        ({"health.frozen_frames": 1}, "health.frozen_frames"),
        ({"thermal.mono8_min_kelvin": 400.0}, "thermal.mono8_max_kelvin"),
        ({"sync.anchor_priority": ["rgb", "lidar"]}, "sync.anchor_priority"),
        ({"sync.anchor_priority": ["thermal"], "thermal.enabled": False}, "sync.anchor_priority"),
        ({"rgb.enabled": False, "depth.enabled": False, "thermal.enabled": False}, "rgb.enabled"),
        ({"input_height": 480}, "input_height"),
        ({"input_qos.reliability": "sometimes"}, "input_qos.reliability"),
        ({"max_pixels": 0}, "max_pixels"),
    ],
)
def test_a_bad_value_names_its_parameter(changes, name):
    with pytest.raises(ParameterError) as info:
        node_config(defaults() | changes)
    assert info.value.name == name


def test_descriptors_carry_type_description_range_and_read_only():
    pytest.importorskip("rcl_interfaces", reason="rcl_interfaces is not installed")
    from rcl_interfaces.msg import ParameterType

    by_name = {p.name: parameters.descriptor(p) for p in PARAMS}
    assert all(d.description for d in by_name.values())
    assert by_name["autostart"].read_only
    assert {n for n, d in by_name.items() if d.read_only} == {"autostart", "model_dir", "engine_cache_dir"}
    skew = by_name["sync.max_skew_seconds"]
    assert skew.type == ParameterType.PARAMETER_DOUBLE
    assert (skew.floating_point_range[0].from_value, skew.floating_point_range[0].to_value) == (0.0, 60.0)
    height = by_name["input_height"]
    assert (height.integer_range[0].from_value, height.integer_range[0].step) == (0, 16)
    assert by_name["sync.anchor_priority"].type == ParameterType.PARAMETER_STRING_ARRAY
    assert "tensorrt" in by_name["backend"].additional_constraints
