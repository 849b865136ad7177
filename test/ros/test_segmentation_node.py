"""What a user sees from ``unimrseg_node`` over DDS, with cameras that fail and recover.

One node process (the ``unimrseg_node`` script with the shipped ``config/unimrseg.yaml``)
and one simulated camera rig process (``unimrseg_ros.sensor_sim``: generated scenes, rgb8 /
16UC1 mm / mono16 counts at 10 Hz, real stamps) on this module's own ROS domain; the
test listens in-process. The checks run in order on the same processes, each one
leaving the cameras healthy again.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from node_rig import (  # test/ros is on sys.path (pytest's rootdir-relative import)
    CONFIG,
    NODE_SCRIPT,
    ROS_KEYS,
    SIM_SCENES,
    SIM_SEED,
    SIZE,
    Listener,
    Process,
    Sim,
    start_node,
)
from waits import wait_for, wait_until

from unimrseg_core import topics
from unimrseg_core.modalities import CLASSES, MODALITIES

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

ALL = "rgb+depth+thermal"
PERIOD_NS = 100_000_000  # the simulator's 10 Hz
FRAME_IDS = {m: f"sim_{m}_optical_frame" for m in ("rgb", "depth", "thermal")}
WINDOW_TICKS = 30
"""Camera ticks in a window of outputs (3 s at 10 Hz)."""
OUTPUTS = (topics.CLASS_MASK, topics.COLORED_MASK, topics.SALIENCY_MASK, topics.SALIENCY_PROBABILITY)


@dataclass
class Rig:
    listener: Listener
    sim: Sim
    node: Process

    def logs(self) -> str:
        return f"----- node -----\n{self.node.text()[-6000:]}\n----- sim -----\n{self.sim.text()[-3000:]}"

    def tick_stamps(self, start_ns: int, end_ns: int, modality: str = "rgb") -> list[int]:
        return [t["stamp_ns"] for t in self.sim.ticks(modality) if start_ns <= t["stamp_ns"] <= end_ns]

    def statuses(self, start_ns: int, end_ns: int) -> list:
        return [s for s in self.listener.status_list() if start_ns <= s.stamp_ns <= end_ns]

    def handled(self, stamp_ns: int) -> bool:
        """The node is past ``stamp_ns``: a status and every image output stamped after it arrived."""
        after = [s for s in self.listener.status_list() if s.stamp_ns > stamp_ns]
        return bool(after) and all(
            any(r.stamp_ns > stamp_ns for r in self.listener.image_list(t)) for t in OUTPUTS
        )

    def wait_handled(self, stamp_ns: int) -> None:
        wait_until(lambda: self.handled(stamp_ns), 20, "outputs past the window", context=self.logs)

    def window(self, ticks: int = WINDOW_TICKS, modality: str = "rgb") -> tuple[int, int]:
        """Every camera healthy, then the next ``ticks`` ticks of ``modality``: the window from now to
        the last of them, returned once the node handled it (load may shed frames: counted as dropped)."""
        wait_until(self.listener.healthy, 20, "every camera OK before the window", context=self.logs)
        start = time.time_ns()

        def stamps() -> list[int] | None:
            found = self.tick_stamps(start, 2**63, modality)
            return found if len(found) >= ticks else None

        end = wait_until(stamps, ticks * PERIOD_NS / 1e9 + 20, f"{ticks} camera ticks")[ticks - 1]
        self.wait_handled(end)
        return start, end

    def wait_used(self, used: str, timeout: float = 5.0, n: int = 5) -> bool:
        """True once the last ``n`` output frames all used ``used``."""
        return bool(
            wait_for(
                lambda: len(s := self.listener.recent_statuses(n)) == n and all(x.used == used for x in s),
                timeout,
            )
        )

    def wait_state(self, modality: str, state: str, timeout: float = 5.0, after: float = 0.0):
        def reached():
            diag = self.listener.diag_after(modality, after)
            return diag if diag is not None and diag.values["state"] == state else None

        return wait_for(reached, timeout)


@pytest.fixture(scope="module")
def rig(module_ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("node_rig")
    env = module_ros_env
    with pytest.MonkeyPatch.context() as mp:
        for key in ROS_KEYS:
            mp.setenv(key, env[key])
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
        listener = Listener(context)
        node = start_node(env, tmp)
        sim = Sim(env, tmp)
        rig = Rig(listener, sim, node)
        try:
            if not rig.wait_used(ALL, timeout=90):
                pytest.fail(f"no complete output frames from the node\n{rig.logs()}")
            yield rig
        finally:
            began = time.monotonic()
            sim.stop()
            node.stop()
            listener.close()
            rclpy.shutdown(context=context)
            print(f"rig teardown took {time.monotonic() - began:.1f} s")


def test_masks_arrive_at_the_anchor_rate_with_the_anchor_header(rig: Rig) -> None:
    start, end = rig.window()
    ticks = rig.tick_stamps(start, end)
    statuses = rig.statuses(start, end)
    dropped = rig.listener.dropped(start, end)  # shed on a loaded machine, and counted
    assert len(ticks) == WINDOW_TICKS, rig.logs()
    assert len(statuses) + dropped >= 0.95 * len(ticks), (len(statuses), dropped, len(ticks), rig.logs())
    assert all(s.used == ALL and s.anchor == "rgb" and s.level == 0 for s in statuses)
    assert {s.stamp_ns for s in statuses} <= set(ticks)  # the anchor's stamp, never a new one
    assert {s.frame_id for s in statuses} == {FRAME_IDS["rgb"]}

    expected = {
        topics.CLASS_MASK: ("mono8", SIZE[1]),
        topics.COLORED_MASK: ("rgb8", SIZE[1] * 3),
        topics.SALIENCY_MASK: ("mono8", SIZE[1]),
        topics.SALIENCY_PROBABILITY: ("32FC1", SIZE[1] * 4),
    }
    status_stamps = {s.stamp_ns for s in statuses}
    for topic, (encoding, step) in expected.items():
        images = [r for r in rig.listener.image_list(topic) if start <= r.stamp_ns <= end]
        assert len(images) + dropped >= 0.95 * len(ticks), (topic, len(images), dropped, len(ticks))
        assert {(r.height, r.width, r.encoding, r.step, r.frame_id) for r in images} == {
            (*SIZE, encoding, step, FRAME_IDS["rgb"])
        }, topic
        assert {r.stamp_ns for r in images} <= set(ticks)
        assert len(status_stamps & {r.stamp_ns for r in images}) >= 0.9 * len(images)  # same header


def test_mask_values_agree_with_the_segmenter_on_the_same_frame(rig: Rig) -> None:
    from sensor_msgs.msg import Image

    from unimrseg_core.data.generator import SceneGenerator
    from unimrseg_core.image_msg import decode, encode
    from unimrseg_core.runtime.segmenter import Segmenter
    from unimrseg_core.runtime.selection import select_backend

    scene_of = {t["stamp_ns"]: t["scene"] for t in rig.sim.ticks()}
    used = {s.stamp_ns: s.used for s in rig.listener.status_list()}
    masks = rig.listener.data_of(topics.CLASS_MASK)
    saliency = rig.listener.data_of(topics.SALIENCY_MASK)
    probability = rig.listener.data_of(topics.SALIENCY_PROBABILITY)
    stamps = [s for s in masks if s in saliency and s in probability and used.get(s) == ALL and s in scene_of]
    chosen = {}
    for stamp in stamps:  # one frame per scene
        chosen.setdefault(scene_of[stamp], stamp)
    assert len(chosen) >= 2, rig.logs()

    generator = SceneGenerator(SIZE, seed=SIM_SEED)
    segmenter = Segmenter(select_backend("onnxruntime").backend)
    encodings = {"rgb": "rgb8", "depth": "16UC1", "thermal": "mono16"}
    for scene, stamp in chosen.items():
        assert scene < SIM_SCENES
        sample = generator.sample(scene, ["day"])
        # exactly what the node decodes from the simulator's messages
        inputs = {
            m: decode(Image(**encode(getattr(sample, m), e, modality=m)), m) for m, e in encodings.items()
        }
        reference = segmenter.segment(**inputs)
        ids = np.frombuffer(masks[stamp], np.uint8).reshape(SIZE)
        assert np.mean(ids == reference.class_ids) >= 0.999
        prob = np.frombuffer(probability[stamp], np.float32).reshape(SIZE)
        np.testing.assert_allclose(prob, reference.saliency, atol=1e-3)
        sal = np.frombuffer(saliency[stamp], np.uint8).reshape(SIZE).astype(int)
        assert np.abs(sal - np.rint(reference.saliency * 255)).max() <= 1


def test_label_table_is_latched_for_late_subscribers(rig: Rig) -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    received: list[str] = []
    qos = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    sub = rig.listener.node.create_subscription(String, topics.LABELS, lambda m: received.append(m.data), qos)
    try:
        assert wait_for(lambda: received, 10), "no latched label table"
    finally:
        rig.listener.node.destroy_subscription(sub)
    table = json.loads(received[0])
    assert [(c["id"], c["name"], tuple(c["color"]), c["is_thing"]) for c in table["classes"]] == [
        (c.id, c.name, c.color, c.is_thing) for c in CLASSES
    ]
    assert table["modalities"] == ["rgb", "depth", "thermal"]


def test_thermal_drop_is_lost_within_three_periods_and_output_continues(rig: Rig) -> None:
    stopped = rig.sim.send("stop thermal")
    last_ns = stopped["last_publish_ns"]
    lost = rig.wait_state("thermal", "LOST", timeout=5)
    assert lost, rig.logs()
    period_s = float(lost.values["expected_period_s"])
    assert period_s == pytest.approx(0.1, rel=0.1)
    delay_ns = float(lost.values["state_since_s"]) * 1e9 - last_ns
    assert 0 < delay_ns <= 3 * period_s * 1e9, (delay_ns / 1e9, lost)
    assert lost.level == 2  # ERROR
    assert "silent" in lost.message

    window = (last_ns + 50_000_000, last_ns + 3_000_000_000)
    rig.wait_handled(window[1])
    ticks = rig.tick_stamps(*window)
    statuses = rig.statuses(*window)
    dropped = rig.listener.dropped(*window)
    assert len(statuses) + dropped >= 0.95 * len(ticks), (len(statuses), dropped, len(ticks), rig.logs())
    assert {s.used for s in statuses} == {"rgb+depth"}
    assert all("skipped.thermal" in s.values and s.level == 1 for s in statuses)

    restarted = time.monotonic()
    rig.sim.send("start thermal")
    assert rig.wait_used(ALL, timeout=5), rig.logs()
    assert rig.wait_state("thermal", "OK", timeout=5, after=restarted), rig.logs()
    assert wait_for(lambda: "thermal: DEGRADED -> OK (recovered" in rig.node.text(), 5), rig.logs()


def test_anchor_drop_hands_over_to_the_next_modality_and_back(rig: Rig) -> None:
    stopped = rig.sim.send("stop rgb")
    last_ns = stopped["last_publish_ns"]
    window = (last_ns + 500_000_000, last_ns + 3_500_000_000)
    rig.wait_handled(window[1])
    ticks = rig.tick_stamps(*window, modality="depth")
    statuses = rig.statuses(*window)
    dropped = rig.listener.dropped(*window)
    assert len(statuses) + dropped >= 0.95 * len(ticks), (len(statuses), dropped, len(ticks), rig.logs())
    expected = ("depth", "depth+thermal", FRAME_IDS["depth"])
    assert {(s.anchor, s.used, s.frame_id) for s in statuses} == {expected}
    masks = [r for r in rig.listener.image_list(topics.CLASS_MASK) if window[0] <= r.stamp_ns <= window[1]]
    assert masks
    assert {r.frame_id for r in masks} == {FRAME_IDS["depth"]}  # the header follows the anchor
    assert rig.listener.diag("rgb").values["state"] == "LOST"

    rig.sim.send("start rgb")
    assert rig.wait_used(ALL, timeout=5), rig.logs()
    assert rig.listener.recent_statuses(1)[0].anchor == "rgb"


@pytest.mark.parametrize(
    ("fault", "modality", "reason", "remaining"),
    [
        ("freeze", "depth", "frozen", "rgb+thermal"),
        ("black", "rgb", "blackout", "depth+thermal"),
        ("holes", "depth", "holes", "rgb+thermal"),
    ],
)
def test_degraded_stream_is_masked_out_then_recovers(
    rig: Rig, fault: str, modality: str, reason: str, remaining: str
) -> None:
    start = time.monotonic()
    rig.sim.send(f"{fault} {modality}")
    degraded = rig.wait_state(modality, "DEGRADED", timeout=5, after=start)
    assert degraded, rig.logs()
    assert reason in degraded.values["reasons"], degraded
    assert degraded.level == 1  # WARN
    assert (degraded.values["grade"], degraded.values["used_by_model"]) == ("severe", "False"), degraded
    assert degraded.message.endswith("(severe, masked out)"), degraded
    assert rig.wait_used(remaining, timeout=5), rig.logs()

    def masked_as_unhealthy() -> bool:
        recent = rig.listener.recent_statuses(3)
        return all(s.values.get(f"skipped.{modality}", "").startswith("not healthy") for s in recent)

    assert wait_for(masked_as_unhealthy, 3), rig.listener.recent_statuses(3)

    recovered = time.monotonic()
    rig.sim.send(f"normal {modality}")
    assert rig.wait_used(ALL, timeout=5), rig.logs()
    assert rig.wait_state(modality, "OK", timeout=5, after=recovered), rig.logs()


def test_with_every_camera_silent_nothing_is_published_and_diagnostics_say_why(rig: Rig) -> None:
    last_ns = max(rig.sim.send(f"stop {m}")["last_publish_ns"] for m in ("rgb", "depth", "thermal"))
    began = time.monotonic()
    idle = wait_for(
        lambda: (d := rig.listener.diag_after("inference", began)) is not None and d.level == 2 and d, 5
    )
    assert idle, rig.logs()
    assert idle.message.startswith("no output: no usable anchor"), idle
    # the node's next report: it ran on, and still published nothing
    assert wait_for(lambda: rig.listener.diag_after("inference", idle.time), 5), rig.logs()
    assert not rig.statuses(last_ns + 1, time.time_ns()), "a frame was published with no camera"
    assert "no output: no usable anchor" in rig.node.text()

    for modality in ("rgb", "depth", "thermal"):
        rig.sim.send(f"start {modality}")
    assert rig.wait_used(ALL, timeout=8), rig.logs()


def test_malformed_messages_are_counted_and_do_no_harm(rig: Rig) -> None:
    wait_until(rig.listener.healthy, 20, "every camera OK before the window", context=rig.logs)
    start_ns = time.time_ns()
    rig.sim.send("malformed rgb")

    def malformed_ticks() -> list[int] | None:
        found = [
            t["stamp_ns"]
            for t in rig.sim.ticks("rgb")
            if t["stamp_ns"] >= start_ns and t["mode"] == "malformed"
        ]
        return found if len(found) >= WINDOW_TICKS else None

    end_ns = wait_until(malformed_ticks, 30, f"{WINDOW_TICKS} ticks with a malformed message")[-1]
    sent = rig.sim.send("normal rgb")["malformed_sent"]
    rig.wait_handled(end_ns)
    reasons = {  # simulator kind -> ImageMsgError reason
        "short_data": "short_data",
        "bad_step": "bad_step",
        "unknown_encoding": "unknown_encoding",
        "zero_size": "zero_size",
        "too_many_pixels": "too_many_pixels",
        "wrong_encoding": "wrong_encoding_for_modality",
    }
    total_sent = sum(sent.values())
    assert total_sent >= 20

    def counted():
        d = rig.listener.diag("rgb")
        if d is None or int(d.values.get("rejected_total", 0)) < 0.9 * total_sent:
            return None
        return d

    diag = wait_for(counted, 5)
    assert diag, (sent, rig.listener.diag("rgb"), rig.logs())
    for kind, reason in reasons.items():
        assert 1 <= int(diag.values[f"rejected.{reason}"]) <= sent[kind], (kind, diag.values)
    assert rig.node.proc.poll() is None, rig.logs()
    ticks = rig.tick_stamps(start_ns, end_ns)
    statuses = rig.statuses(start_ns, end_ns)
    dropped = rig.listener.dropped(start_ns, end_ns)
    assert len(statuses) + dropped >= 0.95 * len(ticks), (len(statuses), dropped, len(ticks))
    # rejected messages never reach the health monitor: rgb stays in every frame; a frame without
    # another camera is a load effect only if that camera fell silent (its note says so)
    assert all("rgb" in s.used.split("+") for s in statuses), [s.values for s in statuses]
    left_out = {
        (m, s.values[f"skipped.{m}"]) for s in statuses for m in MODALITIES if m not in s.used.split("+")
    }
    assert all("silent" in note for _, note in left_out), left_out
    assert "rejected rgb message" in rig.node.text()
    warnings = rig.node.text().count("rejected rgb message")
    assert warnings <= len(reasons) * 2, "warnings are not rate-limited"


def test_diagnostics_report_every_sensor_and_the_inference(rig: Rig) -> None:
    inference = rig.listener.diag("inference")
    assert inference is not None
    assert inference.values["backend"] == "onnxruntime"
    assert inference.values["precision"] == "fp32"
    for key in ("latency_p50_ms", "latency_p95_ms", "inference_p50_ms", "fps", "dropped_frames"):
        assert inference.values[key] != "", key
    assert 5.0 <= float(inference.values["fps"]) <= 12.0
    assert float(inference.values["latency_p50_ms"]) < 1000

    # all good again: a report with no new rejected message is back to level OK
    def all_ok() -> bool:
        diags = [rig.listener.diag(m) for m in ("rgb", "depth", "thermal")]
        return all(d is not None and d.level == 0 and d.values["state"] == "OK" for d in diags)

    assert wait_for(all_ok, 5), [rig.listener.diag(m) for m in ("rgb", "depth", "thermal")]
    for modality in ("rgb", "depth", "thermal"):
        d = rig.listener.diag(modality)
        assert d is not None
        assert d.values["frame_id"] == FRAME_IDS[modality]
        assert float(d.values["rate_hz"]) == pytest.approx(10.0, rel=0.15)


def test_the_node_exits_cleanly_on_sigint(rig: Rig) -> None:
    rig.node.proc.send_signal(signal.SIGINT)
    assert rig.node.proc.wait(20) == 0, rig.logs()
    assert "Traceback" not in rig.node.text(), rig.logs()


@pytest.mark.timeout(120)
def test_params_file_applies_in_a_namespace_bad_values_fail_configure_and_sigterm_exits(
    ros_env: dict[str, str], tmp_path: Path
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(CONFIG.read_text().replace('backend: "auto"', 'backend: "nonsense"'))
    assert 'backend: "nonsense"' in params.read_text()
    node = Process(
        "node",
        [str(NODE_SCRIPT), "--ros-args", "--params-file", str(params), "-r", "__ns:=/robot"],
        ros_env,
        tmp_path / "node.log",
    )
    try:
        failed = wait_for(lambda: "configure failed" in node.text(), 60)
        assert failed, node.text()
        assert "parameter backend" in node.text()
        assert node.proc.poll() is None, "a bad parameter must not kill the node"
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(20) == 0, node.text()
    finally:
        node.stop()
    assert "Traceback" not in node.text(), node.text()
