"""Every refusal of an untrusted file: pickled code in a checkpoint, a crafted ONNX, an engine in a
cache others can write, a path that leaves its folder. Each test builds the hostile file for real."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from unimrseg_core.model.checkpoint import SHIPPED, CheckpointError, load_model, metadata_path, sha256_file
from unimrseg_core.runtime.backends import OnnxRuntimeBackend
from unimrseg_core.runtime.contract import ContractError, read_onnx
from unimrseg_core.runtime.engine_cache import EngineCache, EngineKey
from unimrseg_core.runtime.selection import SHIPPED_ONNX
from unimrseg_core.trust import UntrustedPathError, check_private_dir, check_private_file, confined

KEY = EngineKey("ab" * 32, "tensorrt", "10.13.0", "NVIDIA H100", "9.0", "fp16", (1, 1, 4), (240, 320))


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: what a hostile checkpoint would do with os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def _with_matching_sidecar(path: Path) -> Path:
    """Give ``path`` the shipped metadata with its own sha256, as an attacker would: the sidecar passes."""
    meta = json.loads(metadata_path(SHIPPED).read_text())
    meta["sha256"] = sha256_file(path)
    metadata_path(path).write_text(json.dumps(meta))
    return path


def test_a_checkpoint_that_runs_code_when_unpickled_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"weights": _Payload(marker)}))
    _with_matching_sidecar(evil)
    with pytest.raises(CheckpointError, match="does not fit the network"):
        load_model(evil)
    assert not marker.exists()


def test_the_same_attack_in_torch_save_format_is_refused_too(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"weights": _Payload(marker)}, evil)
    _with_matching_sidecar(evil)
    with pytest.raises(CheckpointError, match=r"Weights only load failed|does not fit"):
        load_model(evil)
    assert not marker.exists()


# --------------------------------------------------------------------------- ONNX


def _shipped() -> onnx.ModelProto:
    return onnx.load(str(SHIPPED_ONNX))


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _refused(path: Path, match: str) -> None:
    """read_onnx and the ONNX Runtime backend both refuse ``path`` with ``match``."""
    with pytest.raises(ContractError, match=match):
        read_onnx(path)
    with pytest.raises(ContractError, match=match):
        OnnxRuntimeBackend(path, threads=1)


def test_the_shipped_onnx_passes_every_check():
    data, meta = read_onnx(SHIPPED_ONNX)
    assert data == SHIPPED_ONNX.read_bytes()
    assert meta["checkpoint_sha256"] == sha256_file(SHIPPED)


def test_bytes_that_are_not_onnx_are_refused_by_name(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(os.urandom(4096))
    _refused(junk, r"junk\.onnx: not an ONNX model")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(SHIPPED_ONNX.read_bytes()[:50_000])
    with pytest.raises(ContractError, match=r"truncated\.onnx: "):
        read_onnx(truncated)


def test_an_onnx_whose_weights_point_at_other_files_is_refused(tmp_path):
    """External data may name any file (``../../etc/shadow``); the model must be self-contained."""
    model = _shipped()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../../../etc/shadow")
    _refused(_save(model, tmp_path / "external.onnx"), "weights stored outside the file")


def test_an_onnx_with_custom_operators_is_refused(tmp_path):
    model = _shipped()
    model.graph.node[0].domain = "com.evil.ops"
    model.opset_import.append(helper.make_opsetid("com.evil.ops", 1))
    _refused(_save(model, tmp_path / "custom.onnx"), r"non-standard domains \['com.evil.ops'\]")


def test_an_onnx_that_fails_the_checker_is_refused(tmp_path):
    model = _shipped()
    model.graph.node[0].input[0] = "no_such_tensor"
    _refused(_save(model, tmp_path / "dangling.onnx"), "not a valid ONNX model")


def test_an_onnx_without_our_metadata_or_contract_is_refused(tmp_path):
    x = helper.make_tensor_value_info("rgb", TensorProto.FLOAT, [1, 3, 240, 320])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 240, 320])
    graph = helper.make_graph([helper.make_node("Relu", ["rgb"], ["y"])], "other", [x], [y])
    other = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    _refused(_save(other, tmp_path / "other.onnx"), "metadata_props has no 'unimrseg' entry")


def test_onnx_runtime_runs_the_bytes_it_validated(tmp_path):
    """Replacing the file after the backend opened it changes nothing: the session holds the checked bytes."""
    path = shutil.copy(SHIPPED_ONNX, tmp_path / "model.onnx")
    backend = OnnxRuntimeBackend(path, threads=1)
    Path(path).write_bytes(b"replaced")
    feeds = {m: np.zeros((1, c, 240, 320), np.float32) for m, c in (("rgb", 3), ("depth", 1), ("thermal", 1))}
    feeds["modality_mask"] = np.ones((1, 3), np.float32)
    seg, sal = backend.infer(feeds)
    assert seg.shape[2:] == (240, 320)
    assert sal.shape == (1, 1, 240, 320)


# --------------------------------------------------------------------------- engines


def test_engines_are_not_read_from_or_built_into_a_cache_others_can_write(tmp_path):
    shared = tmp_path / "shared"
    EngineCache(shared).store(KEY, b"plan")
    shared.chmod(0o777)
    with pytest.raises(UntrustedPathError, match="writable by other users"):
        EngineCache(shared).lookup(KEY)
    with pytest.raises(UntrustedPathError, match="writable by other users"):
        EngineCache(shared).resolve(KEY, force_update=True)
    with pytest.raises(UntrustedPathError, match="writable by other users"):
        EngineCache(shared).store(KEY, b"plan")


def test_a_group_writable_parent_makes_the_cache_unsafe_but_a_sticky_one_does_not(tmp_path):
    parent = tmp_path / "parent"
    (parent / "cache").mkdir(parents=True, mode=0o700)
    parent.chmod(0o775)  # others could rename cache/ and put theirs in its place
    with pytest.raises(UntrustedPathError, match="parent is writable by other users"):
        check_private_dir(parent / "cache")
    parent.chmod(0o1777)  # like /tmp: others cannot replace our entries
    check_private_dir(parent / "cache")


def test_the_cache_is_created_private(tmp_path):
    path = EngineCache(tmp_path / "new" / "engines").store(KEY, b"plan")
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_an_engine_file_others_may_write_or_a_link_is_refused(tmp_path):
    cache = EngineCache(tmp_path / "engines")
    path = cache.store(KEY, b"plan")
    path.chmod(0o666)
    with pytest.raises(UntrustedPathError, match="writable by other users"):
        cache.lookup(KEY)
    path.chmod(0o600)
    target = tmp_path / "elsewhere.engine"
    os.replace(path, target)
    path.symlink_to(target)
    with pytest.raises(UntrustedPathError, match="symbolic link"):
        check_private_file(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_an_engine_owned_by_another_user_is_refused(tmp_path):
    cache = EngineCache(tmp_path / "engines")
    path = cache.store(KEY, b"plan")
    os.chown(path, 12345, 12345)
    with pytest.raises(UntrustedPathError, match="owned by uid 12345"):
        cache.lookup(KEY)


def test_a_forged_engine_with_a_forged_sidecar_is_only_as_safe_as_the_folder(tmp_path):
    """The sidecar catches damage, not malice: in a private cache a matching forgery is accepted,
    which is why the folder's permissions are checked (above) and documented (RELIABILITY.md)."""
    cache = EngineCache(tmp_path / "engines")
    path = cache.store(KEY, b"real plan")
    path.write_bytes(b"forged plan")
    assert cache.lookup(KEY).path is None  # a changed engine without a new sidecar: rebuilt
    cache.store(KEY, b"forged plan")  # whoever can write here can also write the sidecar
    assert cache.lookup(KEY).path == path


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize("value", ["../x.pt", "/etc/passwd", "a/../../x.pt", "~/x.pt"])
def test_a_path_cannot_leave_its_folder(tmp_path, value):
    (tmp_path / "models").mkdir()
    with pytest.raises(UntrustedPathError, match="outside"):
        confined(value, tmp_path / "models")


def test_paths_inside_the_folder_resolve(tmp_path):
    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    assert confined("sub/../m.onnx", models) == models.resolve() / "m.onnx"
    assert confined(models / "m.onnx", models) == models.resolve() / "m.onnx"
    (models / "out").symlink_to(tmp_path)
    with pytest.raises(UntrustedPathError, match="outside"):
        confined("out/m.onnx", models)
