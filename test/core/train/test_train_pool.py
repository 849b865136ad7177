"""The decoded training pool (``train.pool``): lossless, and the same batches as the DataLoader path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from unimrseg_core.data.disk import DEPTH_PER_METRE, THERMAL_PER_KELVIN, GeneratedDataset
from unimrseg_core.train.batches import StepBatches, batches, ensure_pool, pool_dir
from unimrseg_core.train.config import DataConfig
from unimrseg_core.train.crops import step_crops
from unimrseg_core.train.pool import POOL_DTYPES, TensorPool, decode_pool

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCENES, SIZE = 12, (64, 80)


def _config(cache_dir: Path, **over: Any) -> DataConfig:
    kw: dict[str, Any] = {
        "size": SIZE,
        "crop": (32, 48),
        "scenes": SCENES,
        "cache_dir": str(cache_dir),
        "workers": 2,
        "loader_workers": 0,
    }
    return DataConfig(**(kw | over))


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> DataConfig:
    """A rendered 12-scene pool at 64x80."""
    cfg = _config(tmp_path_factory.mktemp("pool"))
    ensure_pool(cfg, progress=False)
    return cfg


@pytest.fixture(scope="module")
def pool(cfg: DataConfig) -> TensorPool:
    return TensorPool.load(pool_dir(cfg), torch.device("cpu"))


def test_decoded_pool_holds_every_scene_losslessly_in_stored_units(cfg: DataConfig) -> None:
    """One ``[N, C, H, W]`` integer array per folder; each scene equals what ``GeneratedDataset`` reads."""
    arrays = decode_pool(pool_dir(cfg), threads=2)
    channels = {"rgb": 3, "depth": 1, "thermal": 1, "label": 1, "saliency": 1}
    for key, dtype in POOL_DTYPES.items():
        assert arrays[key].dtype == dtype, key
        assert arrays[key].shape == (SCENES, channels[key], *SIZE), key
    dataset = GeneratedDataset(pool_dir(cfg))
    for i in (0, SCENES - 1):
        sample = dataset[i]
        assert np.array_equal(arrays["rgb"][i].transpose(1, 2, 0), sample.rgb)
        assert np.array_equal(arrays["depth"][i, 0] / np.float32(DEPTH_PER_METRE), sample.depth)
        assert np.array_equal(arrays["thermal"][i, 0] / np.float32(THERMAL_PER_KELVIN), sample.thermal)
        assert np.array_equal(arrays["label"][i, 0], sample.label)
        assert np.array_equal(arrays["saliency"][i, 0], sample.saliency)
    assert set(np.unique(arrays["saliency"])) <= {0, 1}
    assert arrays["depth"].max() > 255
    assert arrays["thermal"].min() > 20_000


def _same_batch(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Same keys, shapes and dtypes; integer and mask tensors equal, images to float rounding."""
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        assert a[k].dtype == b[k].dtype, k
        assert a[k].device == b[k].device, k
        if a[k].is_floating_point() and k in ("rgb", "depth", "thermal"):
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
        else:
            assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize(("phase", "step", "rank", "world"), [(0, 0, 0, 1), (1, 7, 1, 2), (2, 123, 0, 2)])
def test_pool_batches_equal_the_dataloader_batches(
    cfg: DataConfig, pool: TensorPool, phase: int, step: int, rank: int, world: int
) -> None:
    """Same scenes, crops, flips and values as ``StepBatches`` (decode PNGs, numpy crops)."""
    old = StepBatches(cfg, 6, phase, rank, world)[step]
    new = pool.batch(step_crops(cfg, 6, phase, step, rank, len(pool)))
    _same_batch(new, old)
    assert new["rgb"].shape == (6, 3, 32, 48)
    assert new["label"].dtype == torch.int64


def test_pool_batches_cover_flips_and_full_frames(cfg: DataConfig, pool: TensorPool) -> None:
    """A batch with both mirrored and unmirrored crops, and whole frames (``crop: null``)."""
    crops = step_crops(cfg, 16, 0, 5, 0, len(pool))
    assert crops.flip.any()
    assert not crops.flip.all()
    _same_batch(pool.batch(crops), StepBatches(cfg, 16, 0)[5])
    whole = _config(Path(cfg.cache_dir), crop=None)
    batch = pool.batch(step_crops(whole, 3, 0, 0, 0, len(pool)))
    assert batch["rgb"].shape == (3, 3, *SIZE)
    _same_batch(batch, StepBatches(whole, 3, 0)[0])


def test_batches_from_a_pool_resume_at_any_step(cfg: DataConfig, pool: TensorPool) -> None:
    """``batches(..., pool=)`` from step 2 gives the batches of steps 2 and 3, as the DataLoader does."""
    got = list(batches(cfg, 4, 1, 2, 4, rank=1, world=2, pool=pool))
    loaded = list(batches(cfg, 4, 1, 2, 4, rank=1, world=2))
    assert len(got) == len(loaded) == 2
    for a, b in zip(got, loaded, strict=True):
        _same_batch(a, b)


def test_pool_batches_are_a_pure_function_of_seed_phase_step_rank(cfg: DataConfig, pool: TensorPool) -> None:
    def cut(phase: int, step: int, rank: int) -> torch.Tensor:
        return pool.batch(step_crops(cfg, 4, phase, step, rank, len(pool)))["rgb"]

    first = cut(0, 3, 0)
    assert torch.equal(first, cut(0, 3, 0))
    assert not torch.equal(first, cut(0, 3, 1))
    assert not torch.equal(first, cut(0, 4, 0))
    assert not torch.equal(first, cut(1, 3, 0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pool_on_the_gpu_and_in_host_memory_give_the_cpu_batches(cfg: DataConfig) -> None:
    """On CUDA: held on the GPU (auto budget) or in host memory (budget 0), the batches are the
    CPU pool's, on the GPU."""
    arrays = decode_pool(pool_dir(cfg))
    crops = step_crops(cfg, 8, 0, 1, 0, SCENES)
    reference = TensorPool.from_arrays(arrays, torch.device("cpu")).batch(crops)
    cuda = torch.device("cuda", torch.cuda.current_device())
    for budget in ("auto", 0):
        pool = TensorPool.from_arrays(arrays, cuda, budget)
        assert (pool.storage.type == "cuda") == (budget == "auto")
        batch = pool.batch(crops)
        assert {t.device for t in batch.values()} == {cuda}
        _same_batch({k: t.cpu() for k, t in batch.items()}, reference)
