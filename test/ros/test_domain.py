"""The one domain-id lease (unimrseg_ros.domain), shared by the test fixtures and ``bag eval --live``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from unimrseg_ros.domain import LIVE_DOMAIN_IDS, TEST_DOMAIN_IDS, DomainLease, NoFreeDomainError


def test_pools_are_valid_disjoint_and_leave_out_the_default_domain() -> None:
    assert not set(TEST_DOMAIN_IDS) & set(LIVE_DOMAIN_IDS)
    assert 0 not in TEST_DOMAIN_IDS + LIVE_DOMAIN_IDS
    assert all(0 < i <= 232 for i in TEST_DOMAIN_IDS + LIVE_DOMAIN_IDS)


def test_a_leased_id_is_not_leased_again_until_released(tmp_path: Path) -> None:
    ids = (7, 8)
    with DomainLease(ids, tmp_path) as first, DomainLease(ids, tmp_path) as second:
        assert {first.domain_id, second.domain_id} == set(ids)
        with pytest.raises(NoFreeDomainError, match="2 ROS domain ids"):
            DomainLease(ids, tmp_path)
        second.release()
        second.release()  # idempotent
        assert DomainLease(ids, tmp_path).domain_id == second.domain_id


def test_another_process_holding_the_id_is_respected(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from unimrseg_ros.domain import DomainLease; "
            f"lease = DomainLease((5,), Path({str(tmp_path)!r})); print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(NoFreeDomainError):
            DomainLease((5,), tmp_path)
    finally:
        holder.kill()
        holder.wait(10)
    assert DomainLease((5,), tmp_path).domain_id == 5  # a dead holder frees its id at once


def test_the_fixtures_import_no_ros() -> None:
    code = (
        "import sys; sys.modules['rclpy'] = None; sys.path.insert(0, 'test'); import conftest; "
        "assert 'rclpy' not in [m for m in sys.modules if sys.modules[m] is not None]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
