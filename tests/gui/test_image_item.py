"""The canvas's image item draws the same pixels as pyqtgraph's, from a 32-bit picture."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from rea2seg_gui.canvas_layers import mask_lut
from rea2seg_gui.image_item import ImageItem

pg.setConfigOptions(imageAxisOrder="row-major")


def _draw(cls, rng) -> np.ndarray:
    scene = QtWidgets.QGraphicsScene()
    img = rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
    rgba = rng.integers(0, 255, (37, 53, 4), dtype=np.uint8)
    mask = rng.random((37, 53)) > 0.5
    for i, it in enumerate(
        (
            cls(img, levels=None),
            cls(rgba, levels=None),
            cls(mask.view(np.uint8), levels=(0, 1), lut=mask_lut((255, 60, 60))),
        )
    ):
        it.setOpacity((1.0, 0.55, 0.45)[i])
        scene.addItem(it)
    out = QtGui.QImage(80, 60, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(QtGui.QColor(20, 20, 30))
    p = QtGui.QPainter(out)
    scene.render(
        p, QtCore.QRectF(0, 0, 80, 60), QtCore.QRectF(0, 0, 53, 37)
    )  # scaled, as on screen
    p.end()
    return np.array(pg.imageToArray(out, copy=True))


@pytest.mark.parametrize("seed", [0, 1])
def test_same_pixels_as_pyqtgraphs_item(qapp, seed):
    a = _draw(pg.ImageItem, np.random.default_rng(seed))
    b = _draw(ImageItem, np.random.default_rng(seed))
    assert a.shape == b.shape and np.array_equal(a, b)


def test_the_picture_is_32_bit_once_rendered(qapp):
    for data, kw, fmt in (
        (np.zeros((4, 5, 3), np.uint8), {"levels": None}, QtGui.QImage.Format.Format_RGB32),
        (
            np.zeros((4, 5), np.uint8),
            {"levels": (0, 1), "lut": mask_lut((1, 2, 3))},
            QtGui.QImage.Format.Format_ARGB32_Premultiplied,
        ),
    ):
        it = ImageItem(data, **kw)
        it.render()
        assert it.qimage.format() == fmt
