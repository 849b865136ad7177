"""argparse ``type=`` helpers shared by every ``unimrseg`` subcommand's parser.

Standard library only, and importing nothing of the project, so that any CLI module can use
them without importing another CLI (no import cycles) and ``unimrseg --help`` stays fast.
A bad value raises :class:`argparse.ArgumentTypeError` (argparse turns it into a one-line
error and exit status 2).
"""

from __future__ import annotations

import argparse
import re

__all__ = ["non_negative_float", "non_negative_int", "parse_size", "positive_float", "positive_int"]


def parse_size(text: str) -> tuple[int, int]:
    """``"240x320"`` -> (240, 320): height x width, each side within 16..4096 pixels."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH like 240x320, got {text!r}")
    h, w = int(match.group(1)), int(match.group(2))
    if not (16 <= h <= 4096 and 16 <= w <= 4096):
        raise argparse.ArgumentTypeError(f"each side must be within 16..4096 pixels, got {h}x{w}")
    return h, w


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a duration, a rate, a speed factor)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (mostly seconds: a delay, a skip, a wait)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
