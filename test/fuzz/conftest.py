"""Tells :mod:`fuzzing` which property runs, and writes the tally when asked to.

With ``UNIMRSEG_FUZZ_RECORD=<file>`` the session ends by writing, per property, its
outcome counts, call seconds and pass/fail as JSON (``benchmarks/fuzz.py`` reads it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fuzzing
import pytest

_RESULTS: dict[str, dict[str, Any]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    fuzzing.current = item.name
    try:
        return (yield)
    finally:
        fuzzing.current = "outside a test"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        name = report.nodeid.rpartition("::")[2]
        _RESULTS[name] = {"test": report.nodeid, "seconds": report.duration, "outcome": report.outcome}


def pytest_sessionfinish(session: pytest.Session) -> None:
    del session
    target = os.environ.get(fuzzing.RECORD_ENV)
    if not target:
        return
    payload = {
        name: {**result, "examples": fuzzing.EXAMPLES[name], "outcomes": dict(fuzzing.TALLY.get(name, {}))}
        for name, result in _RESULTS.items()
    }
    Path(target).write_text(
        json.dumps(
            {
                "profile": fuzzing.PROFILE_NAME,
                "max_examples": fuzzing.PROFILE.max_examples,
                "properties": payload,
            }
        )
    )
