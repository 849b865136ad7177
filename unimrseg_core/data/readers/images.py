"""Shared image reading for the dataset readers.

Two steps, so that a reader can pair and check a whole dataset cheaply when it opens
and decode pixels only when a sample is asked for:

- :func:`read_header` parses just the header (PNG, JPEG, BMP and PNM by their magic bytes,
  not the file suffix, because real datasets contain mis-named files; anything else
  is decoded with OpenCV once) and fails on garbage or empty files;
- :func:`read_image` decodes with ``cv2.IMREAD_UNCHANGED`` (keeps 16-bit depth and
  the 4th channel of RGBA+thermal PNGs, and ignores EXIF rotation, which would break
  pixel alignment between modalities).

Everything raises :class:`DatasetError` naming the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import cv2
import numpy as np

from unimrseg_core.data.readers.errors import DatasetError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageHeader",
    "channels_equal",
    "read_header",
    "read_image",
    "read_index_image",
    "to_grey",
    "to_rgb",
]

IMAGE_SUFFIXES: Final[frozenset[str]] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".webp"}
)
"""File suffixes (lower case) that the readers list as images (all decoded by OpenCV); other
files in a modality folder are ignored and listed with the reason (``reader.ignored``)."""

_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS: Final = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> channels in the file
_JPEG_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers
_JPEG_NO_LENGTH: Final = frozenset({0x00, 0x01, *range(0xD0, 0xD9)})  # stuffing, TEM, RSTn, SOI
_PNM_HEAD_BYTES: Final = 1024  # where a Netpbm header's tokens are looked for
_PNM_CHANNELS: Final = {b"P1": 1, b"P2": 1, b"P3": 3, b"P4": 1, b"P5": 1, b"P6": 3}  # magic -> channels


@dataclass(frozen=True)
class ImageHeader:
    """Size and layout of an image file as stored (before OpenCV converts anything)."""

    height: int
    width: int
    channels: int | None  # None where the format does not say it cheaply (BMP)
    bit_depth: int | None
    palette: bool = False  # PNG colour type 3: pixels are palette indices

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width


def _png_header(f: BinaryIO, path: Path) -> ImageHeader:
    f.seek(len(_PNG_MAGIC))
    chunk = f.read(18)  # length, "IHDR", width, height, bit depth, colour type
    if len(chunk) < 18 or chunk[4:8] != b"IHDR":
        raise DatasetError(path, "corrupt PNG: no IHDR header")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", chunk[8:18])
    if color_type not in _PNG_CHANNELS or width == 0 or height == 0:
        raise DatasetError(path, f"corrupt PNG header (colour type {color_type}, size {width}x{height})")
    return ImageHeader(height, width, _PNG_CHANNELS[color_type], bit_depth, palette=color_type == 3)


def _jpeg_header(f: BinaryIO, path: Path) -> ImageHeader:
    while True:
        byte = f.read(1)
        if not byte:
            raise DatasetError(path, "corrupt JPEG: no frame header before the end of the file")
        if byte != b"\xff":
            continue
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            continue
        code = marker[0]
        if code in _JPEG_NO_LENGTH:
            continue
        if code == 0xDA:
            raise DatasetError(path, "corrupt JPEG: image data before the frame header")
        raw_length = f.read(2)
        if len(raw_length) < 2:
            continue
        (length,) = struct.unpack(">H", raw_length)
        if code in _JPEG_SOF:
            frame = f.read(6)
            if len(frame) < 6:
                raise DatasetError(path, "corrupt JPEG: truncated frame header")
            bit_depth, height, width, channels = struct.unpack(">BHHB", frame)
            if width == 0 or height == 0:
                raise DatasetError(path, f"corrupt JPEG header (size {width}x{height})")
            return ImageHeader(height, width, channels, bit_depth)
        f.seek(length - 2, 1)


def _bmp_header(f: BinaryIO, path: Path) -> ImageHeader:
    chunk = f.read(30)  # file header (14 bytes), then the DIB header
    if len(chunk) < 26:
        raise DatasetError(path, "corrupt BMP: truncated header")
    (dib_size,) = struct.unpack("<I", chunk[14:18])
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height, _, bits = struct.unpack("<HHHH", chunk[18:26])
    elif len(chunk) == 30:
        width, height, _, bits = struct.unpack("<iiHH", chunk[18:30])
    else:
        raise DatasetError(path, "corrupt BMP: truncated header")
    if width <= 0 or height == 0:
        raise DatasetError(path, f"corrupt BMP header (size {width}x{height})")
    return ImageHeader(abs(height), width, None, bits)


def _pnm_header(f: BinaryIO, path: Path) -> ImageHeader | None:
    """Netpbm (PBM/PGM/PPM): magic, width, height and (but for bitmaps) maxval, as ASCII tokens.

    None when comments fill the first KiB (then the file is decoded once instead).
    """
    text = f.read(_PNM_HEAD_BYTES)
    magic = text[:2]
    tokens: list[bytes] = []
    for line in text[2:].split(b"\n"):
        tokens += line.split(b"#", 1)[0].split()
    needed = 2 if magic in (b"P1", b"P4") else 3
    if len(tokens) < needed and len(text) == _PNM_HEAD_BYTES:
        return None
    if len(tokens) < needed or not all(t.isdigit() for t in tokens[:needed]):
        raise DatasetError(path, f"corrupt {magic.decode()} header (no width, height and maxval)")
    width, height = int(tokens[0]), int(tokens[1])
    maxval = int(tokens[2]) if needed == 3 else 1
    if width == 0 or height == 0 or not 0 < maxval < 65536:
        raise DatasetError(path, f"corrupt {magic.decode()} header (size {width}x{height}, maxval {maxval})")
    bits = 1 if maxval == 1 else 8 if maxval < 256 else 16
    return ImageHeader(height, width, _PNM_CHANNELS[magic], bits)


def read_header(path: str | Path) -> ImageHeader:
    """Size, channels and bit depth of an image without decoding its pixels."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            magic = f.read(8)
            f.seek(0)
            if magic == _PNG_MAGIC:
                return _png_header(f, path)
            if magic[:3] == b"\xff\xd8\xff":
                return _jpeg_header(f, path)
            if magic[:2] == b"BM":
                return _bmp_header(f, path)
            if magic[:2] in _PNM_CHANNELS and magic[2:3].isspace():
                header = _pnm_header(f, path)
                if header is not None:
                    return header
    except OSError as e:
        raise DatasetError(path, f"cannot open: {e.strerror or e}") from e
    if not magic:
        raise DatasetError(path, "empty file")
    # Other formats (TIFF, ...): decode once; slower, but only for unusual datasets.
    image = read_image(path)
    return ImageHeader(
        image.shape[0], image.shape[1], 1 if image.ndim == 2 else image.shape[2], 8 * image.dtype.itemsize
    )


def read_image(path: str | Path, header: ImageHeader | None = None) -> np.ndarray:
    """Decode with ``cv2.IMREAD_UNCHANGED`` (BGR/BGRA channel order, original bit depth).

    With ``header``, a decoded size that differs from it (a file changed since the
    dataset was opened) is an error too.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:  # a header past OpenCV's size limits raises rather than returning None
        reason = " ".join(str(e.err or e).split())
        raise DatasetError(path, f"unreadable or corrupt image (OpenCV: {reason})") from e
    if image is None or image.size == 0:
        raise DatasetError(path, "unreadable or corrupt image (OpenCV could not decode it)")
    if header is not None and tuple(image.shape[:2]) != header.size:
        raise DatasetError(
            path,
            f"decoded size {image.shape[1]}x{image.shape[0]} differs from its header "
            f"{header.width}x{header.height}",
        )
    return image


def read_index_image(path: str | Path, header: ImageHeader | None = None) -> np.ndarray:
    """A single-channel index image (class ids), also from palette PNGs.

    OpenCV expands palette PNGs to colours, losing the indices, so those are read
    with Pillow (installed with matplotlib) instead.
    """
    path = Path(path)
    header = header or read_header(path)
    if header.palette:
        try:
            from PIL import Image
        except ImportError as e:  # pragma: no cover - Pillow comes with matplotlib
            raise DatasetError(path, "palette PNG labels need Pillow (pip install pillow)") from e
        try:
            with Image.open(path) as im:
                image = np.array(im)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            # DecompressionBombError: a header of more than 2 x Image.MAX_IMAGE_PIXELS pixels
            raise DatasetError(path, f"unreadable or corrupt image: {e}") from e
    else:
        image = read_image(path, header)
    if image.ndim == 3:
        if not channels_equal(image[..., :3]):
            raise DatasetError(path, "colour-coded label image; expected single-channel class indices")
        image = image[..., 0]
    if tuple(image.shape[:2]) != header.size:
        raise DatasetError(path, f"decoded size {image.shape[1]}x{image.shape[0]} differs from its header")
    return image


def channels_equal(image: np.ndarray) -> bool:
    """Whether every channel of ``HxWxC`` equals the first: grey stored as colour."""
    first = image[..., 0]
    return all(np.array_equal(first, image[..., c]) for c in range(1, image.shape[2]))


def to_rgb(image: np.ndarray, path: str | Path) -> np.ndarray:
    """OpenCV's decoded image -> ``HxWx3`` uint8 in RGB order (grey is repeated, alpha dropped)."""
    if image.dtype == np.uint16:
        image = np.round(image / 257.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DatasetError(path, f"colour image must be 8- or 16-bit, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[:, :, 2::-1])  # BGR(A) -> RGB
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    raise DatasetError(path, f"colour image must have 1, 3 or 4 channels, got shape {image.shape}")


def to_grey(image: np.ndarray, path: str | Path) -> np.ndarray:
    """One channel from a grey image stored with 1, 3 or 4 channels (keeps the dtype).

    Grey stored as 3 equal channels (common for thermal and depth visualisations)
    gives back exactly that channel; true colour is converted with OpenCV's luma.
    """
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise DatasetError(path, f"expected a grey image, got shape {image.shape}")
    if image.shape[2] <= 2:  # grey (+ alpha)
        return np.ascontiguousarray(image[:, :, 0])
    if channels_equal(image[:, :, :3]):
        return np.ascontiguousarray(image[:, :, 0])
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)
