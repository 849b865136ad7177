"""``Segmenter``: the one inference API. Sensor images in, class ids and saliency out.

Callers (the ROS node, bag evaluation, scripts) pass numpy images in sensor units
(any subset of rgb uint8 HxWx3, depth float32 metres with 0 = invalid, thermal
float32 kelvin), each at its own resolution. Each is resized to the model's input
size (depth with nearest neighbour, so invalid zeros never blend into false
near returns), normalised by the same ``data.tensors.model_inputs`` that training
uses, run through a backend, and the result is returned at the caller's
resolution with the combination that was actually used.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from unimrseg_core.data.sample import FORMATS, Sample
from unimrseg_core.data.tensors import model_inputs
from unimrseg_core.modalities import MODALITIES, Combination, combination
from unimrseg_core.runtime.backends import Backend


@dataclass(frozen=True)
class Segmentation:
    class_ids: np.ndarray  # HxW uint8
    saliency: np.ndarray  # HxW float32 probability
    used: Combination  # the modalities the network saw


def saliency_mono8(probability: np.ndarray) -> np.ndarray:
    """Saliency probability [0, 1] -> uint8 0..255, ``round(255 * p)`` (NaN -> 0).

    What the node publishes on ``saliency/mask`` and what bag evaluation scores: one function for both.
    """
    scaled = np.nan_to_num(probability.astype(np.float32, copy=False), nan=0.0) * np.float32(255.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


class Segmenter:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        h, w = backend.metadata["input_size"]
        self.input_size = (int(h), int(w))

    def _resized(self, name: str, image: np.ndarray) -> np.ndarray:
        ndim, dtype = FORMATS[name]
        image = np.asarray(image)
        if image.ndim != ndim or image.dtype != dtype or (ndim == 3 and image.shape[2] != 3):
            raise ValueError(
                f"{name} must be a {ndim}-D {np.dtype(dtype).name} array"
                f"{' with 3 channels' if ndim == 3 else ''}, got {image.ndim}-D {image.dtype} {image.shape}"
            )
        if min(image.shape[:2]) < 1:
            raise ValueError(f"{name} is empty: {image.shape}")
        h, w = self.input_size
        if image.shape[:2] == (h, w):
            return image
        interp = cv2.INTER_NEAREST if name == "depth" else cv2.INTER_LINEAR
        return cv2.resize(image, (w, h), interpolation=interp)

    def segment(
        self,
        rgb: np.ndarray | None = None,
        depth: np.ndarray | None = None,
        thermal: np.ndarray | None = None,
        *,
        output_size: tuple[int, int] | None = None,
    ) -> Segmentation:
        """Run on the given modalities; output at ``output_size`` or the first given image's size."""
        given = dict(zip(MODALITIES, (rgb, depth, thermal), strict=True))
        present = [m for m in MODALITIES if given[m] is not None]
        if not present:
            raise ValueError("no modality given: pass at least one of rgb, depth, thermal")
        if output_size is None:
            output_size = tuple(np.asarray(given[present[0]]).shape[:2])  # type: ignore[assignment]
        sample = Sample(**{m: self._resized(m, given[m]) for m in present})
        feeds = {k: v[None] for k, v in model_inputs(sample).items()}
        seg, sal = self.backend.infer(feeds)
        oh, ow = output_size
        ids = seg[0].argmax(0).astype(np.uint8)
        prob = sal[0, 0].astype(np.float32)
        if (oh, ow) != self.input_size:
            ids = cv2.resize(ids, (ow, oh), interpolation=cv2.INTER_NEAREST)
            prob = cv2.resize(prob, (ow, oh), interpolation=cv2.INTER_LINEAR)
        return Segmentation(ids, prob, combination(present))
