"""CUDA-graph replay of a tensor function, one graph per input-shape key.

Why: the shipped network is a few hundred small kernels. On a GPU, eager execution
spends its time launching them (the same ~9 ms at 240x320 and 480x640 on an H200), and
on a Jetson's slower CPU the launch cost is higher still. A captured graph replays all
of them with one launch.

How (the recipe of torch.cuda's documentation): static input tensors per key; a few
warm-up calls on a side stream (so lazy initialisation, cuDNN algorithm search and the
allocator's first growth happen outside the capture); capture into a ``CUDAGraph``;
each call copies its inputs into the static inputs and replays. A new shape (batch,
H x W) captures a new graph; the oldest of more than ``max_graphs`` is dropped.

The outputs are the graph's static tensors: the next replay overwrites them, so a
caller copies what it needs before calling again (``DeviceStages`` copies to pinned
host memory at once).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

__all__ = ["GraphedFunction"]

ShapeKey = tuple[Hashable, ...]


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, ...]
    outputs: tuple[torch.Tensor, ...]


def shape_key(tensors: Sequence[torch.Tensor], options: dict[str, Hashable]) -> ShapeKey:
    """What a graph is specialised to: every input's shape and dtype, and ``fn``'s keyword options."""
    return (*((tuple(t.shape), t.dtype) for t in tensors), *sorted(options.items()))


class GraphedFunction:
    """``fn(*tensors, **options) -> tensors`` replayed from a CUDA graph captured per shape key.

    ``options`` are hashable constants of the computation (an output size): part of the key.
    """

    def __init__(
        self,
        fn: Callable[..., Sequence[torch.Tensor]],
        device: torch.device,
        *,
        warmup: int = 3,
        max_graphs: int = 8,
    ) -> None:
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {device}")
        if max_graphs < 1 or warmup < 1:
            raise ValueError("max_graphs and warmup must be >= 1")
        self.fn = fn
        self.device = device
        self.warmup = warmup
        self.max_graphs = max_graphs
        self._graphs: OrderedDict[ShapeKey, _Graph] = OrderedDict()
        self.captures = 0  # how many graphs were captured (a benchmark and a test read it)

    def __call__(self, *inputs: torch.Tensor, **options: Hashable) -> tuple[torch.Tensor, ...]:
        key = shape_key(inputs, options)
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._capture(key, inputs, options)
        else:
            self._graphs.move_to_end(key)
        for static, value in zip(entry.inputs, inputs, strict=True):
            if static.data_ptr() != value.data_ptr():
                static.copy_(value, non_blocking=True)
        entry.graph.replay()
        return entry.outputs

    def static_inputs(self, *inputs: torch.Tensor, **options: Hashable) -> tuple[torch.Tensor, ...]:
        """The static input tensors for these inputs' shapes (captured now if new): a caller that
        writes its data straight into them saves one device copy per call."""
        key = shape_key(inputs, options)
        entry = self._graphs.get(key) or self._capture(key, inputs, options)
        return entry.inputs

    def _capture(self, key: ShapeKey, inputs: Sequence[torch.Tensor], options: dict[str, Hashable]) -> _Graph:
        static = tuple(t.detach().clone() for t in inputs)
        with torch.cuda.device(self.device), torch.no_grad():
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self.fn(*static, **options)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: other threads of the process (a ROS executor) may use CUDA meanwhile
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                outputs = tuple(self.fn(*static, **options))
        entry = _Graph(graph, static, outputs)
        self._graphs[key] = entry
        self.captures += 1
        if len(self._graphs) > self.max_graphs:
            self._graphs.popitem(last=False)
        log.info("cuda graph captured for %s (%d held)", key, len(self._graphs))
        return entry
