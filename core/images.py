"""Image loading with clear errors. Images stay at their original resolution."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file and the reason."""


def load_image_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB. Grey and RGBA inputs are converted.

    8-bit images are decoded as LISA reads them (``cv2.imread``'s default ``IMREAD_COLOR``): the
    EXIF orientation is applied, so a rotated JPEG comes out upright, in the frame its ReasonSeg
    polygons were drawn in, and alpha is dropped. Deeper images are scaled to 8 bits.
    """
    import cv2

    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: image file not found")
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageError(f"{p}: not a readable image (corrupt or unsupported format)")
    if img.dtype == np.uint8:
        oriented = cv2.imdecode(data, cv2.IMREAD_COLOR)  # applies EXIF orientation, as cv2.imread does
        if oriented is not None:
            return cv2.cvtColor(oriented, cv2.COLOR_BGR2RGB)
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def image_info(path: str | Path) -> tuple[str, int, int]:
    """(sha256 hex of the file bytes, height, width); raises :class:`ImageError`."""
    p = Path(path)
    img = load_image_rgb(p)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    return digest, int(img.shape[0]), int(img.shape[1])
