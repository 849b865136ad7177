"""A safe cache for built engines (TensorRT plans, compiled packages): keyed, verified, atomic.

An engine is code tied to one model, one runtime version and one GPU. The cache
key covers all of that (model sha256, backend and runtime version, device name
and compute capability, precision, shape profile), so a TensorRT or torch
upgrade, another GPU or a new model misses the cache and triggers a rebuild instead of
loading a stale engine. Every engine has a sidecar JSON with its key and its own
sha256; a file whose sidecar key differs (foreign) or whose bytes changed
(tampered, torn) is never returned, and ``lookup`` says why.

The sidecar catches damage, not malice: whoever can write the cache can write a
matching sidecar. So the cache directory must be private to this user (created 0700;
``trust.check_private_dir``), and an engine file another user owns or may write is
refused (``trust.check_private_file``): the cache raises ``UntrustedPathError`` rather
than load or build there.

The sidecar also carries the engine's smoke-test verdict (``check``, written by
``engine_check`` through :meth:`EngineCache.record_check`), so an engine is vetted once:
a sidecar may exist without its engine, recording a build that crashed or timed out.
The cache keeps the verdict opaque; ``engine_check`` reads and writes its fields.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from unimrseg_core.model.checkpoint import sha256_file
from unimrseg_core.trust import check_private_dir, check_private_file, make_private_dir


@dataclass(frozen=True)
class EngineKey:
    model_sha256: str
    backend: str  # "tensorrt" | "compiled"
    runtime_version: str  # TensorRT version, or torch version for compiled engines
    device_name: str
    compute_capability: str  # "9.0"
    precision: str  # "fp32" | "fp16" | "bf16" | "int8"
    batch: tuple[int, int, int]  # min, opt, max of the optimisation profile
    input_size: tuple[int, int]  # H, W

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()

    def as_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Lookup:
    path: Path | None  # a verified engine, or None
    reason: str  # why it is usable, or why it must be (re)built
    check: dict[str, Any] | None = None  # the recorded smoke-test verdict for this key, if any


class EngineCache:
    def __init__(self, root: str | Path, suffix: str = ".engine") -> None:
        self.root = Path(root).expanduser()
        self.suffix = suffix

    def path_for(self, key: EngineKey) -> Path:
        return self.root / f"{key.backend}-{key.digest()[:24]}{self.suffix}"

    @staticmethod
    def sidecar(engine: Path) -> Path:
        return engine.with_name(engine.name + ".json")

    def lookup(self, key: EngineKey) -> Lookup:
        """The verified engine for ``key``, or why there is none; UntrustedPathError for an unsafe cache.

        ``check`` is the recorded verdict of the verified engine, or of a build that left no
        engine (crashed, timed out); an engine that fails verification loses its verdict.
        """
        check_private_dir(self.root)
        path = self.path_for(key)
        side = self.sidecar(path)
        record, problem = _read_record(side)
        if not path.is_file():
            check = record.get("check") if record.get("key") == key.as_json() else None
            return Lookup(None, f"no cached engine for this key ({path.name})", check)
        check_private_file(path)
        if problem:
            return Lookup(None, f"{side.name} missing or unreadable ({problem}); rebuilding")
        if record.get("key") != key.as_json():
            changed = sorted(k for k, v in key.as_json().items() if record.get("key", {}).get(k) != v)
            return Lookup(None, f"cached engine was built for another {', '.join(changed)}; rebuilding")
        if record.get("sha256") != sha256_file(path):
            return Lookup(
                None, f"{path.name} does not match its recorded sha256 (altered or torn); rebuilding"
            )
        return Lookup(
            path, "cached engine matches model, runtime, device, precision and shapes", record.get("check")
        )

    def resolve(self, key: EngineKey, *, force_update: bool = False) -> Lookup:
        """``lookup``, unless ``force_update`` (the node's ``force_engine_update``) asks for a rebuild."""
        if force_update:
            check_private_dir(self.root)
            return Lookup(None, "force_engine_update is set; rebuilding")
        return self.lookup(key)

    def store(self, key: EngineKey, engine: bytes) -> Path:
        """Write the engine, then its sidecar (no verdict: new bytes), each atomically; returns its path."""
        make_private_dir(self.root)
        path = self.path_for(key)
        record = {"key": key.as_json(), "sha256": hashlib.sha256(engine).hexdigest()}
        atomic_write(path, engine)
        atomic_write(self.sidecar(path), json.dumps(record, indent=1).encode())
        return path

    def record_check(self, key: EngineKey, check: dict[str, Any]) -> Path:
        """Put the smoke-test verdict into ``key``'s sidecar (created when the build left no engine)."""
        make_private_dir(self.root)
        side = self.sidecar(self.path_for(key))
        record, _ = _read_record(side)
        if record.get("key") != key.as_json():
            record = {"key": key.as_json()}
        atomic_write(side, json.dumps({**record, "check": check}, indent=1).encode())
        return side


def _read_record(side: Path) -> tuple[dict[str, Any], str | None]:
    """The sidecar's JSON object, or ``{}`` and why it could not be read."""
    try:
        record = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return {}, str(exc)
    if not isinstance(record, dict):
        return {}, "not a JSON object"
    return record, None


def atomic_write(target: Path, data: bytes) -> None:
    """Write to a temporary file beside ``target``, then rename: readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    Path(tmp).replace(target)
