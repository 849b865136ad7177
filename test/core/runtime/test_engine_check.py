"""Engines are vetted in a child process: a segfault, an abort, a hang or wrong outputs are refused
with the reason, recorded in the sidecar, and never rerun until a forced rebuild.

The engines of ``engine_kinds`` really crash (``ctypes.string_at(0)``, ``os.abort()``), really
hang, really lie; they reach the child through the same ``module:function`` path as the
compiled and TensorRT engines.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from unimrseg_core.runtime.engine_cache import EngineCache, EngineKey
from unimrseg_core.runtime.engine_check import (
    CheckLimits,
    EngineCheck,
    EngineJob,
    EngineRefusedError,
    SmokeTest,
    compare,
    tolerance_for,
    vetted_engine,
)

KEY = EngineKey(
    model_sha256="ab" * 32,
    backend="test",
    runtime_version="1",
    device_name="test device",
    compute_capability="0.0",
    precision="fp32",
    batch=(1, 1, 2),
    input_size=(32, 48),
)
LIMITS = CheckLimits(build_timeout_s=60, check_timeout_s=60)


def _job(tmp_path: Path, build: str = "build_ok", load: str = "load_good") -> EngineJob:
    return EngineJob(
        "test", f"engine_kinds:{build}", f"engine_kinds:{load}", {"marker": str(tmp_path / "marker")}
    )


def _smoke(reference=None) -> SmokeTest:
    import engine_kinds

    return SmokeTest(
        (32, 48), 2, reference or engine_kinds.reference, "the test reference", tolerance_for("fp32")
    )


def _steps(tmp_path: Path) -> list[dict]:
    marker = tmp_path / "marker"
    return [json.loads(line) for line in marker.read_text().splitlines()] if marker.is_file() else []


def _vet(tmp_path: Path, job: EngineJob, *, limits: CheckLimits = LIMITS, force: bool = False):
    cache = EngineCache(tmp_path / "engines")
    return vetted_engine(cache, KEY, job, _smoke(), limits=limits, force_update=force)


def _recorded(tmp_path: Path) -> dict:
    cache = EngineCache(tmp_path / "engines")
    return json.loads(cache.sidecar(cache.path_for(KEY)).read_text())


def _gone(pid: int, within_s: float = 10.0) -> bool:
    """The process has exited (or is a zombie waiting for its reaper)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_good_engine_is_built_and_checked_once_then_loaded_without_a_child(tmp_path):
    first = _vet(tmp_path, _job(tmp_path))
    assert first.built
    assert first.check.passed
    assert "label agreement 1.0000" in first.check.summary
    assert [s["step"] for s in _steps(tmp_path)] == ["build", "check"]
    record = _recorded(tmp_path)
    assert record["check"]["outcome"] == "pass"
    assert record["sha256"]

    again = _vet(tmp_path, _job(tmp_path))
    assert not again.built
    assert again.path == first.path
    assert again.check == first.check
    assert len(_steps(tmp_path)) == 2  # no child ran: the sidecar's verdict was enough


def test_an_engine_that_segfaults_on_load_is_refused_recorded_and_not_run_again(tmp_path, caplog):
    job = _job(tmp_path, load="load_segfault")
    with pytest.raises(
        EngineRefusedError, match=r"smoke test crashed with SIGSEGV after [\d.]+ s; set force"
    ):
        _vet(tmp_path, job)
    check = _recorded(tmp_path)["check"]
    assert (check["outcome"], check["stage"], check["signal"]) == ("crash", "check", "SIGSEGV")
    assert "Fatal Python error: Segmentation fault" in check["stderr_tail"]  # faulthandler's traceback
    assert "load_segfault" in check["stderr_tail"]
    assert "Fatal Python error" in caplog.text  # the log line carries the child's last output

    start = time.monotonic()
    with pytest.raises(EngineRefusedError, match=r"SIGSEGV .*\(cached verdict from \d{4}-\d\d-\d\d "):
        _vet(tmp_path, job)
    assert time.monotonic() - start < 1.0
    assert [s["step"] for s in _steps(tmp_path)] == ["build", "check"]  # refused without a child

    fixed = _vet(tmp_path, _job(tmp_path), force=True)  # e.g. after a driver update
    assert fixed.built
    assert fixed.check.passed
    assert [s["step"] for s in _steps(tmp_path)] == ["build", "check", "build", "check"]


def test_an_engine_that_aborts_is_refused_with_sigabrt(tmp_path):
    with pytest.raises(EngineRefusedError, match="smoke test crashed with SIGABRT"):
        _vet(tmp_path, _job(tmp_path, load="load_abort"))
    assert _recorded(tmp_path)["check"]["signal"] == "SIGABRT"


def test_an_engine_that_hangs_is_killed_at_the_check_timeout_with_what_it_started(tmp_path):
    limits = CheckLimits(build_timeout_s=60, check_timeout_s=3)
    start = time.monotonic()
    with pytest.raises(
        EngineRefusedError, match=r"smoke test timed out after 3 s \(engine_check_timeout_seconds\)"
    ):
        _vet(tmp_path, _job(tmp_path, load="load_hang"), limits=limits)
    assert time.monotonic() - start < 20
    hung = _steps(tmp_path)[-1]
    assert _gone(hung["pid"])
    assert _gone(hung["grandchild"])
    assert _recorded(tmp_path)["check"]["outcome"] == "timeout"


def test_a_build_that_crashes_is_recorded_without_an_engine_and_refused_at_once(tmp_path):
    job = _job(tmp_path, build="build_crash")
    with pytest.raises(EngineRefusedError, match="engine build crashed with SIGSEGV"):
        _vet(tmp_path, job)
    cache = EngineCache(tmp_path / "engines")
    assert not cache.path_for(KEY).exists()
    assert _recorded(tmp_path)["check"]["stage"] == "build"
    with pytest.raises(EngineRefusedError, match="cached verdict"):
        _vet(tmp_path, job)
    assert len(_steps(tmp_path)) == 1


def test_a_build_that_hangs_is_stopped_at_the_build_timeout(tmp_path):
    limits = CheckLimits(build_timeout_s=3, check_timeout_s=60)
    with pytest.raises(
        EngineRefusedError, match=r"engine build timed out after 3 s \(engine_build_timeout_seconds\)"
    ):
        _vet(tmp_path, _job(tmp_path, build="build_hang"), limits=limits)
    assert _gone(_steps(tmp_path)[-1]["grandchild"])


def test_a_build_error_is_refused_with_the_exception(tmp_path):
    with pytest.raises(
        EngineRefusedError, match="engine build failed: RuntimeError: no C\\+\\+ compiler found"
    ):
        _vet(tmp_path, _job(tmp_path, build="build_error"))
    assert "Traceback" in _recorded(tmp_path)["check"]["stderr_tail"]


@pytest.mark.parametrize(
    ("load", "why"),
    [
        ("load_wrong", r"label agreement 0\.\d+ < 0\.99, max \|saliency diff\| [\d.]+ > 0\.02"),
        ("load_nan", "seg_logits holds NaN or inf"),
        ("load_half_size", r"seg_logits has shape \[2, 8, 16, 24\], the reference \[2, 8, 32, 48\]"),
    ],
)
def test_wrong_outputs_are_a_mismatch_with_the_figures(tmp_path, load, why):
    with pytest.raises(
        EngineRefusedError, match=f"smoke test mismatch against the test reference \\({why}\\)"
    ):
        _vet(tmp_path, _job(tmp_path, load=load))
    assert _recorded(tmp_path)["check"]["outcome"] == "mismatch"


def test_a_failing_reference_is_not_blamed_on_the_engine(tmp_path):
    def broken(feeds):
        raise MemoryError("reference ran out of memory")

    cache = EngineCache(tmp_path / "engines")
    with pytest.raises(MemoryError):
        vetted_engine(cache, KEY, _job(tmp_path), _smoke(broken), limits=LIMITS)
    assert "check" not in _recorded(tmp_path)  # built, but no verdict: checked at the next open
    assert _vet(tmp_path, _job(tmp_path)).check.passed
    assert [s["step"] for s in _steps(tmp_path)] == ["build", "check"]


def test_compare_figures_and_tolerances():
    rng = np.random.default_rng(0)
    seg, sal = rng.normal(size=(2, 8, 4, 4)).astype(np.float32), rng.random((2, 1, 4, 4)).astype(np.float32)
    ok, figures, _ = compare((seg, sal + 0.001), (seg, sal), tolerance_for("fp32"))
    assert ok
    assert figures["label_agreement"] == 1.0
    assert figures["max_saliency_diff"] == pytest.approx(0.001)
    assert not compare((seg, sal + 0.03), (seg, sal), tolerance_for("fp32"))[0]
    assert compare((seg, sal + 0.03), (seg, sal), tolerance_for("fp16"))[0]
    with pytest.raises(ValueError, match="no smoke-test tolerance for precision 'int4'"):
        tolerance_for("int4")
    with pytest.raises(ValueError, match="must be > 0"):
        CheckLimits(build_timeout_s=0, check_timeout_s=1)


def test_a_malformed_verdict_is_ignored_and_the_engine_checked_again():
    assert EngineCheck.from_json({"outcome": "exploded", "stage": "check", "summary": "?"}) is None
    assert EngineCheck.from_json("pass") is None
    assert EngineCheck.from_json({"outcome": "pass", "stage": "check", "summary": "ok", "bogus": 1}) is None


# --------------------------------------------------------------------------- backend selection


def test_auto_takes_the_next_backend_when_the_compiled_engine_crashed_before(
    tiny_checkpoint, tmp_path, monkeypatch
):
    """A compiled engine whose smoke test segfaulted (recorded by a real crashing child under its
    key): ``auto`` refuses it at once, notes why, and opens ONNX Runtime; naming it is a BackendError."""
    import torch

    from unimrseg_core.model.checkpoint import sha256_file
    from unimrseg_core.runtime import selection
    from unimrseg_core.runtime.compiled import PACKAGE_SUFFIX, compiled_key
    from unimrseg_core.runtime.selection import BackendError, BackendOptions, select_backend

    key = compiled_key(sha256_file(tiny_checkpoint), torch.device("cpu"), "fp32", 4, (32, 48))
    cache = EngineCache(tmp_path / "engines", suffix=PACKAGE_SUFFIX)
    with pytest.raises(EngineRefusedError):
        vetted_engine(cache, key, _job(tmp_path, load="load_segfault"), _smoke(), limits=LIMITS)

    usable = selection._usable
    monkeypatch.setattr(selection, "_usable", lambda name, o: None if name == "compiled" else usable(name, o))
    options = BackendOptions(checkpoint=tiny_checkpoint, cache_dir=tmp_path, device="cpu", max_batch=4)
    chosen = select_backend("auto", options)
    assert chosen.backend.name == "onnxruntime"
    refused = next(n for n in chosen.notes if n.startswith("compiled: "))
    assert refused.startswith("compiled: refused: smoke test crashed with SIGSEGV after ")
    assert "(cached verdict from " in refused
    assert refused.endswith("to rebuild and retry")
    assert chosen.notes[-1] == "onnxruntime: chosen"

    with pytest.raises(
        BackendError, match="backend compiled refused its engine: smoke test crashed with SIGSEGV"
    ):
        select_backend("compiled", options)
    assert len(_steps(tmp_path)) == 2  # neither open ran a child
