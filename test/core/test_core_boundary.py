"""unimrseg_core never needs ROS: every module imports with rclpy and all ROS message packages gone.

A fresh interpreter gets a meta-path finder, inserted before any other, that refuses
rclpy and the ROS interface / middleware packages, records who asked, then imports
``unimrseg_core`` and every submodule that pkgutil finds. Imports inside functions run
only when called, so the source is also read: no ``import`` statement anywhere in
``unimrseg_core`` names rclpy or ``unimrseg_ros`` (the ROS bag commands reach ``unimrseg`` as
an entry-point plugin, see ``unimrseg_core/cli_plugins.py``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    r"""
    import importlib, json, pkgutil, sys, traceback

    ROS_PREFIXES = (
        "rclpy", "rcl_", "rosidl_", "rmw", "rcutils", "rpyutils", "ament_index", "launch", "message_filters",
    )
    ROS_SUFFIXES = ("_msgs", "_srvs", "_interfaces", "_actions")
    attempts = []

    def is_ros(top):
        return top.startswith(ROS_PREFIXES) or top.endswith(ROS_SUFFIXES)

    class BlockRos:
        @staticmethod
        def find_spec(name, path=None, target=None):
            top = name.partition(".")[0]
            if is_ros(top):
                attempts.append(name)
                raise ModuleNotFoundError(f"ROS is blocked in unimrseg_core: {name}", name=name)
            return None

    sys.meta_path.insert(0, BlockRos)
    # Prove the block works before trusting it.
    try:
        import rclpy
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("the ROS block did not stop `import rclpy`")
    attempts.clear()

    errors = {}
    imported = []
    import unimrseg_core
    imported.append("unimrseg_core")

    def on_error(name):
        errors[name] = traceback.format_exc()

    for info in pkgutil.walk_packages(unimrseg_core.__path__, "unimrseg_core.", onerror=on_error):
        if info.name.rpartition(".")[2] == "__main__":
            continue  # running it would start the CLI
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except BaseException:
            errors[info.name] = traceback.format_exc()

    leaked = sorted(m for m in sys.modules if is_ros(m.partition(".")[0]))
    print(json.dumps({
        "file": unimrseg_core.__file__,
        "imported": imported,
        "errors": errors,
        "attempts": attempts,
        "leaked": leaked,
    }))
    """
)


def core_modules_on_disk() -> set[str]:
    """Every importable module file in the source tree, by dotted name."""
    names = set()
    for path in (REPO_ROOT / "unimrseg_core").rglob("*.py"):
        if "__pycache__" in path.parts or path.stem == "__main__":
            continue
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.timeout(300)
def test_unimrseg_core_imports_without_ros() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"child failed\n{result.stdout}\n{result.stderr}"
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert Path(report["file"]).resolve().is_relative_to(REPO_ROOT), report["file"]
    assert not report["errors"], "modules fail to import without ROS:\n" + "\n".join(
        f"--- {name}\n{tb}" for name, tb in report["errors"].items()
    )
    assert not report["attempts"], f"unimrseg_core tried to import ROS packages: {report['attempts']}"
    assert not report["leaked"], f"ROS modules got imported anyway: {report['leaked']}"
    # pkgutil skips directories without __init__.py; so does setup.py's find_packages().
    not_walked = sorted(core_modules_on_disk() - set(report["imported"]))
    assert not not_walked, f"modules pkgutil never reached (a directory without __init__.py?): {not_walked}"


ROS_TOP_LEVEL = ("rclpy", "unimrseg_ros")


def _imported_names(tree: ast.AST) -> list[str]:
    """Every module an ``import``, ``from ... import`` or ``importlib.import_module("...")`` names."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
    return names


def test_no_ros_imports_in_core_source_even_inside_functions() -> None:
    # the scan sees imports inside functions and by name, or an empty result would prove nothing
    probe = "def f():\n import rclpy\n from unimrseg_ros.cli import run_play\n import_module('rclpy.node')"
    assert set(_imported_names(ast.parse(probe))) == {"rclpy", "unimrseg_ros.cli", "rclpy.node"}
    found = set()
    for path in sorted((REPO_ROOT / "unimrseg_core").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(REPO_ROOT).as_posix()
        found |= {(rel, name) for name in _imported_names(tree) if name.partition(".")[0] in ROS_TOP_LEVEL}
    assert found == set(), "unimrseg_core imports ROS (move it to unimrseg_ros)"
