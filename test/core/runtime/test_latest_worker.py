"""The one-slot hand-off: the worker always takes the newest item, replaced ones are counted,
the submitter never blocks, and a failing item does not stop the worker."""

from __future__ import annotations

import threading
import time

import pytest

from unimrseg_core.runtime.latency import LatencyWindow
from unimrseg_core.runtime.latest_worker import LatestWorker


def test_a_slow_handler_sees_the_newest_item_and_drops_are_counted():
    release = threading.Event()
    started = threading.Event()
    seen: list[int] = []

    def handle(item: int) -> None:
        seen.append(item)
        started.set()
        release.wait(5)

    worker: LatestWorker[int] = LatestWorker(handle, on_error=pytest.fail)
    worker.start()
    worker.submit(0)
    assert started.wait(5)
    replaced = [worker.submit(i) for i in range(1, 6)]  # the handler is busy with 0
    assert replaced == [False, True, True, True, True]
    release.set()
    deadline = time.monotonic() + 5
    while worker.handled < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop(5)
    assert seen == [0, 5]  # 1..4 were replaced before the worker was free: only the newest ran
    assert worker.dropped == 4
    assert worker.submitted == 6


def test_items_are_handled_in_order_when_the_handler_keeps_up():
    done = threading.Semaphore(0)
    seen: list[int] = []

    def handle(item: int) -> None:
        seen.append(item)
        done.release()

    worker: LatestWorker[int] = LatestWorker(handle, on_error=pytest.fail)
    worker.start()
    for i in range(20):
        worker.submit(i)
        assert done.acquire(timeout=5)
    assert worker.stop(5)
    assert seen == list(range(20))
    assert (worker.dropped, worker.handled) == (0, 20)
    assert not worker.running


def test_an_exception_is_reported_and_the_worker_goes_on():
    errors: list[BaseException] = []
    done = threading.Semaphore(0)

    def handle(item: int) -> None:
        try:
            if item == 1:
                raise RuntimeError("broken frame")
        finally:
            done.release()

    worker: LatestWorker[int] = LatestWorker(handle, on_error=errors.append)
    worker.start()
    for i in range(3):
        worker.submit(i)
        assert done.acquire(timeout=5)
    assert worker.stop(5)
    assert [str(e) for e in errors] == ["broken frame"]
    assert worker.handled == 3


def test_stop_without_start_and_restart():
    seen: list[int] = []
    done = threading.Event()

    def handle(item: int) -> None:
        seen.append(item)
        done.set()

    worker: LatestWorker[int] = LatestWorker(handle, on_error=pytest.fail)
    assert worker.stop(1)
    worker.start()
    worker.submit(7)
    assert done.wait(5)
    assert worker.stop(5)
    worker.start()
    assert worker.running
    assert worker.stop(5)
    assert seen == [7]


def test_latency_window_percentiles_and_rate():
    window = LatencyWindow(size=100)
    assert window.percentile(50) is None
    for i in range(200):  # only the last 100 are kept: 0.100 .. 0.199 s
        window.add(i / 1000, done_ns=i * 10_000_000)
    assert len(window) == 100
    assert window.percentile(50) == pytest.approx(0.1495)
    assert window.percentile(95) == pytest.approx(0.19405)
    # completions every 10 ms: 100 Hz over the last second
    assert window.rate_hz(now_ns=1_990_000_000, horizon_s=1.0) == pytest.approx(100.0)
    assert window.rate_hz(now_ns=10**12, horizon_s=1.0) == 0.0
    with pytest.raises(ValueError, match="size"):
        LatencyWindow(1)
