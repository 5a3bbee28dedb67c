from __future__ import annotations

import numpy as np
import pytest

from core.mask_edit import fill_holes, fill_polygon, paint_stroke, remove_specks


def test_disk_and_stroke_known_pixels():
    m = paint_stroke(np.zeros((9, 9), bool), (4, 4), (4, 4), 1, True)  # a click: one disk
    assert m.sum() == 5 and m[4, 4] and m[3, 4] and not m[3, 3]
    s = paint_stroke(np.zeros((5, 10), bool), (1, 2), (8, 2), 0, True)
    assert s[2, 1:9].all() and s.sum() == 8
    e = paint_stroke(np.ones((5, 10), bool), (1, 2), (8, 2), 0, False)
    assert e.sum() == 50 - 8


def test_polygon_fill_and_validation():
    m = fill_polygon(np.zeros((6, 6), bool), np.array([[1, 1], [4, 1], [4, 4], [1, 4]]))
    assert m[1:5, 1:5].all() and m.sum() == 16
    with pytest.raises(ValueError):
        fill_polygon(np.zeros((6, 6), bool), np.array([[1, 1], [2, 2]]))


def test_fill_holes_and_remove_specks():
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[3, 3] = False
    notch = ring.copy()
    notch[0:3, 3] = False  # a gap reaching the border is not a hole
    assert fill_holes(ring).sum() == 25
    assert fill_holes(ring, max_area=0).sum() == 24
    assert not fill_holes(notch)[0, 3]
    specks = np.zeros((8, 8), bool)
    specks[0:3, 0:3] = True
    specks[6, 6] = True
    out = remove_specks(specks, 2)
    assert out.sum() == 9 and not out[6, 6]
