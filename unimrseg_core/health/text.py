"""How numbers appear in reasons, so every reason reads the same way on /diagnostics."""

from __future__ import annotations

__all__ = ["percent", "seconds", "size"]


def seconds(ns: float) -> str:
    """``0.42 s``."""
    return f"{ns / 1e9:.2f} s"


def size(shape: tuple[int, ...]) -> str:
    """``480x640x3``."""
    return "x".join(str(n) for n in shape) if shape else "scalar"


def percent(fraction: float) -> str:
    """``93%``."""
    return f"{100.0 * fraction:.0f}%"
