"""FramePipeline: the ROS-free path from Image messages to frames, as the node and bag evaluation drive it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.health import HealthConfig, HealthState
from unimrseg_core.image_msg import fill_msg
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.model.checkpoint import SHIPPED
from unimrseg_core.pipeline import FramePipeline, stamp_ns
from unimrseg_core.runtime.backends import TorchBackend
from unimrseg_core.runtime.segmenter import Segmenter
from unimrseg_core.sync import NO_MESSAGE, SyncConfig

ENCODING = {"rgb": "rgb8", "depth": "32FC1", "thermal": "32FC1"}
PERIOD_NS = 100_000_000  # 10 Hz cameras
START_NS = 1_000_000_000_000


@pytest.fixture(scope="module")
def scenes():
    gen = SceneGenerator((64, 80), seed=7)
    return [gen.sample(i) for i in range(4)]


def message(modality: str, image: np.ndarray, t_ns: int) -> SimpleNamespace:
    """An Image message as rclpy and rosbags have it (duck-typed: header, encoding, size, data)."""
    sec, nanosec = divmod(t_ns, 1_000_000_000)
    header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=f"{modality}_link")
    return fill_msg(SimpleNamespace(), image, ENCODING[modality], modality=modality, header=header)


def feed(pipeline: FramePipeline, scenes, instants: int, skip: tuple[str, ...] = (), start: int = 0):
    """Every camera of every instant (10 Hz), in modality order, with a poll in between; all steps."""
    steps = []
    for i in range(start, start + instants):
        t = START_NS + i * PERIOD_NS
        scene = scenes[i % len(scenes)]
        for k, modality in enumerate(MODALITIES):
            if modality in skip:
                continue
            image = getattr(scene, modality)
            steps.append(pipeline.receive(modality, message(modality, image, t), receive_ns=t + k, payload=i))
        steps.append(pipeline.poll(t + PERIOD_NS // 2))
    return steps


def test_messages_become_frames_with_their_images_mask_and_payloads(scenes):
    pipeline: FramePipeline[int] = FramePipeline(HealthConfig(), SyncConfig())
    steps = feed(pipeline, scenes, 12)
    frames = [f for s in steps for f in s.frames]
    assert frames, "healthy 10 Hz cameras give frames"
    last = frames[-1]
    assert last.used.name == "rgb+depth+thermal"
    np.testing.assert_array_equal(last.used.mask, [1, 1, 1])
    index = last.messages["rgb"].payload
    for modality in MODALITIES:
        np.testing.assert_array_equal(last.images[modality], getattr(scenes[index % len(scenes)], modality))
    assert last.anchor_image.shape == (64, 80, 3)
    accepted = [s.accepted for s in steps if s.accepted is not None]
    assert len(accepted) == 36
    assert accepted[0].stamp_ns == START_NS


def test_health_transitions_and_idle_changes_come_out_of_the_steps(scenes):
    pipeline: FramePipeline[int] = FramePipeline(HealthConfig(), SyncConfig(anchor_priority=("rgb",)))
    steps = feed(pipeline, scenes, 6)
    ok = [t for s in steps for t in s.transitions if t.new is HealthState.OK]
    assert {t.modality for t in ok} == set(MODALITIES)
    assert any(s.idle_changed and s.idle_reason is None for s in steps)
    # rgb goes silent: rgb LOST comes out once, output stops (rgb is the only anchor)
    quiet = feed(pipeline, scenes, 20, skip=("rgb",), start=6)
    lost = [t for s in quiet for t in s.transitions if t.new is HealthState.LOST]
    assert [t.modality for t in lost] == ["rgb"]
    stopped = [s for s in quiet if s.idle_changed]
    assert len(stopped) == 1
    assert stopped[0].idle_reason not in (None, NO_MESSAGE)
    assert "rgb" in stopped[0].idle_reason


def test_a_frame_without_an_unhealthy_modality_says_why_in_its_notes(scenes):
    pipeline: FramePipeline[int] = FramePipeline(HealthConfig(), SyncConfig())
    feed(pipeline, scenes, 8)
    frozen = scenes[0].thermal  # a frozen driver resends one image
    notes = []
    for i in range(8, 20):
        t = START_NS + i * PERIOD_NS
        for k, modality in enumerate(MODALITIES):
            image = frozen if modality == "thermal" else getattr(scenes[i % len(scenes)], modality)
            step = pipeline.receive(modality, message(modality, image, t), receive_ns=t + k, payload=i)
            notes += [f.notes for f in step.frames]
        pipeline.poll(t + PERIOD_NS // 2)
    assert any("thermal" in n and n["thermal"].startswith("DEGRADED") for n in notes)


def test_a_malformed_message_is_a_rejection_not_an_exception(scenes):
    pipeline: FramePipeline[int] = FramePipeline()
    bad = message("depth", scenes[0].depth, START_NS)
    bad.data = bad.data[:-7]
    step = pipeline.receive("depth", bad, receive_ns=START_NS, payload=0)
    assert step.rejected is not None
    assert step.rejected.modality == "depth"
    assert step.rejected.reason
    assert step.accepted is None
    assert step.frames == ()
    step = pipeline.receive("rgb", object(), receive_ns=START_NS, payload=0)
    assert step.rejected is not None
    assert step.rejected.reason == "bad_field"
    headless = message("rgb", scenes[0].rgb, START_NS)
    headless.header = None
    step = pipeline.receive("rgb", headless, receive_ns=START_NS, payload=0)
    assert step.rejected is not None
    assert step.rejected.reason == "decode_error"


def test_a_disabled_modality_is_ignored(scenes):
    pipeline: FramePipeline[int] = FramePipeline(sync=SyncConfig(enabled=("rgb", "depth")))
    steps = feed(pipeline, scenes, 6)
    frames = [f for s in steps for f in s.frames]
    assert all(set(f.used.modalities) <= {"rgb", "depth"} for f in frames)
    assert frames[-1].used.name == "rgb+depth"
    assert not any(s.accepted is not None and s.accepted.modality == "thermal" for s in steps)


def test_the_segmenter_runs_a_frame_with_the_frames_mask(scenes):
    pipeline: FramePipeline[int] = FramePipeline()
    frames = [f for s in feed(pipeline, scenes, 8, skip=("depth",)) for f in s.frames]
    segmenter = Segmenter(TorchBackend(SHIPPED))
    result = segmenter.segment_frame(frames[-1])
    assert result.used == frames[-1].used
    assert result.used.name == "rgb+thermal"
    assert result.class_ids.shape == frames[-1].anchor_image.shape[:2]
    direct = segmenter.segment(**frames[-1].images)
    np.testing.assert_array_equal(result.class_ids, direct.class_ids)


def test_stamp_ns_reads_a_header():
    header = SimpleNamespace(stamp=SimpleNamespace(sec=3, nanosec=5))
    assert stamp_ns(header) == 3_000_000_005
