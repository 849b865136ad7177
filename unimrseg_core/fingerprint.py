"""Short hashes of source code, so caches built from older code (data pools, engines) are not reused."""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def source_fingerprint(*folders: Path) -> str:
    """12 hex digits over the names and bytes of every ``*.py`` directly in ``folders``."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def model_code_fingerprint() -> str:
    """The network's code: a compiled engine or exported ONNX traced from older code is stale."""
    return source_fingerprint(PACKAGE / "model")
