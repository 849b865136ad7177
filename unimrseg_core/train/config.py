"""``config/train.yaml`` schema: every training option, its default and its check, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Final

import yaml

from unimrseg_core.data.splits import TEST_SEED, TRAIN_SEED
from unimrseg_core.model.config import STRIDE, ModelConfig
from unimrseg_core.train.sources import SourceConfig, parse_sources

METHODS: Final = ("unimrseg", "complete-only", "modality-dropout")
STAGES: Final = ("stage1", "stage2", "stage3")
LOADERS: Final = ("tensors", "dataloader")
PIPELINE_OPTIONS: Final = ("workers", "loader_workers", "loader", "pool_device_gib")
"""``data`` options that choose how batches are made, not which: a run may resume with others."""


@dataclass
class DataConfig:
    size: tuple[int, int] = (240, 320)  # rendered scene = model input size
    crop: tuple[int, int] | None = (128, 160)  # random training crops (scale kept); None = full frames
    mode: str = "cache"  # cache: render `scenes` once into cache_dir, reuse; on_the_fly: fresh scenes
    scenes: int = 2000  # size of the cached pool
    seed: int = TRAIN_SEED
    cache_dir: str = "~/.cache/unimrseg/scenes"
    workers: int = 2  # processes rendering the pool, or scenes on the fly
    loader_workers: int = 1  # processes preparing batches (loader: dataloader, cache mode)
    loader: str = "tensors"  # cache mode: tensors (pool decoded once, cut on the device) | dataloader
    pool_device_gib: float | str = "auto"  # tensors: most GPU memory the pool may take (auto: half the free)
    sources: list[SourceConfig] = field(default_factory=list)  # train.sources; empty: the world as above


@dataclass
class StageConfig:
    steps: int = 0
    lr: float = 2.0e-3


@dataclass
class LossConfig:
    ssim: float = 0.5  # reconstruction = L1 + ssim * (1 - SSIM)
    drop_prob: float = 0.5  # stage 1: chance a sample loses whole modalities
    patch_ratio: float = 0.15  # stage 1: fraction of patches masked per modality
    patch: int = 16
    contrastive: float = 0.2  # stage 2: NT-Xent weight
    temperature: float = 0.5
    prediction_consistency: float = 1.0  # stage 3
    feature_consistency: float = 0.2  # stage 3
    dice: float = 1.0
    saliency: float = 1.0
    fault_prob: float = 0.0  # chance a training view gets one sensor fault (train/fault_damage.py)


@dataclass
class TrainConfig:
    method: str = "unimrseg"
    seed: int = 0
    classes: str | None = None  # a class table YAML (data.readers.load_class_table); None: ours
    init: str | None = None  # a checkpoint to start from (fine-tuning); its architecture is used
    out_dir: str = "runs/unimrseg"
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int = 8  # per process
    weight_decay: float = 1.0e-4
    log_every: int = 10
    checkpoint_every: int = 100
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    stages: dict[str, StageConfig] = field(
        default_factory=lambda: {
            "stage1": StageConfig(150, 2e-3),
            "stage2": StageConfig(1350, 2e-3),
            "stage3": StageConfig(300, 1e-3),
        }
    )

    def phases(self) -> list[tuple[str, StageConfig]]:
        """(name, settings) in training order. Baselines get one supervised phase with the same
        total number of steps (the same budget) and stage 2's learning rate."""
        if self.method == "unimrseg":
            return [(s, self.stages[s]) for s in STAGES if self.stages[s].steps > 0]
        total = sum(s.steps for s in self.stages.values())
        return [("supervised", StageConfig(total, self.stages["stage2"].lr))]

    def validate(self) -> TrainConfig:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.data.mode not in ("cache", "on_the_fly"):
            raise ValueError(f"data.mode must be cache or on_the_fly, got {self.data.mode!r}")
        if self.data.loader not in LOADERS:
            raise ValueError(f"data.loader must be one of {LOADERS}, got {self.data.loader!r}")
        budget = self.data.pool_device_gib
        if budget != "auto" and (isinstance(budget, (str, bool)) or not budget >= 0):
            raise ValueError(f"data.pool_device_gib must be auto or a number >= 0, got {budget!r}")
        if self.data.seed == TEST_SEED:
            raise ValueError(f"data.seed {TEST_SEED} is the held-out test split; pick another")
        for name, hw in (("data.size", self.data.size), ("data.crop", self.data.crop)):
            if hw is not None and (len(hw) != 2 or hw[0] % STRIDE or hw[1] % STRIDE or min(hw) < STRIDE):
                raise ValueError(f"{name} must be two positive multiples of {STRIDE}, got {hw}")
        crop = self.data.crop
        if crop is not None and (crop[0] > self.data.size[0] or crop[1] > self.data.size[1]):
            raise ValueError(f"data.crop {crop} is larger than data.size {self.data.size}")
        if set(self.stages) != set(STAGES):
            raise ValueError(f"stages must name exactly {STAGES}")
        if any(s.steps < 0 or s.lr <= 0 for s in self.stages.values()):
            raise ValueError("stage steps must be >= 0 and lr > 0")
        if sum(s.steps for s in self.stages.values()) == 0:
            raise ValueError("no training steps configured")
        for key in ("batch_size", "log_every", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1")
        if self.data.scenes < 1 or self.data.workers < 0 or self.data.loader_workers < 0:
            raise ValueError("data.scenes must be >= 1, data.workers and data.loader_workers >= 0")
        if self.losses.temperature <= 0 or not 0 <= self.losses.patch_ratio < 1:
            raise ValueError("losses.temperature must be > 0 and patch_ratio in [0, 1)")
        if not 0 <= self.losses.fault_prob <= 1:
            raise ValueError(f"losses.fault_prob must be in [0, 1], got {self.losses.fault_prob}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


def _plain(obj: Any) -> Any:
    if isinstance(obj, ModelConfig):
        return obj.to_dict()
    if is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    return obj


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ValueError(f"unknown option(s) in {where}: {sorted(unknown)}; known: {sorted(known)}")
    kwargs = {}
    for key, value in raw.items():
        if key in ("size", "crop") and value is not None:
            value = tuple(int(v) for v in value)
        if key == "sources":
            value = parse_sources(value)
        kwargs[key] = value
    return cls(**kwargs)


def from_dict(raw: dict[str, Any]) -> TrainConfig:
    raw = dict(raw or {})
    cfg = TrainConfig()
    try:
        for key, value in raw.items():
            if key == "model":
                cfg.model = ModelConfig.from_dict(value)
            elif key == "data":
                cfg.data = _build(DataConfig, value, "data")
            elif key == "losses":
                cfg.losses = _build(LossConfig, value, "losses")
            elif key == "stages":
                if not isinstance(value, dict):
                    raise ValueError("stages must be a mapping")
                for name, stage in value.items():
                    base = _plain(cfg.stages.get(name, StageConfig()))
                    if not isinstance(stage, dict):
                        raise ValueError(f"stages.{name} must be a mapping")
                    cfg.stages[name] = _build(StageConfig, {**base, **stage}, f"stages.{name}")
            elif key in {f.name for f in fields(TrainConfig)}:
                setattr(cfg, key, value)
            else:
                raise ValueError(f"unknown option {key!r}")
    except TypeError as exc:
        raise ValueError(f"bad training config: {exc}") from exc
    cfg.model = _model_for(cfg, explicit="model" in raw)
    return cfg.validate()


def _model_for(cfg: TrainConfig, *, explicit: bool) -> ModelConfig:
    """The network to train: ``init``'s architecture when fine-tuning (a ``model`` section must
    then agree with it), with one output per class of the run's class table."""
    from unimrseg_core.data.readers import load_class_table
    from unimrseg_core.modalities import NUM_CLASSES
    from unimrseg_core.model.checkpoint import model_config, read_metadata

    model = cfg.model
    if cfg.init is not None:
        ckpt = model_config(read_metadata(Path(cfg.init).expanduser()))
        if explicit and replace(model, num_classes=ckpt.num_classes) != ckpt:
            raise ValueError(
                f"model differs from init {cfg.init}'s ({ckpt}); leave model out when fine-tuning"
            )
        model = ckpt
    classes = len(load_class_table(Path(cfg.classes).expanduser())) if cfg.classes else NUM_CLASSES
    return replace(model, num_classes=classes)


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read YAML, apply ``overrides`` (top-level keys, e.g. from the command line), validate."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read training config ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    raw.update(overrides or {})
    return from_dict(raw)
