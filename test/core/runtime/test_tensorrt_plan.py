"""The TensorRT backend's decisions, tested without TensorRT: cache key, profile, bindings, calibration."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from unimrseg_core.modalities import COMBINATIONS
from unimrseg_core.runtime.contract import ContractError
from unimrseg_core.runtime.engine_cache import EngineCache
from unimrseg_core.runtime.examples import CHECK_SEED, example_scenes
from unimrseg_core.runtime.tensorrt_plan import (
    Binding,
    calibration_feeds,
    check_bindings,
    check_engine_options,
    engine_key,
    profile_shapes,
)

SIZE = (240, 320)
KEY_ARGS = {
    "tensorrt_version": "10.3.0",
    "device_name": "Orin",
    "compute_capability": "8.7",
    "precision": "fp16",
    "batch": (1, 1, 4),
    "input_size": SIZE,
}


def test_a_changed_onnx_or_tensorrt_version_gives_a_new_key(tmp_path):
    key = engine_key("a" * 64, **KEY_ARGS)
    cache = EngineCache(tmp_path)
    cache.store(key, b"plan")
    assert cache.lookup(key).path is not None
    for changed in (
        engine_key("b" * 64, **KEY_ARGS),
        engine_key("a" * 64, **{**KEY_ARGS, "tensorrt_version": "10.7.0"}),
        engine_key("a" * 64, **{**KEY_ARGS, "device_name": "H100", "compute_capability": "9.0"}),
        engine_key("a" * 64, **{**KEY_ARGS, "precision": "int8"}),
        engine_key("a" * 64, **{**KEY_ARGS, "batch": (1, 2, 8)}),
    ):
        assert changed.digest() != key.digest()
        assert cache.lookup(changed).path is None


def test_force_engine_update_refuses_a_good_engine(tmp_path):
    key = engine_key("a" * 64, **KEY_ARGS)
    cache = EngineCache(tmp_path)
    cache.store(key, b"plan")
    forced = cache.resolve(key, force_update=True)
    assert forced.path is None
    assert "force_engine_update" in forced.reason
    assert cache.resolve(key).path is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [({"precision": "tf32"}, "precision is one of"), ({"batch": (2, 1, 4)}, "min <= opt <= max")],
)
def test_bad_key_arguments_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        engine_key("a" * 64, **{**KEY_ARGS, **change})


def test_profile_varies_only_the_batch():
    shapes = profile_shapes((1, 2, 8), SIZE)
    assert list(shapes) == ["rgb", "depth", "thermal", "modality_mask"]
    assert shapes["rgb"] == ((1, 3, 240, 320), (2, 3, 240, 320), (8, 3, 240, 320))
    assert shapes["thermal"][2] == (8, 1, 240, 320)
    assert shapes["modality_mask"] == ((1, 3), (2, 3), (8, 3))


def _engine_bindings() -> list[Binding]:
    """Bindings as a TensorRT engine built from our ONNX reports them (outputs first, dynamic batch)."""
    return [
        Binding("seg_logits", False, (-1, 8, 240, 320), "FLOAT"),
        Binding("saliency", False, (-1, 1, 240, 320), "FLOAT"),
        Binding("modality_mask", True, (-1, 3), "FLOAT"),
        Binding("rgb", True, (-1, 3, 240, 320), "FLOAT"),
        Binding("depth", True, (-1, 1, 240, 320), "FLOAT"),
        Binding("thermal", True, (-1, 1, 240, 320), "FLOAT"),
    ]


def test_engine_bindings_in_any_order_pass():
    check_bindings(_engine_bindings(), SIZE)


@pytest.mark.parametrize(
    ("index", "change", "message"),
    [
        (0, {"dtype": "HALF"}, "float16"),  # an engine built with fp16 I/O
        (1, {"name": "sal"}, "outputs are"),
        (3, {"shape": (-1, 4, 240, 320)}, "3 channels"),
        (4, {"shape": (-1, 1, 480, 640)}, "input size"),
        (2, {"is_input": False}, "inputs are"),
    ],
)
def test_binding_mismatch_is_a_clear_error(index, change, message):
    bindings = _engine_bindings()
    bindings[index] = dataclasses.replace(bindings[index], **change)
    with pytest.raises(ContractError, match=message):
        check_bindings(bindings, SIZE)


def test_calibration_cycles_every_combination_on_scenes_the_checks_never_see():
    batches = list(calibration_feeds(8, 2, (32, 48)))
    assert len(batches) == 8
    for index, feeds in enumerate(batches):
        combo = COMBINATIONS[index % len(COMBINATIONS)]
        assert feeds["rgb"].shape == (2, 3, 32, 48)
        assert feeds["rgb"].dtype == np.float32
        np.testing.assert_array_equal(feeds["modality_mask"], np.tile(combo.mask, (2, 1)))
        for m in ("rgb", "depth", "thermal"):
            assert (np.abs(feeds[m]).sum() > 0) == (m in combo)
    # the scenes differ from batch to batch, and from the parity and smoke-test scenes
    assert not np.array_equal(batches[0]["rgb"], batches[3]["rgb"])
    checks = example_scenes(2, (32, 48), seed=CHECK_SEED)
    assert not np.array_equal(batches[-1]["rgb"], checks["rgb"])


@pytest.mark.parametrize(
    ("precision", "batch", "dla_core", "message"),
    [
        ("fp32", (1, 1, 1), 0, "fp16 or int8 only"),
        ("fp16", (1, 1, 4), 0, "static batch"),
        ("fp16", (1, 1, 1), -1, "dla_core must be >= 0"),
        ("bf16", (1, 1, 4), None, "precision is one of"),
    ],
)
def test_options_tensorrt_would_reject_or_ignore_are_refused(precision, batch, dla_core, message):
    with pytest.raises(ValueError, match=message):
        check_engine_options(precision, batch, dla_core)


def test_dla_engine_with_a_static_batch_is_accepted():
    check_engine_options("fp16", (2, 2, 2), 0)
    check_engine_options("int8", (1, 1, 8), None)
