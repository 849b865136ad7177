"""NYU Depth v2 RGB-D semantic segmentation, in its common image / depth / label-PNG form::

    root/
      image/ | images/ | rgb/    0001.jpg or .png   RGB
      depth/ | depths/           0001.png           16-bit millimetres (0 = no return)
      label40/ | label/ | labels/ 0001.png          8-bit: 0 = void, 1..40 = NYU-40 classes
      train.txt  test.txt        one name per line (extension or folder prefix tolerated)

``label40/`` wins when several label folders exist (``label13/`` etc. are other
class sets and need their own class map). Releases that split into ``train/`` and
``test/`` sub-roots work too (``split="train"``). 16-bit depth is metric
(``depth.scale_16bit``); an 8-bit depth folder is read with the 8-bit options and
is only relative. Without a label folder, ``label`` is None.
"""

from __future__ import annotations

import numpy as np

from unimrseg_core.data.readers.base import DatasetReader, Role, SceneFiles
from unimrseg_core.data.readers.images import ImageHeader, read_image, read_index_image, to_grey, to_rgb
from unimrseg_core.data.sample import Sample

__all__ = ["NYUDv2Reader"]


class NYUDv2Reader(DatasetReader):
    """NYUDv2: RGB + metric depth, NYU-40 labels through a class map."""

    KIND = "nyudv2"
    ROLES = (
        Role("rgb", ("image", "images", "rgb")),
        Role("depth", ("depth", "depths")),
        Role("label", ("label40", "labels40", "label", "labels"), required=False, truth="label"),
    )
    OPTION_SECTIONS = ("classmap", "depth")

    def _check_header(self, key: str, header: ImageHeader) -> str | None:
        if key == "depth" and header.channels not in (None, 1) and header.bit_depth == 16:
            return f"16-bit depth must be single-channel, got {header.channels} channels"
        if key == "label" and header.channels not in (None, 1):
            return f"label must be a single-channel PNG of class values, got {header.channels} channels"
        return None

    def _load(self, scene: SceneFiles) -> Sample:
        files, headers = scene.files, scene.headers
        rgb = to_rgb(read_image(files["rgb"], headers["rgb"]), files["rgb"])
        raw = to_grey(read_image(files["depth"], headers["depth"]), files["depth"])
        sample = Sample(
            rgb=rgb,
            depth=self.depth_options.to_metres(raw, files["depth"]),
            meta={"relative_units": ["depth"] if raw.dtype == np.uint8 else []},
        )
        if "label" in files:
            sample.label = self._map_labels(
                read_index_image(files["label"], headers["label"]), files["label"]
            )
        return sample
