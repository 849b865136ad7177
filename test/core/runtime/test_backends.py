"""Backends behind one interface: selection with ``auto``, the shipped ONNX, ORT vs torch parity,
and the compiled (AOTInductor) engine with its cache discipline, all on this CPU."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from unimrseg_core.cli import main
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.data.tensors import model_inputs
from unimrseg_core.eval.protocols import drop
from unimrseg_core.modalities import COMBINATIONS
from unimrseg_core.model.checkpoint import SHIPPED, sha256_file
from unimrseg_core.runtime.contract import validate_onnx
from unimrseg_core.runtime.selection import SHIPPED_ONNX, BackendOptions, ensure_onnx, select_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _feeds(size: tuple[int, int], scenes: int, seed: int = TEST_SEED) -> dict[str, np.ndarray]:
    gen = SceneGenerator(size, seed)
    batch = [model_inputs(gen.sample(i)) for i in range(scenes)]
    return {k: np.stack([b[k] for b in batch]) for k in batch[0]}


def test_shipped_onnx_is_the_shipped_checkpoint():
    meta = validate_onnx(onnx.load(str(SHIPPED_ONNX)))
    assert meta["checkpoint_sha256"] == sha256_file(SHIPPED)


def test_auto_without_tensorrt_or_gpu_falls_back_to_onnxruntime(tmp_path, caplog, monkeypatch):
    """The same on every machine: TensorRT and CUDA are made invisible."""
    from unimrseg_core.runtime import selection

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        selection.importlib.util, "find_spec", lambda n: None if n == "tensorrt" else real_find_spec(n)
    )
    monkeypatch.setattr(selection, "_cuda", lambda: False)
    with caplog.at_level(logging.INFO, logger="unimrseg_core.runtime.selection"):
        chosen = select_backend("auto", BackendOptions(cache_dir=tmp_path))
    assert chosen.backend.name == "onnxruntime"
    assert chosen.notes[0].startswith("tensorrt: ")
    assert "compiled: " in chosen.notes[1]
    assert chosen.notes[-1] == "onnxruntime: chosen"
    assert "onnxruntime: chosen" in caplog.text


def test_auto_tries_the_next_backend_when_one_fails_to_open(tmp_path, monkeypatch):
    from unimrseg_core.runtime import selection

    def broken(options):
        raise RuntimeError("engine build failed: out of memory")

    monkeypatch.setattr(selection, "_usable", lambda name, options: None)
    monkeypatch.setitem(selection.OPENERS, "tensorrt", broken)
    monkeypatch.setitem(selection.OPENERS, "compiled", broken)
    chosen = select_backend("auto", BackendOptions(cache_dir=tmp_path, device="cpu"))
    assert chosen.backend.name == "onnxruntime"
    assert chosen.notes[:2] == [
        "tensorrt: failed to open (RuntimeError: engine build failed: out of memory)",
        "compiled: failed to open (RuntimeError: engine build failed: out of memory)",
    ]


def test_an_onnx_from_another_checkpoint_is_refused(tiny_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="was not exported from"):
        select_backend("auto", BackendOptions(checkpoint=tiny_checkpoint, onnx=SHIPPED_ONNX))


def test_auto_with_only_an_onnx_model_never_needs_a_checkpoint(tmp_path):
    chosen = select_backend("auto", BackendOptions(onnx=SHIPPED_ONNX, cache_dir=tmp_path))
    assert chosen.backend.name == "onnxruntime"
    with pytest.raises(ValueError, match="only an ONNX model"):
        select_backend("torch", BackendOptions(onnx=SHIPPED_ONNX, cache_dir=tmp_path))


def test_a_checkpoint_alone_is_exported_once_for_onnxruntime(tiny_checkpoint, tmp_path):
    options = BackendOptions(checkpoint=tiny_checkpoint, cache_dir=tmp_path)
    first = ensure_onnx(options)
    assert first.parent == tmp_path / "onnx"
    assert validate_onnx(onnx.load(str(first)))["checkpoint_sha256"] == sha256_file(tiny_checkpoint)
    stamp = first.stat().st_mtime_ns
    assert ensure_onnx(options) == first
    assert first.stat().st_mtime_ns == stamp  # reused, not exported again
    assert select_backend("onnxruntime", options).backend.name == "onnxruntime"


def test_any_network_size_from_the_checkpoint_but_not_from_a_fixed_onnx(tiny_checkpoint, tmp_path):
    """A camera's native size: the checkpoint is exported at it once; a fixed ONNX file cannot change."""
    options = BackendOptions(checkpoint=tiny_checkpoint, cache_dir=tmp_path, input_size=(64, 96))
    backend = select_backend("onnxruntime", options).backend
    assert backend.metadata["input_size"] == [64, 96]
    seg, _ = backend.infer(_feeds((64, 96), scenes=1))
    assert seg.shape[2:] == (64, 96)
    assert select_backend("torch", options).backend.metadata["input_size"] == [64, 96]
    fixed = ensure_onnx(BackendOptions(checkpoint=tiny_checkpoint, cache_dir=tmp_path))
    with pytest.raises(ValueError, match="needs the checkpoint"):
        ensure_onnx(BackendOptions(onnx=fixed, cache_dir=tmp_path, input_size=(64, 96)))
    with pytest.raises(ValueError, match="multiples of 16"):
        select_backend("torch", BackendOptions(checkpoint=tiny_checkpoint, input_size=(50, 96)))


def test_unknown_backend_lists_the_choices():
    with pytest.raises(ValueError, match="auto, tensorrt, compiled, onnxruntime, torch"):
        select_backend("tensorflow")


def test_onnxruntime_matches_torch_on_every_combination():
    """The shipped model: mask agreement >= 99.9 % between ONNX Runtime and eager PyTorch."""
    ort_backend = select_backend("onnxruntime").backend
    torch_backend = select_backend("torch", BackendOptions(device="cpu")).backend
    feeds = _feeds(tuple(ort_backend.metadata["input_size"]), scenes=2)
    for combo in COMBINATIONS:
        dropped = drop(feeds, combo)
        seg_o, sal_o = ort_backend.infer(dropped)
        seg_t, sal_t = torch_backend.infer(dropped)
        assert (seg_o.argmax(1) == seg_t.argmax(1)).mean() >= 0.999, combo.name
        np.testing.assert_allclose(sal_o, sal_t, atol=1e-3)


# --------------------------------------------------------------------------- compiled engine


@pytest.fixture(scope="module")
def compiled_cache(tmp_path_factory):
    """Engines live in ``<cache_dir>/engines``, as ``select_backend`` and the CLI put them."""
    return tmp_path_factory.mktemp("cache") / "engines"


@pytest.fixture(scope="module")
def compiled(tiny_checkpoint, compiled_cache):
    from unimrseg_core.runtime.compiled import CompiledBackend

    return CompiledBackend(tiny_checkpoint, cache_dir=compiled_cache, max_batch=4)


@pytest.mark.slow
def test_compiled_engine_matches_torch_at_any_batch(compiled, tiny_checkpoint):
    from unimrseg_core.runtime.backends import TorchBackend

    assert compiled.built
    assert compiled.check.passed  # built and smoke-tested in child processes first (engine_check)
    assert compiled.check.figures["label_agreement"] >= 0.999
    reference = TorchBackend(tiny_checkpoint)
    feeds = _feeds(tuple(compiled.metadata["input_size"]), scenes=3)
    for batch in (1, 3):
        part = {k: v[:batch] for k, v in feeds.items()}
        for combo in (COMBINATIONS[0], COMBINATIONS[-1]):
            seg_c, sal_c = compiled.infer(drop(part, combo))
            seg_t, sal_t = reference.infer(drop(part, combo))
            assert seg_c.shape == (batch, 8, *compiled.input_size)
            assert (seg_c.argmax(1) == seg_t.argmax(1)).mean() >= 0.999
            np.testing.assert_allclose(sal_c, sal_t, atol=1e-4)


@pytest.mark.slow
def test_compiled_engine_is_reused_then_rebuilt_when_stale_or_tampered(
    compiled, tiny_checkpoint, compiled_cache, caplog
):
    from unimrseg_core.runtime.compiled import PACKAGE_SUFFIX, CompiledBackend, compiled_key
    from unimrseg_core.runtime.engine_cache import EngineCache

    again = CompiledBackend(tiny_checkpoint, cache_dir=compiled_cache, max_batch=4)
    assert not again.built
    assert again.path == compiled.path
    assert again.check == compiled.check  # the sidecar's verdict: no child process this time

    # the package bytes change on disk: refused with the reason, rebuilt from the checkpoint
    with compiled.path.open("r+b") as f:
        f.seek(100)
        f.write(b"\0" * 16)
    with caplog.at_level(logging.INFO, logger="unimrseg_core.runtime.compiled"):
        rebuilt = CompiledBackend(tiny_checkpoint, cache_dir=compiled_cache, max_batch=4)
    assert rebuilt.built
    assert "does not match its recorded sha256" in caplog.text

    # another batch profile, or a forced update, is a miss (no build here: one rebuild is enough)
    other = compiled_key(compiled.key.model_sha256, compiled.device, "fp32", 2, compiled.input_size)
    cache = EngineCache(compiled_cache, suffix=PACKAGE_SUFFIX)
    assert cache.lookup(other).path is None
    assert cache.lookup(rebuilt.key).path == rebuilt.path
    assert cache.resolve(rebuilt.key, force_update=True).path is None


def test_compiled_refuses_half_precision_on_cpu(tiny_checkpoint, tmp_path):
    from unimrseg_core.runtime.compiled import CompiledBackend

    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        CompiledBackend(tiny_checkpoint, cache_dir=tmp_path, precision="fp16")
    with pytest.raises(ValueError, match="precision is one of"):
        CompiledBackend(tiny_checkpoint, cache_dir=tmp_path, precision="int4")


@pytest.mark.slow
def test_cli_engine_build_reuses_the_cached_engine(compiled, tiny_checkpoint, compiled_cache, capsys):
    args = ["engine", "build", "--backend", "compiled", "--device", "cpu"]
    args += ["--checkpoint", str(tiny_checkpoint), "--cache-dir", str(compiled_cache.parent)]
    assert main([*args, "--max-batch", "4", "--fp32"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == "compiled"
    assert summary["built"] is False
    assert summary["check"].startswith("smoke test passed against eager torch fp32 (cpu)")
    assert summary["key"]["model_sha256"] == sha256_file(tiny_checkpoint)
    assert main([*args, "--int8"]) == 2
    assert "the compiled engine's precision is one of" in capsys.readouterr().err


# --------------------------------------------------------------------------- unimrseg infer


def test_cli_infer_writes_masks_that_match_the_segmenter(tmp_path, capsys):
    from unimrseg_core.data.disk import FOLDERS, write_sample
    from unimrseg_core.runtime.segmenter import Segmenter

    scene = SceneGenerator((120, 160), seed=77).sample(0)
    scene.meta["name"] = "s0"
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
    write_sample(scene, tmp_path)  # 8-bit RGB, 16-bit depth mm, 16-bit thermal centikelvin
    files = {m: tmp_path / m / "s0.png" for m in ("rgb", "depth", "thermal")}
    out = tmp_path / "out"
    argv = ["infer", "--out", str(out), "--backend", "onnxruntime", "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, *(a for m, p in files.items() for a in (f"--{m}", str(p)))]) == 0
    summary = json.loads((out / "result.json").read_text())
    assert summary["used"] == "rgb+depth+thermal"
    assert summary["backend"] == "onnxruntime"
    mask = cv2.imread(str(out / "class_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (120, 160)
    assert cv2.imread(str(out / "colored_mask.png")).shape == (120, 160, 3)
    assert cv2.imread(str(out / "saliency.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint8
    direct = Segmenter(select_backend("onnxruntime").backend).segment(
        rgb=scene.rgb, depth=scene.depth, thermal=scene.thermal
    )
    assert (mask == direct.class_ids).mean() > 0.99  # files hold mm and centikelvin: tiny rounding

    # one modality alone, and a file that cannot be that modality
    assert main([*argv, "--thermal", str(files["thermal"])]) == 0
    assert json.loads((out / "result.json").read_text())["used"] == "thermal"
    capsys.readouterr()
    assert main([*argv, "--depth", str(files["rgb"])]) == 2
    assert "cannot be read as depth" in capsys.readouterr().err
    assert main(argv) == 2


def test_a_cpu_machine_runs_the_default_backend_without_importing_torch():
    """torch costs a CPU-only node seconds of start-up and ~200 MB: it is imported only where a GPU may be."""
    import subprocess
    import sys

    from unimrseg_core.runtime import selection

    code = (
        "import sys\n"
        "from unimrseg_core.runtime.selection import BackendOptions, select_backend\n"
        "from unimrseg_core.runtime.segmenter import Segmenter\n"
        "import numpy as np\n"
        "chosen = select_backend('auto', BackendOptions(threads=1))\n"
        "Segmenter(chosen.backend).segment(rgb=np.zeros((60, 80, 3), np.uint8))\n"
        "print(chosen.backend.name, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    gpu_possible = any(Path(f).exists() for f in selection.NVIDIA_DEVICE_FILES)
    assert out.split()[1] == str(gpu_possible), out
