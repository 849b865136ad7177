"""The device stages (torch pre/post around the network) agree with the host stages, on the CPU.

On a GPU the same code runs under a CUDA graph (test/gpu); here it runs eagerly, so the
arithmetic is held to the host path (OpenCV + numpy) that CPU users keep running.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.data.tensor_ops import normalize_tensor, saliency_mono8_tensor
from unimrseg_core.modalities import MODALITIES, normalize
from unimrseg_core.model.checkpoint import SHIPPED
from unimrseg_core.runtime.backends import TorchBackend
from unimrseg_core.runtime.cuda_graphs import GraphedFunction
from unimrseg_core.runtime.failover import FailoverBackend
from unimrseg_core.runtime.segmenter import Segmenter, saliency_mono8
from unimrseg_core.runtime.selection import BackendOptions, Selection

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(SHIPPED)


@pytest.fixture(scope="module")
def scenes():
    gen = SceneGenerator((240, 320), TEST_SEED)
    return [gen.sample(i) for i in range(4)]


def test_normalize_tensor_is_normalize():
    rng = np.random.default_rng(0)
    images = {
        "rgb": rng.integers(0, 256, (5, 7, 3), dtype=np.uint8),
        "depth": rng.uniform(-1, 25, (5, 7)).astype(np.float32),
        "thermal": rng.uniform(200, 400, (5, 7)).astype(np.float32),
    }
    images["depth"][0, :3] = [np.nan, np.inf, -np.inf]
    images["thermal"][1, :2] = [np.nan, np.inf]
    for m in MODALITIES:
        got = normalize_tensor(m, torch.from_numpy(images[m])).numpy()
        np.testing.assert_allclose(got, normalize(m, images[m]), atol=1e-7, err_msg=m)


def test_saliency_mono8_tensor_is_saliency_mono8():
    p = np.array([0.0, 0.5 / 255, 1.5 / 255, 0.2, 0.999, 1.0, 1.7, -0.3, np.nan], np.float32)
    np.testing.assert_array_equal(saliency_mono8_tensor(torch.from_numpy(p)).numpy(), saliency_mono8(p))


CASES = {
    "all at the network size": ({"rgb", "depth", "thermal"}, 1, None),
    "half-resolution thermal, output 480x640": ({"depth", "thermal"}, 2, (480, 640)),
    "rgb alone, output smaller": ({"rgb"}, 1, (120, 160)),
    "rgb and thermal at odd sizes": ({"rgb", "thermal"}, 3, (250, 333)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_device_stages_agree_with_host_stages(backend, scenes, case):
    present, thermal_step, output_size = CASES[case]
    host = Segmenter(backend, stages="host")
    device = Segmenter(backend, stages="device")
    for scene in scenes:
        images = {m: getattr(scene, m) for m in present}
        if "thermal" in images:
            images["thermal"] = np.ascontiguousarray(images["thermal"][::thermal_step, ::thermal_step])
        if "rgb" in images and thermal_step == 3:
            images["rgb"] = np.ascontiguousarray(images["rgb"][:, :301])
        a = host.segment(**images, output_size=output_size)
        b = device.segment(**images, output_size=output_size)
        assert b.used == a.used
        assert b.class_ids.dtype == np.uint8
        assert b.class_ids.shape == a.class_ids.shape
        assert float((a.class_ids == b.class_ids).mean()) >= 0.995
        assert float(np.abs(a.saliency - b.saliency).max()) < 0.05
        assert float(np.abs(a.saliency - b.saliency).mean()) < 1e-3
        np.testing.assert_array_equal(b.saliency_mono8, saliency_mono8(b.saliency))


def test_device_stages_refuse_what_the_host_refuses(backend, scenes):
    device = Segmenter(backend, stages="device")
    with pytest.raises(ValueError, match="depth must be a 2-D float32"):
        device.segment(depth=(scenes[0].depth * 1000).astype(np.uint16))
    with pytest.raises(ValueError, match="stages must be one of"):
        Segmenter(backend, stages="gpu")


def test_auto_keeps_the_host_stages_on_a_cpu(backend, scenes):
    segmenter = Segmenter(backend)
    segmenter.segment(rgb=scenes[0].rgb)
    assert segmenter.device_stages(backend) is None


class _Broken:
    """A real backend object whose model call fails, as a CUDA error would."""

    name = "compiled"

    def __init__(self, metadata: dict) -> None:
        self.metadata = metadata
        self.calls = 0

    def infer(self, feeds):
        self.calls += 1
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def test_a_failing_backend_under_the_segmenter_fails_over(backend, scenes, tmp_path):
    """The Segmenter runs its whole stages through FailoverBackend.run_guarded: after
    max_failures the next backend of the auto order takes the same frame."""
    broken = _Broken(backend.metadata)
    options = BackendOptions(checkpoint=SHIPPED, cache_dir=tmp_path, device="cpu")
    failover = FailoverBackend(Selection(broken, ["compiled: chosen"]), options, max_failures=2)
    segmenter = Segmenter(failover)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        segmenter.segment(rgb=scenes[0].rgb)
    out = segmenter.segment(rgb=scenes[0].rgb)
    assert broken.calls == 2
    assert failover.name in ("onnxruntime", "torch")
    assert out.class_ids.shape == scenes[0].rgb.shape[:2]
    with pytest.raises(ValueError, match="rgb must be a 3-D uint8"):  # bad input: no failure counted
        segmenter.segment(rgb=scenes[0].rgb[..., 0])
    assert len(failover.switches) == 1


def test_cuda_graphs_need_a_cuda_device():
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        GraphedFunction(lambda x: (x,), torch.device("cpu"))


def test_auto_prefers_torch_on_the_gpu_to_onnxruntime_on_its_cpu_provider():
    from unimrseg_core.runtime.selection import auto_order

    gpu = auto_order(BackendOptions(device="cuda"))
    cpu = auto_order(BackendOptions(device="cpu"))
    assert gpu.index("torch") < gpu.index("onnxruntime")
    assert cpu.index("onnxruntime") < cpu.index("torch")
    assert gpu[:2] == cpu[:2] == ["tensorrt", "compiled"]
