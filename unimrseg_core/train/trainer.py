"""The training loop: phases in order, resumable, seeded, DDP-ready, with a CSV log and loss curves.

Outputs under ``out_dir``: ``state.pt`` (resume point: weights, optimiser, phase,
step), ``metrics.csv``, ``curves.png``, ``phase_<name>.pt`` after each phase, and
the final ``model.pt`` + ``model.json`` (see ``model.checkpoint``). Run under
``torchrun --nproc_per_node N`` for data-parallel training (gloo on CPU, NCCL on
CUDA, one GPU per rank: ``LOCAL_RANK`` picks it): each rank draws its own batches,
gradients are averaged.

On CUDA the loop never waits for the GPU between steps: batches are cut on the
device (``train.pool``), the step's random damage is moved there once
(``train.masking``), and the loss is read back (and checked to be finite) only at
log and checkpoint steps.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from unimrseg_core.data.readers import load_class_table
from unimrseg_core.modalities import CLASSES, MODALITIES
from unimrseg_core.model.checkpoint import save_model
from unimrseg_core.model.network import UniMRSegNet
from unimrseg_core.train.batches import Batch, batches, ensure_pool, pool_dir
from unimrseg_core.train.config import PIPELINE_OPTIONS, StageConfig, TrainConfig
from unimrseg_core.train.init import init_from
from unimrseg_core.train.mixed import MixedPool
from unimrseg_core.train.pool import TensorPool
from unimrseg_core.train.source_samples import open_source
from unimrseg_core.train.stages import STEPS, StepFn, TrainNet

log = logging.getLogger(__name__)

# metrics.csv columns: every phase logs a subset of the loss parts, blank elsewhere
LOG_COLUMNS = (
    "phase",
    "step",
    "loss",
    "recon",
    "seg",
    "sal",
    "contrastive",
    "pred_cons",
    "feat_cons",
    "lr",
    "sec_per_step",
)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # NCCL talks through it
    started: bool = False  # this process group was started here, and ends here

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier(device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def close(self) -> None:
        """End the process group this trainer started (NCCL wants it ended before exit)."""
        if self.started:
            dist.destroy_process_group()
            self.started = False

    def ranks_agree(self, module: torch.nn.Module) -> bool:
        """True when every rank holds bit-identical weights (DDP must keep them in lock-step)."""
        if self.world == 1:
            return True
        flat = torch.cat([t.detach().double().flatten().cpu() for t in module.state_dict().values()])
        mine = torch.stack([flat.sum(), (flat * torch.arange(flat.numel(), dtype=torch.float64)).sum()])
        mine = mine.to(self.device)
        gathered = [torch.zeros_like(mine) for _ in range(self.world)]
        dist.all_gather(gathered, mine)
        return all(torch.equal(g, gathered[0]) for g in gathered)


def _init_distributed(device: torch.device) -> Dist:
    """The process group torchrun asks for (``WORLD_SIZE`` > 1): NCCL bound to this rank's GPU
    (``_device`` made it current first), gloo on the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=device)
    started = not dist.is_initialized()
    if started:
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), device, started)


def _device(name: str) -> torch.device:
    """The training device; under torchrun on CUDA, GPU ``LOCAL_RANK``, made the current one (so
    NCCL, cuDNN and every tensor made without a device index use it, not GPU 0)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device cuda requested but CUDA is not available")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def lr_at(step: int, steps: int, base: float) -> float:
    """Linear warm-up over 5 % of the phase, then cosine down to 5 % of ``base``."""
    warm = max(1, steps // 20)
    if step < warm:
        return base * (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_step(
    model: torch.nn.Module,
    step_fn: StepFn,
    batch: Batch,
    cfg: TrainConfig,
    gen: torch.Generator,
    optimizer: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimisation step: the phase's loss, backward, gradients clipped to norm 5, the update.
    Nothing here reads a value back from the device, so CUDA runs ahead of Python."""
    loss, parts = step_fn(model, batch, cfg, gen)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 5.0)
    optimizer.step()
    return loss.detach(), parts


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a config (``TrainConfig.to_dict``, or a saved identity) that decide what is
    trained: not the device, nor how batches are made (``config.PIPELINE_OPTIONS``: the same
    batches either way), so a run resumes on a GPU, or with another loader, where it stopped."""
    keys = ("method", "seed", "model", "data", "losses", "stages", "batch_size", "classes", "init")
    out = {k: config.get(k) for k in keys}
    out["data"] = {k: v for k, v in config["data"].items() if k not in PIPELINE_OPTIONS}
    return out


def _step_generator(cfg: TrainConfig, phase: int, step: int, rank: int) -> torch.Generator:
    """The step's damage draws: a CPU generator, so they are the same on every device."""
    gen = torch.Generator()
    gen.manual_seed(((cfg.seed * 7919 + phase) * 1_000_003 + step) * 131 + rank)
    return gen


class Trainer:
    def __init__(self, cfg: TrainConfig, *, progress: bool = True) -> None:
        self.cfg = cfg
        self.device = _device(cfg.device)
        self.dist = _init_distributed(self.device)
        self.progress = progress and self.dist.main
        self.out = Path(cfg.out_dir)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.classes = load_class_table(Path(cfg.classes).expanduser()) if cfg.classes else CLASSES
        net = UniMRSegNet(cfg.model)
        self.init = init_from(net, cfg.init, self.classes) if cfg.init else None
        self.model = TrainNet(net).to(self.device)
        self.state: dict[str, Any] = {"completed": [], "phase": None, "step": 0}
        self._tensor_pool: TensorPool | None = None
        self._mixed: MixedPool | None = None
        self._kept: list[tuple[torch.Tensor, slice, torch.Tensor]] = []  # set_phase, restore_unseen

    # ------------------------------------------------------------------ checkpoints
    def _state_path(self) -> Path:
        return self.out / "state.pt"

    def _identity(self) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote the checkpoint (see ``identity``)."""
        return identity(self.cfg.to_dict())

    def resume(self) -> None:
        path = self._state_path()
        if not path.is_file():
            return
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if identity(saved["identity"]) != self._identity():
            raise ValueError(
                f"{path} was written by a different configuration; use another out_dir or --restart"
            )
        self.model.load_state_dict(saved["model"])
        self.state = {"completed": list(saved["completed"]), "phase": saved["phase"], "step": saved["step"]}
        self._optimizer_state = saved.get("optimizer")
        if self.dist.main:
            log.info(
                "resuming after %s, phase %s step %d", self.state["completed"], saved["phase"], saved["step"]
            )

    def _save_state(self, optimizer: torch.optim.Optimizer | None) -> None:
        if not self.dist.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path().with_suffix(".tmp")
        torch.save(
            {
                "identity": self._identity(),
                "model": self.model.state_dict(),
                "optimizer": optimizer.state_dict() if optimizer else None,
                **self.state,
            },
            tmp,
        )
        tmp.replace(self._state_path())

    # ------------------------------------------------------------------ logging
    def _log_row(self, row: dict[str, Any]) -> None:
        if not self.dist.main:
            return
        path = self.out / "metrics.csv"
        self.out.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)

    # ------------------------------------------------------------------ phases
    def set_phase(self, phase: str) -> list[torch.nn.Parameter]:
        """Freeze what ``phase`` does not train, set train/eval modes; returns its trainable parameters.
        Stage 3 freezes the encoder (weights and BatchNorm statistics stay as stage 2 left them);
        only stage 2 trains the projection head."""
        frozen = phase == "stage3"
        for module in self.model.net.encoder_modules():
            for p in module.parameters():
                p.requires_grad_(not frozen)
        for p in self.model.projection.parameters():
            p.requires_grad_(phase == "stage2")
        self._kept = [
            (t, part, t[part].detach().clone())
            for m in self.unseen_modalities()
            for t, part in self.model.net.branch_tensors(m)
        ]
        self.model.train()
        if frozen:
            for module in self.model.net.encoder_modules():
                module.eval()
        return [p for p in self.model.parameters() if p.requires_grad]

    def restore_unseen(self) -> None:
        """Put the unseen modalities' branches back as they were (after every step): a grouped
        encoder shares each tensor between modalities, so they cannot simply be frozen."""
        with torch.no_grad():
            for tensor, part, value in self._kept:
                tensor[part] = value

    def unseen_modalities(self) -> list[str]:
        """Modalities no source of ``data.sources`` has. Their encoder branches stay as they were
        (weights and BatchNorm statistics, restored after every step): in train mode BatchNorm would
        learn the zeros that stand in for them, and a fine-tuned model would then blow up when the
        sensor is there."""
        if not self.cfg.data.sources:
            return []
        seen = {m for present in self.mixed_pool().presence().values() for m in present}
        return [m for m in MODALITIES if m not in seen]

    def _optimizer(self, name: str, stage: StageConfig, params: list[torch.nn.Parameter]) -> tuple:
        """AdamW for this phase and its first step: restored from ``state.pt`` when resuming it."""
        optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=self.cfg.weight_decay)
        start = 0
        if self.state["phase"] == name:
            start = int(self.state["step"])
            if getattr(self, "_optimizer_state", None):
                optimizer.load_state_dict(self._optimizer_state)
        self._optimizer_state = None
        return optimizer, start

    def _parallel(self) -> torch.nn.Module:
        """The model as the step sees it: under DDP, wrapped, on this rank's GPU (or the CPU)."""
        if self.dist.world == 1:
            return self.model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)

    def _pool(self) -> TensorPool | None:
        """The cached pool decoded into tensors (once per run), when batches are cut from it."""
        data = self.cfg.data
        if data.mode != "cache" or data.loader != "tensors":
            return None
        if self._tensor_pool is None:
            self._tensor_pool = TensorPool.load(pool_dir(data), self.device, data.pool_device_gib)
        return self._tensor_pool

    def mixed_pool(self) -> MixedPool:
        """The training samples of ``data.sources`` in one pool (read once per run)."""
        if self._mixed is None:
            data = self.cfg.data
            opened = [open_source(s, data.size, self.classes) for s in data.sources]
            self._mixed = MixedPool.build(opened, self.device, data.pool_device_gib, max(1, data.workers))
            if self.dist.main:
                log.info("sources: %s", self._mixed.presence())
        return self._mixed

    def _batches(self, phase: int, start: int, stop: int) -> Iterator[Batch]:
        cfg, d = self.cfg, self.dist
        if cfg.data.sources:
            return self.mixed_pool().batches(cfg.data, cfg.batch_size, phase, start, stop, d.rank)
        pin = self.device.type == "cuda"
        return batches(
            cfg.data, cfg.batch_size, phase, start, stop, d.rank, d.world, pool=self._pool(), pin_memory=pin
        )

    def run_phase(self, index: int, name: str, stage: StageConfig) -> None:
        cfg = self.cfg
        params = self.set_phase(name)
        optimizer, start = self._optimizer(name, stage, params)
        model = self._parallel()
        step_fn = STEPS[name]
        bar = tqdm(total=stage.steps, initial=start, desc=name, unit="step", disable=not self.progress)
        tick, checked = time.perf_counter(), start
        finite = torch.ones((), dtype=torch.bool, device=self.device)
        for step, batch in zip(
            range(start, stage.steps), self._batches(index, start, stage.steps), strict=False
        ):
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            lr = lr_at(step, stage.steps, stage.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            gen = _step_generator(cfg, index, step, self.dist.rank)
            loss, parts = train_step(model, step_fn, batch, cfg, gen, optimizer, params)
            self.restore_unseen()
            finite &= torch.isfinite(loss)  # on the device: read below, where the loss is read anyway
            bar.update()
            done = step + 1
            log_now = done % cfg.log_every == 0 or done == stage.steps
            save_now = done % cfg.checkpoint_every == 0 and done < stage.steps
            if (log_now or save_now) and not finite.item():
                raise FloatingPointError(
                    f"{name}: the loss became NaN or inf between steps {checked + 1} and {done}; "
                    "lower the learning rate"
                )
            checked = done if log_now or save_now else checked
            if log_now:
                now = time.perf_counter()
                row = {"phase": name, "step": done, "loss": loss.item(), "lr": lr}
                row |= {k: float(v) for k, v in parts.items()}
                row["sec_per_step"] = (now - tick) / cfg.log_every
                tick = now
                self._log_row(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}")
            if save_now:
                self.state.update(phase=name, step=done)
                self._save_state(optimizer)
        bar.close()
        if self.dist.world > 1:
            # BatchNorm statistics of the last step are rank-local (DDP only broadcasts them at the
            # start of a forward); take rank 0's, as DDP does, so every rank ends identical
            for buffer in self.model.buffers():
                dist.broadcast(buffer, 0)
        self.state["completed"].append(name)
        self.state.update(phase=None, step=0)
        self._save_state(None)
        if self.dist.main:
            save_model(
                self.model.net, self.out / f"phase_{name}.pt", input_size=cfg.data.size, classes=self.classes
            )
            plot_curves(self.out / "metrics.csv", self.out / "curves.png")
        self.dist.barrier()

    def run(self, only: str | None = None) -> Path:
        """Train every phase not yet completed (or just ``only``); returns the final model path.
        Under torchrun, the last call: it ends the process group the trainer started."""
        cfg = self.cfg
        if cfg.data.mode == "cache" and not cfg.data.sources:
            if self.dist.main:
                ensure_pool(cfg.data, progress=self.progress)
            self.dist.barrier()
        phases = cfg.phases()
        names = [n for n, _ in phases]
        if only is not None and only not in names:
            raise ValueError(f"phase {only!r} is not part of method {cfg.method!r} (phases: {names})")
        for index, (name, stage) in enumerate(phases):
            if name in self.state["completed"] or (only is not None and name != only):
                continue
            if only is not None:
                before = names[:index]
                missing = [n for n in before if n not in self.state["completed"]]
                if missing:
                    raise ValueError(f"--stage {only} needs {missing} first (resume from {self.out})")
            self.run_phase(index, name, stage)
        final = self.out / "model.pt"
        agree = self.dist.ranks_agree(self.model.net)
        if not agree:
            raise RuntimeError("DDP ranks ended with different weights")
        if self.dist.main and all(n in self.state["completed"] for n in names):
            training = {
                "method": cfg.method,
                "commit": git_commit(),
                "data_seed": cfg.data.seed,
                "world_size": self.dist.world,
                "ranks_identical": agree,
                "init": self.init,
                "sources": self._mixed.presence() if self._mixed else None,
                "config": cfg.to_dict(),
            }
            save_model(
                self.model.net,
                final,
                input_size=cfg.data.size,
                extra={"training": training},
                classes=self.classes,
            )
        self.dist.barrier()
        self.dist.close()
        return final


def plot_curves(csv_path: Path, png_path: Path) -> None:
    """One panel per logged loss, phases side by side on a shared step axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    series: dict[str, list[tuple[int, float]]] = {}
    offset, last_phase, last_step = 0, None, 0
    for rec in rows:
        if rec["phase"] != last_phase:
            offset, last_phase = offset + last_step, rec["phase"]
        last_step = int(rec["step"])
        for key in LOG_COLUMNS[2:-2]:
            if rec.get(key):
                series.setdefault(key, []).append((offset + last_step, float(rec[key])))
    if not series:
        return
    fig, axes = plt.subplots(1, len(series), figsize=(3.2 * len(series), 2.8), squeeze=False)
    for ax, (key, points) in zip(axes[0], series.items(), strict=True):
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, lw=1)
        ax.set_title(key)
        ax.set_xlabel("step (all phases)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
