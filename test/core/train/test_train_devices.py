"""Training keeps every tensor of a step on the batch's device, checked without a GPU.

On CUDA, an op that meets a CPU tensor and a CUDA one fails ("Expected all tensors to
be on the same device"). The same mix is caught here on a CPU-only machine: the model
and the batch live on PyTorch's ``meta`` device (shapes, no data) while the step's
generator stays on the CPU, as on a GPU machine, and ``DeviceChecks`` (a dispatch
mode, so it sees the backward's and the optimiser's aten ops too) fails any op whose
tensor arguments are on two devices. A 0-dim CPU tensor is legal next to any device
(torch reads it as a scalar; AdamW keeps its step counts so), and copies between
devices are what moving is, if they do not block: a blocking copy from the CPU makes
the host wait for the GPU every step. It also fails a CPU tensor as large as an
image plane: the CPU may draw small masks, but nothing image-sized should be made
there. And meta tensors hold no values, so a step that reads one back to the host
(``.item()``, boolean indexing: a wait for the GPU on CUDA) fails here as well.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from unimrseg_core.modalities import MODALITIES, MODALITY_CHANNELS, NUM_CLASSES
from unimrseg_core.model import ModelConfig, UniMRSegNet
from unimrseg_core.train.batches import ensure_pool, pool_dir
from unimrseg_core.train.config import DataConfig, TrainConfig, from_dict
from unimrseg_core.train.crops import step_crops
from unimrseg_core.train.pool import TensorPool, decode_pool
from unimrseg_core.train.stages import STEPS, TrainNet
from unimrseg_core.train.trainer import train_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")

aten = torch.ops.aten
TINY_MODEL = {"widths": [8, 8, 8, 8], "depths": [1, 0, 0, 0], "decoder_width": 8, "attention_dim": 4}
B, H, W = 4, 32, 48
DEVICE = torch.device("meta")
TRANSFERS = frozenset({aten._to_copy.default, aten.copy_.default, aten._copy_from.default})


class DeviceMixingError(AssertionError):
    pass


class DeviceChecks(TorchDispatchMode):
    """Fails an op that mixes devices or makes an image-sized CPU tensor; counts the ops seen."""

    def __init__(self, largest_cpu: int) -> None:
        super().__init__()
        self.largest_cpu = largest_cpu
        self.ops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        self.ops += 1
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        devices = {t.device for t in tensors if not (t.device.type == "cpu" and t.dim() == 0)}
        if len(devices) > 1 and func not in TRANSFERS:
            shapes = [(tuple(t.shape), str(t.device)) for t in tensors]
            raise DeviceMixingError(f"{func} mixes devices {sorted(map(str, devices))}: {shapes}")
        if func == aten._to_copy.default and _host_to_device(args[0], kwargs):
            raise DeviceMixingError(f"blocking copy of a {tuple(args[0].shape)} CPU tensor to the device")
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu" and t.numel() >= self.largest_cpu:
                raise DeviceMixingError(f"{func} made a CPU tensor of shape {tuple(t.shape)}")
        return out


def _host_to_device(source: torch.Tensor, kwargs: dict) -> bool:
    """A copy from the CPU to another device that makes the host wait (``non_blocking`` not set)."""
    target = kwargs.get("device")
    leaves_cpu = source.device.type == "cpu" and target is not None and torch.device(target).type != "cpu"
    return leaves_cpu and not kwargs.get("non_blocking", False)


def _config(method: str) -> TrainConfig:
    # every sample gets a sensor fault, so train/fault_damage.py runs on the device too
    return from_dict({"method": method, "model": dict(TINY_MODEL), "losses": {"fault_prob": 1.0}})


def _batch(device: torch.device) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    batch = {m: torch.rand(B, MODALITY_CHANNELS[m], H, W, generator=gen) for m in MODALITIES}
    batch["modality_mask"] = torch.ones(B, len(MODALITIES))
    batch["label"] = torch.randint(0, NUM_CLASSES, (B, H, W), generator=gen)
    batch["saliency"] = (torch.rand(B, 1, H, W, generator=gen) > 0.5).float()
    batch["has_saliency"] = torch.ones(B, dtype=torch.bool)
    return {k: v.to(device) for k, v in batch.items()}


def _step(
    method: str, phase: str, device: torch.device, encoder: str = "grouped"
) -> Callable[[], torch.Tensor]:
    """One step of ``phase`` (the trainer's ``train_step``), model and batch made on ``device`` now."""
    cfg = _config(method)
    torch.manual_seed(0)
    net = UniMRSegNet(ModelConfig.from_dict({**TINY_MODEL, "encoder": encoder, "attention_from_stage": 1}))
    model = TrainNet(net).to(device).train()
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    batch = _batch(device)

    def step() -> torch.Tensor:
        gen = torch.Generator().manual_seed(1)
        return train_step(model, STEPS[phase], batch, cfg, gen, optimizer, params)[0]

    return step


PHASES = [
    ("unimrseg", "stage1"),
    ("unimrseg", "stage2"),
    ("unimrseg", "stage3"),
    ("complete-only", "supervised"),
    ("modality-dropout", "supervised"),
]


@pytest.mark.parametrize("encoder", ["grouped", "shared", "separate"])
@pytest.mark.parametrize(("method", "phase"), PHASES)
def test_a_training_step_keeps_every_op_on_the_batch_device(method: str, phase: str, encoder: str) -> None:
    """Forward, losses, backward and the AdamW update of every stage and baseline, every encoder
    layout, model and batch on ``meta``: no op mixes devices, no image-sized tensor is made on the CPU."""
    step = _step(method, phase, DEVICE, encoder)
    checks = DeviceChecks(largest_cpu=H * W)
    with checks:
        loss = step()
    assert loss.device == DEVICE
    assert checks.ops > 500  # the backward and the optimiser ran under the mode too


def test_the_checks_catch_a_cpu_tensor_meeting_a_device_tensor() -> None:
    """The mode fails the very mix CUDA fails on (a CPU mask applied to device images) and a
    blocking copy to the device, and lets a 0-dim CPU scalar through, as torch does."""
    images = torch.ones(B, 3, H, W, device=DEVICE)
    with DeviceChecks(largest_cpu=H * W):
        _ = images * torch.tensor(2.0)
        with pytest.raises(DeviceMixingError, match="mixes devices"):
            _ = images * torch.ones(B, 1, 1, 1)
        _ = torch.ones(B, 3).to(DEVICE, non_blocking=True)
        with pytest.raises(DeviceMixingError, match="blocking copy"):
            _ = torch.ones(B, 3).to(DEVICE)


def test_the_same_step_on_the_cpu_is_finite_and_drawn_alike() -> None:
    """On real data (the CPU) the checked step computes finite losses, the same twice."""
    for method, phase in PHASES:
        cpu = torch.device("cpu")
        first, second = _step(method, phase, cpu)(), _step(method, phase, cpu)()
        assert torch.isfinite(first), (method, phase)
        assert torch.equal(first, second), (method, phase)


def test_pool_batches_stay_on_the_pool_device(tmp_path: Path) -> None:
    """Cutting a batch from a decoded pool held on ``meta``: one small plan copy from the CPU,
    everything else on the device."""
    cfg = DataConfig(size=(64, 80), crop=(32, 48), scenes=3, cache_dir=str(tmp_path), workers=1)
    ensure_pool(cfg, progress=False)
    pool = TensorPool.from_arrays(decode_pool(pool_dir(cfg)), DEVICE)
    crops = step_crops(cfg, B, 0, 0, 0, len(pool))
    with DeviceChecks(largest_cpu=32 * 48):
        batch = pool.batch(crops)
    assert {t.device for t in batch.values()} == {DEVICE}
    assert batch["rgb"].shape == (B, 3, 32, 48)
