"""The project's own on-disk dataset layout: write generated scenes, read them back losslessly.

::

    DIR/
      metadata.json        format, version, seed, size, class table, normalisation,
                           encodings, and per scene: name, index, conditions, layout,
                           camera intrinsics and mounting, ambient temperature
      rgb/000000.png       8-bit RGB
      depth/000000.png     16-bit, millimetres, 0 = invalid (REP 118 style)
      thermal/000000.png   16-bit, centikelvin (0.01 K)
      label/000000.png     8-bit class ids (255 = no ground truth)
      saliency/000000.png  8-bit, 255 = salient, 0 = not

The generator quantises depth to 1 mm and temperature to 0.01 K, so a round trip
is exact. The same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
from tqdm import tqdm

from unimrseg_core.data.generator import SceneGenerator
from unimrseg_core.data.readers.errors import DatasetError
from unimrseg_core.data.readers.images import read_image
from unimrseg_core.data.sample import ARRAYS, Sample
from unimrseg_core.modalities import model_metadata

__all__ = [
    "DEPTH_PER_METRE",
    "FORMAT",
    "THERMAL_PER_KELVIN",
    "GeneratedDataset",
    "read_scene",
    "write_dataset",
    "write_sample",
]

FORMAT: Final = "unimrseg-world"
VERSION: Final = 1
FOLDERS: Final = ARRAYS  # one folder per array
ENCODINGS: Final = {
    "rgb": "png uint8 RGB",
    "depth": "png uint16 millimetres, 0 = invalid",
    "thermal": "png uint16 centikelvin",
    "label": "png uint8 class id, 255 = ignore",
    "saliency": "png uint8, 255 = salient",
}
DEPTH_PER_METRE: Final = 1000.0  # depth PNG units (millimetres) per metre
THERMAL_PER_KELVIN: Final = 100.0  # thermal PNG units (centikelvin) per kelvin
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def _encode(sample: Sample) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if sample.rgb is not None:
        out["rgb"] = cv2.cvtColor(sample.rgb, cv2.COLOR_RGB2BGR)
    if sample.depth is not None:
        out["depth"] = np.clip(np.round(np.nan_to_num(sample.depth) * DEPTH_PER_METRE), 0, 65535).astype(
            np.uint16
        )
    if sample.thermal is not None:
        out["thermal"] = np.clip(np.round(sample.thermal * THERMAL_PER_KELVIN), 0, 65535).astype(np.uint16)
    if sample.label is not None:
        out["label"] = sample.label
    if sample.saliency is not None:
        out["saliency"] = (sample.saliency > 0).astype(np.uint8) * 255
    return out


def write_sample(sample: Sample, root: Path) -> None:
    name = sample.meta["name"]
    for folder, image in _encode(sample).items():
        path = root / folder / f"{name}.png"
        if not cv2.imwrite(str(path), image, _PNG):
            raise OSError(f"could not write {path}")


class _Job:
    """Picklable per-worker task: generate scene ``i`` and write it."""

    def __init__(self, generator: SceneGenerator, root: Path, conditions: Sequence[str] | None) -> None:
        self.generator, self.root, self.conditions = generator, root, conditions

    def __call__(self, index: int) -> dict[str, Any]:
        sample = self.generator.sample(index, self.conditions)
        write_sample(sample, self.root)
        return sample.meta


def write_dataset(
    out: str | Path,
    count: int,
    *,
    seed: int = 0,
    size: tuple[int, int] = (240, 320),
    workers: int = 1,
    conditions: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Generate ``count`` scenes into ``out`` (which must not exist or be empty)."""
    root = Path(out)
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and is not an empty directory; refusing to overwrite it")
    generator = SceneGenerator(size, seed)
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    job = _Job(generator, root, conditions)
    bar = tqdm(total=count, desc=f"generating {root}", unit="scene", disable=not progress)
    metas: list[dict[str, Any]] = []
    with bar:
        if workers == 1:
            for i in range(count):
                metas.append(job(i))
                bar.update()
        else:
            with mp.get_context("spawn").Pool(workers) as pool:
                for meta in pool.imap(job, range(count), chunksize=4):
                    metas.append(meta)
                    bar.update()
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "seed": seed,
        "size": list(generator.size),
        "count": count,
        "forced_conditions": list(conditions) if conditions else None,
        "encodings": ENCODINGS,
        **model_metadata(),
        "scenes": metas,
    }
    (root / "metadata.json").write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n")
    return root


def read_scene(root: Path, name: str) -> dict[str, np.ndarray]:
    """Scene ``name``'s arrays in their stored integer units (rgb in RGB order, depth mm, thermal
    cK, label, saliency 0/1): what a consumer that keeps integers (the training pool) needs."""
    arrays = {f: read_image(root / f / f"{name}.png") for f in FOLDERS}
    arrays["rgb"] = cv2.cvtColor(arrays["rgb"], cv2.COLOR_BGR2RGB)
    arrays["saliency"] = (arrays["saliency"] > 127).astype(np.uint8)
    return arrays


class GeneratedDataset(Sequence[Sample]):
    """Reads a directory written by :func:`write_dataset` back into Samples (lossless)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        meta_path = self.root / "metadata.json"
        try:
            self.metadata = json.loads(meta_path.read_text())
        except FileNotFoundError as exc:
            raise DatasetError(
                meta_path, "not found: is this a directory written by 'unimrseg data generate'?"
            ) from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(meta_path, f"unreadable metadata: {exc}") from exc
        if self.metadata.get("format") != FORMAT or self.metadata.get("version") != VERSION:
            raise DatasetError(meta_path, f"not a {FORMAT} v{VERSION} dataset")
        self.scenes: list[dict[str, Any]] = self.metadata["scenes"]

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        meta = self.scenes[index]
        arrays = read_scene(self.root, meta["name"])
        return Sample(
            rgb=arrays["rgb"],
            depth=arrays["depth"].astype(np.float32) / np.float32(DEPTH_PER_METRE),
            thermal=arrays["thermal"].astype(np.float32) / np.float32(THERMAL_PER_KELVIN),
            label=arrays["label"],
            saliency=arrays["saliency"],
            meta=dict(meta),
        ).validate()

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))
