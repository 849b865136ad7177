"""Vet an engine in a child process before this process loads it, and remember the verdict.

An engine (AOTInductor package, TensorRT plan) is native code: building or loading one can
segfault or hang (seen: ``aoti_load_package`` of an fp16 CUDA package on an H200), and a
segfault cannot be caught, so the node would die instead of falling back. So before an
engine is used in-process for the first time, a child process
(``python -m unimrseg_core.runtime.engine_child``: the same interpreter and ``sys.path``,
a fresh exec, so no CUDA context is inherited) builds it if the cache has none, under
``build_timeout_s``; then a second child loads it and runs one inference on the runtime's
example scenes (``runtime.examples``), under ``check_timeout_s``. This process compares
those outputs with a reference backend computed here (eager torch fp32 for compiled, ONNX
Runtime CPU for TensorRT), so a failure of the reference is never blamed on the engine,
within a tolerance that depends on the precision.

The verdict (pass; crash with its signal; timeout; error with the exception; mismatch with
the figures) goes into the engine's sidecar (``EngineCache.record_check``), so the check
runs once per engine: a cached engine that passed is loaded directly, and one that failed
(or a build that crashed or timed out, recorded without an engine) is refused at once with
:class:`EngineRefusedError` until ``force_engine_update`` rebuilds and re-checks it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from unimrseg_core.modalities import COMBINATIONS, OUTPUT_NAMES, apply_mask
from unimrseg_core.runtime.engine_cache import EngineCache, EngineKey
from unimrseg_core.runtime.examples import CHECK_SEED, example_scenes
from unimrseg_core.trust import make_private_dir

log = logging.getLogger(__name__)

Feeds = dict[str, np.ndarray]
Outputs = tuple[np.ndarray, np.ndarray]  # seg_logits, saliency

CHILD_MODULE: Final = "unimrseg_core.runtime.engine_child"
OUTCOMES: Final = ("pass", "crash", "timeout", "error", "mismatch")
STDERR_TAIL_CHARS: Final = 4000
RETRY_HINT: Final = "set force_engine_update (--force) to rebuild and retry"


class EngineRefusedError(RuntimeError):
    """The engine failed (now or in a recorded verdict) its build or smoke test; the message says how.

    A RuntimeError, so ``auto`` takes the next backend and a named backend is a BackendError.
    """


@dataclass(frozen=True)
class EngineJob:
    """How a child builds and loads one kind of engine: plain data, so it crosses a process boundary.

    ``build`` names ``module:function(args) -> bytes``; ``load`` names
    ``module:function(path, args) -> infer``, where ``infer(feeds) -> (seg_logits, saliency)``.
    ``args`` must be JSON: checkpoint or ONNX path, device, precision, shapes.
    """

    kind: str  # "compiled", "tensorrt", ...: names the engine in messages
    build: str
    load: str
    args: dict[str, Any]


@dataclass(frozen=True)
class CheckLimits:
    build_timeout_s: float
    check_timeout_s: float

    def __post_init__(self) -> None:
        if self.build_timeout_s <= 0 or self.check_timeout_s <= 0:
            raise ValueError(f"engine build and check timeouts must be > 0 s, got {self}")


@dataclass(frozen=True)
class Tolerance:
    min_label_agreement: float  # fraction of pixels with the reference's argmax class
    max_saliency_diff: float  # max |engine - reference| saliency probability


TOLERANCES: Final[dict[str, Tolerance]] = {
    # The smoke test catches a broken engine (garbage, NaN, a wrong graph: agreement far below 0.9),
    # not the last 0.5 % of accuracy, which the GPU tests measure on held-out scenes: the margins
    # leave room for fp32 in TF32 on a GPU and for the runtime's own example scenes
    # (runtime/examples.py), where fp16 agreed >= 0.994 on the CPU against eager fp32.
    "fp32": Tolerance(0.99, 0.02),
    "fp16": Tolerance(0.97, 0.1),
    "bf16": Tolerance(0.95, 0.15),
    "int8": Tolerance(0.85, 0.3),
}


@dataclass(frozen=True)
class SmokeTest:
    """The one inference that vets an engine: example scenes and the reference to agree with."""

    input_size: tuple[int, int]
    batch: int
    reference: Callable[[Feeds], Outputs]  # runs in this process, before any child loads the engine
    reference_name: str  # "eager torch fp32 (cpu)"
    tolerance: Tolerance


@dataclass(frozen=True)
class EngineCheck:
    """A verdict, as stored under ``check`` in the engine's sidecar JSON."""

    outcome: str  # one of OUTCOMES
    stage: str  # "build" | "check"
    summary: str  # one line: what happened
    seconds: float
    checked_at: str  # ISO 8601, UTC
    signal: str | None = None  # "SIGSEGV", "SIGABRT", ... for a crash
    figures: dict[str, Any] = field(default_factory=dict)  # agreement, saliency diff, tolerance
    stderr_tail: str = ""  # the child's last output: a faulthandler traceback, an exception

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, record: Any) -> EngineCheck | None:
        """The verdict in a sidecar, or None when there is none or it is malformed (check again)."""
        names = {f.name for f in fields(cls)}
        if not isinstance(record, dict) or not {"outcome", "stage", "summary"} <= record.keys():
            return None
        if record["outcome"] not in OUTCOMES:
            return None
        try:
            return cls(**{k: v for k, v in record.items() if k in names})
        except TypeError:
            return None

    def refusal(self, *, cached: bool) -> str:
        when = f" (cached verdict from {self.checked_at.replace('T', ' ')})" if cached else ""
        return f"{self.summary}{when}; {RETRY_HINT}"


@dataclass(frozen=True)
class Vetted:
    path: Path
    built: bool  # built now (in a child), not loaded from the cache
    check: EngineCheck


@dataclass(frozen=True)
class ChildRun:
    returncode: int | None  # None: killed at the timeout
    seconds: float
    error: str | None  # the child's exception, "Type: message"
    stderr_tail: str

    @property
    def signal(self) -> str | None:
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


def tolerance_for(precision: str) -> Tolerance:
    if precision not in TOLERANCES:
        raise ValueError(f"no smoke-test tolerance for precision {precision!r}; one of {sorted(TOLERANCES)}")
    return TOLERANCES[precision]


def smoke_feeds(input_size: tuple[int, int], batch: int) -> Feeds:
    """The runtime's check scenes, one modality combination per row, all three present first: the
    network's masked fusion runs as the node runs it, on images with structure to agree about."""
    combinations = COMBINATIONS[::-1]
    masks = np.stack([combinations[i % len(combinations)].mask for i in range(batch)])
    return apply_mask(example_scenes(batch, input_size, seed=CHECK_SEED), masks)


def compare(outputs: Outputs, reference: Outputs, tolerance: Tolerance) -> tuple[bool, dict[str, Any], str]:
    """(agrees, figures, what differs): wrong shapes, NaN/inf or disagreement beyond ``tolerance``."""
    figures: dict[str, Any] = {"tolerance": asdict(tolerance)}
    for name, got, want in zip(OUTPUT_NAMES, outputs, reference, strict=True):
        if got.shape != want.shape:
            return False, figures, f"{name} has shape {list(got.shape)}, the reference {list(want.shape)}"
        if not np.isfinite(got).all():
            return False, figures, f"{name} holds NaN or inf"
    (seg, sal), (seg_ref, sal_ref) = outputs, reference
    agreement = float((seg.argmax(1) == seg_ref.argmax(1)).mean())
    diff = float(np.abs(sal.astype(np.float64) - sal_ref).max())
    figures.update(label_agreement=round(agreement, 6), max_saliency_diff=float(f"{diff:.4g}"))
    problems = []
    if agreement < tolerance.min_label_agreement:
        problems.append(f"label agreement {agreement:.4f} < {tolerance.min_label_agreement}")
    if diff > tolerance.max_saliency_diff:
        problems.append(f"max |saliency diff| {diff:.3g} > {tolerance.max_saliency_diff}")
    detail = ", ".join(problems) or f"label agreement {agreement:.4f}, max |saliency diff| {diff:.2g}"
    return not problems, figures, detail


def run_child(request: dict[str, Any], workdir: Path, timeout_s: float) -> ChildRun:
    """Run one ``engine_child`` request in its own session; on timeout (or interrupt) kill all of it.

    The child gets this process's ``sys.path`` as PYTHONPATH, so it imports the same code in a
    venv, a colcon install or under pytest, and faulthandler, so a segfault leaves a traceback.
    Its own session lets the timeout reach what it started (inductor compile workers, gcc).
    """
    request_path, error_path, log_path = (workdir / n for n in ("request.json", "error.json", "child.log"))
    request_path.write_text(json.dumps({**request, "error": str(error_path)}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    command = [sys.executable, "-X", "faulthandler", "-m", CHILD_MODULE, str(request_path)]
    start = time.monotonic()
    with log_path.open("wb") as out:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True
        )
        try:
            returncode: int | None = child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _kill_session(child)
    seconds = time.monotonic() - start
    error = json.loads(error_path.read_text())["error"] if error_path.is_file() else None
    return ChildRun(returncode, seconds, error, _tail(log_path))


def _tail(path: Path) -> str:
    """The last ``STDERR_TAIL_CHARS`` bytes of a log that may be long (inductor, TensorRT)."""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - STDERR_TAIL_CHARS))
        return f.read().decode(errors="replace")


def _kill_session(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (it leads it), then reap the child."""
    with contextlib.suppress(ProcessLookupError):  # the child and all it started are gone
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _failure(stage: str, run: ChildRun, timeout_s: float) -> EngineCheck | None:
    """The verdict of a child that crashed, timed out or raised; None when it succeeded."""
    what = "engine build" if stage == "build" else "smoke test"
    setting = "engine_build_timeout_seconds" if stage == "build" else "engine_check_timeout_seconds"
    if run.returncode == 0 and run.error is None:
        return None
    if run.returncode is None:
        outcome, summary = "timeout", f"{what} timed out after {timeout_s:.0f} s ({setting})"
    elif run.signal is not None:
        outcome, summary = "crash", f"{what} crashed with {run.signal} after {run.seconds:.1f} s"
    else:
        because = run.error or f"the child exited with status {run.returncode}"
        outcome, summary = "error", f"{what} failed: {because}"
    return EngineCheck(
        outcome, stage, summary, round(run.seconds, 2), _now(), run.signal, stderr_tail=run.stderr_tail
    )


def _build(job: EngineJob, workdir: Path, timeout_s: float) -> bytes | EngineCheck:
    """The engine's bytes, or the verdict of a build that crashed, hung or failed."""
    target = workdir / "engine.bin"
    request = {"stage": "build", "build": job.build, "args": job.args, "out": str(target)}
    run = run_child(request, workdir, timeout_s)
    failed = _failure("build", run, timeout_s)
    if failed is None and not target.is_file():
        failed = EngineCheck("error", "build", "engine build wrote no engine", round(run.seconds, 2), _now())
    if failed is not None:
        return failed
    log.info("%s engine built in a child process in %.0f s", job.kind, run.seconds)
    return target.read_bytes()


def _smoke_test(
    job: EngineJob, engine: Path, smoke: SmokeTest, workdir: Path, timeout_s: float
) -> EngineCheck:
    feeds = smoke_feeds(smoke.input_size, smoke.batch)
    reference = smoke.reference(feeds)  # here, before the child: its failure is not the engine's
    np.savez(workdir / "feeds.npz", **feeds)
    out = workdir / "outputs.npz"
    request = {"stage": "check", "load": job.load, "args": job.args, "engine": str(engine)}
    run = run_child({**request, "feeds": str(workdir / "feeds.npz"), "out": str(out)}, workdir, timeout_s)
    failed = _failure("check", run, timeout_s)
    if failed is not None:
        return failed
    with np.load(out, allow_pickle=False) as saved:
        outputs = (saved[OUTPUT_NAMES[0]], saved[OUTPUT_NAMES[1]])
    agrees, figures, detail = compare(outputs, reference, smoke.tolerance)
    verdict = "passed" if agrees else "mismatch"
    summary = f"smoke test {verdict} against {smoke.reference_name} ({detail}) in {run.seconds:.1f} s"
    outcome = "pass" if agrees else "mismatch"
    return EngineCheck(outcome, "check", summary, round(run.seconds, 2), _now(), figures=figures)


def _refuse(job: EngineJob, check: EngineCheck, *, cached: bool, sidecar: Path) -> EngineRefusedError:
    reason = check.refusal(cached=cached)
    if cached:
        log.warning("%s engine refused: %s (verdict in %s)", job.kind, reason, sidecar)
    else:
        log.warning(
            "%s engine refused: %s; the child's last output:\n%s", job.kind, reason, check.stderr_tail
        )
    return EngineRefusedError(reason)


def vetted_engine(
    cache: EngineCache,
    key: EngineKey,
    job: EngineJob,
    smoke: SmokeTest,
    *,
    limits: CheckLimits,
    force_update: bool = False,
) -> Vetted:
    """The engine for ``key``, built and smoke-tested in child processes unless its sidecar says pass.

    Raises :class:`EngineRefusedError` when the build or the check fails now, or failed before.
    """
    found = cache.resolve(key, force_update=force_update)
    sidecar = cache.sidecar(cache.path_for(key))
    recorded = EngineCheck.from_json(found.check)
    if recorded is not None and not recorded.passed:
        raise _refuse(job, recorded, cached=True, sidecar=sidecar)
    if found.path is not None and recorded is not None:
        log.info("%s engine: %s; its smoke test passed on %s", job.kind, found.reason, recorded.checked_at)
        return Vetted(found.path, False, recorded)
    make_private_dir(cache.root)
    with tempfile.TemporaryDirectory(dir=cache.root, prefix=".check-") as tmp:
        workdir = Path(tmp)
        path = found.path
        if path is None:
            log.warning("%s engine: %s; building it in a child process", job.kind, found.reason)
            engine = _build(job, workdir, limits.build_timeout_s)
            if isinstance(engine, EngineCheck):
                cache.record_check(key, engine.as_json())
                raise _refuse(job, engine, cached=False, sidecar=sidecar)
            path = cache.store(key, engine)
        check = _smoke_test(job, path, smoke, workdir, limits.check_timeout_s)
    cache.record_check(key, check.as_json())
    if not check.passed:
        raise _refuse(job, check, cached=False, sidecar=sidecar)
    log.info("%s engine: %s", job.kind, check.summary)
    return Vetted(path, found.path is None, check)
