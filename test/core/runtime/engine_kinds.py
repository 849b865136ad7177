"""Engine kinds for test_engine_check: builders and loaders that really crash, hang or lie.

``engine_check`` runs them in its child process as ``engine_kinds:NAME`` (the child gets
the test's ``sys.path``). Every step appends a line to ``args["marker"]``, so a test can
count how often a child ran, and records the pids of what it started.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

NUM_CLASSES = 8

Feeds = dict[str, np.ndarray]


def reference(feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
    """What a good engine computes: a fixed per-pixel linear map of the inputs."""
    x = np.concatenate([feeds["rgb"], feeds["depth"], feeds["thermal"]], axis=1).astype(np.float32)
    seg = np.stack([x[:, c % x.shape[1]] * (c + 1) - c for c in range(NUM_CLASSES)], axis=1)
    sal = 1.0 / (1.0 + np.exp(-x.mean(axis=1, keepdims=True)))
    return seg.astype(np.float32), sal.astype(np.float32)


def _mark(args: dict[str, Any], step: str, **extra: Any) -> None:
    with Path(args["marker"]).open("a") as f:
        f.write(json.dumps({"step": step, "pid": os.getpid(), **extra}) + "\n")


def _segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a broken native library would


def _hang_with_a_grandchild(args: dict[str, Any], step: str) -> None:
    """Start a long-lived grandchild (as inductor's compile workers are), then never return."""
    sleeper = subprocess.Popen(["sleep", "600"])
    _mark(args, step, grandchild=sleeper.pid)
    while True:
        time.sleep(60)


# ----------------------------------------------------------------------------- builders


def build_ok(args: dict[str, Any]) -> bytes:
    _mark(args, "build")
    return b"engine " + json.dumps(args, sort_keys=True).encode()


def build_crash(args: dict[str, Any]) -> bytes:
    _mark(args, "build")
    _segfault()
    return b""


def build_hang(args: dict[str, Any]) -> bytes:
    _hang_with_a_grandchild(args, "build")
    return b""


def build_error(args: dict[str, Any]) -> bytes:
    _mark(args, "build")
    raise RuntimeError("no C++ compiler found")


# ----------------------------------------------------------------------------- loaders


def load_good(path: Path, args: dict[str, Any]):
    _mark(args, "check")
    if not path.read_bytes().startswith(b"engine "):
        raise ValueError(f"{path} is not an engine this kind built")
    return reference


def load_segfault(path: Path, args: dict[str, Any]):
    _mark(args, "check")
    _segfault()


def load_abort(path: Path, args: dict[str, Any]):
    _mark(args, "check")
    os.abort()


def load_hang(path: Path, args: dict[str, Any]):
    _hang_with_a_grandchild(args, "check")


def load_wrong(path: Path, args: dict[str, Any]):
    """Runs, but with the classes shifted by one and the saliency inverted."""
    _mark(args, "check")

    def infer(feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        seg, sal = reference(feeds)
        return np.roll(seg, 1, axis=1), 1.0 - sal

    return infer


def load_nan(path: Path, args: dict[str, Any]):
    _mark(args, "check")

    def infer(feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        seg, sal = reference(feeds)
        seg[0, 0, 0, 0] = np.nan
        return seg, sal

    return infer


def load_half_size(path: Path, args: dict[str, Any]):
    _mark(args, "check")

    def infer(feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        seg, sal = reference(feeds)
        return seg[..., ::2, ::2], sal[..., ::2, ::2]

    return infer
