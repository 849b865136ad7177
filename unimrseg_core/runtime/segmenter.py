"""``Segmenter``: the one inference API. Sensor images in, class ids and saliency out.

Callers (the ROS node, bag evaluation, scripts) pass numpy images in sensor units
(any subset of rgb uint8 HxWx3, depth float32 metres with 0 = invalid, thermal
float32 kelvin), each at its own resolution. Each is resized to the model's input
size (depth with nearest neighbour, so invalid zeros never blend into false
near returns), normalised by the same ``data.tensors.model_inputs`` that training
uses, run through a backend, and the result is returned at the caller's
resolution with the combination that was actually used.

On a CPU these stages run on the host (OpenCV, numpy). For a backend on a CUDA GPU
they run on the device, as one CUDA graph with the network (``device_stages``). Bad
images are refused before the backend is involved, so they never count as a backend
failure in ``FailoverBackend``, which re-runs a failed call on the next backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

import cv2
import numpy as np

from unimrseg_core.data.sample import Sample
from unimrseg_core.data.tensors import model_inputs
from unimrseg_core.modalities import MODALITIES, NEAREST_RESIZE, SENSOR_FORMATS, Combination, combination
from unimrseg_core.runtime.backends import Backend

STAGES: Final = ("auto", "host", "device")
"""Where pre- and post-processing run: ``host`` (OpenCV and numpy; the fast path on a CPU),
``device`` (torch ops on the backend's device, ``runtime.device_stages``), ``auto`` (device
for a backend on a CUDA GPU, with CUDA graphs unless turned off; host otherwise)."""


@dataclass(frozen=True)
class Segmentation:
    class_ids: np.ndarray  # HxW uint8
    saliency: np.ndarray  # HxW float32 probability
    used: Combination  # the modalities the network saw
    saliency_mono8: np.ndarray  # HxW uint8, what saliency/mask publishes (``saliency_mono8``)


def saliency_mono8(probability: np.ndarray) -> np.ndarray:
    """Saliency probability [0, 1] -> uint8 0..255, ``round(255 * p)`` (NaN -> 0).

    What the node publishes on ``saliency/mask`` and what bag evaluation scores: one function for
    both (``data.tensor_ops.saliency_mono8_tensor`` is its mirror on the device).
    """
    scaled = np.nan_to_num(probability.astype(np.float32, copy=False), nan=0.0) * np.float32(255.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _on_cuda(backend: Any) -> bool:
    """A backend whose model runs on a CUDA device (checked without importing torch)."""
    return (
        hasattr(backend, "run_device") and getattr(getattr(backend, "device", None), "type", None) == "cuda"
    )


class FrameLike(Protocol):
    """What ``segment_frame`` needs of a frame (``sync.Frame``: the pipeline's output)."""

    @property
    def images(self) -> dict[str, np.ndarray]: ...

    @property
    def anchor_image(self) -> np.ndarray: ...

    @property
    def used(self) -> Combination: ...


class Segmenter:
    def __init__(self, backend: Backend, *, stages: str = "auto", cuda_graphs: bool = True) -> None:
        """``stages``: one of STAGES; ``cuda_graphs``: replay the device stages from CUDA graphs."""
        if stages not in STAGES:
            raise ValueError(f"stages must be one of {STAGES}, got {stages!r}")
        self.backend = backend
        self.stages = stages
        self.cuda_graphs = cuda_graphs
        h, w = backend.metadata["input_size"]
        self.input_size = (int(h), int(w))
        self._device: tuple[Any, Any] | None = None  # (backend, its DeviceStages or None)

    @staticmethod
    def _checked(name: str, image: np.ndarray) -> np.ndarray:
        """The image if it is in the sensor format of ``Sample`` (refused before any backend sees it)."""
        ndim, dtype = SENSOR_FORMATS[name]
        image = np.asarray(image)
        if image.ndim != ndim or image.dtype != dtype or (ndim == 3 and image.shape[2] != 3):
            raise ValueError(
                f"{name} must be a {ndim}-D {np.dtype(dtype).name} array"
                f"{' with 3 channels' if ndim == 3 else ''}, got {image.ndim}-D {image.dtype} {image.shape}"
            )
        if min(image.shape[:2]) < 1:
            raise ValueError(f"{name} is empty: {image.shape}")
        return image

    def segment_frame(self, frame: FrameLike) -> Segmentation:
        """A frame of ``FramePipeline``: its images, the masks at its anchor image's size, and
        the frame's own modality mask as ``used`` (one fact, carried, not re-derived)."""
        return self._segment(frame.images, frame.anchor_image.shape[:2], frame.used)

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
        present = {m: image for m, image in given.items() if image is not None}
        if not present:
            raise ValueError("no modality given: pass at least one of rgb, depth, thermal")
        if output_size is None:
            output_size = np.asarray(next(iter(present.values()))).shape[:2]
        return self._segment(present, output_size, combination(list(present)))

    def _segment(
        self, given: dict[str, np.ndarray], output_size: tuple[int, ...], used: Combination
    ) -> Segmentation:
        images = {m: self._checked(m, given[m]) for m in MODALITIES if m in given}
        if used.modalities != tuple(images):
            raise ValueError(f"the mask says {used.name}, the images are {'+'.join(images)}")
        size = (int(output_size[0]), int(output_size[1]))

        def run(backend: Backend) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            device = self.device_stages(backend)
            if device is not None:
                out = device(images, size)
                return out.class_ids, out.saliency, out.saliency_mono8
            return self._host(backend, images, size)

        # a FailoverBackend counts this call's failures and re-runs it on the next backend
        guarded = getattr(self.backend, "run_guarded", None)
        ids, prob, mono8 = guarded(run) if guarded is not None else run(self.backend)
        return Segmentation(ids, prob, used, mono8)

    def device_stages(self, backend: Backend) -> Any:
        """The DeviceStages for ``backend`` (built once per backend; None: host stages)."""
        if self._device is not None and self._device[0] is backend:
            return self._device[1]
        stages = None
        if self.stages == "device" or (self.stages == "auto" and _on_cuda(backend)):
            from unimrseg_core.runtime.device_stages import DeviceStages

            stages = DeviceStages(
                backend.run_device,  # type: ignore[attr-defined]
                backend.device,  # type: ignore[attr-defined]
                self.input_size,
                cuda_graphs=self.cuda_graphs and getattr(backend, "graph_safe", True),
            )
        self._device = (backend, stages)
        return stages

    def _host(
        self, backend: Backend, images: dict[str, np.ndarray], output_size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """OpenCV resize, the training normalisation, the backend, argmax and resize back on the CPU."""
        h, w = self.input_size
        resized = {}
        for name, image in images.items():
            if image.shape[:2] != (h, w):
                interp = cv2.INTER_NEAREST if name in NEAREST_RESIZE else cv2.INTER_LINEAR
                image = cv2.resize(image, (w, h), interpolation=interp)
            resized[name] = image
        feeds = {k: v[None] for k, v in model_inputs(Sample(**resized)).items()}
        seg, sal = backend.infer(feeds)
        oh, ow = output_size
        ids = seg[0].argmax(0).astype(np.uint8)
        prob = sal[0, 0].astype(np.float32)
        if (oh, ow) != self.input_size:
            ids = cv2.resize(ids, (ow, oh), interpolation=cv2.INTER_NEAREST)
            prob = cv2.resize(prob, (ow, oh), interpolation=cv2.INTER_LINEAR)
        return ids, prob, saliency_mono8(prob)
