"""The ``Segmenter``'s work on the inference device: camera arrays in, class ids and saliency out.

Why: on a GPU, the host-side path (OpenCV resize, numpy normalisation, a float32 copy
of every input, argmax and resize on the CPU) costs more than the network itself, and
the network alone is launch-bound. Here each camera array is staged in a pinned host
buffer and copied to the device once; resize, normalisation (``data.tensor_ops``, the
same constants as training), the network, argmax, the resize back and saliency to
mono8 run on the device; the three results come back in one copy each. On CUDA the
whole chain is one CUDA graph per shape key (``cuda_graphs.GraphedFunction``), so a
frame costs a few launches instead of hundreds.

It mirrors ``Segmenter``'s host path: resize before normalising, nearest for depth
(``modalities.NEAREST_RESIZE``), bilinear otherwise (OpenCV's ``INTER_LINEAR`` and
torch's ``bilinear`` with ``align_corners=False`` sample the same points; uint8 images
are rounded back to integers as OpenCV does), argmax at the network's size, then
nearest for class ids and bilinear for saliency. On the CPU it runs too (tests hold
it to the host path there), but the host path is the faster one on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812 (the universal torch idiom)

from unimrseg_core.data.tensor_ops import normalize_tensor, saliency_mono8_tensor
from unimrseg_core.modalities import MODALITIES, MODALITY_CHANNELS, NEAREST_RESIZE, mask_array
from unimrseg_core.runtime.cuda_graphs import GraphedFunction

__all__ = ["DeviceStages", "StageOutputs"]

RunDevice = Callable[..., tuple[torch.Tensor, torch.Tensor]]
_ABSENT = (0,)  # the shape that stands for an absent modality in a shape key


@dataclass(frozen=True)
class StageOutputs:
    class_ids: np.ndarray  # HxW uint8
    saliency: np.ndarray  # HxW float32 probability
    saliency_mono8: np.ndarray  # HxW uint8, round(255 * p)


@dataclass
class _Buffers:
    """Per shape key: host staging buffers (pinned on CUDA) and the device tensors they fill."""

    host: dict[str, torch.Tensor]
    device: dict[str, torch.Tensor]
    mask: torch.Tensor
    host_out: tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class DeviceStages:
    """Pre-processing, the network (``run_device``) and post-processing as torch ops on ``device``."""

    def __init__(
        self,
        run_device: RunDevice,
        device: torch.device,
        input_size: tuple[int, int],
        *,
        cuda_graphs: bool = True,
        max_graphs: int = 8,
    ) -> None:
        """``run_device``: the backend's model call on device tensors in INPUT_NAMES order."""
        self.run_device = run_device
        self.device = torch.device(device)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.cuda = self.device.type == "cuda"
        self.graphs = (
            GraphedFunction(self._stages, self.device, max_graphs=max_graphs)
            if cuda_graphs and self.cuda
            else None
        )
        self._buffers: dict[tuple[Any, ...], _Buffers] = {}
        self._max_buffers = max_graphs

    def __call__(self, images: Mapping[str, np.ndarray], output_size: tuple[int, int]) -> StageOutputs:
        """``images``: the present modalities in sensor units (``Segmenter``'s checked arrays)."""
        oh, ow = int(output_size[0]), int(output_size[1])
        shapes = tuple(tuple(images[m].shape) if m in images else _ABSENT for m in MODALITIES)
        buffers = self._buffers.get((shapes, oh, ow)) or self._allocate(images, shapes, (oh, ow))
        with torch.no_grad():
            inputs = self._upload(buffers, images, (oh, ow))
            if self.graphs is not None:
                outputs = self.graphs(*inputs, output_size=(oh, ow))
            else:
                outputs = self._stages(*inputs, output_size=(oh, ow))
            return self._download(buffers, outputs)

    # ------------------------------------------------------------------ buffers and copies
    def _allocate(
        self, images: Mapping[str, np.ndarray], shapes: tuple[Any, ...], output_size: tuple[int, int]
    ) -> _Buffers:
        pin = self.cuda
        host, device = {}, {}
        for m, shape in zip(MODALITIES, shapes, strict=True):
            dtype = torch.from_numpy(images[m][:0]).dtype if m in images else torch.float32
            host[m] = torch.empty(shape, dtype=dtype, pin_memory=pin)
            device[m] = torch.zeros(shape, dtype=dtype, device=self.device)
        mask = torch.from_numpy(mask_array([m for m in MODALITIES if m in images])[None]).to(self.device)
        host_out = (
            torch.empty(output_size, dtype=torch.uint8, pin_memory=pin),
            torch.empty(output_size, dtype=torch.float32, pin_memory=pin),
            torch.empty(output_size, dtype=torch.uint8, pin_memory=pin),
        )
        if len(self._buffers) >= self._max_buffers:
            self._buffers.pop(next(iter(self._buffers)))
        buffers = self._buffers[(shapes, *output_size)] = _Buffers(host, device, mask, host_out)
        return buffers

    def _upload(
        self, buffers: _Buffers, images: Mapping[str, np.ndarray], output_size: tuple[int, int]
    ) -> tuple[torch.Tensor, ...]:
        """One host-to-device copy per present image (on CUDA into the graph's own static inputs);
        on the CPU the arrays are used in place."""
        if not self.cuda:
            given = (torch.from_numpy(np.ascontiguousarray(images[m])) for m in MODALITIES if m in images)
            return (*(next(given) if m in images else buffers.device[m] for m in MODALITIES), buffers.mask)
        targets = (*(buffers.device[m] for m in MODALITIES), buffers.mask)
        if self.graphs is not None:
            targets = self.graphs.static_inputs(*targets, output_size=output_size)
        for m, target in zip(MODALITIES, targets, strict=False):
            if m in images:
                np.copyto(buffers.host[m].numpy(), images[m])
                target.copy_(buffers.host[m], non_blocking=True)
        return targets

    def _download(self, buffers: _Buffers, outputs: tuple[torch.Tensor, ...]) -> StageOutputs:
        """One device-to-host copy per result, then one wait for all three."""
        for host, out in zip(buffers.host_out, outputs, strict=True):
            host.copy_(out, non_blocking=self.cuda)
        if self.cuda:
            torch.cuda.current_stream(self.device).synchronize()
        ids, prob, mono8 = (t.numpy().copy() for t in buffers.host_out)
        return StageOutputs(ids, prob, mono8)

    # ------------------------------------------------------------------ the stages
    def _stages(
        self,
        rgb: torch.Tensor,
        depth: torch.Tensor,
        thermal: torch.Tensor,
        mask: torch.Tensor,
        *,
        output_size: tuple[int, int],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = [self._preprocess(m, raw) for m, raw in zip(MODALITIES, (rgb, depth, thermal), strict=True)]
        seg, sal = self.run_device(*batch, mask)
        ids = seg[0].argmax(0).to(torch.float32)
        prob = sal[0, 0].to(torch.float32)
        if tuple(output_size) != self.input_size:
            ids = F.interpolate(ids[None, None], size=output_size, mode="nearest")[0, 0]
            prob = F.interpolate(prob[None, None], size=output_size, mode="bilinear", align_corners=False)[
                0, 0
            ]
        return ids.to(torch.uint8), prob, saliency_mono8_tensor(prob)

    def _preprocess(self, modality: str, raw: torch.Tensor) -> torch.Tensor:
        """Sensor array (HxWx3 uint8 or HxW float32) -> normalised ``[1, C, h, w]`` at the network size."""
        h, w = self.input_size
        if raw.numel() == 0:  # absent: zeros, and the mask says so
            return torch.zeros((1, MODALITY_CHANNELS[modality], h, w), device=raw.device)
        x = (raw.permute(2, 0, 1) if raw.ndim == 3 else raw[None])[None].to(torch.float32)
        if tuple(x.shape[-2:]) != (h, w):
            if modality in NEAREST_RESIZE:
                x = F.interpolate(x, size=(h, w), mode="nearest")
            else:
                x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
                if not raw.is_floating_point():  # OpenCV rounds integer images back to integers
                    x = x.round_()
        return normalize_tensor(modality, x)
