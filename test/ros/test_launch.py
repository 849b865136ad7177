"""launch/unimrseg.launch.py: its arguments, and (where ROS 2 `launch` is installed) the node it starts.

The `launch` and `launch_ros` packages come with a ROS 2 installation, not from PyPI, so
the test that builds the launch description is skipped here with the reason; the static
checks run everywhere.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from unimrseg_core import topics

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "unimrseg.launch.py"
ARGUMENTS = {
    "namespace",
    "params_file",
    "backend",
    "rgb_topic",
    "depth_topic",
    "thermal_topic",
    "use_sim_time",
    "autostart",
    "log_level",
}


def load_module():
    spec = importlib.util.spec_from_file_location("unimrseg_launch", LAUNCH_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_file_imports_ros_launch_only_inside_its_function():
    tree = ast.parse(LAUNCH_FILE.read_text())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top_level for a in n.names}
    names |= {n.module for n in top_level if isinstance(n, ast.ImportFrom) and n.module}
    assert not {n for n in names if n.split(".")[0] in ("launch", "launch_ros")}
    module = load_module()  # importable without launch installed
    assert callable(module.generate_launch_description)


def test_launch_file_takes_node_and_topic_names_from_the_topic_table():
    tree = ast.parse(LAUNCH_FILE.read_text())
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {("unimrseg_core.topics", "INPUTS"), ("unimrseg_core.topics", "NODE_NAME")} <= imported
    # (test/core/test_topics.py: and it spells no topic or node name itself)


def test_launch_file_documents_every_argument():
    docstring = ast.get_docstring(ast.parse(LAUNCH_FILE.read_text())) or ""
    for name in ARGUMENTS:
        assert name in docstring, name


def ros_launch_missing() -> str | None:
    """Why ROS 2 launch cannot be used here (the repository's launch/ folder is not the package)."""
    try:
        import launch
        import launch_ros  # noqa: F401
    except ImportError as exc:
        return f"ROS 2 launch / launch_ros are not installed (not on PyPI): {exc}"
    if not hasattr(launch, "LaunchDescription"):
        return "ROS 2 `launch` is not installed (only this repository's launch/ folder is on the path)"
    return None


def test_launch_description_declares_the_arguments_and_the_node():
    missing = ros_launch_missing()
    if missing:
        pytest.skip(missing)
    from launch.actions import DeclareLaunchArgument
    from launch_ros.actions import Node

    description = load_module().generate_launch_description()
    declared = {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert declared == ARGUMENTS
    (node,) = [e for e in description.entities if isinstance(e, Node)]
    assert node.node_package == "unimrseg_ros"
    assert node.node_executable == topics.NODE_NAME
