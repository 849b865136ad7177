"""ProceduralDataset and the shared Sample -> tensor step (model_inputs / targets)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from unimrseg_core.data import SceneGenerator
from unimrseg_core.data.tensors import model_inputs, targets
from unimrseg_core.data.torch_dataset import ProceduralDataset
from unimrseg_core.modalities import IGNORE_INDEX, NUM_CLASSES, normalize

SIZE = (32, 48)
KEYS = {"rgb", "depth", "thermal", "modality_mask", "label", "saliency", "has_label", "has_saliency"}


@pytest.fixture(scope="module")
def dataset() -> ProceduralDataset:
    return ProceduralDataset(7, size=SIZE, seed=3)


def test_item_keys_shapes_dtypes_and_ranges(dataset):
    h, w = SIZE
    assert len(dataset) == 7
    for i in range(len(dataset)):
        item = dataset[i]
        assert set(item) == KEYS
        assert all(isinstance(v, torch.Tensor) for v in item.values())
        assert item["rgb"].shape == (3, h, w)
        assert item["depth"].shape == (1, h, w)
        assert item["thermal"].shape == (1, h, w)
        assert item["saliency"].shape == (1, h, w)
        assert item["label"].shape == (h, w)
        assert item["modality_mask"].shape == (3,)
        for k in ("rgb", "depth", "thermal", "saliency", "modality_mask"):
            assert item[k].dtype == torch.float32, k
            assert item[k].min() >= 0.0
            assert item[k].max() <= 1.0
        assert item["label"].dtype == torch.int64
        assert set(item["label"].unique().tolist()) <= set(range(NUM_CLASSES))
        assert torch.equal(item["modality_mask"], torch.ones(3))
        assert item["has_saliency"].dtype == torch.bool
        assert bool(item["has_saliency"])
        assert set(item["saliency"].unique().tolist()) <= {0.0, 1.0}
        assert item["rgb"].is_contiguous()
        # the images carry content, not a constant
        assert item["rgb"].std() > 0.02
        assert item["depth"].max() > 0.1
        assert item["thermal"].std() > 0.005


def test_item_is_the_generator_sample_normalised(dataset):
    sample = SceneGenerator(SIZE, 3).sample(2)
    item = dataset[2]
    np.testing.assert_array_equal(item["rgb"].numpy(), normalize("rgb", sample.rgb).transpose(2, 0, 1))
    np.testing.assert_array_equal(item["depth"].numpy()[0], normalize("depth", sample.depth))
    np.testing.assert_array_equal(item["thermal"].numpy()[0], normalize("thermal", sample.thermal))
    np.testing.assert_array_equal(item["label"].numpy(), sample.label)
    np.testing.assert_array_equal(item["saliency"].numpy()[0], sample.saliency)


def test_index_and_length_checks(dataset):
    with pytest.raises(IndexError):
        dataset[7]
    with pytest.raises(IndexError):
        dataset[-1]
    with pytest.raises(ValueError, match="length"):
        ProceduralDataset(0, size=SIZE)


def _batches(dataset: ProceduralDataset, workers: int) -> list[dict[str, torch.Tensor]]:
    loader = DataLoader(dataset, batch_size=3, shuffle=False, num_workers=workers)
    return list(loader)


def test_dataloader_workers_give_identical_batches(dataset):
    serial = _batches(dataset, 0)
    parallel = _batches(dataset, 2)
    assert [b["label"].shape[0] for b in serial] == [3, 3, 1]
    assert len(parallel) == len(serial)
    for a, b in zip(serial, parallel, strict=True):
        assert set(a) == set(b) == KEYS
        for k in KEYS:
            assert torch.equal(a[k], b[k]), k
    # and distinct scenes are distinct (the equality above is not trivially true)
    assert not torch.equal(serial[0]["rgb"][0], serial[0]["rgb"][1])


def test_model_inputs_zero_an_absent_modality_and_its_mask():
    sample = SceneGenerator(SIZE, 1).sample(0)
    full = model_inputs(sample)
    for absent, index in (("rgb", 0), ("depth", 1), ("thermal", 2)):
        partial = model_inputs(dataclasses.replace(sample, **{absent: None}))
        assert partial[absent].shape == full[absent].shape
        assert partial[absent].dtype == np.float32
        assert not partial[absent].any()
        expected_mask = np.ones(3, np.float32)
        expected_mask[index] = 0.0
        np.testing.assert_array_equal(partial["modality_mask"], expected_mask)
        for other in {"rgb", "depth", "thermal"} - {absent}:
            np.testing.assert_array_equal(partial[other], full[other])
    only_depth = model_inputs(dataclasses.replace(sample, rgb=None, thermal=None))
    np.testing.assert_array_equal(only_depth["modality_mask"], [0.0, 1.0, 0.0])
    assert only_depth["rgb"].shape == (3, *SIZE)


def test_targets_without_ground_truth():
    sample = SceneGenerator(SIZE, 1).sample(0)
    full = targets(sample)
    assert full["label"].dtype == np.int64
    np.testing.assert_array_equal(full["label"], sample.label)
    assert bool(full["has_saliency"])
    no_gt = targets(dataclasses.replace(sample, label=None, saliency=None))
    assert no_gt["label"].shape == SIZE
    assert no_gt["label"].dtype == np.int64
    assert np.all(no_gt["label"] == IGNORE_INDEX)
    assert no_gt["saliency"].shape == (1, *SIZE)
    assert not no_gt["saliency"].any()
    assert not bool(no_gt["has_saliency"])
    # label-less samples still tensorise when an image is the only thing present
    thermal_only = dataclasses.replace(sample, rgb=None, depth=None, label=None, saliency=None)
    assert targets(thermal_only)["label"].shape == SIZE
    np.testing.assert_array_equal(model_inputs(thermal_only)["modality_mask"], [0.0, 0.0, 1.0])
