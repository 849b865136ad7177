"""Network hyper-parameters: the one place the architecture's sizes are written."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from unimrseg_core.modalities import NUM_CLASSES

# every stage halves the resolution; inputs must be divisible by this
STRIDE = 16


ENCODERS = ("grouped", "shared", "separate")
"""``grouped``: every modality's branch in one grouped convolution per layer (modalities stacked on
channels); ``shared``: one set of weights for all, the modalities folded into the batch, each with
its own scale and shift per stage; ``separate``: one chain of convolutions per modality (models
before the grouped encoder; checkpoints without an ``encoder`` entry are read as this)."""


@dataclass(frozen=True)
class ModelConfig:
    encoder: str = "shared"  # ENCODERS; the design MODEL_CARD.md chose by measurement
    widths: tuple[int, int, int, int] = (16, 32, 48, 64)  # per stage, identical for every modality
    depths: tuple[int, int, int, int] = (1, 1, 2, 2)  # residual blocks per stage
    attention_dim: int = 16  # query/key width of the cross-modal attention
    attention_from_stage: int = 1  # earlier stages fuse by self-guided weighting only (no attention)
    decoder_width: int = 32
    num_classes: int = NUM_CLASSES

    def __post_init__(self) -> None:
        if len(self.widths) != 4 or len(self.depths) != 4:
            raise ValueError("widths and depths need 4 stages")
        if (
            min(self.widths) < 1
            or min(self.depths) < 0
            or self.attention_dim < 1
            or not 0 <= self.attention_from_stage < len(self.widths)
            or self.decoder_width < 1
            or self.num_classes < 1
        ):
            raise ValueError(f"invalid model sizes: {self}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ModelConfig:
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown model option(s): {sorted(unknown)}; known: {sorted(known)}")
        for key in ("widths", "depths"):
            if key in raw:
                raw[key] = tuple(int(v) for v in raw[key])
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
