"""Rejected-message counters: every rejection counted, one warning per reason per period."""

from __future__ import annotations

from unimrseg_ros.rejects import RejectCounter


def test_every_rejection_is_counted_and_warnings_are_rate_limited_per_reason():
    counter = RejectCounter(period_s=5.0)
    due = [counter.count("rgb", "short_data", t * 0.5) for t in range(25)]  # 0 .. 12 s
    assert due == [0, *[None] * 9, 9, *[None] * 9, 9, None, None, None, None]
    assert counter.count("rgb", "bad_step", 1.0) == 0  # another reason has its own budget
    assert counter.count("depth", "short_data", 1.0) == 0
    assert counter.by_reason("rgb") == {"bad_step": 1, "short_data": 25}
    assert counter.total("rgb") == 26
    assert counter.total() == 27
    assert counter.by_reason("thermal") == {}
