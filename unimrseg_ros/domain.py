"""Private ROS domain ids: an id locked with one file per id, so concurrent processes never share one.

Two users on one machine each need a ROS domain of their own: the test suite (one per
test, or per module) and ``unimrseg bag eval --live`` (one per run). A lease is an
exclusive ``flock`` on ``<lock_dir>/<id>.lock``, held until :meth:`DomainLease.release`
(or the end of the ``with`` block, or the process): a crashed holder frees its id at
once. Each user has its own pool of ids (:data:`TEST_DOMAIN_IDS`, :data:`LIVE_DOMAIN_IDS`),
so the two never compete.

Free of rclpy on purpose: ``test/conftest.py`` imports it, and must stay importable
where ROS is not installed.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

__all__ = [
    "LIVE_DOMAIN_IDS",
    "LIVE_LOCK_DIR",
    "TEST_DOMAIN_IDS",
    "TEST_LOCK_DIR",
    "DomainLease",
    "NoFreeDomainError",
]

TEST_DOMAIN_IDS: Final[tuple[int, ...]] = (*range(1, 102), *range(215, 233))
"""The test fixtures' ids: their DDS ports are valid and stay out of Linux's ephemeral port range
(https://docs.ros.org/en/rolling/Concepts/Intermediate/About-Domain-ID.html). 0 is left out: it
is every ROS user's default domain."""
LIVE_DOMAIN_IDS: Final[tuple[int, ...]] = tuple(range(102, 215))
"""``bag eval --live``'s ids: the rest of the valid range, so a live run never takes a test's id."""
TEST_LOCK_DIR: Final = Path(tempfile.gettempdir()) / "unimrseg_ros_test_domains"
LIVE_LOCK_DIR: Final = Path(tempfile.gettempdir()) / "unimrseg_live_domains"

_counter = itertools.count()


class NoFreeDomainError(RuntimeError):
    """Every id of the pool is leased by another process."""


class DomainLease:
    """An exclusively locked ROS domain id from ``ids``; ``domain_id`` is it. A context manager."""

    def __init__(self, ids: Sequence[int] = TEST_DOMAIN_IDS, lock_dir: Path = TEST_LOCK_DIR) -> None:
        if not ids:
            raise ValueError("no domain ids to choose from")
        lock_dir.mkdir(parents=True, exist_ok=True)
        # Start where this process and this call point, so concurrent runs rarely even contend.
        start = (os.getpid() * 7 + next(_counter)) % len(ids)
        for step in range(len(ids)):
            domain_id = ids[(start + step) % len(ids)]
            fd = os.open(lock_dir / f"{domain_id}.lock", os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.domain_id: int = domain_id
            self._fd: int | None = fd
            return
        raise NoFreeDomainError(f"all {len(ids)} ROS domain ids in {lock_dir} are in use by other processes")

    def release(self) -> None:
        """Give the id back (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DomainLease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
