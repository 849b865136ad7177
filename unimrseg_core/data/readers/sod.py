"""Salient-object datasets: RGB-D (NJUD / NLPR / STERE style) and RGB-T (VT821 / VT1000 / VT5000).

Both are one folder per modality plus a binary ground-truth mask, paired by stem;
only the second modality and its conversion differ, so one class serves both::

    root/                      root/ (VT5000: root/Train/, root/Test/ -> split="train")
      RGB/ | rgb/ | Image/       RGB/
        0001.jpg                   1.jpg
      depth/ | Depth/            T/
        0001.png  (8/16-bit)       1.jpg  (8-bit, often 3 equal channels)
      GT/ | gt/ | Mask/          GT/
        0001.png  (binary)         1.jpg

Depth in these sets is mostly an 8-bit normalised visualisation, so the metres
it gives (``depth`` options) are only RELATIVE; the same holds for thermal
(``thermal`` options). ``meta["relative_units"]`` lists such modalities. The
ground truth is optional (a folder without it gives ``saliency=None``).
"""

from __future__ import annotations

from typing import ClassVar, Final

import numpy as np

from unimrseg_core.data.readers.base import DatasetReader, Role, SceneFiles
from unimrseg_core.data.readers.images import ImageHeader, read_image, to_grey, to_rgb
from unimrseg_core.data.sample import Sample

__all__ = ["RgbdSodReader", "RgbtSodReader", "SodReader"]

RGB_FOLDERS: Final = ("rgb", "image", "images", "img", "imgs")
GT_FOLDERS: Final = ("gt", "mask", "masks", "groundtruth")


class SodReader(DatasetReader):
    """RGB + one more modality + binary saliency; subclasses pick depth or thermal."""

    MODALITY: ClassVar[str]

    def _check_header(self, key: str, header: ImageHeader) -> str | None:
        if key == "thermal" and header.bit_depth not in (None, 8):
            if header.bit_depth == 16 and self.thermal_options.reads_16bit:
                return None
            return self.thermal_options.refusal(header.bit_depth)
        if key in ("rgb", "depth", "gt") and header.bit_depth not in (None, 1, 8, 16):
            return f"unsupported bit depth {header.bit_depth}"
        return None

    def _load(self, scene: SceneFiles) -> Sample:
        files, headers = scene.files, scene.headers
        rgb = to_rgb(read_image(files["rgb"], headers["rgb"]), files["rgb"])
        path = files[self.MODALITY]
        raw = to_grey(read_image(path, headers[self.MODALITY]), path)
        sample = Sample(rgb=rgb)
        if self.MODALITY == "depth":
            sample.depth = self.depth_options.to_metres(raw, path)
            relative = ["depth"] if raw.dtype == np.uint8 else []
        else:
            sample.thermal = self.thermal_options.to_kelvin(raw, path)
            relative = ["thermal"]
        if "gt" in files:
            gt = to_grey(read_image(files["gt"], headers["gt"]), files["gt"])
            sample.saliency = (gt > np.iinfo(gt.dtype).max // 2).astype(np.uint8)
        sample.meta["relative_units"] = relative
        return sample


class RgbdSodReader(SodReader):
    """RGB-D salient objects (NJUD, NLPR, STERE, SIP, DES, ...)."""

    KIND = "rgbd_sod"
    MODALITY = "depth"
    ROLES = (
        Role("rgb", RGB_FOLDERS),
        Role("depth", ("depth", "depths")),
        Role("gt", GT_FOLDERS, required=False, truth="saliency"),
    )
    OPTION_SECTIONS = ("depth",)


class RgbtSodReader(SodReader):
    """RGB-T salient objects (VT821, VT1000, VT5000)."""

    KIND = "rgbt_sod"
    MODALITY = "thermal"
    ROLES = (
        Role("rgb", RGB_FOLDERS),
        Role("thermal", ("t", "thermal")),
        Role("gt", GT_FOLDERS, required=False, truth="saliency"),
    )
    OPTION_SECTIONS = ("thermal",)
