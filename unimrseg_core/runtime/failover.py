"""A backend that outlives its engine: after repeated runtime failures, the next backend takes over.

Why: an engine can break long after it opened. CUDA runs out of memory when another
process takes the GPU, a driver resets, a context is corrupted. A perception node that
stops publishing is the worst answer. :class:`FailoverBackend` wraps the opened
backend. After ``max_failures`` consecutive exceptions from its ``infer`` it opens the
next backend of the ``auto`` order on the same model (``selection.next_backend``:
tensorrt -> compiled -> onnxruntime -> torch), re-runs the failing batch there and
records a :class:`Switch` that the node puts on /diagnostics.

Only exceptions raised by ``infer`` count. Bad input images are refused earlier, in
``Segmenter`` preprocessing, so one broken camera frame never costs the engine. A
backend that takes over must serve the same model contract (classes and input
size). Otherwise it is closed and the next one is tried.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from unimrseg_core.runtime.backends import Backend, Feeds
from unimrseg_core.runtime.options import BackendOptions
from unimrseg_core.runtime.selection import BackendError, Selection, next_backend

log = logging.getLogger(__name__)

__all__ = ["FailoverBackend", "Switch"]

_CONTRACT_KEYS = ("classes", "input_size")
T = TypeVar("T")


@dataclass(frozen=True)
class Switch:
    """One runtime failover: which backend failed, with what, and what runs now (None: nothing could)."""

    failed: str
    error: str  # "OutOfMemoryError: CUDA out of memory ..." (the last of the consecutive failures)
    failures: int
    opened: str | None
    notes: tuple[str, ...]  # every backend tried, as select_backend reports them

    @property
    def text(self) -> str:
        now = f"switched to {self.opened}" if self.opened else "no other backend could be opened"
        return f"{self.failed} failed {self.failures}x at runtime ({self.error}); {now}"


def _free_gpu_memory(exc: BaseException) -> None:
    """After CUDA out-of-memory, return torch's cached blocks so the next backend has room."""
    torch = sys.modules.get("torch")
    if torch is not None and "out of memory" in str(exc).lower() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


class FailoverBackend:
    """A :class:`Backend` that delegates to ``current`` and replaces it when it keeps failing.

    ``max_failures`` = 0 turns failover off: every failure is raised and the backend stays.
    ``infer`` runs on one thread (the node's inference thread); ``name``, ``current`` and
    ``switches`` may be read from any thread.
    """

    def __init__(
        self,
        selection: Selection,
        options: BackendOptions,
        *,
        max_failures: int = 3,
        on_switch: Callable[[Switch], None] | None = None,
    ) -> None:
        """``on_switch``: told of each switch, on the inference thread (the node logs it)."""
        if max_failures < 0:
            raise ValueError(f"max_failures must be >= 0, got {max_failures}")
        self._current: Backend | None = selection.backend
        self.notes: list[str] = list(selection.notes)
        self.metadata: dict[str, Any] = selection.backend.metadata
        self._options = options
        self._max_failures = max_failures
        self._on_switch = on_switch
        self._consecutive = 0
        self._lock = threading.Lock()
        self.switches: list[Switch] = []

    @property
    def current(self) -> Backend | None:
        """The backend running now; None once every fallback failed (each frame then fails)."""
        return self._current

    @property
    def name(self) -> str:
        return self._current.name if self._current is not None else "none"

    def infer(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        return self.run_guarded(lambda backend: backend.infer(feeds))

    def run_guarded(self, call: Callable[[Backend], T]) -> T:
        """``call(current backend)``, counted: after ``max_failures`` consecutive exceptions the
        next backend opens and ``call`` is re-run on it. ``Segmenter`` passes its whole device or
        host stages here, so a CUDA failure inside them fails over like one inside ``infer``."""
        backend = self._current
        if backend is None:
            raise BackendError(f"no backend left: {self.switches[-1].text}")
        try:
            result = call(backend)
        except Exception as exc:
            self._consecutive += 1
            if not self._max_failures or self._consecutive < self._max_failures:
                raise
            _free_gpu_memory(exc)
            if self._switch(backend, exc) is None:
                raise
            return self.run_guarded(call)  # the frame that broke the old backend, on the new one
        self._consecutive = 0
        return result

    def _switch(self, failed: Backend, exc: Exception) -> Backend | None:
        """Open the next backend that serves this model; record the switch either way."""
        error = f"{type(exc).__name__}: {exc}"
        reason = f"failed {self._consecutive}x at runtime ({error})"
        log.error("backend %s %s; opening the next backend", failed.name, reason)
        name, opened, notes = failed.name, None, []
        while opened is None:
            try:
                selection = next_backend(name, self._options, reason)
            except BackendError as err:
                notes.append(str(err))
                break
            notes.extend(selection.notes)
            differs = [k for k in _CONTRACT_KEYS if selection.backend.metadata.get(k) != self.metadata.get(k)]
            if differs:
                name, reason = selection.backend.name, f"serves another model ({', '.join(differs)} differ)"
                notes.append(f"{name}: {reason}")
                continue
            opened = selection.backend
        switch = Switch(failed.name, error, self._consecutive, opened.name if opened else None, tuple(notes))
        with self._lock:
            self.switches.append(switch)
            self.notes.append(switch.text)
            self._current = opened
        self._consecutive = 0
        (log.warning if opened else log.error)("backend failover: %s", switch.text)
        if self._on_switch is not None:
            self._on_switch(switch)
        return opened
