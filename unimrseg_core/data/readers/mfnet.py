"""MFNet RGB-T semantic segmentation (Ha et al., IROS 2017, "ir_seg_dataset")::

    root/
      images/00001D.png   4-channel 8-bit PNG: R, G, B, thermal
      labels/00001D.png   8-bit class values 0..8 (see config/classmap_mfnet.yaml)
      train.txt  val.txt  test.txt  (test_day.txt, test_night.txt, ...)
                          one name per line, without extension

OpenCV decodes the 4-channel PNG in B, G, R, A order, so RGB is channels 2, 1, 0 and
thermal is channel 3. Thermal is an 8-bit visualisation: the kelvin it gives
(``thermal`` options) is only relative. ``split`` names any ``<split>.txt`` in the
root; without it every image is used. Without ``labels/``, ``label`` is None.
"""

from __future__ import annotations

import numpy as np

from unimrseg_core.data.readers.base import DatasetReader, Role, SceneFiles
from unimrseg_core.data.readers.errors import DatasetError
from unimrseg_core.data.readers.images import ImageHeader, read_image, read_index_image
from unimrseg_core.data.sample import Sample

__all__ = ["MFNetReader"]


class MFNetReader(DatasetReader):
    """MFNet: RGB + thermal from one RGBA-style PNG, semantic labels through a class map."""

    KIND = "mfnet"
    ROLES = (Role("image", ("images",)), Role("label", ("labels",), required=False, truth="label"))
    OPTION_SECTIONS = ("classmap", "thermal")

    def _check_header(self, key: str, header: ImageHeader) -> str | None:
        if key == "image" and (header.channels != 4 or header.bit_depth != 8):
            return (
                f"expected an 8-bit 4-channel PNG (R, G, B, thermal), got {header.channels} channel(s) "
                f"of {header.bit_depth} bits"
            )
        if key == "label" and header.channels not in (None, 1):
            return f"label must be a single-channel PNG of class values, got {header.channels} channels"
        return None

    def _load(self, scene: SceneFiles) -> Sample:
        path = scene.files["image"]
        image = read_image(path, scene.headers["image"])
        if image.ndim != 3 or image.shape[2] != 4 or image.dtype != np.uint8:
            raise DatasetError(
                path,
                f"expected 8-bit B, G, R, thermal channels after decoding, got shape "
                f"{image.shape} {image.dtype}",
            )
        sample = Sample(
            rgb=np.ascontiguousarray(image[:, :, 2::-1]),
            thermal=self.thermal_options.to_kelvin(np.ascontiguousarray(image[:, :, 3]), path),
            meta={"relative_units": ["thermal"]},
        )
        if "label" in scene.files:
            label_path = scene.files["label"]
            sample.label = self._map_labels(read_index_image(label_path, scene.headers["label"]), label_path)
        return sample
