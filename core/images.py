"""Image loading with clear errors. Images stay at their original resolution."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file and the reason."""


def load_image_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB. Grey and RGBA inputs are converted."""
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: image file not found")
    return decode_image_rgb(np.fromfile(p, dtype=np.uint8), str(p))


def decode_image_rgb(data: bytes | np.ndarray, name: str) -> np.ndarray:
    """Decode an image file's bytes (as read from disk) to uint8 (H, W, 3) RGB, exactly as
    :func:`load_image_rgb` does; ``name`` is the file named in the error message."""
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) else data
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise ImageError(f"{name}: not a readable image (corrupt or unsupported format)")
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
