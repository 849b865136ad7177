"""Registration against the procedural world's ground truth: offset cameras with exact calibration.

The world renders each sensor through its own camera (``data.rig.DEMO_RIG``: depth coarser,
wider and 5 cm to the side; thermal at half resolution, narrower, above and turned), so the
truth of where every surface lies in every camera is known from the renderer's own geometry
(``Camera.project`` of world points), independently of the registration's code.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from unimrseg_core.bags.rig import rig_calibration
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.rig import DEMO_RIG, RigSample
from unimrseg_core.data.splits import TEST_SEED
from unimrseg_core.registration import (
    Registrar,
    RegistrationConfig,
    Transform,
    plane_homography,
    register_depth,
    sampling_maps,
)
from unimrseg_core.registration.reproject import project_depth

SIZE = (120, 160)
SCENES = (0, 1, 2)


@pytest.fixture(scope="module")
def samples() -> list[RigSample]:
    generator = SceneGenerator(SIZE, TEST_SEED)
    return [generator.sample_rig(i, DEMO_RIG, ["day"]) for i in SCENES]


def world_points(sample: RigSample, modality: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The surface points a camera sees at these pixels, from its noise-free depth (world frame)."""
    camera = sample.cameras[modality]
    t = sample.truth_depth[modality][rows, cols].astype(np.float64)
    return camera.origin.astype(np.float64) + t[:, None] * camera.dirs[rows, cols].astype(np.float64)


def camera_info(intrinsics) -> SimpleNamespace:
    """A CameraInfo-shaped message of these intrinsics (what the bag and the node carry)."""
    fields = intrinsics.camera_info_fields()
    roi = SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0)
    return SimpleNamespace(**fields, binning_x=0, binning_y=0, roi=roi)


def registrar_for(sample: RigSample, *, skip: tuple[str, ...] = (), **config) -> Registrar:
    """A registrar told the rig's exact calibration (CameraInfo and extrinsics), except ``skip``."""
    calibration = rig_calibration(sample.cameras, sample.anchor)
    extrinsics = {m: c.anchor_from_sensor for m, c in calibration.items() if m != sample.anchor}
    registrar = Registrar(RegistrationConfig(reference=sample.anchor, extrinsics=extrinsics, **config))
    for modality, c in calibration.items():
        if modality not in skip:
            registrar.camera_info(modality, camera_info(c.intrinsics))
    return registrar


def depth_pixel_errors(sample: RigSample, anchor_from_depth: Transform) -> np.ndarray:
    """For every valid depth pixel: distance (anchor pixels) between the pixel registration writes
    it to and where the renderer says its surface lies in the anchor camera."""
    calibration = rig_calibration(sample.cameras, sample.anchor)
    depth, anchor = calibration["depth"].intrinsics, calibration[sample.anchor].intrinsics
    rows, cols, uv, _, _ = project_depth(sample.depth, depth, anchor, anchor_from_depth)
    seen = np.isfinite(sample.truth_depth["depth"][rows, cols])
    truth, _ = sample.cameras[sample.anchor].project(world_points(sample, "depth", rows[seen], cols[seen]))
    return np.linalg.norm(np.rint(uv[seen]) - truth, axis=1)


def test_depth_lands_within_a_pixel_of_its_surface_with_exact_calibration(samples):
    for sample in samples:
        exact = rig_calibration(sample.cameras, sample.anchor)["depth"].anchor_from_sensor
        errors = depth_pixel_errors(sample, exact)
        assert errors.size > 0.5 * (sample.depth > 0).sum()  # (a wider depth camera sees more)
        # rounding to the pixel grid alone gives about 0.4 px; depth noise adds little
        assert np.median(errors) <= 1.0, np.median(errors)
        assert np.percentile(errors, 90) <= 1.5
        # the same measure sees a wrong extrinsic: the transform the other way round
        assert np.median(depth_pixel_errors(sample, exact.inverse())) > 1.5


def test_registered_depth_matches_the_anchor_cameras_own_depth(samples):
    for sample in samples:
        registrar = registrar_for(sample)
        plan = registrar.plan("rgb", {m: image.shape[:2] for m, image in sample.images.items()})
        assert plan.outcomes["depth"].method == "reprojected"
        registered = plan.apply(sample.images)["depth"]
        assert registered.shape == SIZE
        assert registered.dtype == np.float32
        truth = sample.truth_depth["rgb"]
        both = (registered > 0) & np.isfinite(truth)
        close = np.abs(registered[both] - truth[both]) <= 0.05 * truth[both] + 0.05
        resized = cv2.resize(sample.depth, SIZE[::-1], interpolation=cv2.INTER_NEAREST)
        both_resized = (resized > 0) & np.isfinite(truth)
        close_resized = (
            np.abs(resized[both_resized] - truth[both_resized]) <= 0.05 * truth[both_resized] + 0.05
        )
        assert close.mean() >= 0.9, close.mean()
        assert close.mean() > close_resized.mean() + 0.1
        # with hole filling, a coarser depth camera leaves no grid of holes in the anchor's pixels
        assert (registered > 0).mean() >= 0.9 * (sample.depth > 0).mean()


def test_thermal_is_sampled_where_the_registered_depth_puts_each_surface(samples):
    for sample in samples:
        calibration = rig_calibration(sample.cameras, sample.anchor)
        anchor, thermal = calibration["rgb"].intrinsics, calibration["thermal"].intrinsics
        depth = register_depth(
            sample.depth,
            calibration["depth"].intrinsics,
            anchor,
            calibration["depth"].anchor_from_sensor,
            fill_upsampling_holes=True,
        )
        thermal_from_anchor = calibration["thermal"].anchor_from_sensor.inverse()
        map_x, map_y, valid = sampling_maps(depth, anchor, thermal, thermal_from_anchor)
        rows, cols = np.nonzero(valid & np.isfinite(sample.truth_depth["rgb"]))
        truth, _ = sample.cameras["thermal"].project(world_points(sample, "rgb", rows, cols))
        errors = np.linalg.norm(np.stack([map_x[rows, cols], map_y[rows, cols]], axis=1) - truth, axis=1)
        assert rows.size > 0.3 * valid.size
        assert np.median(errors) <= 1.0, np.median(errors)

        registrar = registrar_for(sample)
        plan = registrar.plan("rgb", {m: image.shape[:2] for m, image in sample.images.items()})
        assert plan.outcomes["thermal"].method == "via_depth"
        registered = plan.apply(sample.images)["thermal"]
        assert registered.shape == SIZE
        assert registered.dtype == np.float32
        # the same image sampled at the true positions: the plan's is close, a resize is not
        rows, cols = np.nonzero(np.isfinite(sample.truth_depth["rgb"]))
        truth, _ = sample.cameras["thermal"].project(world_points(sample, "rgb", rows, cols))
        inside = (truth[:, 0] > 1) & (truth[:, 0] < 78) & (truth[:, 1] > 1) & (truth[:, 1] < 58)
        true_k = cv2.remap(
            sample.thermal,
            truth[inside, 0:1].astype(np.float32),
            truth[inside, 1:2].astype(np.float32),
            cv2.INTER_LINEAR,
        ).ravel()
        resized = cv2.resize(sample.thermal, SIZE[::-1], interpolation=cv2.INTER_LINEAR)
        plan_error = np.median(np.abs(registered[rows[inside], cols[inside]] - true_k))
        resize_error = np.median(np.abs(resized[rows[inside], cols[inside]] - true_k))
        assert plan_error < 0.5 * resize_error, (plan_error, resize_error)


def test_without_depth_thermal_goes_by_the_plane_or_a_calibrated_homography(samples):
    sample = samples[0]
    calibration = rig_calibration(sample.cameras, sample.anchor)
    anchor, thermal = calibration["rgb"].intrinsics, calibration["thermal"].intrinsics
    anchor_from_thermal = calibration["thermal"].anchor_from_sensor
    sizes = {m: sample.images[m].shape[:2] for m in ("rgb", "thermal")}

    computed = registrar_for(sample).plan("rgb", sizes)
    assert computed.outcomes["thermal"].method == "homography"
    assert "plane at 5 m: no depth in the frame" in computed.outcomes["thermal"].reason

    h = plane_homography(thermal, anchor, anchor_from_thermal, 5.0)
    calibrated = registrar_for(sample, skip=("rgb", "thermal", "depth"), homographies={"thermal": h}).plan(
        "rgb", sizes
    )
    assert calibrated.outcomes["thermal"].method == "homography"
    assert calibrated.outcomes["thermal"].reason == "calibrated 3x3"
    images = {m: sample.images[m] for m in sizes}
    by_plane, by_matrix = computed.apply(images)["thermal"], calibrated.apply(images)["thermal"]
    assert by_plane.shape == by_matrix.shape == SIZE
    # one plane two ways: the same image but where the border repeats
    np.testing.assert_allclose(by_plane[5:-5, 5:-5], by_matrix[5:-5, 5:-5], atol=0.05)

    # a plane is right near its distance: surfaces at 4-7 m land within a pixel
    map_x, map_y, _ = sampling_maps(5.0, anchor, thermal, anchor_from_thermal.inverse())
    distance = sample.truth_depth["rgb"]
    rows, cols = np.nonzero((distance > 4.0) & (distance < 7.0))
    truth, _ = sample.cameras["thermal"].project(world_points(sample, "rgb", rows, cols))
    errors = np.linalg.norm(np.stack([map_x[rows, cols], map_y[rows, cols]], axis=1) - truth, axis=1)
    assert rows.size > 100
    assert np.median(errors) <= 1.0


def test_depth_as_the_anchor_brings_rgb_and_thermal_into_the_depth_camera(samples):
    sample = samples[1]
    plan = registrar_for(sample).plan("depth", {m: image.shape[:2] for m, image in sample.images.items()})
    assert plan.outcomes == {
        "rgb": plan.outcomes["rgb"],
        "depth": plan.outcomes["depth"],
        "thermal": plan.outcomes["thermal"],
    }
    assert [o.method for o in plan.outcomes.values()] == ["via_depth", "anchor", "via_depth"]
    out = plan.apply(sample.images)
    assert out["rgb"].shape == (*sample.depth.shape, 3)
    assert out["thermal"].shape == sample.depth.shape
    assert out["depth"] is sample.images["depth"]
