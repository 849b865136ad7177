"""Saving and loading trained networks: plain tensors + a JSON metadata file beside them.

A checkpoint is ``NAME.pt`` (a state dict, read with ``torch.load(weights_only=True)``,
so loading a file cannot execute code) and ``NAME.json``: the model config, the
class table, normalisation, input size, training method/commit/data seed, and the
sha256 of the ``.pt``. Loading checks the sha256, the normalisation and that the class
table (ours, or the user's a model was fine-tuned on) has one entry per output channel.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from unimrseg_core.modalities import CLASSES, ClassInfo, metadata_mismatch, model_classes, model_metadata
from unimrseg_core.model.config import ModelConfig

if TYPE_CHECKING:
    import torch

    from unimrseg_core.model.network import UniMRSegNet

FORMAT = "unimrseg-checkpoint"
VERSION = 1
SHIPPED_WEIGHTS_DIR: Final = Path(__file__).resolve().parent.parent / "weights"
"""The shipped model's folder (checkpoint, metadata, ONNX); the node's default ``model_dir``."""
SHIPPED: Final = SHIPPED_WEIGHTS_DIR / "unimrseg.pt"


class CheckpointError(ValueError):
    """A checkpoint that is missing, altered or does not match this code."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def metadata_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save_model(
    net: UniMRSegNet,
    path: str | Path,
    *,
    input_size: tuple[int, int],
    extra: dict[str, Any] | None = None,
    classes: tuple[ClassInfo, ...] = CLASSES,
) -> Path:
    """Write ``path`` (.pt) and its ``.json`` metadata; returns the .pt path. ``classes``: what the
    network's output channels mean (one per channel)."""
    import torch

    from unimrseg_core.model.network import check_input_size

    check_input_size(*input_size)
    if len(classes) != net.cfg.num_classes:
        raise ValueError(f"{len(classes)} classes for a network of {net.cfg.num_classes} output channels")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": net.cfg.to_dict(),
        "input_size": list(input_size),
        "parameters": sum(int(p.numel()) for p in net.parameters()),
        **model_metadata(classes),
        **(extra or {}),
        "sha256": sha256_file(path),
    }
    metadata_path(path).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    meta_file = metadata_path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    if not meta_file.is_file():
        raise CheckpointError(f"{path}: metadata {meta_file.name} is missing beside it")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{meta_file}: unreadable metadata ({exc})") from exc
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{meta_file}: not a {FORMAT} v{VERSION} file")
    return meta


BEFORE_OPTIONS: Final = {"encoder": "separate", "attention_from_stage": 0}
"""What a checkpoint written before an architecture option existed has: one chain per modality,
attention at every stage (today's defaults may differ)."""


def model_config(meta: dict) -> ModelConfig:
    """The architecture a checkpoint's metadata describes (:data:`BEFORE_OPTIONS` where it is silent)."""
    return ModelConfig.from_dict({**BEFORE_OPTIONS, **meta["model"]})


def load_model(path: str | Path = SHIPPED, *, device: str | torch.device = "cpu") -> tuple[UniMRSegNet, dict]:
    """Network in eval mode and its metadata; refuses altered files or a different class table."""
    import torch

    from unimrseg_core.model.network import UniMRSegNet

    path = Path(path)
    meta = read_metadata(path)
    if meta.get("sha256") != sha256_file(path):
        raise CheckpointError(f"{path}: sha256 differs from {metadata_path(path).name}; file altered or torn")
    differs = metadata_mismatch(meta)
    if differs:
        raise CheckpointError(f"{path}: its {differs} differ from this code's; retrain or use matching code")
    try:
        cfg = model_config(meta)
        if len(model_classes(meta)) != cfg.num_classes:
            raise ValueError(f"its classes name {len(model_classes(meta))} of {cfg.num_classes} outputs")
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = UniMRSegNet(cfg)
        net.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"{path}: does not fit the network ({exc})") from exc
    return net.to(device).eval(), meta
