"""FramePipeline with registration: CameraInfo in, frames in the anchor camera's pixels, reasons out."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from unimrseg_core.bags.rig import rig_calibration
from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.rig import DEMO_RIG, RigSample
from unimrseg_core.health import HealthConfig
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.pipeline import FramePipeline, RegisteredFrame
from unimrseg_core.registration import RegistrationConfig
from unimrseg_core.sync import SyncConfig

PERIOD_NS = 100_000_000
START_NS = 1_000_000_000_000


@pytest.fixture(scope="module")
def rigged() -> list[RigSample]:
    generator = SceneGenerator((96, 128), seed=11)
    return [generator.sample_rig(i, DEMO_RIG, ["day"]) for i in range(3)]


def camera_info(intrinsics) -> SimpleNamespace:
    roi = SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0)
    return SimpleNamespace(**intrinsics.camera_info_fields(), binning_x=0, binning_y=0, roi=roi)


def pipeline_for(sample: RigSample, **config) -> FramePipeline[int]:
    calibration = rig_calibration(sample.cameras, "rgb")
    extrinsics = {m: c.anchor_from_sensor for m, c in calibration.items() if m != "rgb"}
    return FramePipeline(
        HealthConfig(), SyncConfig(), registration=RegistrationConfig(extrinsics=extrinsics, **config)
    )


def run(pipeline: FramePipeline[int], samples: list[RigSample], instants: int) -> list:
    frames = []
    for i in range(instants):
        t = START_NS + i * PERIOD_NS
        sample = samples[i % len(samples)]
        for k, modality in enumerate(MODALITIES):
            step = pipeline.receive_image(modality, sample.images[modality], i, stamp_ns=t, receive_ns=t + k)
            frames.extend(step.frames)
        frames.extend(pipeline.poll(t + PERIOD_NS // 2).frames)
    return frames


def test_frames_come_registered_once_camera_info_is_known(rigged):
    pipeline = pipeline_for(rigged[0])
    before = run(pipeline, rigged, 12)
    assert before
    assert isinstance(before[-1], RegisteredFrame)
    # no CameraInfo yet: every companion is resized, and the status says so
    status = pipeline.status(START_NS + 12 * PERIOD_NS)
    assert status.registration["thermal"].method == "resized"
    assert status.registration["thermal"].reason == "no CameraInfo for thermal on thermal/camera_info"
    assert before[-1].images["thermal"].shape == rigged[0].thermal.shape

    for modality, calibration in rig_calibration(rigged[0].cameras, "rgb").items():
        assert pipeline.receive_camera_info(modality, camera_info(calibration.intrinsics)) is None
    after = run(pipeline, rigged, 12)
    frame = after[-1]
    assert frame.plan.outcomes["depth"].method == "reprojected"
    assert frame.plan.outcomes["thermal"].method == "via_depth"
    images = frame.images
    assert images["depth"].shape == images["thermal"].shape == (96, 128)
    assert frame.anchor_image is images["rgb"]
    assert frame.images is images  # reprojected once
    status = pipeline.status(START_NS + 24 * PERIOD_NS)
    assert {m: o.method for m, o in status.registration.items()} == {
        "rgb": "anchor",
        "depth": "reprojected",
        "thermal": "via_depth",
    }


def test_a_bad_camera_info_is_a_counted_rejection_and_its_modality_is_resized(rigged):
    pipeline = pipeline_for(rigged[0])
    for modality, calibration in rig_calibration(rigged[0].cameras, "rgb").items():
        pipeline.receive_camera_info(modality, camera_info(calibration.intrinsics))
    bad = camera_info(rig_calibration(rigged[0].cameras, "rgb")["thermal"].intrinsics)
    bad.k = [float("nan")] * 9
    rejection = pipeline.receive_camera_info("thermal", bad)
    assert rejection is not None
    assert rejection.reason == "bad_camera_info"
    assert "non-finite" in rejection.text
    frame = run(pipeline, rigged, 12)[-1]
    assert frame.plan.outcomes["thermal"].method == "resized"
    assert frame.plan.outcomes["thermal"].reason.startswith(
        "CameraInfo for thermal on thermal/camera_info refused"
    )
    assert frame.plan.outcomes["depth"].method == "reprojected"


def test_without_registration_frames_are_the_plain_frames(rigged):
    pipeline: FramePipeline[int] = FramePipeline(HealthConfig(), SyncConfig())
    frame = run(pipeline, rigged, 12)[-1]
    assert type(frame).__name__ == "Frame"
    assert frame.images["thermal"] is rigged[(12 - 1) % 3].thermal or frame.images["thermal"].shape == (
        48,
        64,
    )
    assert pipeline.receive_camera_info("thermal", object()) is None  # ignored: nothing to register
    assert pipeline.status(START_NS).registration == {}
