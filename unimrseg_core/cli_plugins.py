"""Subcommands that other installed packages add to ``unimrseg``, found through entry points.

The core never imports ROS, yet ``unimrseg bag play``, ``bag record`` and ``bag eval --live``
need rclpy. So the package that has them (``unimrseg_ros``) declares, in setup.py::

    entry_points={"unimrseg.commands": ["bag = unimrseg_ros.cli:add_bag_commands"]}

and the ``bag`` parser calls every callable registered under its own name with its
subcommands (:func:`add_plugin_commands`). The arrow points from the ROS package to the
core: the core knows only the group's name. A plugin module must be cheap to import (no
rclpy at module level): building the parser loads it, also where ROS is not installed.
Entry points exist once the distribution is installed (``make setup``'s ``pip install -e .``
or a colcon build); from a bare source tree on PYTHONPATH there are none, and ``unimrseg``
then has only the core's commands.
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points
from typing import Final

__all__ = ["GROUP", "add_plugin_commands"]

GROUP: Final = "unimrseg.commands"
"""The entry-point group; an entry point's name is the ``unimrseg`` command it extends."""


def add_plugin_commands(command: str, subcommands: argparse._SubParsersAction) -> None:
    """Let every plugin registered for ``command`` (e.g. ``bag``) add to ``subcommands``, in a fixed order."""
    for entry in sorted(entry_points(group=GROUP, name=command), key=lambda entry: entry.value):
        entry.load()(subcommands)
