"""Runtime failover: a backend that breaks while running hands over to the next one of the auto order.

The backends are real (ONNX Runtime and torch on the shipped model); the fault is injected
by replacing the running backend's ``infer`` with one that raises what a broken engine raises.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.data.tensors import model_inputs
from unimrseg_core.runtime.failover import FailoverBackend
from unimrseg_core.runtime.selection import BackendError, BackendOptions, next_backend, select_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OOM = "CUDA out of memory. Tried to allocate 2.00 GiB"


@pytest.fixture(scope="module")
def feeds() -> dict[str, np.ndarray]:
    return {k: v[None] for k, v in model_inputs(SceneGenerator((240, 320), TEST_SEED).sample(0)).items()}


def _break(backend: object, exc: Exception) -> list[int]:
    """Make ``backend.infer`` raise ``exc`` from now on; returns a list counting the calls."""
    calls: list[int] = []

    def broken(feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        raise exc

    backend.infer = broken  # type: ignore[attr-defined]
    return calls


def _failover(tmp_path, max_failures: int = 3, **options: object) -> FailoverBackend:
    opts = BackendOptions(cache_dir=tmp_path, device="cpu", threads=1, **options)  # type: ignore[arg-type]
    return FailoverBackend(select_backend("onnxruntime", opts), opts, max_failures=max_failures)


def test_after_max_failures_the_next_backend_runs_the_frame_and_the_switch_is_recorded(tmp_path, feeds):
    seen = []
    failover = _failover(tmp_path)
    failover._on_switch = seen.append
    healthy = failover.infer(feeds)
    calls = _break(failover.current, torch.OutOfMemoryError(OOM))
    for _ in range(2):  # below the threshold: the error reaches the caller, the backend stays
        with pytest.raises(torch.OutOfMemoryError):
            failover.infer(feeds)
    assert failover.name == "onnxruntime"
    assert not failover.switches
    seg, sal = failover.infer(feeds)  # the third failure: torch takes over and runs this frame
    assert len(calls) == 3
    assert failover.name == "torch"
    (switch,) = failover.switches
    assert seen == [switch]
    assert (switch.failed, switch.opened, switch.failures) == ("onnxruntime", "torch", 3)
    assert switch.error == f"OutOfMemoryError: {OOM}"
    assert switch.text in failover.notes
    assert "torch: chosen" in switch.notes
    # the same model on the new backend: the same classes almost everywhere
    agree = (seg.argmax(1) == healthy[0].argmax(1)).mean()
    assert agree > 0.99
    assert np.abs(sal - healthy[1]).max() < 1e-3


def test_a_success_resets_the_count_of_consecutive_failures(tmp_path, feeds):
    failover = _failover(tmp_path, max_failures=2)
    backend = failover.current
    real = backend.infer
    for _ in range(3):  # fail, succeed, fail, ...: never two in a row
        _break(backend, RuntimeError("transient"))
        with pytest.raises(RuntimeError, match="transient"):
            failover.infer(feeds)
        backend.infer = real
        failover.infer(feeds)
    assert failover.name == "onnxruntime"
    assert not failover.switches


def test_max_failures_zero_never_switches(tmp_path, feeds):
    failover = _failover(tmp_path, max_failures=0)
    _break(failover.current, RuntimeError("engine lost"))
    for _ in range(5):
        with pytest.raises(RuntimeError, match="engine lost"):
            failover.infer(feeds)
    assert failover.name == "onnxruntime"
    assert not failover.switches


def test_when_no_backend_is_left_every_frame_fails_with_the_reason(tmp_path, feeds):
    failover = _failover(tmp_path, max_failures=1)
    _break(failover.current, RuntimeError("engine lost"))
    failover.infer(feeds)  # onnxruntime -> torch, which runs the frame ...
    _break(failover.current, RuntimeError("torch lost too"))
    with pytest.raises(RuntimeError, match="torch lost too"):
        failover.infer(feeds)  # ... torch is the last of the order
    assert failover.current is None
    assert failover.name == "none"
    assert failover.switches[-1].opened is None
    assert "no other backend could be opened" in failover.switches[-1].text
    with pytest.raises(BackendError, match="no backend left: torch failed 1x"):
        failover.infer(feeds)


def test_a_backend_serving_another_model_is_not_taken(tmp_path, feeds):
    """The ONNX model runs at its own 240x320; asked for 256x320, torch would serve another input size."""
    opts = BackendOptions(cache_dir=tmp_path, device="cpu", threads=1)
    failover = FailoverBackend(
        select_backend("onnxruntime", opts), BackendOptions(**{**opts.__dict__, "input_size": (256, 320)})
    )
    failover._max_failures = 1
    _break(failover.current, RuntimeError("engine lost"))
    with pytest.raises(RuntimeError, match="engine lost"):
        failover.infer(feeds)
    assert failover.current is None
    assert "torch: serves another model (input_size differ)" in failover.switches[0].notes


def test_next_backend_follows_the_auto_order(tmp_path):
    opts = BackendOptions(cache_dir=tmp_path, device="cpu", threads=1)
    chosen = next_backend("compiled", opts, "failed at runtime")
    assert chosen.backend.name == "onnxruntime"
    assert chosen.notes == ["compiled: failed at runtime", "onnxruntime: chosen"]
    with pytest.raises(BackendError, match="no backend could be opened"):
        next_backend("torch", opts, "failed at runtime")
