"""Mask thumbnails over a subsampled image (nearest neighbour: exact pixels)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtGui


class Thumbnailer:
    """Icons of masks over one image; the subsampled base is computed once per image."""

    def __init__(self) -> None:
        self._image: np.ndarray | None = None
        self._base: tuple[int, np.ndarray] | None = None

    def set_image(self, image: np.ndarray | None) -> None:
        if image is not self._image:
            self._image, self._base = image, None

    def icon(self, mask: np.ndarray, color: tuple[int, int, int] = (60, 140, 255)) -> QtGui.QIcon:
        """``mask``: bool (H, W) at the image's resolution."""
        if self._image is None or self._image.shape[:2] != mask.shape:
            return QtGui.QIcon()
        h, w = mask.shape
        step = max(1, int(np.ceil(max(h, w) / 72)))
        if self._base is None or self._base[0] != step:
            self._base = (step, self._image[::step, ::step].astype(np.float32))
        img = self._base[1].copy()
        m = mask[::step, ::step]
        img[m] = img[m] * 0.35 + np.array(color) * 0.65
        img[~m] *= 0.55
        img = np.ascontiguousarray(img.astype(np.uint8))
        q = QtGui.QImage(img.data, img.shape[1], img.shape[0], img.strides[0], QtGui.QImage.Format.Format_RGB888)
        return QtGui.QIcon(QtGui.QPixmap.fromImage(q.copy()))
