"""The engine cache (TensorRT-free logic): keys, stale/foreign/tampered engines, atomic store."""

from __future__ import annotations

import dataclasses
import json

import pytest

from unimrseg_core.runtime.engine_cache import EngineCache, EngineKey

KEY = EngineKey(
    model_sha256="ab" * 32,
    backend="tensorrt",
    runtime_version="10.13.0",
    device_name="NVIDIA H100 80GB HBM3",
    compute_capability="9.0",
    precision="fp16",
    batch=(1, 1, 4),
    input_size=(240, 320),
)
CHANGES = {
    "model_sha256": "cd" * 32,
    "backend": "compiled",
    "runtime_version": "10.14.1",
    "device_name": "Orin",
    "compute_capability": "8.7",
    "precision": "int8",
    "batch": (1, 2, 8),
    "input_size": (480, 640),
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_every_key_field_changes_the_digest(field):
    other = dataclasses.replace(KEY, **{field: CHANGES[field]})
    assert other.digest() != KEY.digest()


def test_store_then_lookup_round_trip(tmp_path):
    cache = EngineCache(tmp_path)
    assert cache.lookup(KEY).path is None
    assert "no cached engine" in cache.lookup(KEY).reason
    path = cache.store(KEY, b"plan bytes")
    hit = cache.lookup(KEY)
    assert hit.path == path
    assert path.read_bytes() == b"plan bytes"
    assert not list(tmp_path.glob(".tmp-*"))


def test_upgrade_misses_the_cache(tmp_path):
    cache = EngineCache(tmp_path)
    cache.store(KEY, b"old")
    upgraded = dataclasses.replace(KEY, runtime_version="10.14.1")
    assert cache.lookup(upgraded).path is None


def test_foreign_engine_under_our_name_is_refused_with_the_reason(tmp_path):
    cache = EngineCache(tmp_path)
    path = cache.store(KEY, b"plan")
    record = json.loads(cache.sidecar(path).read_text())
    record["key"]["device_name"] = "Jetson Orin"
    cache.sidecar(path).write_text(json.dumps(record))
    miss = cache.lookup(KEY)
    assert miss.path is None
    assert "device_name" in miss.reason


@pytest.mark.parametrize("damage", ["tamper", "no_sidecar", "bad_sidecar"])
def test_damaged_engines_are_never_returned(tmp_path, damage):
    cache = EngineCache(tmp_path)
    path = cache.store(KEY, b"plan")
    if damage == "tamper":
        path.write_bytes(b"evil")
    elif damage == "no_sidecar":
        cache.sidecar(path).unlink()
    else:
        cache.sidecar(path).write_text("{not json")
    miss = cache.lookup(KEY)
    assert miss.path is None
    assert "rebuilding" in miss.reason


def test_a_recorded_verdict_belongs_to_the_engine_bytes_it_was_made_for(tmp_path):
    cache = EngineCache(tmp_path)
    path = cache.store(KEY, b"plan")
    assert cache.lookup(KEY).check is None  # new bytes: not checked yet
    cache.record_check(KEY, {"outcome": "pass"})
    assert cache.lookup(KEY).check == {"outcome": "pass"}
    assert json.loads(cache.sidecar(path).read_text())["sha256"]  # the verdict kept the sha256
    cache.store(KEY, b"rebuilt plan")
    assert cache.lookup(KEY).check is None  # a rebuild is checked again
    cache.record_check(KEY, {"outcome": "pass"})
    path.write_bytes(b"evil")
    assert cache.lookup(KEY).check is None  # an altered engine loses its verdict


def test_a_build_that_left_no_engine_keeps_its_verdict_in_a_sidecar_alone(tmp_path):
    cache = EngineCache(tmp_path)
    side = cache.record_check(KEY, {"outcome": "crash", "stage": "build"})
    assert side == cache.sidecar(cache.path_for(KEY))
    miss = cache.lookup(KEY)
    assert miss.path is None
    assert miss.check == {"outcome": "crash", "stage": "build"}
    upgraded = dataclasses.replace(KEY, runtime_version="10.14.1")
    assert cache.lookup(upgraded).check is None  # another key: not its verdict
    assert cache.resolve(KEY, force_update=True).check is None  # forced: rebuilt and re-checked


# ------------------------------------------------------------- bindings against the contract


def _bindings() -> list:
    from unimrseg_core.runtime.contract import Tensor

    channels = {"rgb": 3, "depth": 1, "thermal": 1}
    inputs = [Tensor(n, (-1, c, 240, 320), "float32") for n, c in channels.items()]
    return [*inputs, Tensor("modality_mask", (-1, 3), "float32")]


def test_engine_bindings_that_match_the_contract_pass():
    from unimrseg_core.runtime.contract import INPUTS, OUTPUTS, Tensor, check_tensors

    outputs = [
        Tensor("seg_logits", (-1, 8, 240, 320), "float32"),
        Tensor("saliency", (-1, 1, 240, 320), "float32"),
    ]
    check_tensors("inputs", _bindings(), INPUTS, (240, 320))
    check_tensors("outputs", outputs, OUTPUTS, (240, 320))


@pytest.mark.parametrize(
    ("index", "tensor", "message"),
    [
        (0, ("image", (-1, 3, 240, 320), "float32"), "inputs are"),
        (1, ("depth", (-1, 1, 240, 320), "float16"), "float16"),
        (2, ("thermal", (-1, 3, 240, 320), "float32"), "1 channels"),
        (0, ("rgb", (-1, 3, 480, 640), "float32"), "input size"),
        (3, ("modality_mask", (-1, 3, 1), "float32"), "rank 2"),
    ],
)
def test_engine_bindings_that_break_the_contract_are_a_clear_error(index, tensor, message):
    from unimrseg_core.runtime.contract import INPUTS, ContractError, Tensor, check_tensors

    inputs = _bindings()
    inputs[index] = Tensor(*tensor)
    with pytest.raises(ContractError, match=message):
        check_tensors("inputs", inputs, INPUTS, (240, 320))
