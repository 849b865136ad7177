"""The fault injector in its own process, between a camera rig and the segmentation node, over real DDS.

Processes on this module's ROS domain: the simulated cameras (``unimrseg_ros.sensor_sim``,
publishing ``rgb/image`` ...), ``unimrseg_fault_injector`` reading them (its inputs
``in/<m>/image`` remapped onto the cameras) and republishing on ``injected/<m>/image``,
and ``unimrseg_node`` reading those. The test sets the injector's parameters through
its parameter service as ``ros2 param set`` does, calls its services, and watches the
node's ``segmentation/status`` and ``/diagnostics`` and the injector's ``faults/active``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from node_rig import ROS_KEYS, Listener, Process, Sim, start_node
from waits import wait_for

from unimrseg_core import topics
from unimrseg_core.modalities import MODALITIES

pytestmark = [pytest.mark.ros, pytest.mark.slow]
rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

INJECTOR = Path(sys.prefix) / "bin" / "unimrseg_fault_injector"
NAME = f"/{topics.INJECTOR_NODE_NAME}"
ALL = "rgb+depth+thermal"
PERIOD_S = 0.1  # the simulator's 10 Hz


def injected(modality: str) -> str:
    return f"injected/{topics.INPUTS[modality]}"


@dataclass
class Rig:
    listener: Listener
    sim: Sim
    node: Process
    injector: Process
    faults: list[tuple[float, dict[str, Any]]]
    params: Any
    raw: dict[str, dict[int, bytes]]

    def logs(self) -> str:
        return (
            f"----- injector -----\n{self.injector.text()[-4000:]}\n"
            f"----- node -----\n{self.node.text()[-4000:]}\n----- sim -----\n{self.sim.text()[-1500:]}"
        )

    def wait_used(self, used: str, timeout: float = 5.0, n: int = 5) -> bool:
        return bool(
            wait_for(
                lambda: len(s := self.listener.recent_statuses(n)) == n and all(x.used == used for x in s),
                timeout,
            )
        )

    def wait_state(self, modality: str, state: str, timeout: float = 5.0, after: float = 0.0) -> Any:
        def reached() -> Any:
            diag = self.listener.diag_after(modality, after)
            return diag if diag is not None and diag.values["state"] == state else None

        return wait_for(reached, timeout)

    def set(self, **values: Any) -> list[Any]:
        """``ros2 param set`` on the injector (``thermal__fault="drop"`` sets ``thermal.fault``)."""
        from rclpy.parameter import Parameter

        future = self.params.set_parameters(
            [Parameter(k.replace("__", "."), value=v) for k, v in values.items()]
        )
        assert wait_for(future.done, 10), "the injector's parameter service did not answer"
        return list(future.result().results)

    def fault_state(self, after: float = 0.0) -> dict[str, Any] | None:
        fresh = [state for t, state in list(self.faults) if t >= after]
        return fresh[-1] if fresh else None

    def changes(self, after: float) -> list[dict[str, Any]]:
        return [c for t, state in list(self.faults) if t >= after for c in state["changes"]]


@pytest.fixture(scope="module")
def rig(module_ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    from rclpy.parameter_client import AsyncParameterClient
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    tmp = tmp_path_factory.mktemp("injector_rig")
    env = module_ros_env
    remaps = [
        arg
        for m in MODALITIES
        for arg in (
            "-r",
            f"{topics.INJECTOR_INPUTS[m]}:={topics.INPUTS[m]}",
            "-r",
            f"{topics.INPUTS[m]}:={injected(m)}",
        )
    ]
    with pytest.MonkeyPatch.context() as mp:
        for key in ROS_KEYS:
            mp.setenv(key, env[key])
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
        listener = Listener(context)
        faults: list[tuple[float, dict[str, Any]]] = []
        latched = QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        listener.node.create_subscription(
            String,
            topics.FAULTS_ACTIVE,
            lambda m: faults.append((time.monotonic(), json.loads(m.data))),
            latched,
        )
        raw: dict[str, dict[int, bytes]] = {"camera": {}, "injected": {}}
        lock = threading.Lock()

        def keep(kind: str, data: bytes) -> None:
            from unimrseg_ros.cdr_header import cdr_stamp_ns

            with lock:
                raw[kind][cdr_stamp_ns(data)] = data

        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        listener.node.create_subscription(Image, "rgb/image", lambda d: keep("camera", d), qos, raw=True)
        listener.node.create_subscription(
            Image, injected("rgb"), lambda d: keep("injected", d), qos, raw=True
        )
        params = AsyncParameterClient(listener.node, NAME)
        injector = Process("injector", [str(INJECTOR), "--ros-args", *remaps], env, tmp / "injector.log")
        node = start_node(
            env, tmp, *(a for m in MODALITIES for a in ("-r", f"{topics.INPUTS[m]}:={injected(m)}"))
        )
        sim = Sim(env, tmp)
        rig = Rig(listener, sim, node, injector, faults, params, raw)
        try:
            if not rig.wait_used(ALL, timeout=90):
                pytest.fail(f"no complete output frames through the injector\n{rig.logs()}")
            assert params.wait_for_services(timeout_sec=10), rig.logs()
            yield rig
        finally:
            sim.stop()
            node.stop()
            assert injector.stop() == 0, injector.text()[-3000:]  # SIGTERM: a clean exit
            listener.close()
            rclpy.shutdown(context=context)


def test_without_faults_the_injector_passes_the_camera_bytes_through(rig: Rig) -> None:
    state = wait_for(rig.fault_state, 5)
    assert state is not None, rig.logs()
    assert state["active"] == []
    wait_for(lambda: len(set(rig.raw["camera"]) & set(rig.raw["injected"])) >= 10, 10)
    camera, passed = dict(rig.raw["camera"]), dict(rig.raw["injected"])
    common = sorted(set(camera) & set(passed))
    assert len(common) >= 10, (len(camera), len(passed))
    assert all(camera[s] == passed[s] for s in common)  # the very bytes: nothing decoded or re-encoded


def test_thermal_drop_by_parameter_is_detected_then_cleared_by_the_service(rig: Rig) -> None:
    from std_srvs.srv import Trigger

    commanded = time.monotonic()
    (result,) = rig.set(thermal__fault="drop")
    assert result.successful, result.reason
    lost = rig.wait_state("thermal", "LOST", timeout=5, after=commanded)
    assert lost, rig.logs()
    assert rig.wait_used("rgb+depth"), rig.logs()

    state = rig.fault_state(after=commanded)
    assert state is not None
    (active,) = state["active"]
    assert (active["modality"], active["kind"], active["source"], active["end_ns"]) == (
        "thermal",
        "drop",
        "command",
        None,
    )
    delay_s = float(lost.values["state_since_s"]) - active["start_ns"] / 1e9
    assert 0 < delay_s <= 3 * PERIOD_S + 0.1, delay_s  # noticed within 3 frame periods (+ DDS)

    client = rig.listener.node.create_client(Trigger, f"{NAME}/clear_faults")
    assert client.wait_for_service(timeout_sec=5)
    future = client.call_async(Trigger.Request())
    assert wait_for(future.done, 10)
    assert future.result().success, future.result().message
    cleared = time.monotonic()
    assert rig.wait_state("thermal", "OK", timeout=5, after=cleared), rig.logs()
    assert rig.wait_used(ALL), rig.logs()
    assert any(c["event"] == "end" and c["kind"] == "drop" for c in rig.changes(commanded))
    got = rig.params.get_parameters(["thermal.fault"])
    assert wait_for(got.done, 10)
    assert got.result().values[0].string_value == "none"  # the command parameter is reset too


def test_refused_values_leave_the_streams_alone(rig: Rig) -> None:
    (bad_kind,) = rig.set(rgb__fault="depth_holes")
    assert not bad_kind.successful
    assert "depth_holes" in bad_kind.reason
    kept, refused = rig.set(thermal__noise__sigma=0.0, thermal__fault="noise")
    assert kept.successful  # no noise commanded yet: the value waits ...
    assert not refused.successful  # ... and the fault that would use it is refused, naming it
    assert "sigma" in refused.reason
    (restored,) = rig.set(thermal__noise__sigma=0.03)
    assert restored.successful
    assert rig.wait_used(ALL), rig.logs()


def test_freeze_and_blackout_from_a_schedule_file_are_detected_and_recover(rig: Rig, tmp_path: Path) -> None:
    schedule = tmp_path / "faults.yaml"
    schedule.write_text(
        "faults:\n"
        "  - {modality: depth, kind: freeze, start_s: 0.5, end_s: 2.5}\n"
        "  - {modality: rgb, kind: blackout, start_s: 3.0, end_s: 5.0}\n"
    )
    started = time.monotonic()
    (result,) = rig.set(schedule_file=str(schedule))  # starts the schedule now
    assert result.successful, result.reason

    frozen = rig.wait_state("depth", "DEGRADED", timeout=5, after=started)
    assert frozen, rig.logs()
    assert "frozen" in frozen.message
    assert rig.wait_used("rgb+thermal", timeout=3), rig.logs()
    black = rig.wait_state("rgb", "DEGRADED", timeout=6, after=started)
    assert black, rig.logs()
    assert "blackout" in black.message or "dark" in black.message, black.message
    assert wait_for(lambda: (s := rig.listener.recent_statuses(1)) and s[0].anchor == "depth", 3), rig.logs()
    assert rig.wait_state("rgb", "OK", timeout=6, after=black.time), rig.logs()
    assert rig.wait_used(ALL), rig.logs()

    changes = rig.changes(started)
    events = [(c["event"], c["modality"], c["kind"], c["source"]) for c in changes]
    for expected in (
        ("start", "depth", "freeze", "schedule"),
        ("end", "depth", "freeze", "schedule"),
        ("start", "rgb", "blackout", "schedule"),
        ("end", "rgb", "blackout", "schedule"),
    ):
        assert expected in events, events
    freeze_start = next(c for c in changes if c["kind"] == "freeze" and c["event"] == "start")
    blackout_start = next(c for c in changes if c["kind"] == "blackout" and c["event"] == "start")
    assert (blackout_start["t_ns"] - freeze_start["t_ns"]) / 1e9 == pytest.approx(2.5, abs=1e-6)
    detected = float(frozen.values["state_since_s"]) - freeze_start["t_ns"] / 1e9
    assert 0 < detected <= 4 * PERIOD_S + 0.1, detected  # 3 identical frames, then DEGRADED
