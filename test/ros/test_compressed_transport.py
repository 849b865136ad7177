"""The node fed CompressedImages over DDS, as a robot's image_transport pipeline feeds it.

Three simulated cameras (``unimrseg_ros.sensor_sim --transport compressed``, each its own
process) publish on ``<modality>/image/compressed`` exactly as image_transport's compressed
plugin lays the messages out (rgb JPEG quality 95, depth and thermal 16-bit PNG); the node
(``unimrseg_node``, its own process) runs with ``<modality>.transport: compressed`` for all
three. Its masks must be what the Segmenter gives on the decoded compressed images, and agree
with the raw-transport masks of the same frames within what JPEG loss explains.

The bound, measured on the simulator's scenes (seed 11, 240x320, in-process, 2026-12-04):
PNG depth and thermal are lossless (bit-identical); JPEG rgb moves pixels by 3.1 levels on
average, and the class masks of the two transports agree on 98.6-99.7 % of the pixels, the
saliency probability by 0.0001-0.0025 on average. The test asks >= 97 % and <= 0.01.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from node_rig import (  # test/ros is on sys.path (pytest's rootdir-relative import)
    SIM_SCENES,
    SIM_SEED,
    SIZE,
    Listener,
    Process,
    Sim,
    start_node,
)
from waits import wait_for

from unimrseg_core import topics
from unimrseg_core.modalities import MODALITIES

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

ALL = "+".join(MODALITIES)
MIN_CLASS_AGREEMENT = 0.97
MAX_SALIENCY_MAE = 0.01


def sim_encodings() -> dict[str, str]:
    """The simulator's raw transport encodings (imported late: the module needs rclpy)."""
    from unimrseg_ros.sensor_sim import ENCODING

    return dict(ENCODING)


@pytest.fixture
def compressed_rig(ros_env: dict[str, str], tmp_path) -> Iterator[tuple[Listener, Sim, Process]]:
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    listener = Listener(context)
    transports = [arg for m in MODALITIES for arg in ("-p", f"{m}.transport:=compressed")]
    node = start_node(ros_env, tmp_path, *transports)
    sim = Sim(ros_env, tmp_path, "--transport", "compressed")
    try:
        yield listener, sim, node
    finally:
        began = time.monotonic()
        sim.stop()
        node.stop()
        listener.close()
        rclpy.shutdown(context=context)
        print(f"rig teardown took {time.monotonic() - began:.1f} s")


def _frames_per_scene(listener: Listener, sim: Sim) -> dict[int, int] | None:
    """One output stamp per simulator scene with its class and saliency masks, from all three cameras."""
    scene_of = {t["stamp_ns"]: t["scene"] for t in sim.ticks() if t.get("transport") == "compressed"}
    used = {s.stamp_ns: s.used for s in listener.status_list()}
    masks, probability = listener.data_of(topics.CLASS_MASK), listener.data_of(topics.SALIENCY_PROBABILITY)
    chosen: dict[int, int] = {}
    for stamp in masks:
        if stamp in probability and used.get(stamp) == ALL and stamp in scene_of:
            chosen.setdefault(scene_of[stamp], stamp)
    return chosen if len(chosen) >= 2 else None


def test_compressed_inputs_give_the_raw_masks_within_jpeg_loss(
    compressed_rig: tuple[Listener, Sim, Process],
) -> None:
    from sensor_msgs.msg import Image

    from unimrseg_core.compressed_msg import decode_compressed, encode_compressed
    from unimrseg_core.data.generator import SceneGenerator
    from unimrseg_core.image_msg import decode, encode
    from unimrseg_core.runtime.segmenter import Segmenter
    from unimrseg_core.runtime.selection import select_backend

    listener, sim, node = compressed_rig

    def logs() -> str:
        return f"----- node -----\n{node.text()[-6000:]}\n----- sim -----\n{sim.text()}"

    chosen = wait_for(lambda: _frames_per_scene(listener, sim), 90)
    assert chosen is not None, logs()
    # the cameras publish on <modality>/image/compressed only: frames of all three prove the subscriptions
    masks = listener.data_of(topics.CLASS_MASK)
    probability = listener.data_of(topics.SALIENCY_PROBABILITY)

    generator = SceneGenerator(SIZE, seed=SIM_SEED)
    segmenter = Segmenter(select_backend("onnxruntime").backend)
    for scene, stamp in chosen.items():
        assert scene < SIM_SCENES
        sample = generator.sample(scene, ["day"])
        raw, compressed = {}, {}
        for m, encoding in sim_encodings().items():
            raw[m] = decode(Image(**encode(getattr(sample, m), encoding, modality=m)), m)
            fmt, data = encode_compressed(getattr(sample, m), m, "compressed")
            compressed[m] = decode_compressed(SimpleNamespace(format=fmt, data=data), m)
        ids = np.frombuffer(masks[stamp], np.uint8).reshape(SIZE)
        prob = np.frombuffer(probability[stamp], np.float32).reshape(SIZE)

        # the node decoded the CompressedImages as the core does: the Segmenter's masks on them
        on_compressed = segmenter.segment(**compressed)
        assert np.mean(ids == on_compressed.class_ids) >= 0.999
        np.testing.assert_allclose(prob, on_compressed.saliency, atol=1e-3)

        # and what the raw transport gives on the same frame, within JPEG's loss
        on_raw = segmenter.segment(**raw)
        agreement = float(np.mean(ids == on_raw.class_ids))
        saliency_mae = float(np.abs(prob - on_raw.saliency).mean())
        print(f"scene {scene}: class agreement {agreement:.4f}, saliency MAE {saliency_mae:.5f} vs raw")
        assert agreement >= MIN_CLASS_AGREEMENT, (scene, agreement)
        assert saliency_mae <= MAX_SALIENCY_MAE, (scene, saliency_mae)
        np.testing.assert_array_equal(compressed["depth"], raw["depth"])  # PNG is lossless
        np.testing.assert_array_equal(compressed["thermal"], raw["thermal"])
