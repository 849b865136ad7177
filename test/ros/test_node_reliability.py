"""unimrseg_node under abuse: a slow model, 100 lifecycle cycles, fuzzed parameters and images, signals.

In-process tests first (the node and a camera peer in this process, each test on its own
ROS domain), then the tests on the ``unimrseg_node`` process (this module's domain, the
simulated cameras of ``node_rig``, at most one node process at a time). The measurements
live in ``reliability_rig.py``; ``benchmarks/reliability.py`` repeats them for the figures
(benchmarks/results/reliability.json). Timing bounds here only catch hangs and queues.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_rig import ROS_KEYS, SIZE, Listener, Sim
from reliability_rig import (
    ALL,
    FUZZ_NODE_ARGS,
    HANG_S,
    NodeRig,
    exit_after_signal,
    in_process,
    lifecycle_cycles,
    live_fuzz,
    offline_agreement,
    slow_backend,
)
from waits import wait_for, wait_until

from unimrseg_core import topics
from unimrseg_core.image_msg import REASONS
from unimrseg_core.modalities import MODALITIES
from unimrseg_ros.parameters import BY_NAME, PARAMS, Param

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")

INT64 = 1 << 62  # well inside a ROS integer parameter
FUZZ_COUNT = 3000
FUZZ_SEED = 5


# =========================================================================== in-process


@pytest.mark.timeout(120)
def test_a_slow_backend_drops_frames_instead_of_queueing_them(rclpy_context: Any) -> None:
    """The real backend made 0.3 s slower, cameras at 10 Hz: about one output per 0.3 s, the rest
    dropped (counted on /diagnostics and in every status), and output age does not grow."""
    delay = 0.3
    with in_process(rclpy_context) as h:
        r = slow_backend(h, delay_s=delay, seconds=4.0)
    at_most = r["seconds"] / delay
    assert 0.5 * at_most <= r["outputs"] <= at_most + 1, r
    assert r["handled"] <= r["backend_calls"] <= r["handled"] + 2, r
    # every frame handed over was either run or replaced (at most one waiting, one running at the end)
    assert 0 <= r["submitted"] - r["handled"] - r["dropped"] <= 2, r
    assert r["dropped"] >= 0.5 * r["submitted"], r
    assert r["diagnostics_dropped_frames"] >= r["dropped"], r
    assert r["status_dropped_last"] > r["status_dropped_first"], r
    ages = r["age_s"]
    # one frame waits at most one inference in the slot, then its own inference; plus a frame period
    bound = 2 * (delay + 0.2) + 0.1 + 0.5  # 0.2 s: the model itself on a busy machine; 0.5 s: noise
    assert ages["max"] < bound, r
    assert ages["mean_last_quarter"] <= ages["mean_first_quarter"] + 0.25, r  # no growing queue


@pytest.mark.timeout(300)
def test_100_lifecycle_cycles_leave_no_thread_entity_or_memory_behind(rclpy_context: Any) -> None:
    """100 x configure/activate/deactivate/cleanup (frames flowing every 10th cycle): after the
    warm-up, Python and native thread counts and the node's publishers, subscriptions and timers
    are exactly back, and memory does not grow with the cycles."""
    with in_process(rclpy_context) as h:
        r = lifecycle_cycles(h, cycles=100, warmup=5, feed_every=10)
    assert r["failed_transitions"] == [], r
    assert r["cycles_with_outputs"] == r["cycles_with_frames"], r
    assert r["inference_threads_left_after_cleanup"] == 0, r
    threads = r["threads"]
    assert threads["python_end"] == threads["python_after_warmup"] == threads["python_start"], threads
    assert threads["native_end"] == threads["native_after_warmup"], threads
    entities = r["entities"]
    assert entities["end"] == entities["after_warmup"] == entities["start"], entities
    memory = r["rss_mb"]
    # generous: a model leaked per cycle would be ~10 MB each; the measured slope is in the benchmark
    assert memory["slope_per_cycle_after_warmup"] < 0.5, memory
    assert memory["growth_after_warmup"] < 60, memory


# --------------------------------------------------------------------------- parameter updates

_WRONG_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "int": st.integers(-INT64, INT64),
    "float": st.floats(allow_nan=True, allow_infinity=True),
    "str": st.text(max_size=20),
    "string[]": st.lists(st.sampled_from(MODALITIES), min_size=1, max_size=3),
    "int[]": st.lists(st.integers(-5, 5), min_size=1, max_size=3),
}
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


def _valid(param: Param) -> st.SearchStrategy[Any] | None:
    """Values the node must take while unconfigured (type, range, step and choices right)."""
    low, high = param.low, param.high
    if param.read_only:
        return None
    if param.kind == "bool":
        return st.booleans()
    if param.kind == "int" and low is not None and high is not None:  # every number has a range
        lo, hi, step = int(low), int(high), param.step
        return st.integers(0, (hi - lo) // step).map(lambda k: lo + k * step) if step else st.integers(lo, hi)
    if param.kind == "float" and low is not None and high is not None:
        return st.floats(low, high, allow_nan=False)
    if param.kind == "str":
        # paths and device are only checked at configure
        return st.sampled_from(param.choices) if param.choices else _TEXT
    if param.kind == "string[]":
        return st.lists(st.sampled_from(param.choices), min_size=1, unique=True)  # any order
    return None


def _invalid(param: Param) -> st.SearchStrategy[Any]:
    """Values the node must refuse: another type, out of range, NaN/inf, off-step, unknown choices."""
    options = [s for kind, s in _WRONG_TYPES.items() if kind != param.kind]
    low, high = param.low, param.high
    if param.read_only:
        return st.one_of(st.booleans(), _TEXT)
    if param.kind == "int" and low is not None and high is not None:
        lo, hi, step = int(low), int(high), param.step
        options += [st.integers(-INT64, lo - 1), st.integers(hi + 1, INT64)]
        if step:
            options.append(st.integers(lo + 1, hi).filter(lambda v: (v - lo) % step))
    elif param.kind == "float" and low is not None and high is not None:
        options += [
            st.sampled_from([math.nan, math.inf, -math.inf]),
            st.floats(max_value=low, exclude_max=True, allow_infinity=False),
            st.floats(min_value=high, exclude_min=True, allow_infinity=False),
        ]
    elif param.kind == "str" and param.choices:
        options.append(_TEXT.filter(lambda v: v not in param.choices))
    elif param.kind == "string[]":
        unknown = st.lists(_TEXT.filter(lambda v: v not in param.choices), min_size=1, max_size=3)
        options += [unknown, st.sampled_from(param.choices).map(lambda v: [v, v])]
    return st.one_of(*options)


_UNKNOWN_NAMES = st.one_of(
    st.sampled_from(["no.such.parameter", "backend ", "rgb.enable", "health", "sync", "Backend"]),
    st.from_regex(r"[a-z][a-z0-9_.]{0,30}", fullmatch=True),
).filter(lambda n: n not in BY_NAME and n != "use_sim_time")  # rclpy's own, writable


@st.composite
def updates(draw: st.DrawFn) -> tuple[str, Any, str]:
    """One ``ros2 param set``: (name, value, "valid" | "invalid")."""
    if draw(st.integers(0, 9)) == 0:
        return draw(_UNKNOWN_NAMES), draw(st.one_of(st.integers(-5, 5), _TEXT)), "invalid"
    param = draw(st.sampled_from(PARAMS))
    valid = _valid(param)
    if valid is not None and draw(st.booleans()):
        return param.name, draw(valid), "valid"
    return param.name, draw(_invalid(param)), "invalid"


def _set(client: Any, name: str, value: Any, timeout: float = 10.0) -> Any:
    """Through the node's real ``~/set_parameters`` service, as ``ros2 param set`` does."""
    from rclpy.parameter import Parameter

    future = client.set_parameters([Parameter(name, value=value)])
    assert wait_for(future.done, timeout, 0.005), f"no answer to setting {name}"
    (result,) = future.result().results
    return result


def _get(client: Any, names: list[str]) -> list[Any]:
    from rclpy.parameter import parameter_value_to_python

    future = client.get_parameters(names)
    assert wait_for(future.done, 10, 0.005), "no answer to get_parameters"
    return [parameter_value_to_python(v) for v in future.result().values]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return list(a) == list(b) if isinstance(a, (list, tuple)) else a == b


@pytest.mark.timeout(180)
def test_parameter_updates_are_taken_only_when_valid_and_unconfigured(rclpy_context: Any) -> None:
    """Fuzzed updates through the node's parameter service while it is unconfigured: a valid value
    is taken as sent; every other (wrong type, out of range, NaN, off-step, unknown choice or name,
    read-only) is refused with a reason and leaves the value as it was."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    from unimrseg_ros.segmentation_node import SegmentationNode

    node = SegmentationNode(context=rclpy_context, parameter_overrides=[Parameter("autostart", value=False)])
    peer = rclpy.create_node("unimrseg_param_fuzzer", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    client = AsyncParameterClient(peer, node.get_fully_qualified_name())  # before spinning: rclpy#1355
    executor.add_node(node)
    executor.add_node(peer)
    threading.Thread(target=executor.spin, daemon=True).start()
    assert client.wait_for_services(10)
    seen = {"valid": 0, "invalid": 0}

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(update=updates())
    def property_(update: tuple[str, Any, str]) -> None:
        name, value, expected = update
        known = name in BY_NAME
        before = node.get_parameter(name).value if known else None
        result = _set(client, name, value)
        seen[expected] += 1
        if expected == "valid":
            assert result.successful, (name, value, result.reason)
            assert _same(node.get_parameter(name).value, value), (name, value)
        else:
            assert not result.successful, (name, value)
            assert result.reason.strip(), (name, value)
            if known:
                assert _same(node.get_parameter(name).value, before), (name, value)

    try:
        property_()
        assert node.state_label == "unconfigured"
        assert seen["valid"] >= 10
        assert seen["invalid"] >= 10
    finally:
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        peer.destroy_node()


# =========================================================================== the node process


@pytest.fixture(scope="module")
def rig(module_ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeRig]:
    tmp = tmp_path_factory.mktemp("reliability")
    env = module_ros_env
    with pytest.MonkeyPatch.context() as mp:
        for key in ROS_KEYS:
            mp.setenv(key, env[key])
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
        rig = NodeRig(env, tmp, Listener(context, keep_data=150), Sim(env, tmp))
        try:
            yield rig
        finally:
            rig.close()
            rclpy.shutdown(context=context)


def _rejected(diag: Any) -> dict[str, int]:
    return {r: int(diag.values.get(f"rejected.{r}", 0)) for r in REASONS}


@pytest.mark.timeout(240)
def test_fuzzed_images_over_dds_are_counted_by_reason_and_do_no_harm(rig: NodeRig) -> None:
    """3000 fuzzed Image messages on the three inputs (from another process, reliable, flow-controlled)
    between good camera frames: the node stays up, /diagnostics counts every malformed one under the
    reason it was built for, and afterwards its masks are again those of the offline Segmenter."""
    node = rig.node_with(*FUZZ_NODE_ARGS)
    assert rig.wait_used(ALL, timeout=30), rig.logs()
    assert wait_for(lambda: all(rig.listener.diag(m) for m in MODALITIES), 10)
    before = {m: _rejected(rig.listener.diag(m)) for m in MODALITIES}

    summary = live_fuzz(rig, count=FUZZ_COUNT, seed=FUZZ_SEED)
    assert summary["sent"] == FUZZ_COUNT
    assert summary["mismatches"] == [], summary["mismatches"][:5]  # each built for the reason decode gives
    assert summary["big_messages"] >= 1  # larger than Fast DDS's default 512 KB segment
    sent = {
        m: {
            r: summary["sent_by_modality"][m].get(r, 0) + summary["probes_by_modality"][m].get(r, 0)
            for r in REASONS
        }
        for m in MODALITIES
    }
    expected = {m: {r: before[m][r] + sent[m][r] for r in REASONS} for m in MODALITIES}

    def counted() -> bool:
        return all(
            (d := rig.listener.diag(m)) is not None and _rejected(d) == expected[m] for m in MODALITIES
        )

    got = wait_for(counted, 15)
    assert got, (expected, {m: _rejected(rig.listener.diag(m)) for m in MODALITIES}, summary)
    assert node.proc.poll() is None, rig.logs()

    # good frames again: every camera healthy, and the masks are right
    fuzz_end = summary["window_ns"][1]
    assert rig.wait_used(ALL, timeout=20), rig.logs()

    def statuses_after() -> list[Any]:
        return [s for s in rig.listener.status_list() if s.stamp_ns > fuzz_end]

    assert wait_for(lambda: len(statuses_after()) >= 20, 20), rig.logs()
    compared = offline_agreement(rig.listener, rig.sim, fuzz_end)
    assert len({c["scene"] for c in compared}) >= 2, compared
    rgb_ticks = {t["stamp_ns"] for t in rig.sim.ticks("rgb")}
    for c in compared:
        assert c["stamp_ns"] in rgb_ticks  # the anchor's stamp
        assert (tuple(c["size"]), c["encoding"], c["frame_id"]) == (SIZE, "mono8", "sim_rgb_optical_frame")
        assert c["agreement"] >= 0.99, c
    assert all(s.level == 0 for s in statuses_after()[-5:])
    text = node.text()
    assert "Traceback" not in text
    assert "rejected rgb message" in text
    # warnings are rate-limited: one per modality and reason per warn period (5 s), not one per message
    seconds = (summary["window_ns"][1] - summary["window_ns"][0]) / 1e9
    assert text.count("rejected ") <= len(MODALITIES) * len(REASONS) * (seconds / 5 + 2)


@dataclass
class ParamClients:
    """``ros2 param``: a client node of its own, its clients made before it spins (rclpy#1355)."""

    params: Any  # AsyncParameterClient of the node
    raw: Any  # its SetParameters service, for requests rclpy's Parameter cannot make

    def raw_set(self, value_type: int) -> None:
        """A SetParameters request whose value has the type id ``value_type`` (valid ids are 0..9)."""
        from rcl_interfaces.msg import Parameter as ParameterMsg
        from rcl_interfaces.msg import ParameterValue
        from rcl_interfaces.srv import SetParameters

        value = ParameterValue(type=value_type, string_value="torch")
        future = self.raw.call_async(
            SetParameters.Request(parameters=[ParameterMsg(name="backend", value=value)])
        )
        wait_for(future.done, 2)  # no answer is expected: the request is broken


@contextlib.contextmanager
def param_clients(context: Any, node_name: str) -> Iterator[ParamClients]:
    from rcl_interfaces.srv import SetParameters
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter_client import AsyncParameterClient

    node = rclpy.create_node("unimrseg_param_fuzzer", context=context)
    clients = ParamClients(
        AsyncParameterClient(node, node_name),
        node.create_client(SetParameters, f"{node_name}/set_parameters"),
    )
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        assert clients.params.wait_for_services(10)
        assert clients.raw.wait_for_service(10)
        yield clients
    finally:
        executor.shutdown(timeout_sec=5)
        node.destroy_node()


@pytest.mark.timeout(180)
def test_parameter_updates_on_the_running_node_are_refused_with_a_reason(rig: NodeRig) -> None:
    """Fuzzed ``ros2 param set`` on the active node process: every update, valid or not, is refused
    with a reason (parameters are read at configure), nothing changes, the node keeps publishing.
    A request with an unknown type id goes unanswered but no longer ends the node."""
    node = rig.node_with(*FUZZ_NODE_ARGS)
    names = [p.name for p in PARAMS]
    with param_clients(rig.listener.context, f"/{topics.NODE_NAME}") as clients:
        client = clients.params
        initial = dict(zip(names, _get(client, names), strict=True))
        outputs_before = len(rig.listener.status_list())

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(update=updates())
        def property_(update: tuple[str, Any, str]) -> None:
            name, value, _ = update
            result = _set(client, name, value)
            assert not result.successful, (name, value)
            assert result.reason.strip(), (name, value)

        property_()
        for value_type in (10, 99, 255):  # rclpy's parameter service raises on these
            clients.raw_set(value_type)
        assert node.proc.poll() is None, rig.logs()
        assert _set(client, "backend", "torch").reason  # still answering: refused, with the reason
        assert dict(zip(names, _get(client, names), strict=True)) == initial
    assert wait_for(lambda: len(rig.listener.status_list()) > outputs_before + 20, 10), rig.logs()
    assert rig.wait_used(ALL, timeout=10), rig.logs()
    text = node.text()
    assert "a callback failed and was skipped: ValueError" in text, text[-3000:]
    assert "Traceback" not in text


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_node_exits_promptly_and_cleanly_on_a_signal(rig: NodeRig, sig: signal.Signals) -> None:
    """A node publishing masks (the shipped config) gets SIGINT or SIGTERM: exit code 0, no traceback,
    gone well within the hang bound (the median is measured by the benchmark; the target is 2 s)."""
    node = rig.fresh_node()
    published = len(rig.listener.status_list())
    wait_until(
        lambda: len(rig.listener.status_list()) >= published + 5, 20, "5 more outputs: frames in flight"
    )
    result = exit_after_signal(node, sig)
    rig.node = None
    assert not result["hung"], result
    assert result["exit_code"] == 0, result
    assert not result["traceback"], result
    assert result["exit_s"] < HANG_S, result
    assert result["teardown_s"] is not None, result  # "SIGINT: stopped in 0.05 s" was logged
    assert result["teardown_s"] <= result["exit_s"], result
