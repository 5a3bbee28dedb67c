"""Image loading with clear errors. Images stay at their original resolution.

Limits (not from the paper; they bound memory before any pixel is decoded):

- :data:`MAX_IMAGE_PIXELS` = 2**26 = 67,108,864 pixels (8192 x 8192): the size is read from the
  file's header and a larger image is refused without decoding it, so a small file that
  declares a huge canvas (a decompression bomb) costs nothing.
- :data:`MAX_IMAGE_FILE_BYTES` = 256 MiB: larger files are refused before they are read.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

MAX_IMAGE_PIXELS = 1 << 26
MAX_IMAGE_FILE_BYTES = 1 << 28


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file and the reason."""


def _header_size(src: Any, name: str) -> tuple[int, int]:
    """(height, width) from the header of ``src`` (a path or a binary file object) only."""
    return _header_info(src, name)[:2]


# PIL modes whose pixels are 8 bits per channel: cv2 decodes them to uint8
_EIGHT_BIT_MODES = frozenset(
    {"1", "L", "P", "RGB", "RGBA", "RGBX", "LA", "La", "PA", "CMYK", "YCbCr"}
)


def _header_info(src: Any, name: str) -> tuple[int, int, bool, bool]:
    """(height, width, 8-bit, EXIF says the displayed frame is transposed) from the header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(src) as im:  # lazy: parses the header, decodes nothing
                w, h = im.size
                eight_bit = im.mode in _EIGHT_BIT_MODES
                transposed = False
                if im.format in (
                    "JPEG",
                    "MPO",
                    "TIFF",
                    "WEBP",
                ):  # EXIF in the header (a PNG would decode here)
                    try:
                        transposed = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
                    except Exception:  # noqa: BLE001 - a broken EXIF block: the full decode decides
                        eight_bit = False
    except Image.DecompressionBombError:
        raise ImageError(
            f"{name}: image larger than the {MAX_IMAGE_PIXELS}-pixel limit (not decoded)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError(f"{name}: not a readable image (corrupt or unsupported format)") from None
    if h <= 0 or w <= 0:
        raise ImageError(f"{name}: not a readable image (size {w}x{h})")
    if h * w > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"{name}: image of {w}x{h} pixels is over the {MAX_IMAGE_PIXELS}-pixel limit (not decoded)"
        )
    return int(h), int(w), eight_bit, transposed


def _check_file(p: Path) -> None:
    """A regular file within :data:`MAX_IMAGE_FILE_BYTES`, else :class:`ImageError`."""
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise FileNotFoundError
    except OSError:
        raise ImageError(f"{p}: image file not found") from None
    if size > MAX_IMAGE_FILE_BYTES:
        raise ImageError(
            f"{p}: file of {size} bytes is over the {MAX_IMAGE_FILE_BYTES}-byte image limit"
        )


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) read from the file's header only; refuses files and canvases over the
    limits above. Raises :class:`ImageError`."""
    p = Path(path)
    _check_file(p)
    return _header_size(p, str(p))


def read_image_bytes(path: str | Path) -> bytes:
    """The file's bytes, after the checks of :func:`image_size` (for decoding elsewhere with
    :func:`decode_image_rgb`). Raises :class:`ImageError`."""
    p = Path(path)
    image_size(p)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ImageError(f"{p}: cannot read the image file ({exc.strerror or exc})") from None


def load_image_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB: :func:`decode_image_rgb` of its bytes (which
    checks the header limits) after the file checks (exists, at most :data:`MAX_IMAGE_FILE_BYTES`)."""
    p = Path(path)
    _check_file(p)
    return decode_image_rgb(np.fromfile(p, dtype=np.uint8), str(p))


def decode_image_rgb(data: bytes | np.ndarray, name: str) -> np.ndarray:
    """Decode an image file's bytes to uint8 (H, W, 3) RGB; ``name`` is the file named in errors.

    The header is checked against :data:`MAX_IMAGE_PIXELS` first. 8-bit images are decoded as
    LISA reads them (``cv2.imread``'s default ``IMREAD_COLOR``): the EXIF orientation is applied,
    so a rotated JPEG comes out upright, in the frame its ReasonSeg polygons were drawn in, and
    alpha is dropped. Grey images become RGB; deeper images are scaled to 8 bits.
    """
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) else data
    if buf.size > MAX_IMAGE_FILE_BYTES:
        raise ImageError(
            f"{name}: file of {buf.size} bytes is over the {MAX_IMAGE_FILE_BYTES}-byte image limit"
        )
    h, w, eight_bit, transposed = (
        _header_info(io.BytesIO(buf), name) if buf.size else (0, 0, False, False)
    )
    hw = (h, w)
    if eight_bit:  # one decode: IMREAD_COLOR's frame matches the header (turned by EXIF) or the full path decides
        oriented = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if (
            oriented is not None
            and oriented.dtype == np.uint8
            and (
                tuple(oriented.shape[:2]) == hw
                or (transposed and tuple(oriented.shape[:2]) == (w, h))
            )
        ):
            return cv2.cvtColor(oriented, cv2.COLOR_BGR2RGB)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise ImageError(f"{name}: not a readable image (corrupt or unsupported format)")
    if tuple(img.shape[:2]) != hw:  # a header that disagrees with the pixels is not trusted
        raise ImageError(
            f"{name}: not a readable image (header says {hw[1]}x{hw[0]}, pixels are "
            f"{img.shape[1]}x{img.shape[0]})"
        )
    if img.dtype == np.uint8:
        oriented = cv2.imdecode(
            buf, cv2.IMREAD_COLOR
        )  # applies EXIF orientation, as cv2.imread does
        if oriented is not None:
            return cv2.cvtColor(oriented, cv2.COLOR_BGR2RGB)
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def file_sha256(path: str | Path) -> str:
    """sha256 hex of the file bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def image_info(path: str | Path) -> tuple[str, int, int]:
    """(sha256 hex of the file bytes, height, width); the image is decoded once to prove it is
    readable (after the header check). Raises :class:`ImageError`."""
    p = Path(path)
    img = load_image_rgb(p)
    h, w = int(img.shape[0]), int(img.shape[1])
    del img
    try:
        return file_sha256(p), h, w
    except OSError as exc:
        raise ImageError(f"{p}: cannot read the image file ({exc.strerror or exc})") from None
