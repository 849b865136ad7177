"""``unimrseg_node``: the segmentation lifecycle node. Camera images in; masks, status and diagnostics out.

A frame follows one path: subscription callback -> ``FramePipeline.receive`` (decode to
sensor units, ``HealthMonitor.observe``, ``FrameAssembler.add``; the same code ``unimrseg
bag eval`` runs offline), which returns a ``Step``: frames to run, health transitions, the
idle change or the rejection, which the node logs -> one-slot hand-off to the inference
thread (``LatestWorker``: the newest frame wins, replaced ones are counted as dropped) ->
``Segmenter.segment_frame`` (the frame's images and modality mask) -> masks and
``segmentation/status`` with the anchor's header. The node subscribes, hands off and
publishes; it never reaches into the pipeline's monitor or assembler.

Registration: the node subscribes ``<modality>/camera_info`` beside each image and hands
each CameraInfo to the pipeline, whose frames come registered into the anchor camera
(extrinsics from ``<modality>.extrinsic``: the pinned ROS wheels have no tf2_msgs, so
/tf_static cannot be subscribed); the reprojection runs on the inference thread when the
segmenter reads the frame's images. ``segmentation/camera_info`` carries the anchor's
CameraInfo scaled to the masks, with their header.

Lifecycle: parameters are declared in ``__init__``; ``on_configure`` reads them and
loads the model (engine builds happen here, not at activation); ``on_activate``
creates publishers, subscriptions and timers and starts the inference thread;
``on_deactivate`` stops and destroys them; ``on_cleanup`` releases the model.
With ``autostart`` (default) ``main()`` configures and activates at once.

Threads: inference runs on its own thread, so a slow model never delays a subscription;
every executor callback is short (decode, health checks and assembly take about 1 ms
per image). ``main()`` spins a SingleThreadedExecutor: measured here, rclpy's
MultiThreadedExecutor delivered the 10 Hz cameras in bursts with gaps of up to a second
(5-7 Hz on average), the single-threaded one all of them on time. The callbacks are still
safe under a multi-threaded executor (e.g. composed with other nodes): sensors and the
health/sync timer share one mutually exclusive group, diagnostics and QoS events
another, and a lock guards the pipeline (monitor and assembler). No callback lets an exception out.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String

from unimrseg_core import topics
from unimrseg_core.health import HealthState
from unimrseg_core.modalities import CLASS_COLORS, MODALITIES, color_table, model_classes
from unimrseg_core.pipeline import FramePipeline, RegisteredFrame, Rejection, Step
from unimrseg_core.runtime.backends import Backend
from unimrseg_core.runtime.failover import FailoverBackend, Switch
from unimrseg_core.runtime.latency import LatencyWindow
from unimrseg_core.runtime.latest_worker import LatestWorker
from unimrseg_core.runtime.segmenter import Segmenter
from unimrseg_core.runtime.selection import select_backend
from unimrseg_core.sync import NO_MESSAGE, Frame
from unimrseg_ros import parameters
from unimrseg_ros.camera_info import camera_info_message
from unimrseg_ros.diagnostics import (
    NO_FRAME_YET,
    InferenceReport,
    SensorReport,
    frame_status,
    inference_status,
    sensor_status,
)
from unimrseg_ros.outputs import image_message, labels_message
from unimrseg_ros.parameters import NodeConfig, ParameterError
from unimrseg_ros.qos import LATCHED, QosWatch, profile
from unimrseg_ros.rejects import RejectCounter
from unimrseg_ros.run import ManagedNode, run_lifecycle_node

__all__ = ["SegmentationNode", "main"]

IMAGE_OUTPUTS = (
    topics.CLASS_MASK,
    topics.COLORED_MASK,
    topics.SALIENCY_MASK,
    topics.SALIENCY_PROBABILITY,
    topics.OVERLAY,
)
ON_DEMAND = (topics.COLORED_MASK, topics.SALIENCY_PROBABILITY, topics.OVERLAY)  # only while subscribed


@dataclass(frozen=True)
class Received:
    """What an input message's output needs besides its image: the header and when it arrived."""

    header: Header
    arrived_s: float  # time.perf_counter() at the callback, for latency


class SegmentationNode(ManagedNode):
    """The lifecycle node; construct, then ``start()`` (what autostart does) or drive its transitions."""

    def __init__(self, node_name: str = topics.NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        parameters.declare(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._lock = threading.RLock()  # pipeline (monitor, assembler), per-modality facts
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._report_group = MutuallyExclusiveCallbackGroup()
        self._qos = QosWatch(self.get_logger().warning)
        self._config: NodeConfig | None = None
        self._backend: FailoverBackend | None = None
        self._segmenter: Segmenter | None = None
        self._colors = CLASS_COLORS  # the loaded model's class colours (its metadata's table)
        self._reset_active_state()

    # ------------------------------------------------------------------ lifecycle

    @property
    def segmenter(self) -> Segmenter | None:
        """The loaded model (None until configured and after cleanup)."""
        return self._segmenter

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            config = parameters.node_config(parameters.values_of(self))
        except ParameterError as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        try:
            selection = select_backend(config.backend, config.backend_options)
        except Exception as exc:  # a model that cannot be loaded is a failed configure, not a crash
            self.get_logger().error(
                f"configure failed: backend {config.backend!r}: {type(exc).__name__}: {exc}"
            )
            return TransitionCallbackReturn.FAILURE
        self._config = config
        self._backend = FailoverBackend(
            selection,
            config.backend_options,
            max_failures=config.fallback_after_failures,
            on_switch=self._on_backend_switch,
        )
        self._segmenter = Segmenter(self._backend, cuda_graphs=config.backend_options.cuda_graphs)
        self._colors = color_table(model_classes(self._backend.metadata))  # the model's class table
        h, w = self._segmenter.input_size
        self.get_logger().info(
            f"model loaded: backend {selection.backend.name} ({'; '.join(selection.notes)}), input {h}x{w}"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        config = self._config
        if config is None or self._segmenter is None:
            return TransitionCallbackReturn.FAILURE
        try:
            self._activate(config)
        except Exception as exc:
            self.get_logger().error(f"activate failed: {type(exc).__name__}: {exc}")
            self._deactivate()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f"active: inputs {', '.join(self._subs)} and their camera_info; "
            f"anchors {', '.join(config.sync.anchors)}"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self.get_logger().info("inactive: inputs and outputs released")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._release_model()
        self.get_logger().info("unconfigured: model released")
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Stop everything and drop the model, whatever the state (shutdown, errors, exit)."""
        self._deactivate()
        self._release_model()

    def _release_model(self) -> None:
        self._segmenter = None
        self._backend = None
        self._config = None

    # ------------------------------------------------------------------ activation

    def _reset_active_state(self) -> None:
        self._pipeline: FramePipeline[Received] | None = None
        self._worker: LatestWorker[Frame[Received]] | None = None
        self._subs: dict[str, Any] = {}
        self._info_subs: dict[str, Any] = {}  # CameraInfo beside each image
        self._pubs: dict[str, Any] = {}
        self._active_timers: list[Any] = []
        self._rejects = RejectCounter(5.0)
        self._rejects_reported: dict[str, int] = {}
        self._latency = LatencyWindow()
        self._inference = LatencyWindow()
        self._last_receive_ns: dict[str, int] = {}
        self._last_frame_id: dict[str, str] = {}
        self._published: Counter[str] = Counter(
            dict.fromkeys((*IMAGE_OUTPUTS, topics.STATUS, topics.MASK_CAMERA_INFO), 0)
        )
        self._failed = 0
        self._last_error_log = 0.0

    def _activate(self, config: NodeConfig) -> None:
        self._reset_active_state()
        self._qos.clear()
        self._rejects = RejectCounter(config.warn_period_s)
        with self._lock:
            self._pipeline = FramePipeline(
                config.health,
                config.sync,
                poll_rate_hz=config.health_poll_rate_hz,
                thermal=config.thermal,
                max_pixels=config.max_pixels,
                registration=config.registration,
            )
        self._worker = LatestWorker(self._infer, on_error=self._on_worker_error, name="unimrseg-inference")

        out_qos = profile(config.output_qos)
        wanted = [topics.CLASS_MASK, topics.SALIENCY_MASK]
        if config.publish_colored_mask:
            wanted.append(topics.COLORED_MASK)
        if config.publish_probability:
            wanted.append(topics.SALIENCY_PROBABILITY)
        if config.publish_overlay:
            wanted.append(topics.OVERLAY)
        for topic in wanted:
            self._pubs[topic] = self.create_publisher(
                Image, topic, out_qos, event_callbacks=self._qos.publisher(self._resolved(topic))
            )
        self._pubs[topics.MASK_CAMERA_INFO] = self.create_publisher(
            CameraInfo,
            topics.MASK_CAMERA_INFO,
            out_qos,
            event_callbacks=self._qos.publisher(self._resolved(topics.MASK_CAMERA_INFO)),
        )
        self._pubs[topics.STATUS] = self.create_publisher(
            DiagnosticArray,
            topics.STATUS,
            out_qos,
            event_callbacks=self._qos.publisher(self._resolved(topics.STATUS)),
        )
        self._pubs[topics.LABELS] = self.create_publisher(String, topics.LABELS, LATCHED)
        self._pubs[topics.DIAGNOSTICS] = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self._pubs[topics.LABELS].publish(
            labels_message(self._segmenter.backend.metadata if self._segmenter else None)
        )
        self._worker.start()

        in_qos = profile(config.input_qos)
        for modality in config.enabled:
            topic = self._input_topic(modality)
            self._subs[modality] = self.create_subscription(
                Image if config.transports[modality] == "raw" else CompressedImage,
                topic,
                lambda msg, m=modality: self._on_image(m, msg),
                in_qos,
                callback_group=self._input_group,
                event_callbacks=self._qos.subscription(self._resolved(topic)),
            )
            info = topics.CAMERA_INFOS[modality]
            self._info_subs[modality] = self.create_subscription(
                CameraInfo,
                info,
                lambda msg, m=modality: self._on_camera_info(m, msg),
                in_qos,
                callback_group=self._input_group,
                event_callbacks=self._qos.subscription(self._resolved(info)),
            )
        self._active_timers = [
            self.create_timer(
                1.0 / config.health_poll_rate_hz, self._on_poll, callback_group=self._input_group
            ),
            self.create_timer(
                config.diagnostics_period_s, self._on_diagnostics, callback_group=self._report_group
            ),
        ]

    def _deactivate(self) -> None:
        """Stop the inference thread first (so nothing publishes), then destroy timers, subs, pubs."""
        worker = self._worker
        if worker is not None:
            worker.stop()
        for timer in self._active_timers:
            self.destroy_timer(timer)
        for sub in (*self._subs.values(), *self._info_subs.values()):
            self.destroy_subscription(sub)
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        with self._lock:
            self._active_timers, self._subs, self._info_subs, self._pubs = [], {}, {}, {}
            self._pipeline, self._worker = None, None

    def _input_topic(self, modality: str) -> str:
        """``modality``'s input topic by its configured image_transport (raw until configured)."""
        transport = self._config.transports[modality] if self._config else "raw"
        return topics.input_topic(modality, transport)

    def _resolved(self, topic: str) -> str:
        try:
            return self.resolve_topic_name(topic)
        except Exception:  # older rclpy: the relative name is still informative
            return topic

    def _on_set_parameters(self, params: Sequence[Any]) -> SetParametersResult:
        """Parameters are read at configure: refuse changes while configured, and bad values always."""
        for param in params:
            if param.name not in parameters.BY_NAME:
                continue
            problem = parameters.validate(param.name, param.value)
            if problem:
                return SetParametersResult(successful=False, reason=f"{param.name}: {problem}")
            if param.name in parameters.MODEL_FILES:
                try:
                    parameters.model_file(param.name, param.value, self.get_parameter("model_dir").value)
                except ParameterError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
            if self.state_label not in ("unconfigured", "configuring"):
                return SetParametersResult(
                    successful=False,
                    reason=f"{param.name} is read at configure: deactivate and clean up the node, set it, "
                    "then configure again",
                )
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ inputs

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_image(self, modality: str, msg: Image | CompressedImage) -> None:
        """Hand the message to the pipeline and act on what it says; never raises."""
        arrived = time.perf_counter()
        receive_ns = self._now_ns()
        try:
            with self._lock:
                pipeline = self._pipeline
                if pipeline is None:
                    return  # deactivated meanwhile
                step = pipeline.receive(
                    modality, msg, receive_ns=receive_ns, payload=Received(msg.header, arrived)
                )
                if step.accepted is not None:
                    self._last_receive_ns[modality] = receive_ns
                    self._last_frame_id[modality] = msg.header.frame_id
            self._act(step)
        except Exception as exc:
            self._log_error(f"{modality} image dropped: {type(exc).__name__}: {exc}")

    def _on_camera_info(self, modality: str, msg: CameraInfo) -> None:
        """A camera's calibration for the pipeline's registration; a bad one is counted and logged."""
        try:
            with self._lock:
                pipeline = self._pipeline
                if pipeline is None:
                    return
                rejection = pipeline.receive_camera_info(modality, msg)
            if rejection is not None:
                self._reject(rejection)
        except Exception as exc:
            self._log_error(f"{modality} camera_info dropped: {type(exc).__name__}: {exc}")

    def _on_poll(self) -> None:
        """Silence detection and flushing frames whose wait for companions ran out."""
        try:
            now = self._now_ns()
            with self._lock:
                pipeline = self._pipeline
                if pipeline is None:
                    return
                step = pipeline.poll(now)
            self._act(step)
        except Exception as exc:
            self._log_error(f"health poll failed: {type(exc).__name__}: {exc}")

    def _act(self, step: Step[Received]) -> None:
        """Log what the step says (each transition once, output stopping or resuming), count a
        rejection, hand its frames to the inference thread."""
        if step.rejected is not None:
            self._reject(step.rejected)
        for t in step.transitions:
            text = f"{t.modality}: {t.old} -> {t.new} ({t.reason})"
            # one call site per severity: rclpy raises when a call site changes severity
            if t.new is HealthState.OK:
                self.get_logger().info(text)
            else:
                self.get_logger().warning(text)
        if step.idle_changed:
            if step.idle_reason and step.idle_reason != NO_MESSAGE:
                self.get_logger().error(f"no output: {step.idle_reason}")
            elif step.idle_reason is None:
                self.get_logger().info("output resumed")
        worker = self._worker
        if worker is not None:
            for frame in step.frames:
                worker.submit(frame)

    def _reject(self, rejection: Rejection) -> None:
        due = self._rejects.count(rejection.modality, rejection.reason, time.monotonic())
        if due is not None:
            more = f" ({due} more since the last warning)" if due else ""
            self.get_logger().warning(f"rejected {rejection.modality} message: {rejection.text}{more}")

    # ------------------------------------------------------------------ inference thread

    def _infer(self, frame: Frame[Received]) -> None:
        """Run the model on one frame and publish its outputs (on the inference thread)."""
        segmenter, pubs = self._segmenter, self._pubs
        if segmenter is None or not pubs:
            return
        anchor = frame.messages[frame.anchor].payload
        start = time.perf_counter()
        segmentation = segmenter.segment_frame(frame)
        inference_s = time.perf_counter() - start
        anchor_image = (frame.anchor, frame.anchor_image)
        for topic in IMAGE_OUTPUTS:
            pub = pubs.get(topic)
            if pub is None or (topic in ON_DEMAND and pub.get_subscription_count() == 0):
                continue
            msg = image_message(topic, segmentation, anchor.header, anchor=anchor_image, colors=self._colors)
            pub.publish(msg)
            self._published[topic] += 1
        self._publish_mask_camera_info(frame, anchor.header, segmentation.class_ids.shape[:2])
        latency_s = time.perf_counter() - anchor.arrived_s
        dropped = self._worker.dropped if self._worker is not None else 0
        status = frame_status(
            self.get_name(),
            anchor.header,
            frame,
            frame.notes,
            inference_s=inference_s,
            latency_s=latency_s,
            dropped=dropped,
        )
        pubs[topics.STATUS].publish(status)
        self._published[topics.STATUS] += 1
        done = time.monotonic_ns()
        self._inference.add(inference_s, done)
        self._latency.add(latency_s, done)

    def _publish_mask_camera_info(
        self, frame: Frame[Received], header: Header, size: tuple[int, ...]
    ) -> None:
        """The anchor's CameraInfo scaled to the masks, once the anchor's calibration is known."""
        pub = self._pubs.get(topics.MASK_CAMERA_INFO)
        if not isinstance(frame, RegisteredFrame) or frame.plan is None or pub is None:
            return
        intrinsics = frame.plan.anchor_intrinsics
        if intrinsics is not None:
            pub.publish(camera_info_message(intrinsics, header, (int(size[0]), int(size[1]))))
            self._published[topics.MASK_CAMERA_INFO] += 1

    def _on_worker_error(self, exc: BaseException) -> None:
        self._failed += 1
        self._log_error(f"inference failed: {type(exc).__name__}: {exc}")

    def _on_backend_switch(self, switch: Switch) -> None:
        log = self.get_logger().warning if switch.opened else self.get_logger().error
        log(f"backend failover: {switch.text} ({'; '.join(switch.notes)})")

    def _log_error(self, text: str) -> None:
        now = time.monotonic()
        period = self._config.warn_period_s if self._config else 5.0
        if now - self._last_error_log >= period:
            self._last_error_log = now
            self.get_logger().error(text)

    # ------------------------------------------------------------------ diagnostics

    def _on_diagnostics(self) -> None:
        try:
            pub = self._pubs.get(topics.DIAGNOSTICS)
            if pub is not None:
                pub.publish(self.diagnostics())
        except Exception as exc:
            self._log_error(f"diagnostics failed: {type(exc).__name__}: {exc}")

    def diagnostics(self) -> DiagnosticArray:
        """The /diagnostics message: one status per sensor and one for inference."""
        now = self._now_ns()
        config = self._config
        enabled = config.enabled if config else ()
        with self._lock:
            pipeline = self._pipeline
            if pipeline is None:
                raise RuntimeError("not active")
            status = pipeline.status(now)
            health, periods, anchor = status.health, status.expected_period_ns, status.anchor
            frames, idle = status.emitted, status.idle_reason
            registration = status.registration
            last_receive = dict(self._last_receive_ns)
            frame_ids = dict(self._last_frame_id)
        statuses = []
        for modality in MODALITIES:
            rejected = self._rejects.by_reason(modality)
            total = sum(rejected.values())
            new = total - self._rejects_reported.get(modality, 0)
            self._rejects_reported[modality] = total
            topic = self._resolved(self._input_topic(modality))
            report = SensorReport(
                modality=modality,
                enabled=modality in enabled,
                topic=topic,
                health=health[modality],
                expected_period_ns=periods[modality],
                age_ns=now - last_receive[modality] if modality in last_receive else None,
                frame_id=frame_ids.get(modality, ""),
                rejected=rejected,
                rejected_new=new,
                qos=self._qos.for_topic(topic),
                registration=registration[modality].text if modality in registration else NO_FRAME_YET,
            )
            statuses.append(sensor_status(self.get_name(), report))
        statuses.append(inference_status(self.get_name(), self._inference_report(frames, idle, anchor)))
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        return array

    def _inference_report(self, frames: int, idle: str | None, anchor: str | None) -> InferenceReport:
        failover = self._backend
        device, precision = backend_facts(failover.current if failover else None, self._config)
        inputs = {self._resolved(self._input_topic(m)) for m in MODALITIES}
        worker = self._worker
        return InferenceReport(
            backend=failover.name if failover else "none",
            precision=precision,
            device=device,
            notes=list(failover.notes) if failover else [],
            switches=[s.text for s in failover.switches] if failover else [],
            latency_p50_s=self._latency.percentile(50),
            latency_p95_s=self._latency.percentile(95),
            inference_p50_s=self._inference.percentile(50),
            inference_p95_s=self._inference.percentile(95),
            fps=self._latency.rate_hz(time.monotonic_ns()),
            frames=frames,
            dropped=worker.dropped if worker else 0,
            published=self._published[topics.STATUS],
            errors=self._failed,
            idle_reason=idle,
            anchor=anchor,
            outputs=dict(self._published),
            qos=[i for i in self._qos.incidents() if i.topic not in inputs],
        )


def backend_facts(backend: Backend | None, config: NodeConfig | None) -> tuple[str, str]:
    """(device, precision) the backend runs with: GPU engines use the fp16 parameter, the rest fp32."""
    if backend is None or config is None:
        return "none", "none"
    providers = getattr(backend, "providers", None)
    if providers is not None:  # onnxruntime
        device = "cuda" if providers and providers[0].startswith("CUDA") else "cpu"
    else:
        device = str(getattr(backend, "device", None) or config.backend_options.device or "cuda")
    gpu_engine = backend.name in ("tensorrt", "compiled") and device.startswith("cuda")
    return device, config.backend_options.precision if gpu_engine else "fp32"


def main(args: Sequence[str] | None = None) -> int:
    """Console script: run the node until SIGINT or SIGTERM, then shut it down through its lifecycle.

    The signals only set a flag (rclpy's own handlers are not installed): the spin loop
    ends within 0.1 s, the node goes through ``shutdown`` (inference thread joined, model
    released) while the context is still valid, and the exit code is 0; a params-file
    value outside its declared range exits 2 (:func:`unimrseg_ros.run.run_lifecycle_node`,
    shared with the fault injector). The executor is single-threaded: inference has its own
    thread (see the module docstring).
    """

    return run_lifecycle_node(SegmentationNode, name=topics.NODE_NAME, args=args)


if __name__ == "__main__":
    sys.exit(main())
