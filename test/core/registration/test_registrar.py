"""The registrar's decisions: what is registered how, and every fallback to resizing with its reason."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from unimrseg_core.registration import CalibrationError, Intrinsics, Registrar, RegistrationConfig, Transform

ANCHOR = Intrinsics.pinhole(320, 240, 280.0, 280.0, 159.5, 119.5)
DEPTH = Intrinsics.pinhole(240, 180, 160.0, 160.0, 119.5, 89.5)
THERMAL = Intrinsics.pinhole(160, 120, 150.0, 150.0, 79.5, 59.5)
EXTRINSICS = {
    "depth": Transform.from_quaternion([-0.05, 0.0, 0.0], [0, 0, 0, 1]),
    "thermal": Transform.from_quaternion([0.04, -0.06, 0.01], [0.0087, 0.013, 0.0, 0.99988]),
}
SIZES = {"rgb": (240, 320), "depth": (180, 240), "thermal": (120, 160)}


def info(intrinsics: Intrinsics, **overrides) -> SimpleNamespace:
    roi = SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0)
    return SimpleNamespace(
        **{**intrinsics.camera_info_fields(), "binning_x": 0, "binning_y": 0, "roi": roi, **overrides}
    )


def calibrated(skip: tuple[str, ...] = (), **config) -> Registrar:
    registrar = Registrar(RegistrationConfig(**{"extrinsics": EXTRINSICS, **config}))
    for modality, intrinsics in (("rgb", ANCHOR), ("depth", DEPTH), ("thermal", THERMAL)):
        if modality not in skip:
            registrar.camera_info(modality, info(intrinsics))
    return registrar


def images(sizes=SIZES) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "rgb": rng.integers(0, 255, (*sizes["rgb"], 3), dtype=np.uint8),
        "depth": rng.uniform(1.0, 9.0, sizes["depth"]).astype(np.float32),
        "thermal": rng.uniform(280, 310, sizes["thermal"]).astype(np.float32),
    }


def test_everything_calibrated_registers_every_modality():
    plan = calibrated().plan("rgb", SIZES)
    assert {m: o.method for m, o in plan.outcomes.items()} == {
        "rgb": "anchor",
        "depth": "reprojected",
        "thermal": "via_depth",
    }
    out = plan.apply(images())
    assert out["depth"].shape == (240, 320)
    assert out["thermal"].shape == (240, 320)
    assert out["rgb"].shape == (240, 320, 3)
    assert plan.anchor_intrinsics == ANCHOR


@pytest.mark.parametrize(
    ("skip", "config", "modality", "reason"),
    [
        (("thermal",), {}, "thermal", "no CameraInfo for thermal"),
        (("rgb",), {}, "depth", "no CameraInfo for rgb"),
        (
            (),
            {"extrinsics": {"depth": EXTRINSICS["depth"]}},
            "thermal",
            "no extrinsic for thermal relative to rgb",
        ),
        ((), {"extrinsics": {}}, "depth", "no extrinsic for depth relative to rgb"),
        ((), {"enabled": False}, "thermal", "registration is off"),
    ],
)
def test_missing_calibration_falls_back_to_resizing_and_says_why(skip, config, modality, reason):
    registrar = calibrated(skip, **config)
    plan = registrar.plan("rgb", SIZES)
    outcome = plan.outcomes[modality]
    assert outcome.method == "resized"
    assert not outcome.registered
    assert outcome.reason == reason
    assert outcome.text == f"resized: {reason}"
    assert registrar.last[modality] == outcome  # what /diagnostics reports
    given = images()
    assert plan.apply(given)[modality] is given[modality]  # as it came: the model's resize follows


def test_thermal_without_registered_depth_goes_by_the_plane():
    plan = calibrated(("depth",)).plan("rgb", SIZES)
    assert plan.outcomes["depth"].method == "resized"
    assert plan.outcomes["thermal"].method == "homography"
    assert plan.outcomes["thermal"].reason == "plane at 5 m: depth not registered"
    assert plan.apply(images())["thermal"].shape == (240, 320)


def test_a_bad_camera_info_is_refused_and_its_calibration_forgotten():
    registrar = calibrated()
    with pytest.raises(CalibrationError, match="positive focal"):
        registrar.camera_info("thermal", info(THERMAL, k=[0.0, 0, 79.5, 0, 150, 59.5, 0, 0, 1]))
    outcome = registrar.plan("rgb", SIZES).outcomes["thermal"]
    assert outcome.method == "resized"
    assert outcome.reason.startswith("CameraInfo for thermal refused: K must have positive focal")
    with pytest.raises(CalibrationError, match="AttributeError"):
        registrar.camera_info("depth", SimpleNamespace(width=3))  # not a CameraInfo at all
    assert (
        registrar.plan("rgb", SIZES)
        .outcomes["depth"]
        .reason.startswith("CameraInfo for depth refused: AttributeError")
    )
    registrar.camera_info("depth", info(DEPTH))  # good ones again: registered again
    registrar.camera_info("thermal", info(THERMAL))
    assert registrar.plan("rgb", SIZES).outcomes["thermal"].method == "via_depth"


def test_camera_info_of_another_resolution_is_scaled_to_the_image():
    registrar = calibrated()
    registrar.camera_info("thermal", info(THERMAL.scaled(640, 480)))  # calibrated at full resolution
    plan = registrar.plan("rgb", SIZES)
    assert plan.outcomes["thermal"].method == "via_depth"
    assert plan.steps["thermal"].source == THERMAL.scaled(640, 480).scaled(160, 120)
    np.testing.assert_allclose(plan.steps["thermal"].source.k, THERMAL.k, atol=1e-12)


def test_camera_info_of_another_aspect_ratio_is_not_used():
    registrar = calibrated()
    registrar.camera_info("thermal", info(Intrinsics.pinhole(640, 360, 500.0, 500.0, 319.5, 179.5)))
    outcome = registrar.plan("rgb", SIZES).outcomes["thermal"]
    assert outcome.method == "resized"
    assert "the thermal image is 120x160, its CameraInfo 360x640 (another aspect ratio" in outcome.reason


def test_a_calibrated_homography_needs_no_camera_info_and_composes_for_another_anchor():
    shift = np.array([[2.0, 0, 3.0], [0, 2.0, -1.0], [0, 0, 1]])  # thermal pixels -> rgb pixels
    registrar = Registrar(RegistrationConfig(homographies={"thermal": shift}))
    sizes = {"rgb": (240, 320), "thermal": (120, 160)}
    plan = registrar.plan("rgb", sizes)
    assert plan.outcomes["thermal"].method == "homography"
    np.testing.assert_allclose(plan.steps["thermal"].homography, shift)
    thermal = np.zeros((120, 160), np.float32)
    thermal[60, 80] = 100.0
    out = plan.apply({"rgb": np.zeros((240, 320, 3), np.uint8), "thermal": thermal})["thermal"]
    assert np.unravel_index(np.argmax(out), out.shape) == (119, 163)  # (80, 60) -> (163, 119)
    # thermal anchoring, rgb into thermal: the inverse
    back = registrar.plan("thermal", sizes)
    np.testing.assert_allclose(back.steps["rgb"].homography, np.linalg.inv(shift))


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"homographies": {"thermal": np.zeros((3, 3))}}, "singular"),
        ({"homographies": {"thermal": [1, 2, 3]}}, "9 finite numbers"),
        ({"reference": "sonar"}, "reference 'sonar'"),
        ({"extrinsics": {"lidar": Transform.identity()}}, "unknown modality"),
        ({"plane_m": 0.0}, "plane distance"),
    ],
)
def test_a_bad_registration_config_is_refused(config, words):
    with pytest.raises(CalibrationError, match=words):
        RegistrationConfig(**config)
