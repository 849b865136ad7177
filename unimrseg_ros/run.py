"""The console scripts' shared main loop: spin one node until SIGINT or SIGTERM, then tear it down.

``unimrseg_node`` and ``unimrseg_fault_injector`` are both lifecycle nodes and both run
through :func:`run_node`; :class:`ManagedNode` and :func:`run_lifecycle_node` hold what a
lifecycle node needs on top of it (``autostart``, shutdown through the lifecycle):

- rclpy's own signal handlers are not installed: SIGINT and SIGTERM only set a flag, so
  no ``KeyboardInterrupt`` can land in the middle of a callback or a transition;
- a SingleThreadedExecutor spins in steps of 0.1 s and stops within one step of the flag;
  an exception out of a callback (rclpy's parameter service raises on a malformed
  request) is logged on one line and the node goes on;
- then, while the context is still valid, the node's own ``stopping`` hook runs (the
  segmentation node's lifecycle shutdown), and the node, the executor and the context
  are destroyed, in that order, even when the hook raises;
- ``NAME: SIGINT: stopped in 0.05 s`` is logged (the teardown's own share of the exit);
- exit code 0 after a signal, 2 when the node cannot be made from its parameters (the
  error named on one line, no traceback).

Measured on 2 cores under load (benchmarks/results/reliability.json): this teardown takes
0.07 s (median; at most 0.14 s) of the segmentation node's 1.2-1.5 s exit; the rest is the
interpreter's own finalisation, most of it torch's, which the node imports through
``unimrseg_core.runtime.backends`` even when ONNX Runtime runs the model.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

__all__ = ["SPIN_STEP_S", "ManagedNode", "run_lifecycle_node", "run_node"]

SPIN_STEP_S = 0.1
"""Longest wait in one executor step: the delay between a signal and the start of teardown."""

N = TypeVar("N", bound=Node)
M = TypeVar("M", bound="ManagedNode")


class _Failures:
    """Exceptions out of ``spin_once``, logged (one line, at most every ``period_s``) and survived.

    The nodes' own callbacks never raise, but rclpy's do on malformed requests: a
    ``SetParameters`` request whose value has an unknown type id raises ValueError in
    rclpy's parameter service and, without this, ended the process (any client could
    stop a running robot's segmentation that way). The request goes unanswered; the
    node goes on.
    """

    def __init__(self, node: Node, period_s: float = 5.0) -> None:
        self._node = node
        self._period_s = period_s
        self._last_log = -math.inf
        self._suppressed = 0
        self.total = 0

    def report(self, exc: Exception) -> None:
        self.total += 1
        now = time.monotonic()
        if now - self._last_log < self._period_s:
            self._suppressed += 1
            return
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {where.filename}:{where.lineno}" if where else ""
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self._node.get_logger().error(
            f"a callback failed and was skipped: {type(exc).__name__}: {exc}{at}{more}"
        )
        self._last_log, self._suppressed = now, 0


def run_node(
    make_node: Callable[[], N],
    *,
    name: str,
    args: Sequence[str] | None = None,
    bad_parameter: tuple[type[BaseException], ...] = (ParameterException,),
    started: Callable[[N], None] | None = None,
    stopping: Callable[[N], None] | None = None,
) -> int:
    """Init rclpy with ``args`` (``sys.argv`` if None), make the node, spin it until a signal, tear down.

    ``make_node`` raising one of ``bad_parameter`` (e.g. a params-file value outside its
    declared range) prints ``NAME: bad parameter: ...`` to stderr and returns 2.
    ``started(node)`` runs before spinning (e.g. autostart), ``stopping(node)`` after it.
    """
    stop = threading.Event()
    received: list[tuple[int, float]] = []  # (signal, time.monotonic()) of the first one

    def on_signal(signum: int, _frame: object) -> None:
        if not received:
            received.append((signum, time.monotonic()))
        stop.set()

    argv = list(args) if args is not None else sys.argv
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    executor = SingleThreadedExecutor()
    node: N | None = None
    try:
        try:
            node = make_node()
        except bad_parameter as exc:
            print(f"{name}: bad parameter: {exc}", file=sys.stderr)
            return 2
        if started is not None:
            started(node)
        executor.add_node(node)
        failures = _Failures(node)
        while not stop.is_set() and rclpy.ok():
            try:
                executor.spin_once(timeout_sec=SPIN_STEP_S)
            except Exception as exc:  # see _Failures: one bad request must not end the node
                failures.report(exc)
    finally:
        try:
            if node is not None:
                try:
                    if stopping is not None:
                        stopping(node)
                finally:
                    executor.remove_node(node)
                    node.destroy_node()
            if received:  # what the node's own teardown took (the rest of an exit is the interpreter's)
                signum, at = received[0]
                get_logger(name).info(
                    f"{signal.Signals(signum).name}: stopped in {time.monotonic() - at:.3f} s"
                )
        finally:
            executor.shutdown()
            rclpy.try_shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


class ManagedNode(LifecycleNode):
    """A lifecycle node that frees everything in :meth:`release`, whatever its state.

    Subclasses declare parameters in ``__init__``, read them in ``on_configure`` and create
    their publishers and subscriptions in ``on_configure`` / ``on_activate``, destroying
    them in the mirror transitions; shutdown, errors and ``destroy_node`` all end in
    :meth:`release`, so nothing outlives the node (threads included).
    """

    def start(self) -> bool:
        """Configure, then activate (what ``autostart`` does); True when active."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    @property
    def state_label(self) -> str:
        """``unconfigured``, ``inactive``, ``active`` or ``finalized``."""
        return str(self._state_machine.current_state[1])

    def release(self) -> None:
        """Destroy what the transitions created and stop the node's threads; safe to call twice."""
        raise NotImplementedError

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        self.release()
        super().destroy_node()


def run_lifecycle_node(
    make_node: Callable[[], M],
    *,
    name: str,
    args: Sequence[str] | None = None,
    bad_parameter: tuple[type[BaseException], ...] = (ParameterException,),
) -> int:
    """:func:`run_node` for a :class:`ManagedNode` with an ``autostart`` parameter.

    With ``autostart`` the node is configured and activated before spinning (a failure is
    logged and the node stays up, unconfigured, for a lifecycle manager to retry); at the
    end it goes through ``shutdown`` while the context is still valid.
    """

    def autostart(node: M) -> None:
        if node.get_parameter("autostart").value and not node.start():
            node.get_logger().error(f"autostart failed; the node stays {node.state_label}")

    def shut_down(node: M) -> None:
        if node.state_label in ("unconfigured", "inactive", "active"):
            node.trigger_shutdown()
        node.release()  # whatever the state (e.g. finalized after an error)

    return run_node(
        make_node, name=name, args=args, bad_parameter=bad_parameter, started=autostart, stopping=shut_down
    )
