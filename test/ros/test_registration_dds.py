"""The node registering offset cameras over DDS: CameraInfo from the cameras' processes, masks with theirs.

Three simulated cameras (``unimrseg_ros.sensor_sim --rig``, each its own process) render the
world through their own cameras of ``data.rig.DEMO_RIG`` (depth 180x240 and 5 cm to the
side, thermal 120x160 above and pitched down, rgb 240x320 the anchor) and publish
``<modality>/camera_info`` before every image; the node (``unimrseg_node``, its own process)
gets the extrinsics as parameters (``<modality>.extrinsic``), as on a robot without tf2_msgs.
The masks must be the Segmenter's on the images registered into the rgb camera, the mask
CameraInfo the rgb camera's with the mask's header, and /diagnostics must say how each
sensor was registered.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from node_rig import SIM_SCENES, SIM_SEED, SIZE, Listener, Process, Sim, stamp_ns, start_node
from waits import wait_for

from unimrseg_core import topics
from unimrseg_core.modalities import MODALITIES

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

ALL = "+".join(MODALITIES)


class MaskInfos:
    """segmentation/camera_info as the listener's node receives it: (stamp, frame_id, size, K)."""

    def __init__(self, listener: Listener) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo

        self._lock = threading.Lock()
        self.received: dict[int, tuple[str, int, int, tuple[float, ...]]] = {}
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        listener.node.create_subscription(CameraInfo, topics.MASK_CAMERA_INFO, self._on_info, qos)

    def _on_info(self, msg) -> None:
        with self._lock:
            self.received[stamp_ns(msg.header)] = (msg.header.frame_id, msg.height, msg.width, tuple(msg.k))

    def get(self) -> dict[int, tuple[str, int, int, tuple[float, ...]]]:
        with self._lock:
            return dict(self.received)


@pytest.fixture
def registered_rig(ros_env: dict[str, str], tmp_path) -> Iterator[tuple[Listener, MaskInfos, Sim, Process]]:
    from unimrseg_ros.sensor_sim import rig_extrinsic

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    listener = Listener(context)
    infos = MaskInfos(listener)
    extrinsics = [arg for m in ("depth", "thermal") for arg in ("-p", f"{m}.extrinsic:={rig_extrinsic(m)}")]
    node = start_node(ros_env, tmp_path, *extrinsics)
    sim = Sim(ros_env, tmp_path, "--rig")
    try:
        yield listener, infos, sim, node
    finally:
        sim.stop()
        node.stop()
        listener.close()
        rclpy.shutdown(context=context)


def _registered_diagnostics(listener: Listener) -> dict[str, str] | None:
    diags = {m: listener.diag(m) for m in MODALITIES}
    if any(d is None or "registration" not in d.values for d in diags.values()):
        return None
    found = {m: d.values["registration"] for m, d in diags.items()}  # type: ignore[union-attr]
    wanted = ("anchor", "reprojected into rgb", "via_depth into rgb")
    return found if all(found[m].startswith(w) for m, w in zip(MODALITIES, wanted, strict=True)) else None


def _frames_per_scene(listener: Listener, infos: MaskInfos, sim: Sim) -> dict[int, int] | None:
    """Per scene, one output stamp with class mask, saliency and mask CameraInfo, from all three cameras."""
    scene_of = {t["stamp_ns"]: t["scene"] for t in sim.ticks("rgb")}
    used = {s.stamp_ns: s.used for s in listener.status_list()}
    masks, probability, info = (
        listener.data_of(topics.CLASS_MASK),
        listener.data_of(topics.SALIENCY_PROBABILITY),
        infos.get(),
    )
    chosen: dict[int, int] = {}
    for stamp in masks:
        if stamp in probability and stamp in info and used.get(stamp) == ALL and stamp in scene_of:
            chosen.setdefault(scene_of[stamp], stamp)
    return chosen if len(chosen) >= 2 else None


def test_offset_cameras_are_registered_into_the_anchor_and_the_masks_carry_its_camera_info(
    registered_rig: tuple[Listener, MaskInfos, Sim, Process],
) -> None:
    from unimrseg_core.bags.rig import rig_calibration
    from unimrseg_core.data.generator import SceneGenerator
    from unimrseg_core.data.rig import DEMO_RIG
    from unimrseg_core.registration import Registrar, RegistrationConfig
    from unimrseg_core.runtime.segmenter import Segmenter
    from unimrseg_core.runtime.selection import select_backend

    listener, infos, sim, node = registered_rig

    def logs() -> str:
        return f"----- node -----\n{node.text()[-6000:]}\n----- sim -----\n{sim.text()}"

    diagnostics = wait_for(lambda: _registered_diagnostics(listener), 90)
    assert diagnostics is not None, logs()
    chosen = wait_for(lambda: _frames_per_scene(listener, infos, sim), 60)
    assert chosen is not None, logs()

    generator = SceneGenerator(SIZE, seed=SIM_SEED)
    segmenter = Segmenter(select_backend("onnxruntime").backend)
    masks = listener.data_of(topics.CLASS_MASK)
    mask_info = infos.get()
    samples = [generator.sample_rig(scene, DEMO_RIG, ["day"]) for scene in range(SIM_SCENES)]
    calibrations = [rig_calibration(sample.cameras, "rgb") for sample in samples]
    rgb_k = [tuple(c["rgb"].intrinsics.k.ravel()) for c in calibrations]
    compared = 0
    for scene, stamp in chosen.items():
        sample, calibration = samples[scene], calibrations[scene]
        # the masks' CameraInfo: the rgb camera's (the masks are at its size), the mask's header
        frame_id, height, width, k = mask_info[stamp]
        assert frame_id == "sim_rgb_optical_frame"
        assert (height, width) == SIZE
        assert k in rgb_k  # (the rgb CameraInfo of this or, rarely, the previous scene)

        # the node's masks are the Segmenter's on the images registered into the rgb camera
        extrinsics = {m: calibration[m].anchor_from_sensor for m in ("depth", "thermal")}
        registrar = Registrar(RegistrationConfig(extrinsics=extrinsics))
        for m, c in calibration.items():
            fields = c.intrinsics.camera_info_fields()
            roi = SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0)
            registrar.camera_info(m, SimpleNamespace(**fields, binning_x=0, binning_y=0, roi=roi))
        plan = registrar.plan("rgb", {m: image.shape[:2] for m, image in sample.images.items()})
        expected = segmenter.segment(**plan.apply(sample.images)).class_ids
        unregistered = segmenter.segment(**sample.images).class_ids
        ids = np.frombuffer(masks[stamp], np.uint8).reshape(SIZE)
        agreement = float(np.mean(ids == expected))
        print(
            f"scene {scene}: agreement with the registered frame {agreement:.4f}, "
            f"with the unregistered one {np.mean(ids == unregistered):.4f}"
        )
        if k == rgb_k[scene]:  # registered with this scene's calibration
            assert agreement >= 0.99, (scene, agreement)
            compared += 1
    assert compared >= 1, logs()
