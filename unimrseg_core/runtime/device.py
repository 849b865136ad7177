"""What an engine is built for: the device's name and capability (one place for engines and benchmarks)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_identity(device: torch.device) -> tuple[str, str]:
    """(name, capability): a GPU's name and SM version, or the CPU's name and the ISA torch uses."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return torch.cuda.get_device_name(device), f"{major}.{minor}"
    return cpu_model(), torch.backends.cpu.get_cpu_capability()
