"""Writes the dependency diagram of docs/architecture.md from the code's import statements.

The graph and the layers are those ``test/core/test_import_rules.py`` holds the code to
(read from every ``import`` statement, functions included), so the picture cannot drift
from the rules or from the code: ``--check`` (run by ``test/core/test_architecture_doc.py``)
fails when the committed diagram differs from what the code gives now.

Usage: ``python scripts/architecture.py`` (rewrite the diagram) or ``--check``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "architecture.md"
BEGIN, END = "<!-- dependency diagram: scripts/architecture.py -->", "<!-- end of dependency diagram -->"


def rules() -> ModuleType:
    """The import-rule test module: its graph walker and its layer table."""
    path = REPO / "test" / "core" / "test_import_rules.py"
    spec = importlib.util.spec_from_file_location("import_rules", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def diagram() -> str:
    """A Mermaid flowchart: one box per part of the code, layers bottom to top, one arrow per
    part that imports another (an arrow points from the importer to what it uses)."""
    r = rules()
    parts = {(r._part(a), r._part(b)) for a, targets in r._graph().items() for b in targets}
    edges = sorted((a, b) for a, b in parts if a != b)
    lines = ["```mermaid", "flowchart BT"]
    for i, layer in enumerate(r.LAYERS):
        lines.append(f'  subgraph L{i}["layer {i}"]')
        lines += [f"    {_node(part)}" for part in sorted(layer)]
        lines.append("  end")
    lines += [f"  {_id(a)} --> {_id(b)}" for a, b in edges]
    lines.append("```")
    return "\n".join(lines)


def _id(part: str) -> str:
    return part.replace(".", "_")


def _node(part: str) -> str:
    return f'{_id(part)}["{"unimrseg_core/__init__" if part == "unimrseg_core" else part}"]'


def render(text: str) -> str:
    """``text`` with the diagram between its markers replaced by the current one."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    if not rest:
        raise ValueError(f"{DOC} has no {BEGIN!r} marker")
    return f"{head}{BEGIN}\n{diagram()}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed diagram is stale")
    args = parser.parse_args()
    current = DOC.read_text()
    wanted = render(current)
    if args.check:
        if wanted != current:
            print(f"{DOC} is stale: run python scripts/architecture.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted)
    print(f"wrote the dependency diagram into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
