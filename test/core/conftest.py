"""Fixtures shared by the core tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

TINY_SIZE = (32, 48)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: two threads on a busy 2-core machine are many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A real but tiny UniMRSeg checkpoint at ``TINY_SIZE``: seconds to export or compile."""
    from unimrseg_core.model import ModelConfig, UniMRSegNet
    from unimrseg_core.model.checkpoint import save_model

    torch.manual_seed(0)
    net = UniMRSegNet(ModelConfig(widths=(8, 8, 8, 8), depths=(1, 0, 0, 0), decoder_width=8, attention_dim=4))
    return save_model(net.eval(), tmp_path_factory.mktemp("tiny") / "tiny.pt", input_size=TINY_SIZE)
