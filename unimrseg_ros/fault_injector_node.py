"""``unimrseg_fault_injector``: sits between the cameras and the segmentation node and breaks them on purpose.

Each camera ``in/<m>/image`` (remap it onto the driver's topic) is republished on
``<m>/image`` (the segmentation node's input), with faults injected live:

- from a schedule YAML (``schedule_file``; the same file format and fault model as
  ``unimrseg bag make``), its time 0 at the first camera message, at node start, or
  when the parameter is set at run time;
- on command: ``ros2 param set /unimrseg_fault_injector thermal.fault drop`` (any kind
  of :data:`unimrseg_core.faults.KINDS` that applies: drop, freeze, blackout, saturate,
  noise, depth_holes, rate_drop, delay), its parameters ``thermal.noise.sigma`` etc.,
  ``thermal.duration_s`` to end it by itself, ``none`` to end it;
- ``~/clear_faults`` (std_srvs/Trigger) ends every fault; ``~/restart_schedule`` starts
  the schedule file again from now.

A message path: raw subscription (the CDR bytes) -> :class:`FaultInjector` decides
whether, when and with which stamp it goes out (drop, freeze, rate_drop, delay) ->
only when a content fault is active, decode -> damage in sensor units
(:meth:`FaultSchedule.apply`) -> re-encode; otherwise the bytes go out untouched.
Delayed messages wait on their own thread, in order. ``faults/active`` (std_msgs/String
JSON, latched) says which faults are active with their exact start and end times on
the ROS clock, at every change and every ``status_period_seconds``, so an evaluation
can time detection against them.

Lifecycle, as the segmentation node's: parameters are declared in ``__init__``;
``on_configure`` reads the QoS, the enabled cameras and the status period (changing them
is refused until cleanup) and checks the schedule file; ``on_activate`` creates the
publishers, subscriptions, services and timers and starts a new time axis (the schedule
file and the commanded faults from there, counts from zero); ``on_deactivate`` and
``on_cleanup`` destroy them. With ``autostart`` (default) ``main()`` configures and
activates at once, so ``ros2 run`` and launch users see a plain node.

Time is the node's ROS clock (``use_sim_time`` follows a bag player's /clock). One
process republishes every camera, so it enlarges its Fast DDS shared-memory segment
first (:mod:`unimrseg_ros.transport`).
"""

from __future__ import annotations

import heapq
import itertools
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from unimrseg_core import topics
from unimrseg_core.faults import Fault, FaultError, FaultInjector, FaultSchedule
from unimrseg_core.faults.live import LiveFaults
from unimrseg_core.image_msg import ImageMsgError, decode, fill_msg
from unimrseg_core.modalities import MODALITIES
from unimrseg_ros import injector_parameters as params
from unimrseg_ros.cdr_header import cdr_stamp_ns, with_cdr_stamp
from unimrseg_ros.parameters import QosSettings
from unimrseg_ros.qos import LATCHED, profile
from unimrseg_ros.run import ManagedNode, run_lifecycle_node
from unimrseg_ros.transport import use_large_shm_segment

__all__ = ["FaultInjectorNode", "InjectorConfig", "main"]

_NS: Final = 1_000_000_000
_TICK_S: Final = 0.05  # how often expiry and fault starts / ends are checked


class DelayLine:
    """Publishes delayed messages at their release time, in release order, on its own thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="unimrseg-delay-line", daemon=True)
        self._thread.start()

    def put(self, release: float, send: Callable[[], None]) -> None:
        """Call ``send`` at ``release`` (time.monotonic())."""
        with self._cond:
            heapq.heappush(self._heap, (release, next(self._order), send))
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if not self._running:
                    return
                _, _, send = heapq.heappop(self._heap)
            try:
                send()
            except Exception:  # a publisher destroyed at shutdown; nothing to deliver to
                return

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._heap.clear()
            self._cond.notify()
        self._thread.join(timeout=2.0)


@dataclass(frozen=True)
class InjectorConfig:
    """What ``on_configure`` reads; fixed until cleanup (changing one of these is refused meanwhile)."""

    input_qos: QoSProfile
    output_qos: QoSProfile
    enabled: tuple[str, ...]
    status_period_s: float
    schedule_start: str


READ_AT_CONFIGURE: Final = frozenset(
    (
        "input_qos.reliability",
        "input_qos.depth",
        "output_qos.reliability",
        "output_qos.depth",
        "status_period_seconds",
    )
)
"""The writable parameters only ``on_configure`` reads (the others apply at once, or are read-only)."""


class FaultInjectorNode(ManagedNode):
    """The fault injector, a lifecycle node; construct, then ``start()`` (what autostart does) or drive it."""

    def __init__(self, node_name: str = topics.INJECTOR_NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._lock = threading.RLock()
        self._config: InjectorConfig | None = None
        self._active = False
        self._delay: DelayLine | None = None
        self._pubs: dict[str, Any] = {}
        self._subs: dict[str, Any] = {}
        self._status_pub: Any = None
        self._service_handles: list[Any] = []
        self._timer_handles: list[Any] = []
        self._reset_faults()
        self.add_on_set_parameters_callback(self._validate)
        self.add_post_set_parameters_callback(self._apply)
        params.declare(self)  # a bad -p / params-file value raises here, naming the parameter

    # ------------------------------------------------------------------ lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        value = self._value
        path = value("schedule_file")
        if path:
            try:
                FaultSchedule.load(path)  # checked when set, but the file may have changed since
            except (OSError, FaultError) as exc:
                self.get_logger().error(f"configure failed: schedule_file: {exc}")
                return TransitionCallbackReturn.FAILURE
        self._config = InjectorConfig(
            input_qos=profile(QosSettings(value("input_qos.reliability"), value("input_qos.depth"))),
            output_qos=profile(QosSettings(value("output_qos.reliability"), value("output_qos.depth"))),
            enabled=tuple(m for m in MODALITIES if value(f"{m}.enabled")),
            status_period_s=value("status_period_seconds"),
            schedule_start=value("schedule_start"),
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._config is None:
            return TransitionCallbackReturn.FAILURE
        try:
            self._activate(self._config)
        except Exception as exc:  # e.g. the schedule file went away since configure
            self.get_logger().error(f"activate failed: {type(exc).__name__}: {exc}")
            self._deactivate()
            return TransitionCallbackReturn.FAILURE
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self.get_logger().info("inactive: cameras no longer republished")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._config = None
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Stop republishing and forget the configuration, whatever the state (shutdown, errors, exit)."""
        self._deactivate()
        self._config = None

    def _reset_faults(self) -> None:
        """A new time axis, no faults, no counts: what each activation starts from."""
        self._origin_ns: int | None = None  # the node's time axis starts at the first clock reading
        self._live = LiveFaults()
        self._injector: FaultInjector[bytes] = FaultInjector(FaultSchedule())
        self._counts: dict[str, Counter[str]] = {m: Counter() for m in MODALITIES}

    def _activate(self, config: InjectorConfig) -> None:
        """Publishers, subscriptions, services and timers; then the schedule file and the commanded faults."""
        with self._lock:
            self._reset_faults()
            self._delay = DelayLine()
        self._pubs = {
            m: self.create_publisher(Image, topics.INPUTS[m], config.output_qos) for m in config.enabled
        }
        self._status_pub = self.create_publisher(String, topics.FAULTS_ACTIVE, LATCHED)
        self._subs = {
            m: self.create_subscription(
                Image,
                topics.INJECTOR_INPUTS[m],
                lambda data, m=m: self._on_image(m, data),
                config.input_qos,
                raw=True,
            )
            for m in config.enabled
        }
        self._service_handles = [
            self.create_service(Trigger, "~/clear_faults", self._on_clear),
            self.create_service(Trigger, "~/restart_schedule", self._on_restart),
        ]
        self._timer_handles = [
            self.create_timer(_TICK_S, self._on_tick),
            self.create_timer(config.status_period_s, self._publish_status),
        ]
        now = self._tau()
        path = self._value("schedule_file")
        if path:
            start_now = config.schedule_start == "node_start"
            self._live.load(FaultSchedule.load(path), now if start_now else None)
        for modality in MODALITIES:
            self._command(modality, now)
        self._active = True
        self._on_tick()
        self._publish_status()
        routes = ", ".join(
            f"{self._resolved(topics.INJECTOR_INPUTS[m])} -> {self._resolved(topics.INPUTS[m])}"
            for m in config.enabled
        )
        self.get_logger().info(f"republishing {routes}" + (f"; schedule {path}" if path else ""))

    def _deactivate(self) -> None:
        """Stop the delay line first (nothing publishes late), then destroy timers, services, subs, pubs."""
        self._active = False
        if self._delay is not None:
            self._delay.stop()
        for timer in self._timer_handles:
            self.destroy_timer(timer)
        for service in self._service_handles:
            self.destroy_service(service)
        for sub in self._subs.values():
            self.destroy_subscription(sub)
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        if self._status_pub is not None:
            self.destroy_publisher(self._status_pub)
        with self._lock:
            self._delay, self._status_pub = None, None
            self._timer_handles, self._service_handles, self._subs, self._pubs = [], [], {}, {}

    # ------------------------------------------------------------------ time and state

    def _value(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _resolved(self, topic: str) -> str:
        try:
            return self.resolve_topic_name(topic)
        except Exception:
            return topic

    def _tau(self) -> float:
        """Seconds on the node's time axis (its ROS clock since the first reading)."""
        now = self.get_clock().now().nanoseconds
        if self._origin_ns is None:
            if now <= 0:  # use_sim_time and no /clock yet
                return 0.0
            self._origin_ns = now
        return (now - self._origin_ns) / _NS

    def _ns(self, t_s: float | None) -> int | None:
        if t_s is None or self._origin_ns is None:
            return None
        return self._origin_ns + round(t_s * _NS)

    def _command(self, modality: str, now: float, *, restart: bool = False) -> None:
        """Make the commanded fault of ``modality`` what its parameters say, from ``now``.

        A fault whose kind and parameters did not change keeps running (setting another
        kind's parameter does nothing) unless ``restart`` (its fault or duration was set).
        """
        kind = self._value(f"{modality}.fault")
        values = {p.name: self._value(p.name) for p in params.PARAMS if p.name.startswith(f"{modality}.")}
        wanted = (
            None
            if kind == params.NONE
            else Fault(modality, kind, 0.0, 1.0, params.fault_params(modality, kind, values))
        )
        with self._lock:
            current = self._live.commanded(modality)
            if wanted is None and current is None:
                return
            same = (
                wanted is not None
                and current is not None
                and (current.kind, current.params)
                == (
                    wanted.kind,
                    wanted.params,
                )
            )
            if same and not restart:
                return
            duration = float(self._value(f"{modality}.duration_s"))
            fault = self._live.command(modality, kind, wanted.params if wanted else {}, now, duration)
        self.get_logger().info(f"{modality}: commanded {fault if fault is not None else 'no fault'}")

    # ------------------------------------------------------------------ parameters

    def _validate(self, changed: Sequence[Parameter]) -> SetParametersResult:
        """Refuse out-of-range values, faults the model rejects, schedule files that do not load, and
        changes to what ``on_configure`` read while the node is configured."""
        names = {p.name: p.value for p in changed}
        for name, value in names.items():
            problem = params.validate(name, value)
            if problem:
                return SetParametersResult(successful=False, reason=f"{name}: {problem}")
        fixed = sorted(READ_AT_CONFIGURE & names.keys()) if self._config is not None else []
        if fixed:
            return SetParametersResult(
                successful=False,
                reason=f"{fixed[0]} is read at configure: deactivate and clean up the node, set it, "
                "then configure again",
            )
        if names.get("schedule_file"):
            try:
                FaultSchedule.load(names["schedule_file"])
            except (OSError, FaultError) as exc:
                return SetParametersResult(successful=False, reason=f"schedule_file: {exc}")
        for modality in MODALITIES:
            touched = [n for n in names if n.startswith(f"{modality}.")]
            if not touched:
                continue

            def value(name: str) -> Any:
                if name in names:
                    return names[name]
                return self.get_parameter(name).value if self.has_parameter(name) else None

            kind = value(f"{modality}.fault")
            if kind in (None, params.NONE):
                continue
            current = {
                p.name: value(p.name) for p in params.PARAMS if p.name.startswith(f"{modality}.{kind}.")
            }
            try:
                Fault(modality, kind, 0.0, 1.0, params.fault_params(modality, kind, current))
            except FaultError as exc:
                return SetParametersResult(successful=False, reason=f"{modality}.{kind}: {exc}")
        return SetParametersResult(successful=True)

    def _apply(self, changed: Sequence[Parameter]) -> None:
        """Apply accepted changes at once while active: a commanded fault, or a schedule file started now.

        While inactive they only wait: activation reads the schedule file and the faults.
        """
        if not self._active:
            return
        now = self._tau()
        names = {p.name for p in changed}
        if "schedule_file" in names:
            path = self._value("schedule_file")
            with self._lock:
                self._live.load(FaultSchedule.load(path) if path else None, now)
            self.get_logger().info(f"schedule {path or 'none'} started" if path else "schedule removed")
        for modality in MODALITIES:
            if any(n.startswith(f"{modality}.") for n in names):
                restart = bool({f"{modality}.fault", f"{modality}.duration_s"} & names)
                self._command(modality, now, restart=restart)
        self._on_tick()

    # ------------------------------------------------------------------ messages

    def _on_image(self, modality: str, data: bytes) -> None:
        """Decide, damage if asked, publish now or later; never raises."""
        try:
            with self._lock:
                now = self._tau()
                if self._live.arm(now):
                    self.get_logger().info("schedule started at the first camera message")
                schedule = self._live.schedule()
                self._injector.schedule = schedule
                counts = self._counts[modality]
                counts["received"] += 1
                try:
                    stamp = cdr_stamp_ns(data)
                except ValueError:
                    stamp = 0
                delivery = self._injector.process(modality, now, stamp, data)
                if delivery is None:
                    counts["dropped"] += 1
                    return
            out: bytes | Image = delivery.payload
            if delivery.frozen:
                counts["frozen"] += 1
                if delivery.stamp_ns != cdr_stamp_ns(delivery.payload):  # restamp: the frozen frame, now
                    out = with_cdr_stamp(delivery.payload, delivery.stamp_ns)
            if delivery.content:
                out = self._damage(modality, out, schedule, delivery.content, delivery.stamp_ns)
            pub = self._pubs[modality]
            if delivery.delay_s > 0:
                counts["delayed"] += 1
                self._delay.put(time.monotonic() + delivery.delay_s, lambda: pub.publish(out))
            else:
                pub.publish(out)
            counts["published"] += 1
        except Exception as exc:  # keep the stream going; say why once in a while
            self._counts[modality]["errors"] += 1
            self.get_logger().error(f"{modality}: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)

    def _damage(
        self, modality: str, data: bytes | Image, schedule: FaultSchedule, content: Any, key: int
    ) -> bytes | Image:
        """Decode, apply the content faults in sensor units, encode back in the same encoding."""
        msg = data if isinstance(data, Image) else deserialize_message(data, Image)
        try:
            image = decode(msg, modality)
        except ImageMsgError:
            self._counts[modality]["undecodable"] += 1
            return data  # not an image we understand: passed on as it came (the node rejects it)
        damaged = schedule.apply(content, image, key=key)
        self._counts[modality]["damaged"] += 1
        return fill_msg(msg, damaged, msg.encoding, modality=modality)

    # ------------------------------------------------------------------ status and services

    def _on_tick(self) -> None:
        """End commanded faults whose duration ran out; publish fault starts and ends at once."""
        with self._lock:
            now = self._tau()
            expired = self._live.expired(now)
        if expired:
            self.set_parameters([Parameter(f"{m}.fault", value=params.NONE) for m in expired])
        with self._lock:
            changes = self._live.changes(self._tau())
        if changes:
            for change in changes:
                fault, source = change.active.fault, change.active.source
                self.get_logger().info(
                    f"fault {change.event}: {fault.modality} {fault.kind} ({source}) at {change.t_s:.3f} s"
                )
            self._publish_status(changes)

    def status(self, changes: Sequence[Any] = ()) -> dict[str, Any]:
        """What ``faults/active`` carries (JSON): the active faults with ROS-time starts and ends."""
        with self._lock:
            now = self._tau()
            active = self._live.active(now)
            schedule = self._live.file_schedule
            t0 = self._live.t0

            def stamped(entry: dict[str, Any]) -> dict[str, Any]:
                return {**entry, "start_ns": self._ns(entry["start_s"]), "end_ns": self._ns(entry["end_s"])}

            return {
                "node": self.get_fully_qualified_name(),
                "t_s": round(now, 6),
                "stamp_ns": self.get_clock().now().nanoseconds,
                "origin_ns": self._origin_ns,
                "schedule": {
                    "file": self._value("schedule_file") or None,
                    "faults": len(schedule) if schedule is not None else 0,
                    "t0_s": t0,
                    "t0_ns": self._ns(t0),
                },
                "active": [stamped(a.to_dict()) for a in active],
                "changes": [{**c.to_dict(), "t_ns": self._ns(c.t_s)} for c in changes],
                "counts": {m: dict(self._counts[m]) for m in (self._config.enabled if self._config else ())},
            }

    def _publish_status(self, changes: Sequence[Any] = ()) -> None:
        try:
            self._status_pub.publish(String(data=json.dumps(self.status(changes))))
        except Exception as exc:
            self.get_logger().error(f"faults/active: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)

    def _on_clear(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            now = self._tau()
            ended = len(self._live.active(now))
            self._live.clear(now)
        self.set_parameters([Parameter(f"{m}.fault", value=params.NONE) for m in MODALITIES])
        self._on_tick()
        response.success, response.message = True, f"ended {ended} active fault(s) and the schedule"
        return response

    def _on_restart(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        path = self._value("schedule_file")
        if not path:
            response.success, response.message = False, "no schedule_file to restart"
            return response
        with self._lock:
            self._live.load(FaultSchedule.load(path), self._tau())
        self._on_tick()
        response.success, response.message = True, f"schedule {path} started again"
        return response


def main(args: Sequence[str] | None = None) -> int:
    """Console script: configure and activate (``autostart``), run until SIGINT or SIGTERM, shut down
    through the lifecycle (exit 0); a bad parameter exits 2 naming it."""
    try:
        use_large_shm_segment()
    except ValueError as exc:  # a bad UNIMRSEG_SHM_SEGMENT_MB
        print(f"{topics.INJECTOR_NODE_NAME}: {exc}", file=sys.stderr)
        return 2
    return run_lifecycle_node(FaultInjectorNode, name=topics.INJECTOR_NODE_NAME, args=args)


if __name__ == "__main__":
    sys.exit(main())
