"""Segmenter: the one inference API (preprocessing shared with training, any subset, caller's size)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.tensors import model_inputs
from unimrseg_core.model.checkpoint import SHIPPED
from unimrseg_core.runtime.segmenter import Segmenter
from unimrseg_core.runtime.selection import BackendOptions, open_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter(open_backend("torch", BackendOptions(checkpoint=SHIPPED)))


@pytest.fixture(scope="module")
def scene():
    return SceneGenerator((240, 320), seed=4242).sample(0)


def test_matches_the_network_on_training_preprocessing(segmenter, scene):
    """At the model's own size the result is exactly argmax of the network on model_inputs."""
    out = segmenter.segment(rgb=scene.rgb, depth=scene.depth, thermal=scene.thermal)
    feeds = model_inputs(scene)
    with torch.inference_mode():
        seg, sal = segmenter.backend.net(*(torch.from_numpy(feeds[k][None]) for k in feeds))
    np.testing.assert_array_equal(out.class_ids, seg[0].argmax(0).numpy().astype(np.uint8))
    np.testing.assert_allclose(out.saliency, sal[0, 0].numpy(), atol=1e-6)
    assert out.used.name == "rgb+depth+thermal"


def test_any_subset_at_the_callers_resolution(segmenter, scene):
    thermal_small = scene.thermal[::2, ::2].copy()  # a lower-resolution thermal camera
    out = segmenter.segment(depth=scene.depth, thermal=thermal_small, output_size=(480, 640))
    assert out.used.name == "depth+thermal"
    assert out.class_ids.shape == (480, 640)
    assert out.class_ids.dtype == np.uint8
    assert out.saliency.shape == (480, 640)
    assert float(out.saliency.min()) >= 0.0
    assert float(out.saliency.max()) <= 1.0
    only = segmenter.segment(thermal=thermal_small)
    assert only.class_ids.shape == thermal_small.shape
    assert only.used.name == "thermal"


def test_quality_on_a_held_out_scene(segmenter, scene):
    """The shipped model is a trained model: most pixels right with all sensors."""
    out = segmenter.segment(rgb=scene.rgb, depth=scene.depth, thermal=scene.thermal)
    assert (out.class_ids == scene.label).mean() > 0.8


def test_bad_input_is_a_clear_error(segmenter, scene):
    with pytest.raises(ValueError, match="no modality"):
        segmenter.segment()
    with pytest.raises(ValueError, match="depth must be a 2-D float32"):
        segmenter.segment(depth=(scene.depth * 1000).astype(np.uint16))
    with pytest.raises(ValueError, match="rgb must be a 3-D uint8"):
        segmenter.segment(rgb=scene.rgb[..., 0])
    with pytest.raises(ValueError, match="unknown backend"):
        open_backend("tensorflow")
