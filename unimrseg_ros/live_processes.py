"""The processes of ``bag eval --live``: a private ROS domain, ``unimrseg_node`` and ``bag play``.

Both run as children in their own process groups, with their output in log files, so a
crash shows in its log and no child outlives the run: :class:`Children` stops them on
every way out (return, exception, SIGINT / SIGTERM through :func:`interrupt_on_signals`).
No rclpy here: starting, watching and stopping processes needs none.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

from unimrseg_core import topics
from unimrseg_ros.domain import LIVE_DOMAIN_IDS, LIVE_LOCK_DIR, DomainLease, NoFreeDomainError

__all__ = [
    "DIAGNOSTICS_PERIOD_S",
    "PLAYER_DELAY_S",
    "Children",
    "LiveError",
    "interrupt_on_signals",
    "live_domain",
    "log_tail",
    "node_command",
    "player_command",
    "ros_env",
    "wait_for_node",
    "watch_playback",
]

DIAGNOSTICS_PERIOD_S: Final = 0.2
"""The node reports health this often during a live run (finer transition times than its default)."""
PLAYER_DELAY_S: Final = 3.0
"""The player waits this long after creating its publishers: with 1 s, the node's subscriptions
missed the first 1.8 s of the demo bag on a busy 2-core machine (discovery still running)."""
_PROGRESS_EVERY_S: Final = 5.0


class LiveError(RuntimeError):
    """The live run could not be made (the node never came up, the player failed)."""


@contextlib.contextmanager
def live_domain(requested: int | None) -> Iterator[int]:
    """``requested`` (or ``$ROS_DOMAIN_ID``), else an id locked for this run among live evaluations."""
    if requested is None and os.environ.get("ROS_DOMAIN_ID", "").strip():
        requested = int(os.environ["ROS_DOMAIN_ID"])
    if requested is not None:
        yield requested
        return
    try:
        lease = DomainLease(LIVE_DOMAIN_IDS, LIVE_LOCK_DIR)
    except NoFreeDomainError:
        raise LiveError("no free ROS domain id for the live run; set ROS_DOMAIN_ID") from None
    with lease:
        yield lease.domain_id


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt (so every ``with`` unwinds and stops the children).

    Only the main thread can set handlers; elsewhere the process's own handlers stay.
    """

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Children:
    """Child processes, each in its own process group, stopped (SIGINT, then SIGKILL) on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self, cmd: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``cmd`` with stdout and stderr into ``log``."""
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(cmd), env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """Interrupt every group still running (the newest first), then kill what is left after 10 s."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def ros_env(domain_id: int) -> dict[str, str]:
    """This environment on ``domain_id``, localhost discovery unless set, the venv's ament index."""
    env = dict(os.environ)
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    env.update({"ROS_DOMAIN_ID": str(domain_id), "PYTHONUNBUFFERED": "1"})
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env


def node_command(config: Path, node_args: Sequence[str]) -> list[str]:
    """``unimrseg_node`` with the params file ``config`` and a live run's diagnostics period."""
    return [
        str(Path(sys.prefix) / "bin" / topics.NODE_NAME),
        "--ros-args",
        "--params-file",
        str(config),
        "-p",
        f"diagnostics_period_seconds:={DIAGNOSTICS_PERIOD_S}",
        *node_args,
    ]


def player_command(
    bag: Path, play_topics: Sequence[str], remap: Mapping[str, str], report: Path
) -> list[str]:
    """``unimrseg bag play`` of ``play_topics`` with /clock, its report written to ``report``."""
    cmd = [str(Path(sys.prefix) / "bin" / "unimrseg"), "bag", "play", str(bag), "--clock"]
    cmd += ["--delay", str(PLAYER_DELAY_S), "--topics", *play_topics, "--json", str(report)]
    if remap:
        cmd += ["--remap", *(f"{a}:={b}" for a, b in remap.items())]
    return cmd


def log_tail(log: Path, n: int = 1500) -> str:
    """The last ``n`` characters of a child's log, for the error that names why it failed."""
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def wait_for_node(
    ready: Callable[[], bool], node: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    """Until ``ready()`` (the node reports); :class:`LiveError` if it exits or stays silent ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if node.poll() is not None:
            raise LiveError(f"{topics.NODE_NAME} exited ({node.returncode}): {log_tail(log)}")
        if time.monotonic() > deadline:
            raise LiveError(f"{topics.NODE_NAME} not reporting after {timeout_s:g} s: {log_tail(log)}")
        time.sleep(0.1)


def watch_playback(
    player: subprocess.Popen[bytes],
    player_log: Path,
    node: subprocess.Popen[bytes],
    node_log: Path,
    progress: Callable[[float], None] | None = None,
) -> None:
    """Until the player ends; :class:`LiveError` if it fails or the node exits meanwhile.

    ``progress(seconds played)`` is called every 5 s, from the start.
    """
    started = time.monotonic()
    last = -_PROGRESS_EVERY_S
    while player.poll() is None:
        elapsed = time.monotonic() - started
        if progress is not None and elapsed - last >= _PROGRESS_EVERY_S:
            last = elapsed
            progress(elapsed)
        if node.poll() is not None:
            raise LiveError(f"{topics.NODE_NAME} exited during playback: {log_tail(node_log)}")
        time.sleep(0.2)
    if player.returncode != 0:
        raise LiveError(f"bag play failed ({player.returncode}): {log_tail(player_log)}")
