"""The overlay image: class colours blended on the anchor image, whichever camera the anchor is."""

from __future__ import annotations

import numpy as np
import pytest

from unimrseg_core.modalities import CLASSES, IGNORE_INDEX, colorize
from unimrseg_core.runtime.overlay import anchor_rgb, overlay


def _classes(h: int = 4, w: int = 6) -> np.ndarray:
    ids = np.zeros((h, w), np.uint8)
    ids[:, 2:4] = CLASSES[1].id
    ids[:, 4:] = CLASSES[2].id
    return ids


def test_rgb_overlay_is_the_weighted_mean_of_image_and_class_colour() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    ids = _classes()
    colours = colorize(ids).astype(np.float64)
    out = overlay("rgb", image, ids, alpha=0.25)
    assert out.dtype == np.uint8
    assert out.shape == (4, 6, 3)
    expected = np.rint(0.75 * image.astype(np.float64) + 0.25 * colours)
    assert np.abs(out.astype(np.int16) - expected.astype(np.int16)).max() <= 1  # float32 rounding only
    np.testing.assert_array_equal(overlay("rgb", image, ids, alpha=0.0), image)
    np.testing.assert_array_equal(overlay("rgb", image, ids, alpha=1.0), colorize(ids))


def test_depth_and_thermal_anchors_are_drawn_as_grey_over_the_models_range() -> None:
    depth = np.array([[0.0, 10.0, 20.0, 35.0]], np.float32)  # invalid, mid, top, beyond the range
    np.testing.assert_array_equal(anchor_rgb("depth", depth)[0, :, 0], [0, 128, 255, 255])
    thermal = np.array([[240.0, 290.0, 340.0]], np.float32)[..., None]  # HxWx1 is accepted too
    grey = anchor_rgb("thermal", thermal)
    assert grey.shape == (1, 3, 3)
    np.testing.assert_array_equal(grey[0, :, 0], [0, 128, 255])
    assert (grey[..., 0] == grey[..., 1]).all()
    assert (grey[..., 1] == grey[..., 2]).all()
    ids = np.full((1, 4), CLASSES[2].id, np.uint8)
    out = overlay("depth", depth, ids, alpha=0.5)
    colour = np.asarray(CLASSES[2].color, np.float64)
    np.testing.assert_array_equal(out[0, 1], np.rint(0.5 * 128 + 0.5 * colour))


def test_pixels_without_a_class_keep_the_image() -> None:
    image = np.full((4, 6, 3), 200, np.uint8)
    ids = _classes()
    ids[0, :] = IGNORE_INDEX
    out = overlay("rgb", image, ids)
    np.testing.assert_array_equal(out[0], image[0])
    assert (out[1:] != image[1:]).any()


def test_a_mask_of_another_size_or_a_bad_alpha_is_refused() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(ValueError, match=r"class mask \(4, 5\) is not the size"):
        overlay("rgb", image, np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="alpha must be in"):
        overlay("rgb", image, _classes(), alpha=1.5)
    with pytest.raises(ValueError, match="rgb image must be HxWx3 uint8"):
        overlay("rgb", np.zeros((4, 6), np.float32), _classes())
    with pytest.raises(ValueError, match="unknown modality"):
        overlay("lidar", image, _classes())
