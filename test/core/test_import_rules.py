"""Dependencies point one way: read from every import statement of both packages, functions included.

Importing modules cannot show an import inside a function that has not run, so the source is
parsed (``ast``) and every ``import`` and ``from ... import`` counts, lazy and ``TYPE_CHECKING``
ones too: a type-only arrow is still an arrow (only the runtime's reach, which is about what a
robot loads, follows just the imports that run). The rules:

- every part of ``unimrseg_core`` (a subpackage or a top-level module) sits in one of
  ``LAYERS`` and imports only from lower layers or from itself;
- the runtime (what a robot deploys) uses from ``data`` only the sample structure, the
  preprocessing and image-file reading, never data generation, not even transitively;
- no two modules import each other, directly or round a longer loop.

That the core never imports ROS (``unimrseg_ros``, rclpy) is ``test_core_boundary``'s rule.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Final

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES: Final = ("unimrseg_core", "unimrseg_ros")

LAYERS: Final[tuple[frozenset[str], ...]] = (
    # facts and helpers: none imports anything of the project
    frozenset({"unimrseg_core", "modalities", "cli_types", "cli_plugins", "fingerprint", "trust", "lazy"}),
    # each stands on the facts alone: none of them imports another of this row
    frozenset({"data", "model", "health", "sync", "faults", "topics", "image_msg", "registration"}),
    # deploying the model; and CompressedImage decoding, which stands on image_msg
    frozenset({"runtime", "compressed_msg"}),
    # what uses a deployed model: scoring it on datasets, feeding it sensor frames
    frozenset({"eval", "pipeline"}),
    frozenset({"bags"}),
    # training: from every source (datasets, labelled bags) and scored as eval scores
    frozenset({"train"}),
    frozenset({"cli"}),
    frozenset({"unimrseg_ros"}),
)
"""Bottom to top. Which ROS modules the core may not import is ``test_core_boundary``'s business."""

RUNTIME_DATA: Final = frozenset(
    {
        "unimrseg_core.data",  # the package itself (its names load lazily)
        "unimrseg_core.data.sample",  # the one sample structure
        "unimrseg_core.data.tensors",  # sample -> model inputs
        "unimrseg_core.data.tensor_ops",  # torch mirrors of the preprocessing
        "unimrseg_core.data.readers",  # image files, for ``unimrseg infer``
        "unimrseg_core.data.stored_units",  # how files store depth and thermal (``infer``'s flags)
    }
)
RUNTIME_DATA_PACKAGES: Final = ("unimrseg_core.data.readers.",)  # and its modules
"""What of ``data`` the runtime may reach; the rest is data generation."""


@cache
def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of both packages (a package is its __init__)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(name: str, path: Path, *, types: bool) -> Iterator[str]:
    """The project modules that ``name``'s import statements name (a package's name stands for
    its ``__init__``; ``from package import module`` names the module); with ``types``, also
    those under ``if TYPE_CHECKING:``, which never run."""
    modules = _modules()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    skip = set() if types else _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base not in modules:
                continue
            subs = [f"{base}.{alias.name}" for alias in node.names]
            yield from (sub for sub in subs if sub in modules)
            if not all(sub in modules for sub in subs):
                yield base  # names defined by the module itself


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            found |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return found


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


@cache
def _graph(*, types: bool = True) -> dict[str, frozenset[str]]:
    """Module -> the other project modules it imports (without ``types``: those imports that run)."""
    return {
        name: frozenset(m for m in _imported(name, path, types=types) if m != name)
        for name, path in _modules().items()
    }


def _part(module: str) -> str:
    """The part of the project a module belongs to: ``unimrseg_core.runtime.export`` -> ``runtime``."""
    top, _, rest = module.partition(".")
    return top if top == "unimrseg_ros" or not rest else rest.partition(".")[0]


def _layer(part: str) -> int | None:
    return next((i for i, parts in enumerate(LAYERS) if part in parts), None)


def test_every_part_of_the_core_has_a_layer():
    parts = {_part(m) for m in _modules()}
    missing = sorted(p for p in parts if _layer(p) is None)
    assert not missing, f"place these in LAYERS (which layers may they import?): {missing}"


def test_imports_point_down_the_layers():
    wrong = []
    for name, targets in sorted(_graph().items()):
        here = _part(name)
        for target in sorted(targets):
            there = _part(target)
            if there == "unimrseg_ros" and here != there:
                continue  # the core importing ROS: test_core_boundary
            low, high = _layer(there), _layer(here)
            if there != here and low is not None and high is not None and low >= high:
                wrong.append(f"{name} -> {target} ({here} is layer {high}, {there} layer {low})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_the_runtime_never_reaches_data_generation():
    graph = _graph(types=False)
    reached: dict[str, str] = {}  # module -> the runtime module that reaches it
    todo = [(name, name) for name in graph if _part(name) == "runtime"]
    while todo:
        module, start = todo.pop()
        for parent in _parents(module):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            if parent not in reached:
                reached[parent] = start
                todo.append((parent, start))
        for target in graph[module]:
            if target not in reached:
                reached[target] = start
                todo.append((target, start))
    data = sorted(
        m
        for m in reached
        if _part(m) == "data" and m not in RUNTIME_DATA and not m.startswith(RUNTIME_DATA_PACKAGES)
    )
    found = [f"{reached[m]} reaches {m}" for m in data]
    assert not found, "the runtime reaches data generation:\n" + "\n".join(found)


def _parents(module: str) -> Iterator[str]:
    parts = module.split(".")
    yield from (".".join(parts[:i]) for i in range(1, len(parts)))


def test_no_import_cycles():
    sorter = graphlib.TopologicalSorter(_graph())
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise AssertionError("modules import each other: " + " -> ".join(exc.args[1])) from None


def test_the_rules_see_imports_inside_functions():
    """``runtime.selection`` exports ONNX only when needed, from inside a function."""
    assert "unimrseg_core.runtime.export" in _graph()["unimrseg_core.runtime.selection"]
