"""The attention heatmap: the colour of every pixel is the colour map at its token's value."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rea2seg_gui.heatmap import heatmap_rgba


def _reference(token_map, boxes, hw):
    """Pixel by pixel: the last box holding the pixel gives its value; min/max over the pixels."""
    h, w = hw
    val = np.full((h, w), np.nan)
    for v, (x0, y0, x1, y1) in zip(np.ravel(token_map), boxes, strict=True):
        for y in range(h):
            for x in range(w):
                if np.floor(x0) <= x < np.ceil(x1) and np.floor(y0) <= y < np.ceil(y1):
                    val[y, x] = v
    return val


def test_known_answer_on_a_2x2_grid_with_an_overhanging_box():
    tm = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32)
    boxes = np.array(
        [[0, 0, 2, 2], [2, 0, 4, 2], [0, 2, 2, 4], [2.5, 2, 9, 9]], np.float32
    )  # last: past the edge
    rgba, (lo, hi) = heatmap_rgba(tm, boxes, (4, 4))
    cm = pg.colormap.get("inferno").map(np.array([0.0, 0.25, 0.5, 1.0]), mode="byte")
    assert (lo, hi) == (0.0, 4.0)
    assert (
        (rgba[0, 0] == cm[0]).all() and (rgba[0, 3] == cm[1]).all() and (rgba[3, 0] == cm[2]).all()
    )
    assert (rgba[3, 3] == cm[3]).all() and (rgba[3, 2] == cm[3]).all()  # x0 = 2.5 widens to pixel 2


def test_nothing_on_the_image_gives_none():
    assert heatmap_rgba(np.ones((1, 1)), np.array([[10, 10, 12, 12]]), (4, 4)) == (None, None)
    with pytest.raises(ValueError, match="2 token values for 1 token boxes"):
        heatmap_rgba(np.ones((1, 2)), np.array([[0, 0, 1, 1]]), (4, 4))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(3, 9),
    st.integers(3, 9),
    st.randoms(use_true_random=False),
)
def test_every_pixel_matches_the_pixelwise_reference(gh, gw, h, w, rnd):
    tm = np.array([[rnd.uniform(-3, 3) for _ in range(gw)] for _ in range(gh)], np.float32)
    boxes = []
    for _ in range(gh * gw):
        x0, y0 = rnd.uniform(-2, w), rnd.uniform(-2, h)
        boxes.append([x0, y0, x0 + rnd.uniform(0, 5), y0 + rnd.uniform(0, 5)])
    boxes = np.array(boxes, np.float32)
    rgba, rng = heatmap_rgba(tm, boxes, (h, w))
    val = _reference(tm, boxes, (h, w))
    if np.isnan(val).all():
        assert rgba is None
        return
    lo, hi = np.nanmin(val), np.nanmax(val)
    assert rng == pytest.approx((lo, hi))
    cm = pg.colormap.get("inferno")
    inside = ~np.isnan(val)
    want = cm.map(np.clip((val[inside] - lo) / (hi - lo if hi > lo else 1.0), 0, 1), mode="byte")
    assert (rgba[inside] == want).all()
    assert (rgba[~inside] == 0).all()
