"""Fine-tuning: start a network from a checkpoint's weights, with a new class head if need be.

Everything is copied from the checkpoint (``train.init`` / ``--init``) except the class head
(``model.network.CLASS_HEAD``, the last 1x1 convolution) when the run's class table differs
from the checkpoint's: then that layer keeps its fresh initialisation and learns the new
classes, while the encoders, fusion, adapters, decoder and saliency head start trained. The
network must have the checkpoint's architecture (``train.config`` takes it from there).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unimrseg_core.modalities import ClassInfo, class_table_json, model_classes
from unimrseg_core.model.checkpoint import load_model
from unimrseg_core.model.network import CLASS_HEAD, UniMRSegNet

__all__ = ["init_from"]


def init_from(net: UniMRSegNet, checkpoint: str | Path, classes: Sequence[ClassInfo]) -> dict[str, Any]:
    """Load ``checkpoint`` into ``net`` (in place); returns what was done, for the run's metadata.

    Raises CheckpointError for a file that cannot be loaded, ValueError when the architectures differ.
    """
    source, meta = load_model(Path(checkpoint).expanduser())
    new_head = class_table_json(model_classes(meta)) != class_table_json(classes)
    own = net.state_dict()
    state = {k: v for k, v in source.state_dict().items() if not (new_head and k.startswith(CLASS_HEAD))}
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ValueError(
            f"{checkpoint}: its {wrong[0]} does not fit the network; train with its architecture"
        )
    missing = [k for k in own if k not in state and not k.startswith(CLASS_HEAD)]
    if missing:
        raise ValueError(f"{checkpoint}: has no {missing[0]}; train with its architecture")
    net.load_state_dict(state, strict=False)
    return {
        "checkpoint": str(checkpoint),
        "sha256": meta["sha256"],
        "classes": [c["name"] for c in meta.get("classes", [])] or None,
        "new_class_head": new_head,
    }
