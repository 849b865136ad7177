"""Real-dataset names accepted by ``unimrseg eval --format``; import-light, for the CLI parser."""

from __future__ import annotations

from typing import Final

__all__ = ["DATASET_FORMATS"]

DATASET_FORMATS: Final[dict[str, str]] = {
    "vt5000": "rgbt_sod",
    "vt821": "rgbt_sod",
    "vt1000": "rgbt_sod",
    "njud": "rgbd_sod",
    "nlpr": "rgbd_sod",
    "stere": "rgbd_sod",
    "mfnet": "mfnet",
    "nyudv2": "nyudv2",
}
"""Dataset names users know -> reader kind of ``data.readers.open_dataset``."""
