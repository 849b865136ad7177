"""Moving the small per-step tensors (damage masks, crop plans) to the training device.

A blocking copy from pageable host memory to a GPU waits for everything queued on the
stream, so one per step would stop CUDA from running ahead of Python. These copies go
through pinned memory (the caching host allocator reuses the blocks) and do not block.
"""

from __future__ import annotations

import torch

__all__ = ["to_device"]


def to_device(tensor: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    """``tensor`` (on the CPU) on ``device`` (``None``: where it is), copied without blocking the host."""
    if device is None or tensor.device == device:
        return tensor
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)
