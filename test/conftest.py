"""Fixtures shared by the whole test suite.

This module must stay importable without ROS: it never imports rclpy at module level,
so the core tests run in an environment without it.

ROS isolation: every test that talks over DDS gets its own ``ROS_DOMAIN_ID``, with
discovery restricted to this host (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``), so
tests never see each other, a concurrent test run, or a live robot on the network.
Domain ids are reserved with an exclusive lock file per id, held for the test's
duration, so two pytest processes on one machine never pick the same id.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from unimrseg_ros.domain import TEST_DOMAIN_IDS, TEST_LOCK_DIR, DomainLease  # rclpy-free

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_DIR = Path(__file__).resolve().parent

# Fast DDS participant profile that shortens late-joiner discovery (see the XML file).
FASTDDS_PROFILE = TEST_DIR / "fastdds_fast_discovery.xml"


def _lease() -> DomainLease:
    """A domain id of the test pool (valid ports, out of the ephemeral range, 0 left out), locked
    for this process until released; one implementation with ``bag eval --live``'s own pool."""
    return DomainLease(TEST_DOMAIN_IDS, TEST_LOCK_DIR)


def _ament_prefix_path() -> str:
    """AMENT_PREFIX_PATH that includes this venv (rclpy finds its rmw and types through it)."""
    current = os.environ.get("AMENT_PREFIX_PATH", "")
    if not current:
        return sys.prefix
    if sys.prefix in current.split(os.pathsep):
        return current
    return os.pathsep.join([sys.prefix, current])


def ros_vars(domain_id: int) -> dict[str, str]:
    """The ROS environment variables a test process (or child process) needs."""
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_STATIC_PEERS": "",
        "AMENT_PREFIX_PATH": _ament_prefix_path(),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "FASTDDS_DEFAULT_PROFILES_FILE": str(FASTDDS_PROFILE),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository (package source) root."""
    return REPO_ROOT


@pytest.fixture
def make_ros_env() -> Iterator[Callable[[], dict[str, str]]]:
    """Factory: each call returns a full child-process environment on a NEW unique domain id.

    For tests that need several isolated domains (e.g. proving domains do not see each
    other). The ids stay reserved until the test ends.
    """
    leases: list[DomainLease] = []

    def make() -> dict[str, str]:
        lease = _lease()
        leases.append(lease)
        return {**os.environ, **ros_vars(lease.domain_id)}

    yield make
    for lease in leases:
        lease.release()


@pytest.fixture
def ros_env(make_ros_env: Callable[[], dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for child processes on this test's own ROS domain, also applied in-process.

    Pass it as ``env=`` to subprocesses; in-process rclpy (``rclpy.init()`` after this
    fixture) sees the same domain. ``int(ros_env["ROS_DOMAIN_ID"])`` is the domain id.
    """
    env = make_ros_env()
    for key, value in ros_vars(int(env["ROS_DOMAIN_ID"])).items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(scope="module")
def module_ros_env() -> Iterator[dict[str, str]]:
    """Like ``ros_env``, for processes shared by a module's tests (one node for several checks).

    Not applied in-process: a module-scoped in-process rclpy sets these variables itself.
    """
    lease = _lease()
    try:
        yield {**os.environ, **ros_vars(lease.domain_id)}
    finally:
        lease.release()


@pytest.fixture
def rclpy_context(ros_env: dict[str, str]) -> Iterator[object]:
    """An initialised rclpy ``Context`` on this test's domain, shut down afterwards.

    Create nodes with ``rclpy.create_node(name, context=rclpy_context)`` and executors
    with ``SingleThreadedExecutor(context=rclpy_context)``.
    """
    import rclpy  # imported here: only tests that ask for a context need ROS

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


@pytest.fixture(scope="session", autouse=True)
def engine_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Engines and exported ONNX files go to a per-run folder, never into the user's ~/.cache."""
    path = tmp_path_factory.mktemp("unimrseg-cache")
    before = os.environ.get("UNIMRSEG_CACHE")
    os.environ["UNIMRSEG_CACHE"] = str(path)
    yield path
    if before is None:
        os.environ.pop("UNIMRSEG_CACHE", None)
    else:
        os.environ["UNIMRSEG_CACHE"] = before
