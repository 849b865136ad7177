"""The child side of ``engine_check``: build one engine, or load it and run one inference.

Run as ``python -m unimrseg_core.runtime.engine_child REQUEST.json`` by
``engine_check.run_child``, never in the node's process: whatever the engine does here (a
segfault, an abort, a hang) costs only this process. The request names the builder or
loader as ``module:function`` (an ``EngineJob``) and the files to read and write. An
exception is written to the request's ``error`` file as ``Type: message`` and its
traceback to stderr, which the parent keeps.
"""

from __future__ import annotations

import faulthandler
import importlib
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unimrseg_core.modalities import OUTPUT_NAMES


def resolve(spec: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"expected 'module:function', got {spec!r}")
    return getattr(importlib.import_module(module), name)


def build(request: dict[str, Any]) -> None:
    engine = resolve(request["build"])(request["args"])
    if not isinstance(engine, bytes) or not engine:
        raise TypeError(f"{request['build']} returned {type(engine).__name__}, not the engine's bytes")
    Path(request["out"]).write_bytes(engine)


def check(request: dict[str, Any]) -> None:
    infer = resolve(request["load"])(Path(request["engine"]), request["args"])
    with np.load(request["feeds"], allow_pickle=False) as saved:
        feeds = {k: saved[k] for k in saved.files}
    outputs = infer(feeds)
    np.savez(request["out"], **{n: np.asarray(o) for n, o in zip(OUTPUT_NAMES, outputs, strict=True)})


def main(argv: Sequence[str] | None = None) -> int:
    faulthandler.enable()  # a segfault prints the Python stack before the process dies
    args = sys.argv[1:] if argv is None else list(argv)
    request = json.loads(Path(args[0]).read_text())
    try:
        {"build": build, "check": check}[request["stage"]](request)
    except Exception as exc:  # reported to the parent as the verdict's reason
        traceback.print_exc()
        Path(request["error"]).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
