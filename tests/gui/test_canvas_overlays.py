"""Canvas overlays: outline mode, layer colours, the GT-vs-edited difference view, the legend,
rank labels, the k-core drawing and the hover read-out (a hand-made trace with known values)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtCore

from core.trace import AttentionTrace, FeatureGraphTrace, PipelineTrace, SeedTrace, TokenScore
from rea2seg_gui.canvas import LAYER_BY_KEY, Canvas
from rea2seg_gui.overlays import (
    DIFF_ADDED,
    DIFF_REMOVED,
    ScreenLabels,
    contour_xy,
    em,
    mask_diff,
    readout,
)

H, W = 64, 96  # a 4 x 6 token grid of 16-pixel tokens


def make_trace() -> PipelineTrace:
    gh, gw = 4, 6
    token_map = np.arange(gh * gw, dtype=np.float32).reshape(gh, gw) / 100.0
    boxes = np.array(
        [(c * 16, r * 16, c * 16 + 16, r * 16 + 16) for r in range(gh) for c in range(gw)],
        np.float32,
    )
    att = AttentionTrace((gh, gw), token_map, boxes, [0])

    def tok(i: int) -> TokenScore:
        return TokenScore(i, i // gw, i % gw, float(token_map.ravel()[i]), tuple(boxes[i]), None)

    topk1 = [tok(i) for i in (23, 22, 17, 16, 11)]
    topk2 = [tok(i) for i in (17, 23, 11)]
    seeds = SeedTrace(
        5, 3, topk1, topk2, np.array([[88, 40], [88, 56], [72, 40]], np.float32), [17, 23, 16]
    )
    graph = FeatureGraphTrace(
        0.5, -1.0, [(0, 1, 0.9), (0, 2, 0.8), (1, 2, 0.2)], 1, [0, 1], (3.0, 5.0), -1.5, False
    )
    logits = (np.arange(H * W, dtype=np.float32).reshape(H, W) - 3000) / 100
    initial = logits > 0
    return PipelineTrace("q", (H, W), "hand", {}, True, {}, logits, initial, att, seeds, graph, [])


@pytest.fixture
def canvas(qtbot):
    c = Canvas()
    qtbot.addWidget(c)
    c.resize(640, 480)
    c.show()
    qtbot.waitExposed(c)
    c.set_image(np.full((H, W, 3), 90, np.uint8))
    return c


def grab(c: Canvas) -> np.ndarray:
    img = c.grab().toImage().convertToFormat(c.grab().toImage().Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[
        :, : img.width() * 3
    ]
    return arr.reshape(img.height(), img.width(), 3).astype(int)


def near(arr: np.ndarray, color: tuple[int, int, int], tol: int = 12) -> np.ndarray:
    return (np.abs(arr - np.array(color)) <= tol).all(axis=-1)


def test_contours_known_square_and_hole():
    m = np.zeros((10, 10), bool)
    m[2:7, 3:8] = True
    xs, ys = contour_xy(m)
    assert (
        np.nanmin(xs) == 3.5
        and np.nanmax(xs) == 7.5
        and np.nanmin(ys) == 2.5
        and np.nanmax(ys) == 6.5
    )
    assert np.isnan(xs[-1]) and xs[0] == xs[-2] and ys[0] == ys[-2]  # closed, then a break
    m[4, 5] = False  # a hole: a second contour
    xs, _ = contour_xy(m)
    assert np.isnan(xs).sum() == 2
    assert contour_xy(np.zeros((4, 4), bool))[0].size == 0


def test_outline_mode_draws_contours_and_back(canvas):
    m = np.zeros((H, W), bool)
    m[10:50, 20:70] = True
    canvas.set_mask("gt", m)
    canvas.set_layer_opacity("gt", 1.0)
    canvas.view.setRange(QtCore.QRectF(0, 0, W, H), padding=0)
    filled = grab(canvas)
    gt = canvas.colors["gt"]  # picked to contrast with the pixels under the mask
    canvas.set_outline_mode(True)
    item = canvas.items["gt"][0]
    assert isinstance(item, pg.PlotDataItem)
    assert canvas.legend.entries[0].marker == "outline"  # the legend draws what the canvas draws
    xs, ys = contour_xy(m)
    assert np.array_equal(item.xData, xs, equal_nan=True)
    outlined = grab(canvas)
    # the mask's inside is no longer tinted, while its edge is drawn in the layer colour
    cy, cx = filled.shape[0] // 2, filled.shape[1] // 2
    assert not np.array_equal(filled[cy, cx], outlined[cy, cx])
    assert np.array_equal(outlined[cy, cx], np.array([90, 90, 90]))
    assert near(outlined, gt, 40).sum() > 100
    canvas.set_outline_mode(False)
    assert isinstance(canvas.items["gt"][0], pg.ImageItem)


def test_layer_colour_changes_the_drawn_mask(canvas):
    m = np.zeros((H, W), bool)
    m[:, :] = True
    canvas.set_mask("edited", m)
    canvas.set_layer_opacity("edited", 1.0)
    canvas.set_legend_visible(False)
    canvas.set_layer_color("edited", (10, 200, 250))
    assert tuple(canvas.items["edited"][0].lut[1, :3]) == (10, 200, 250)
    assert canvas.legend_entries()[0].color == (10, 200, 250)
    arr = grab(canvas)
    assert near(arr, (10, 200, 250), 3).sum() > 1000
    with pytest.raises(KeyError):
        canvas.set_layer_color("seeds", (1, 2, 3))


def test_difference_view_counts_colours_and_hides_unchanged(canvas, qtbot):
    gt = np.zeros((H, W), bool)
    gt[10:30, 10:30] = True  # 400 px
    edited = gt.copy()
    edited[10:30, 30:40] = True  # 200 px added
    edited[10:15, 10:30] = False  # 100 px removed
    d = mask_diff(gt, edited)
    assert (d.added, d.removed) == (200, 100)
    assert (
        (d.codes == 1).sum() == 200
        and (d.codes == 2).sum() == 100
        and (d.codes == 0).sum() == H * W - 300
    )
    canvas.set_mask("gt", gt)
    canvas.set_mask("edited", edited)
    assert not canvas.items["diff"]  # computed only while shown
    with qtbot.waitSignal(canvas.diff_changed, timeout=1000) as blocker:
        canvas.set_layer_visible("diff", True)
    assert blocker.args == [200, 100]
    # unchanged pixels hidden: the ground truth and edited layers are not drawn meanwhile
    assert not any(it.isVisible() for it in canvas.items["gt"] + canvas.items["edited"])
    titles = canvas.legend.titles()
    assert "Added by the edit: 200 px" in titles and "Removed by the edit: 100 px" in titles
    canvas.set_layer_opacity("diff", 1.0)
    canvas.view.setRange(QtCore.QRectF(0, 0, W, H), padding=0)
    arr = grab(canvas)
    assert near(arr, DIFF_ADDED, 3).sum() > 500 and near(arr, DIFF_REMOVED, 3).sum() > 200
    assert near(arr, LAYER_BY_KEY["gt"].color, 20).sum() == 0
    # painting updates the counts live
    edited2 = edited.copy()
    edited2[40:42, 40:45] = True
    with qtbot.waitSignal(canvas.diff_changed, timeout=1000) as blocker:
        canvas.update_mask("edited", edited2)
    assert blocker.args == [210, 100]
    canvas.set_layer_visible("diff", False)
    assert all(it.isVisible() for it in canvas.items["gt"] + canvas.items["edited"])
    assert mask_diff(gt, None) is None and mask_diff(gt, np.zeros((3, 3), bool)) is None


def test_initial_mask_has_its_own_colour_and_legend_entry(canvas):
    tr = make_trace()
    canvas.set_layer_visible("initial", True)
    canvas.set_trace(tr)
    colour = LAYER_BY_KEY["initial"].color
    assert colour not in {LAYER_BY_KEY[k].color for k in ("gt", "edited", "candidate", "ignore")}
    assert max(colour) - min(colour) > 60  # a hue, not white or grey
    item = canvas.items["initial"][0]
    assert np.array_equal(item.image.astype(bool), tr.initial_mask)
    assert "Initial mask M (L > 0)" in canvas.legend.titles()


def test_legend_lists_visible_layers_and_is_drawn(canvas):
    tr = make_trace()
    m = np.zeros((H, W), bool)
    m[5:20, 5:20] = True
    canvas.set_mask("gt", m)
    for key in ("topk1", "topk2", "graph"):
        canvas.set_layer_visible(key, True)
    canvas.set_trace(tr)
    titles = canvas.legend.titles()
    assert titles[0] == "Ground truth"
    assert "Top-k1 tokens (k1 = 5, rank labels)" in titles and "Seed points (3)" in titles
    assert "Negative point" in titles and "k-core members (k = 1, 2 points)" in titles
    canvas.set_layer_visible("seeds", False)
    assert "Seed points (3)" not in canvas.legend.titles()
    canvas.set_layer_visible("gt", False)
    assert "Ground truth" not in canvas.legend.titles()
    shown = grab(canvas)
    r = canvas.legend.boundingRect()
    assert r.width() > 3 * em() and r.height() > 3 * em()  # sized from the font
    canvas.set_legend_visible(False)
    assert canvas.legend.titles() == []
    hidden = grab(canvas)
    corner = (slice(0, int(2 * em())), slice(0, int(6 * em())))
    assert np.abs(shown[corner] - hidden[corner]).sum() > 1000


def test_rank_labels_kcore_edges_and_negative_point(canvas):
    tr = make_trace()
    canvas.set_trace(tr)
    labels = {
        k: [it for it in canvas.items[k] if isinstance(it, ScreenLabels)]
        for k in ("topk1", "topk2", "graph")
    }
    assert labels["topk1"][0].texts == ["1", "2", "3", "4", "5"]
    assert labels["topk2"][0].texts == ["k2 #1", "k2 #2", "k2 #3"]
    assert labels["topk1"][0].anchors[0] == (80.0, 48.0)  # token 23's box corner
    # the k-core: members 0 and 1 and only the edge between them (edges to seed 2 are left out)
    lines = [it for it in canvas.items["graph"] if isinstance(it, pg.PlotDataItem)]
    assert len(lines) == 1
    xs, ys = lines[0].xData, lines[0].yData
    assert np.array_equal(xs, [88.5, 88.5, np.nan], equal_nan=True) and np.array_equal(
        ys, [40.5, 56.5, np.nan], equal_nan=True
    )
    scat = [it for it in canvas.items["graph"] if isinstance(it, pg.ScatterPlotItem)]
    rings = next(s for s in scat if s.opts["symbol"] == "o")
    assert len(rings.data) == 2
    neg = next(s for s in scat if s.opts["symbol"] == "x")
    assert (neg.data["x"][0], neg.data["y"][0]) == (3.5, 5.5)
    assert neg.opts["size"] > rings.opts["size"] * 1.1  # the largest marker
    assert labels["graph"][0].texts == ["negative point (L = -1.50)"]
    seeds = canvas.items["seeds"][0]
    assert seeds.opts["size"] >= 0.8 * em() > 7  # larger than the old 7 px dots


def test_hover_readout_reads_the_trace(canvas, qtbot):
    tr = make_trace()
    r = readout(tr, None, 88.7, 40.2)  # pixel (88, 40): token 2*6+5 = 17, seed 0 (in the core)
    assert (r.x, r.y, r.token) == (88, 40, 17)
    assert r.attention == pytest.approx(0.17)
    assert r.logit == pytest.approx((40 * W + 88 - 3000) / 100, abs=1e-5)
    assert (r.topk1_rank, r.topk2_rank) == (3, 1)
    assert r.seeds == ((0, True),)
    r = readout(tr, None, 72.0, 40.0)  # token 16: top-k1 #4 only, seed 2 not in the core
    assert (r.topk1_rank, r.topk2_rank, r.seeds) == (4, None, ((2, False),))
    assert readout(tr, None, 3.2, 5.9).negative
    assert readout(tr, None, -1, 3) is None and readout(tr, None, W, 0) is None
    text = r.text()
    assert (
        "x 72, y 40" in text
        and "attention 0.16" in text
        and "top-k1 #4" in text
        and "not in the k-core" in text
    )

    # the canvas: viewers load traces without L; it is loaded off the GUI thread on first hover
    no_logits = make_trace()
    full = no_logits.initial_logits
    no_logits.initial_logits = None
    canvas.set_trace(no_logits)
    calls = []
    canvas.set_logits_loader(lambda: calls.append(1) or full)
    with qtbot.waitSignal(canvas.hover_text, timeout=1000) as blocker:
        canvas.hover_at(88.2, 40.2)
    assert "L not loaded" in blocker.args[0] and "top-k2 #1" in blocker.args[0]
    # the read-out shows L as soon as it arrives, without another mouse move
    qtbot.waitUntil(lambda: "L +" in canvas.readout_label.text(), timeout=3000)
    assert canvas.readout_label.text().startswith("x 88, y 40")
    assert canvas.hover_at(88.2, 40.2).logit == pytest.approx(full[40, 88])
    assert calls == [1]


def test_hover_readout_follows_the_mouse(canvas, qtbot):
    canvas.set_trace(make_trace())
    canvas.view.setRange(QtCore.QRectF(0, 0, W, H), padding=0)
    qtbot.wait(20)
    scene_pt = canvas.view.mapViewToScene(QtCore.QPointF(40.5, 20.5))
    pos = canvas.mapFromScene(scene_pt)
    seen: list[str] = []
    canvas.hover_text.connect(seen.append)
    qtbot.mouseMove(canvas.viewport(), QtCore.QPoint(pos.x() - 30, pos.y() - 30))
    qtbot.waitUntil(lambda: bool(seen), timeout=2000)
    assert seen[-1].startswith("x 3") and "attention" in seen[-1]
    qtbot.wait(50)
    qtbot.mouseMove(canvas.viewport(), pos)
    qtbot.waitUntil(lambda: any(s.startswith("x 40, y 20") for s in seen), timeout=2000)
