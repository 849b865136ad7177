"""Fuzzing the dataset readers: a small valid NJUD/NLPR, VT5000, MFNet or NYUDv2 layout with files
truncated, overwritten, replaced by images of another size, depth, channel count or format,
deleted, renamed to odd names, or with junk files and odd split lists, either reads into samples
of consistent shapes or raises a DatasetError naming the file; never another exception."""

from __future__ import annotations

import io
import re
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import fuzzing
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from unimrseg_core.data.readers import DatasetError, open_dataset, read_header, read_image
from unimrseg_core.data.readers.images import read_index_image, to_grey, to_rgb
from unimrseg_core.data.sample import ARRAY_FORMATS, Sample

pytestmark = pytest.mark.timeout(fuzzing.TIMEOUT_S)

H, W = 6, 8
NAMES = ("1", "2")


def _rgb() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _grey(dtype: type = np.uint8, high: int = 256) -> np.ndarray:
    return np.random.default_rng(2).integers(1, high, (H, W)).astype(dtype)


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"cv2 could not write {path}")


def _rgbd_sod(root: Path) -> None:
    for name in NAMES:
        _write(root / "RGB" / f"{name}.jpg", _rgb())
        _write(root / "depth" / f"{name}.png", _grey())
        _write(root / "GT" / f"{name}.png", (_grey() > 128).astype(np.uint8) * 255)


def _rgbt_sod(root: Path) -> None:
    for name in NAMES:
        _write(root / "Train" / "RGB" / f"{name}.png", _rgb())
        _write(root / "Train" / "T" / f"{name}.png", cv2.cvtColor(_grey(), cv2.COLOR_GRAY2BGR))
        _write(root / "Train" / "GT" / f"{name}.jpg", (_grey() > 128).astype(np.uint8) * 255)


def _mfnet(root: Path) -> None:
    for name in NAMES:
        bgra = np.dstack([_rgb(), _grey()])
        _write(root / "images" / f"{name}.png", bgra)
        _write(root / "labels" / f"{name}.png", _grey(high=9))
    (root / "train.txt").write_text("".join(f"{n}\n" for n in NAMES))


def _nyudv2(root: Path) -> None:
    for name in NAMES:
        _write(root / "image" / f"{name}.png", _rgb())
        _write(root / "depth" / f"{name}.png", _grey(np.uint16, 10_000))
        _write(root / "label40" / f"{name}.png", _grey(high=41))
    (root / "train.txt").write_text("".join(f"{n}.png\n" for n in NAMES))


LAYOUTS: dict[str, tuple[Callable[[Path], None], str | None]] = {
    "rgbd_sod": (_rgbd_sod, None),
    "rgbt_sod": (_rgbt_sod, "train"),
    "mfnet": (_mfnet, "train"),
    "nyudv2": (_nyudv2, "train"),
}


# --------------------------------------------------------------------------- damage


def _encoded(suffix: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(suffix, image)
    assert ok, suffix
    return data.tobytes()


def _png_header_only(width: int, height: int, color_type: int, bit_depth: int) -> bytes:
    """A PNG whose header (with a valid CRC) claims any size, followed by almost no pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    palette = chunk(b"PLTE", bytes(range(48))) if color_type == 3 else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + palette
        + chunk(b"IDAT", zlib.compress(bytes(16)))
        + chunk(b"IEND", b"")
    )


_COLOR_TYPES = {(1, False): 0, (1, True): 3, (2, False): 4, (3, False): 2, (4, False): 6}


def _color_type(path: Path, default: int) -> int:
    """The PNG colour type that keeps ``path``'s channels (``default`` for an unreadable file)."""
    try:
        known = read_header(path)
    except DatasetError:  # already damaged by an earlier step
        return default
    return _COLOR_TYPES.get((known.channels, known.palette), default)


def _pil_png(image: Image.Image) -> bytes:
    """PNG modes OpenCV does not write: palette, grey + alpha."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


REPLACEMENTS: dict[str, Callable[[], bytes]] = {
    "larger": lambda: _encoded(".png", np.zeros((H + 2, W, 3), np.uint8)),
    "16bit": lambda: _encoded(".png", _grey(np.uint16, 60_000)),
    "16bit_rgb": lambda: _encoded(".png", np.dstack([_grey(np.uint16, 60_000)] * 3)),
    "grey": lambda: _encoded(".png", _grey()),
    "grey_alpha": lambda: _pil_png(Image.fromarray(np.dstack([_grey()] * 2), "LA")),
    "bgra": lambda: _encoded(".png", np.dstack([_rgb(), _grey()])),
    "colour": lambda: _encoded(".png", _rgb()),
    "float_tiff": lambda: _encoded(".tiff", _grey().astype(np.float32) / 7),
    "int16_tiff": lambda: _encoded(".tiff", _grey(np.int16, 300)),
    "bmp": lambda: _encoded(".bmp", _rgb()),
    "jpeg": lambda: _encoded(".jpg", _rgb()),
    "palette": lambda: _pil_png(Image.fromarray(_grey(high=50)).convert("P")),
    "empty": lambda: b"",
    "labels_out_of_map": lambda: _encoded(".png", np.full((H, W), 250, np.uint8)),
}
_FRACTION = st.floats(0.0, 1.0)
_ODD_NAME = st.one_of(
    st.text(
        st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]), min_size=1, max_size=12
    ),
    st.sampled_from(["1 ", " 1", "1.png", "01", "1.PNG", ".1", "é", "1.tar", "10", "-1"]),
)
_SUFFIX = st.sampled_from([".png", ".PNG", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".txt", ""])
DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 99), _FRACTION),
    st.tuples(st.just("overwrite"), st.integers(0, 99), _FRACTION, st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("replace"), st.integers(0, 99), st.sampled_from(sorted(REPLACEMENTS))),
    st.tuples(st.just("delete"), st.integers(0, 99)),
    st.tuples(st.just("rename"), st.integers(0, 99), _ODD_NAME, _SUFFIX),
    st.tuples(st.just("junk"), st.integers(0, 99), _ODD_NAME, _SUFFIX, st.binary(max_size=32)),
    st.tuples(st.just("list"), st.text(max_size=40)),
    st.tuples(
        st.just("header"),
        st.integers(0, 99),
        st.one_of(st.integers(1, 2**16), st.integers(1, 2**31 - 1)),
        st.one_of(st.integers(1, 2**16), st.integers(1, 2**31 - 1)),
        st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
        st.sampled_from([1, 2, 4, 8, 16, 3]),
    ),
)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".txt")


def _damage(root: Path, damage: tuple) -> None:
    kind = damage[0]
    if kind == "list":
        (root / "train.txt").write_text(damage[1])
        return
    files = _files(root)
    if not files:
        return
    path = files[damage[1] % len(files)]
    if kind == "truncate":
        with path.open("r+b") as f:
            f.truncate(int(path.stat().st_size * damage[2]))
    elif kind == "overwrite":
        raw = bytearray(path.read_bytes())
        at = min(int(len(raw) * damage[2]), max(len(raw) - 1, 0))
        raw[at : at + len(damage[3])] = damage[3]
        path.write_bytes(bytes(raw))
    elif kind == "replace":
        path.write_bytes(REPLACEMENTS[damage[2]]())
    elif kind == "delete":
        path.unlink()
    elif kind == "header":  # every file of the scene claims the size, so the header checks pass
        for other in files:  # the one picked gets the drawn colour type, its partners keep theirs
            if other.stem == path.stem and other.exists():
                color = damage[4] if other == path else _color_type(other, damage[4])
                other.write_bytes(_png_header_only(damage[2], damage[3], color, damage[5]))
    else:
        target = path.parent / f"{damage[2]}{damage[3]}"
        try:
            if kind == "rename":
                path.rename(target)
            else:
                target.write_bytes(damage[4])
        except OSError:  # a name this file system refuses: nothing to read then
            pass


def _read(kind: str, root: Path, split: str | None, on_error: str) -> list[Sample]:
    reader = open_dataset(kind, root, split=split, on_error=on_error)
    for path, reason in reader.skipped:
        assert isinstance(path, str)
        assert reason
    return list(reader)


def _check_sample(sample: Sample) -> None:
    """Every field present has the contract's rank and dtype, and one size for all."""
    sizes = set()
    for name, (ndim, dtype) in ARRAY_FORMATS.items():
        value = getattr(sample, name, None)
        if value is None:
            continue
        assert (value.ndim, value.dtype) == (ndim, np.dtype(dtype)), name
        sizes.add(value.shape[:2])
    assert len(sizes) == 1, sizes
    assert sample.rgb is not None
    assert sample.rgb.shape[2] == 3


@fuzzing.budget(0.5, deadline=None)
@given(
    kind=st.sampled_from(sorted(LAYOUTS)),
    damages=st.lists(DAMAGE, min_size=1, max_size=3),
    on_error=st.sampled_from(["raise", "skip"]),
)
@example(kind="rgbd_sod", damages=[("replace", 0, "float_tiff")], on_error="raise")
@example(
    kind="mfnet", damages=[("header", 2, 20_000, 20_000, 3, 8)], on_error="raise"
)  # found: DecompressionBombError
@example(kind="nyudv2", damages=[("header", 0, 40_000, 40_000, 0, 8)], on_error="raise")  # found: cv2.error
@example(kind="mfnet", damages=[("replace", 1, "palette")], on_error="skip")
@example(kind="mfnet", damages=[("header", 0, 1, 1, 1, 1), ("header", 0, 1, 1, 0, 1)], on_error="raise")
@fuzzing.counted
def test_a_damaged_dataset_reads_or_names_the_bad_file(kind: str, damages: list, on_error: str) -> None:
    root = Path(tempfile.mkdtemp()) / kind
    try:
        build, split = LAYOUTS[kind]
        build(root)
        for damage in damages:
            _damage(root, damage)
        samples, error = fuzzing.attempt(
            lambda: _read(kind, root, split, on_error),
            (DatasetError,),
            lambda e: re.sub(r"'[^']*'|\d+", "N", e.reason.split(":")[0].split("(")[0]).strip()[:60],
            lambda s: f"read {len(s)} samples",
        )
        if error is not None:
            assert str(error).startswith(f"{error.path}: ")
            assert error.reason
            return
        for sample in samples:
            _check_sample(sample)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


# --------------------------------------------------------------------------- one file

_VALID = st.sampled_from(sorted(REPLACEMENTS)).map(lambda name: REPLACEMENTS[name]())
FILES = st.one_of(
    st.binary(max_size=256),
    st.tuples(
        st.one_of(st.integers(1, 2**16), st.integers(0, 2**32 - 1)),
        st.one_of(st.integers(1, 2**16), st.integers(0, 2**32 - 1)),
        st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
        st.sampled_from([1, 2, 4, 8, 16, 3]),
    ).map(lambda args: _png_header_only(*args)),
    st.tuples(_VALID, _FRACTION).map(lambda v: v[0][: int(len(v[0]) * v[1])]),  # truncated
    st.tuples(_VALID, _FRACTION, st.binary(min_size=1, max_size=8)).map(
        lambda v: v[0][: int(len(v[0]) * v[1])] + v[2] + v[0][int(len(v[0]) * v[1]) + len(v[2]) :]
    ),
)


def _decode_all(path: Path) -> str:
    """What a reader does with one file: header, pixels, as colour, grey and class indices."""
    header = read_header(path)
    image = read_image(path, header)
    assert image.shape[:2] == header.size
    rgb = to_rgb(image, path)
    assert (rgb.shape, rgb.dtype) == ((*header.size, 3), np.uint8)
    grey = to_grey(image, path)
    assert grey.shape == header.size
    index = read_index_image(path, header)
    assert index.shape == header.size
    return "decoded"


@fuzzing.budget(deadline=None)
@given(content=FILES, suffix=st.sampled_from([".png", ".jpg", ".bmp", ".tif", ".PNG"]))
@example(content=_png_header_only(20_000, 20_000, 3, 8), suffix=".png")  # found: DecompressionBombError
@example(content=_png_header_only(40_000, 40_000, 0, 8), suffix=".png")  # found: cv2.error
@fuzzing.counted
def test_any_file_is_an_image_or_a_dataset_error_naming_it(content: bytes, suffix: str) -> None:
    root = Path(tempfile.mkdtemp())
    try:
        path = root / f"file{suffix}"
        path.write_bytes(content)
        _, error = fuzzing.attempt(
            lambda: _decode_all(path),
            (DatasetError,),
            lambda e: re.sub(r"'[^']*'|\d+", "N", e.reason.split(":")[0].split("(")[0]).strip()[:60],
            lambda result: result,
        )
        if error is not None:
            assert error.path == path
            assert str(error).startswith(f"{path}: ")
    finally:
        shutil.rmtree(root, ignore_errors=True)
