"""SceneGenerator: determinism, the Sample contract, conditions and their effects, saliency."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from unimrseg_core.data import CONDITIONS, Sample, SceneGenerator
from unimrseg_core.data.conditions import LIGHTING, SENSOR_FAULTS, validate_conditions
from unimrseg_core.data.saliency import MIN_AREA, RELATIVE, saliency_mask, salient_instances
from unimrseg_core.modalities import CLASSES, NUM_CLASSES, class_id

SIZE = (96, 128)
SKY, GROUND = class_id("sky"), class_id("ground")
THINGS = {c.id for c in CLASSES if c.is_thing}
ARRAYS = ("rgb", "depth", "thermal", "label", "saliency")


def _assert_same(a: Sample, b: Sample) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.meta == b.meta


def _differs(a: Sample, b: Sample) -> bool:
    return any(not np.array_equal(getattr(a, n), getattr(b, n)) for n in ARRAYS)


@pytest.fixture(scope="module")
def scenes() -> list[Sample]:
    """30 scenes with sampled conditions (the generator's own mix)."""
    gen = SceneGenerator(SIZE, seed=1)
    return [gen.sample(i) for i in range(30)]


# ---------------------------------------------------------------------------- determinism


def test_same_seed_and_index_give_identical_samples():
    a = SceneGenerator(SIZE, seed=5).sample(3)
    b = SceneGenerator(SIZE, seed=5).sample(3)
    _assert_same(a, b)


def test_different_index_or_seed_give_different_samples():
    gen = SceneGenerator(SIZE, seed=5)
    a, b = gen.sample(3), gen.sample(4)
    assert _differs(a, b)
    assert a.meta["name"] == "000003"
    assert b.meta["index"] == 4
    c = SceneGenerator(SIZE, seed=6).sample(3)
    assert _differs(a, c)
    assert c.meta["seed"] == 6


def test_sample_does_not_depend_on_call_order():
    first = SceneGenerator(SIZE, seed=9)
    s5, s3 = first.sample(5), first.sample(3)
    second = SceneGenerator(SIZE, seed=9)
    t3, t5 = second.sample(3), second.sample(5)
    _assert_same(s5, t5)
    _assert_same(s3, t3)
    _assert_same(first.sample(5), s5)  # asking again gives the same scene again


def test_forced_conditions_do_not_disturb_the_rest_of_the_stream():
    gen = SceneGenerator(SIZE, seed=2)
    before = gen.sample(0)
    gen.sample(1, ["night", "depth_holes"])
    _assert_same(gen.sample(0), before)


# ------------------------------------------------------------------------- sample contract


def test_shapes_dtypes_and_value_ranges(scenes):
    h, w = SIZE
    for s in scenes:
        assert s.validate() is s
        assert s.present == ("rgb", "depth", "thermal")
        assert s.size == SIZE
        assert s.rgb.shape == (h, w, 3)
        assert s.rgb.dtype == np.uint8
        for name in ("depth", "thermal"):
            assert getattr(s, name).shape == (h, w)
            assert getattr(s, name).dtype == np.float32
            assert np.all(np.isfinite(getattr(s, name)))
        for name in ("label", "saliency"):
            assert getattr(s, name).shape == (h, w)
            assert getattr(s, name).dtype == np.uint8
        valid = s.depth[s.depth != 0]
        assert valid.size > 0.2 * h * w
        assert valid.min() >= 0.3  # 0 = invalid, anything closer than 0.3 m is not reported
        assert valid.max() < 27.0  # range at most 25 m (+ noise)
        np.testing.assert_array_equal(np.round(s.depth * 1000) / 1000, s.depth)  # millimetres
        assert s.thermal.min() > 200.0
        assert s.thermal.max() < 400.0
        np.testing.assert_allclose(np.round(s.thermal * 100) / 100, s.thermal, atol=1e-4)  # 0.01 K
        assert set(np.unique(s.label)) <= set(range(NUM_CLASSES))
        assert set(np.unique(s.saliency)) <= {0, 1}


def test_meta_is_json_and_describes_the_scene(scenes):
    for i, s in enumerate(scenes):
        meta = json.loads(json.dumps(s.meta, allow_nan=False))
        assert meta == s.meta
        assert meta["name"] == f"{i:06d}"
        assert (meta["seed"], meta["index"]) == (1, i)
        assert meta["layout"] in ("street", "park", "plaza")
        assert meta["conditions"][0] in LIGHTING
        assert set(meta["conditions"][1:]) <= set(SENSOR_FAULTS)
        cam = meta["camera"]
        assert (cam["height"], cam["width"]) == SIZE
        assert cam["fx"] > 0
        assert 0.5 < cam["mount_height_m"] < 2.0
        assert 200 < meta["ambient_k"] < 320


def test_sampled_conditions_cover_the_mix(scenes):
    lighting = {s.meta["conditions"][0] for s in scenes}
    faults = {c for s in scenes for c in s.meta["conditions"][1:]}
    assert len(lighting) >= 3
    assert faults  # 30 scenes at p = 0.2 / 0.15: at least one fault (P(none) ~ 1e-4)


def test_every_class_appears_over_30_scenes(scenes):
    counts = np.bincount(np.concatenate([s.label.ravel() for s in scenes]), minlength=NUM_CLASSES)
    assert counts.size == NUM_CLASSES  # no id outside the table
    missing = [CLASSES[c].name for c in range(NUM_CLASSES) if counts[c] == 0]
    assert missing == []
    assert min(counts) >= 50  # each class has a usable number of pixels


def test_sky_has_no_depth(scenes):
    for s in scenes:
        sky = s.label == SKY
        assert sky.any()
        assert np.all(s.depth[sky] == 0)


def test_thermal_sky_colder_than_ground_by_day():
    gen = SceneGenerator(SIZE, seed=1)
    for i in range(6):
        s = gen.sample(i, ["day"])
        sky, ground = s.thermal[s.label == SKY], s.thermal[s.label == GROUND]
        assert np.median(ground) - np.median(sky) > 15.0


# ------------------------------------------------------------------------------ conditions


@pytest.mark.parametrize(
    ("forced", "recorded"),
    [
        (["day"], ["day"]),
        (["night"], ["night"]),
        (["fog"], ["fog"]),
        (["glare"], ["glare"]),
        (["depth_holes"], ["day", "depth_holes"]),
        (["thermal_washout"], ["day", "thermal_washout"]),
        (["thermal_washout", "fog", "depth_holes"], ["fog", "depth_holes", "thermal_washout"]),
        ([], ["day"]),
    ],
)
def test_forced_conditions_are_recorded(forced, recorded):
    s = SceneGenerator((32, 48), seed=0).sample(2, forced)
    assert s.meta["conditions"] == recorded


def test_every_condition_can_be_forced():
    gen = SceneGenerator((32, 48), seed=0)
    for c in CONDITIONS:
        assert c in gen.sample(0, [c]).meta["conditions"]


@pytest.mark.parametrize(
    ("conditions", "match"),
    [(["snow"], "snow"), (["day", "night"], "one lighting"), (["fog", "glare"], "one lighting")],
)
def test_invalid_conditions_raise(conditions, match):
    with pytest.raises(ValueError, match=match):
        SceneGenerator((32, 48)).sample(0, conditions)
    with pytest.raises(ValueError, match=match):
        validate_conditions(conditions)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": (15, 64)}, "size"),
        ({"size": (64, 8)}, "size"),
        ({"size": (0, 0)}, "size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_invalid_generator_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SceneGenerator(**kwargs)


def test_negative_index_raises():
    gen = SceneGenerator((32, 48))
    with pytest.raises(ValueError, match="index"):
        gen.sample(-1)
    with pytest.raises(ValueError, match="index"):
        gen.rng(-3)


def test_fog_cuts_the_depth_range():
    gen = SceneGenerator(SIZE, seed=4)
    for i in range(5):
        day, fog = gen.sample(i, ["day"]).depth, gen.sample(i, ["fog"]).depth
        assert fog.max() < 13.0  # 6-12 m range plus noise
        assert day.max() > 15.0
        assert day.max() > fog.max() + 3.0


def _noise(rgb: np.ndarray) -> float:
    """Median absolute residual after a 3x3 median filter: sensor noise, barely any texture."""
    grey = rgb.astype(np.float32).mean(axis=2)
    return float(np.median(np.abs(grey - cv2.medianBlur(rgb, 3).astype(np.float32).mean(axis=2))))


def test_night_is_darker_and_noisier():
    gen = SceneGenerator(SIZE, seed=4)
    ratios = []
    for i in range(6):
        day, night = gen.sample(i, ["day"]).rgb, gen.sample(i, ["night"]).rgb
        ratios.append(night.mean() / day.mean())
        assert ratios[-1] < 0.8
        assert _noise(night) > 3.0 * _noise(day)
    assert np.mean(ratios) < 0.7


def test_glare_saturates_a_region():
    gen = SceneGenerator(SIZE, seed=4)
    n = SIZE[0] * SIZE[1]
    for i in range(5):
        day, glare = gen.sample(i, ["day"]).rgb, gen.sample(i, ["glare"]).rgb
        assert (glare.min(axis=2) >= 250).sum() > 0.03 * n
        assert (day.min(axis=2) >= 250).sum() < 0.005 * n
        # one blob around the sun, not scattered pixels
        saturated = (glare.min(axis=2) >= 250).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(saturated)
        assert stats[1:, cv2.CC_STAT_AREA].max() > 0.5 * saturated.sum()


def test_depth_holes_raise_the_invalid_ratio():
    gen = SceneGenerator(SIZE, seed=4)
    gains = []
    for i in range(6):
        clean = gen.sample(i, ["day"])
        holes = gen.sample(i, ["day", "depth_holes"])
        np.testing.assert_array_equal(clean.label, holes.label)  # the same scene
        solid = clean.label != SKY
        before, after = np.mean(clean.depth[solid] == 0), np.mean(holes.depth[solid] == 0)
        assert after > before
        gains.append(after - before)
    assert np.mean(gains) > 0.05


def test_thermal_washout_lowers_thermal_contrast():
    gen = SceneGenerator(SIZE, seed=4)
    for i in range(6):
        day = gen.sample(i, ["day"])
        washed = gen.sample(i, ["day", "thermal_washout"])
        solid = day.label != SKY
        assert washed.thermal[solid].std() < 0.45 * day.thermal[solid].std()
        # crossover: the world is near body temperature
        assert washed.meta["ambient_k"] >= 300.0


# ---------------------------------------------------------------------------------- saliency

H, W = 100, 100  # MIN_AREA = 0.4 % = 40 pixels


def _rect(inst: np.ndarray, k: int, v0: int, v1: int, u0: int, u1: int) -> None:
    inst[v0:v1, u0:u1] = k


def test_saliency_constants():
    assert MIN_AREA == 0.004
    assert RELATIVE == 0.5


def test_salient_min_area():
    inst = np.zeros((H, W), np.int32)
    _rect(inst, 1, 47, 53, 47, 53)  # 36 px, dead centre, but below 40 px
    _rect(inst, 2, 0, 7, 0, 7)  # 49 px in the corner
    person = class_id("person")
    assert salient_instances(inst, {1: person, 2: person}, THINGS) == [2]
    inst[inst == 2] = 0
    assert salient_instances(inst, {1: person}, THINGS) == []
    np.testing.assert_array_equal(saliency_mask(inst, {1: person}, THINGS), 0)
    _rect(inst, 1, 47, 53, 47, 54)  # 42 px
    assert salient_instances(inst, {1: person}, THINGS) == [1]


def test_salient_centre_weighting():
    inst = np.zeros((H, W), np.int32)
    _rect(inst, 1, 45, 55, 45, 55)  # 100 px at the centre
    _rect(inst, 2, 0, 11, 0, 11)  # 121 px in the corner: bigger, but far from the centre
    classes = {1: class_id("vehicle"), 2: class_id("vehicle")}
    assert salient_instances(inst, classes, THINGS) == [1]
    mask = saliency_mask(inst, classes, THINGS)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, (inst == 1).astype(np.uint8))


def test_salient_relative_threshold():
    """Two instances at mirrored positions: equal centre weight, so the area ratio decides."""
    inst = np.zeros((H, W), np.int32)
    _rect(inst, 1, 45, 55, 20, 30)  # 100 px, centroid (49.5, 24.5)
    checker = np.add.outer(np.arange(10), np.arange(10)) % 2 == 0  # 50 px, centroid at its centre
    inst[45:55, 70:80][checker] = 2  # centroid (49.5, 74.5): the mirror image of instance 1
    obstacle = class_id("obstacle")
    classes = {1: obstacle, 2: obstacle}
    assert salient_instances(inst, classes, THINGS) == [1, 2]  # exactly RELATIVE x best counts
    inst[45, 70] = 0  # 49 px: just under half
    assert salient_instances(inst, classes, THINGS) == [1]


def test_decals_and_stuff_are_never_salient():
    inst = np.zeros((H, W), np.int32)
    _rect(inst, 1, 20, 80, 20, 80)  # huge and central, but a decal (not in instance_class)
    _rect(inst, 2, 0, 20, 0, 100)  # a building instance (stuff)
    _rect(inst, 3, 85, 95, 85, 95)  # a small person in the corner
    classes = {2: class_id("building"), 3: class_id("person")}
    assert salient_instances(inst, classes, THINGS) == [3]
    assert salient_instances(inst, {2: class_id("building")}, THINGS) == []


def test_generated_saliency_is_a_strict_subset_of_thing_pixels(scenes):
    strictly_smaller = non_empty = 0
    for s in scenes:
        things = np.isin(s.label, list(THINGS))
        salient = s.saliency.astype(bool)
        assert not np.any(salient & ~things)
        if salient.any():
            non_empty += 1
            # saliency is whole instances of at least MIN_AREA
            assert salient.sum() >= MIN_AREA * salient.size
        if things.sum() > salient.sum():
            strictly_smaller += 1
    assert non_empty >= 15
    assert strictly_smaller >= 10  # "the main object(s)", not "all thing pixels"
