"""What every fuzz property shares: the hypothesis profiles, the example budget and the outcome tally.

Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (the default) is small and derandomized, so a CI
run is reproducible and the whole folder stays near a minute on two cores; ``long`` runs
thousands of examples per property (``UNIMRSEG_FUZZ_EXAMPLES``, default 3000), seeded by
``--hypothesis-seed``. They are applied only to these properties (as ``parent``), never
loaded globally, so the other suites' hypothesis tests keep their own settings.

Each property sends every input through :func:`attempt`, which tallies how it ended
(``accepted``, or refused with which error and reason). ``benchmarks/fuzz.py`` reads the
tally from the file named by ``UNIMRSEG_FUZZ_RECORD`` (written by ``conftest.py``).
"""

from __future__ import annotations

import functools
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final, ParamSpec, TypeVar

from hypothesis import HealthCheck, settings

__all__ = [
    "EXAMPLES",
    "EXAMPLES_ENV",
    "PROFILE",
    "PROFILE_NAME",
    "RECORD_ENV",
    "TALLY",
    "attempt",
    "budget",
    "counted",
    "note",
]

PROFILE_ENV: Final = "HYPOTHESIS_PROFILE"
EXAMPLES_ENV: Final = "UNIMRSEG_FUZZ_EXAMPLES"
RECORD_ENV: Final = "UNIMRSEG_FUZZ_RECORD"

_QUIET: Final = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,  # the same examples on every run: a CI failure reproduces
    database=None,
    deadline=timedelta(seconds=5),  # far above any example; a slow one is a bug, not noise
    suppress_health_check=_QUIET,
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get(EXAMPLES_ENV, "3000")),
    database=None,
    deadline=timedelta(seconds=20),
    suppress_health_check=_QUIET,
    print_blob=True,
)
PROFILE_NAME: Final = os.environ.get(PROFILE_ENV, "ci")
PROFILE: Final = settings.get_profile(PROFILE_NAME)
TIMEOUT_S: Final = 300 if PROFILE_NAME == "ci" else 3600
"""Per property: far beyond its run time, so only a hang reaches it."""

TALLY: dict[str, Counter[str]] = defaultdict(Counter)
"""Property (test name) -> outcome -> how many calls ended so (a stream property makes several)."""
EXAMPLES: Counter[str] = Counter()
"""Property (test name) -> examples run, shrinking included."""
current = "outside a test"
"""The running property; set by ``conftest.py`` around each test call."""

R = TypeVar("R")
P = ParamSpec("P")


def budget(fraction: float = 1.0, *, deadline: timedelta | bool | None = True) -> settings:
    """The profile's settings with ``fraction`` of its examples (IO-bound properties take fewer).

    ``deadline=None`` switches the per-example deadline off (properties that touch files,
    where a busy disk is not a bug); a hang is still caught by the test's timeout.
    """
    extra: dict[str, Any] = {} if deadline is True else {"deadline": deadline}
    return settings(parent=PROFILE, max_examples=max(10, round(PROFILE.max_examples * fraction)), **extra)


def counted(test: Callable[P, None]) -> Callable[P, None]:
    """Count every example hypothesis runs; goes between ``@given`` and the test function."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        EXAMPLES[current] += 1
        test(*args, **kwargs)

    return run


def note(outcome: str) -> None:
    """Count one example of the running property as ending with ``outcome``."""
    TALLY[current][outcome] += 1


def attempt(
    call: Callable[[], R],
    expected: tuple[type[BaseException], ...],
    why: Callable[[Any], str] = lambda exc: type(exc).__name__,
    what: Callable[[R], str] = lambda result: "accepted",
) -> tuple[R | None, BaseException | None]:
    """``(result, None)`` or ``(None, error)`` for an ``expected`` error; anything else is re-raised.

    Every end is tallied: ``what(result)`` (``accepted``), ``<Error>: <why(error)>``, or
    ``uncaught: <Type>`` (which also fails the property, as hypothesis sees the exception).
    """
    try:
        result = call()
    except expected as exc:
        note(f"{type(exc).__name__}: {why(exc)}")
        return None, exc
    except Exception as exc:
        note(f"uncaught: {type(exc).__name__}")
        raise
    note(what(result))
    return result, None
