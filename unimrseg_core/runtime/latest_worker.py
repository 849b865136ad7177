"""Run a slow function on a thread, always on the newest item: a one-slot hand-off.

Why: when the model is slower than the cameras, a queue grows and every output gets
later; with one slot, a new item replaces the one still waiting (it is counted as
dropped), so the work done is always on the freshest frame and latency stays bounded
by one inference. The submitter (a ROS subscription callback) never blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LatestWorker"]

T = TypeVar("T")


class LatestWorker(Generic[T]):
    """A daemon thread that calls ``handle(item)`` for the newest submitted item.

    ``handle`` must not raise; if it does, ``on_error(exc)`` is called and the worker
    goes on with the next item (a broken frame must not stop the outputs).
    """

    def __init__(
        self,
        handle: Callable[[T], None],
        *,
        on_error: Callable[[BaseException], None],
        name: str = "latest-worker",
    ) -> None:
        self._handle = handle
        self._on_error = on_error
        self._name = name
        self._cond = threading.Condition()
        self._slot: T | None = None
        self._has_item = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.submitted = 0
        self.dropped = 0
        """Items replaced in the slot before the worker took them."""
        self.handled = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._cond:
            if self.running:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def submit(self, item: T) -> bool:
        """Put ``item`` in the slot; True when it replaced one not yet taken (a drop)."""
        with self._cond:
            replaced = self._has_item
            self._slot, self._has_item = item, True
            self.submitted += 1
            self.dropped += replaced
            self._cond.notify()
        return replaced

    def stop(self, timeout: float = 10.0) -> bool:
        """Discard the waiting item, let the current call finish, join; True when the thread ended."""
        with self._cond:
            self._stopping = True
            self._slot, self._has_item = None, False
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        ended = thread is None or not thread.is_alive()
        if ended:
            self._thread = None
        return ended

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._has_item and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                item = self._slot
                self._slot, self._has_item = None, False
            try:
                self._handle(item)  # type: ignore[arg-type]
            except BaseException as exc:  # the worker outlives any frame
                self._on_error(exc)
            self.handled += 1
