"""Package names that load their module on first use: one implementation for every package.

Why: the command-line parsers import ``unimrseg_core.data``, ``.bags`` and ``.model`` for a
few light facts; importing the renderer (OpenCV), rosbags or torch there would slow every
``unimrseg --help`` and make commands need packages they never use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, modules: Mapping[str, str], namespace: dict[str, Any], exported: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: name ``n`` comes from ``package.modules[n]``,
    imported when first asked for and then kept in ``namespace`` (the package's globals)."""

    def getattr_(name: str) -> Any:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{modules[name]}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *exported})

    return getattr_, dir_
