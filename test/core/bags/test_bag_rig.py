"""``bag make --rig``: a bag that looks like a robot's (offset cameras, CameraInfo per camera,
/tf_static), read back with rosbags, and registered with what the bag itself says."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from unimrseg_core.bags.messages import stamp_to_ns, typestore
from unimrseg_core.bags.rig import CAMERA_INFO_TYPE, TF_MESSAGE_TYPE
from unimrseg_core.bags.topics import SENSORS
from unimrseg_core.cli import main
from unimrseg_core.data.rig import DEMO_RIG
from unimrseg_core.image_msg import decode
from unimrseg_core.modalities import MODALITIES
from unimrseg_core.registration import Intrinsics, Registrar, RegistrationConfig, Transform
from unimrseg_core.topics import CAMERA_INFOS, TF_STATIC

SIZE = (64, 96)


def _read(path: Path) -> tuple[dict[str, str], dict[str, list[tuple[int, object]]]]:
    store = typestore()
    out: dict[str, list[tuple[int, object]]] = defaultdict(list)
    with Reader(path) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, ns, raw in reader.messages():
            out[connection.topic].append((ns, store.deserialize_cdr(raw, connection.msgtype)))
    return types, out


@pytest.fixture(scope="module")
def rig_bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rig") / "robot_bag"
    code = main(
        ["bag", "make", "--out", str(out), "--duration", "0.5", "--size", "64x96", "--rig", "--quiet"]
    )
    assert code == 0
    return out


def test_every_camera_has_its_own_size_and_a_camera_info_with_each_image(rig_bag):
    types, messages = _read(rig_bag)
    assert types[TF_STATIC] == TF_MESSAGE_TYPE
    for modality in MODALITIES:
        assert types[CAMERA_INFOS[modality]] == CAMERA_INFO_TYPE
        images, infos = messages[SENSORS[modality].topic], messages[CAMERA_INFOS[modality]]
        assert len(images) == len(infos) == 5
        for (image_ns, image), (info_ns, info) in zip(images, infos, strict=True):
            assert info_ns == image_ns  # recorded together, as a driver publishes them
            assert stamp_to_ns(info.header.stamp) == stamp_to_ns(image.header.stamp)
            assert info.header.frame_id == image.header.frame_id == SENSORS[modality].frame_id
            assert (info.height, info.width) == (image.height, image.width)
    sizes = {m: decode(messages[SENSORS[m].topic][0][1], m).shape[:2] for m in MODALITIES}
    assert sizes == {"rgb": SIZE, "depth": (48, 72), "thermal": (32, 48)}


def test_tf_static_holds_each_cameras_mount_in_the_anchor_frame(rig_bag):
    _, messages = _read(rig_bag)
    (_, tf), *more = messages[TF_STATIC]
    assert not more
    poses = {t.child_frame_id: t for t in tf.transforms}
    assert set(poses) == {SENSORS["depth"].frame_id, SENSORS["thermal"].frame_id}
    for modality, mount in DEMO_RIG.mounts.items():
        stamped = poses[SENSORS[modality].frame_id]
        assert stamped.header.frame_id == SENSORS["rgb"].frame_id
        t, q = stamped.transform.translation, stamped.transform.rotation
        np.testing.assert_allclose([t.x, t.y, t.z], mount.offset_m, atol=1e-9)
        pitch = np.degrees(2 * np.arcsin(-q.x))  # pitched down about x
        assert pitch == pytest.approx(mount.pitch_deg, abs=1e-6)


def test_the_bags_own_calibration_registers_its_frames(rig_bag):
    _, messages = _read(rig_bag)
    poses = {
        t.child_frame_id: Transform.from_quaternion(
            [t.transform.translation.x, t.transform.translation.y, t.transform.translation.z],
            [t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z, t.transform.rotation.w],
        )
        for t in messages[TF_STATIC][0][1].transforms
    }
    extrinsics = {m: poses[SENSORS[m].frame_id] for m in ("depth", "thermal")}
    registrar = Registrar(RegistrationConfig(extrinsics=extrinsics))
    for modality in MODALITIES:
        intrinsics = registrar.camera_info(modality, messages[CAMERA_INFOS[modality]][0][1])
        assert isinstance(intrinsics, Intrinsics)
    images = {m: decode(messages[SENSORS[m].topic][0][1], m) for m in MODALITIES}
    plan = registrar.plan("rgb", {m: image.shape[:2] for m, image in images.items()})
    assert [o.method for o in plan.outcomes.values()] == ["anchor", "reprojected", "via_depth"]
    out = plan.apply(images)
    assert out["depth"].shape == SIZE
    assert out["thermal"].shape == SIZE
    assert (out["depth"] > 0).mean() > 0.3


def test_a_bag_without_rig_has_no_camera_info_nor_tf(tmp_path):
    out = tmp_path / "plain"
    assert main(["bag", "make", "--out", str(out), "--duration", "0.2", "--size", "64x96", "--quiet"]) == 0
    types, _ = _read(out)
    assert TF_STATIC not in types
    assert not set(CAMERA_INFOS.values()) & set(types)
