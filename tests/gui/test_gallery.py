"""The candidate gallery and the layers panel's drawing controls, on a hand-made trace."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from core.metrics import intersection_union, sample_iou
from core.trace import Candidate, EvaluatorTrace, PipelineTrace
from rea2seg_gui.canvas import LAYER_BY_KEY, Canvas
from rea2seg_gui.gallery import (
    ANSWER_COLUMN,
    ANSWER_MARK,
    COLUMNS,
    IOU_COLUMN,
    RANK_COLUMN,
    THUMB_MIN,
    CandidateGallery,
)
from rea2seg_gui.layer_style import COLOR_KEY, LayerStyle, saved_color
from rea2seg_gui.overlays import ORIGIN_NAMES

H, W = 60, 80


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def make_trace() -> PipelineTrace:
    cands = [
        Candidate(0, "multimask", 0, box(0, 30, 0, 40), 0.9),
        Candidate(1, "semantic", 0, box(10, 40, 10, 50), 0.8),
        Candidate(2, "amg", 0, box(30, 60, 40, 80), 0.7),
    ]
    ev = EvaluatorTrace("hand", "m", True, 3, 0, False, [], {0: 0.2, 1: 0.9, 2: 0.5}, [1, 2, 0])
    return PipelineTrace("q", (H, W), "hand", {}, True, {}, None, None, None, None, None, cands, ev)


@pytest.fixture
def gallery(qtbot):
    g = CandidateGallery()
    qtbot.addWidget(g)
    g.resize(900, 700)
    g.show()
    qtbot.waitExposed(g)
    return g


def column(g: CandidateGallery, col: int) -> list:
    return [
        g.table.item(r, col).data(QtCore.Qt.ItemDataRole.DisplayRole)
        for r in range(g.table.rowCount())
    ]


def test_gallery_thumbnails_origins_and_iou_picker(gallery):
    tr = make_trace()
    image = np.full((H, W, 3), 120, np.uint8)
    gt, reviewed = box(0, 30, 0, 40), box(10, 40, 10, 50)
    gallery.set_candidates(tr, image, gt, None, None)
    assert column(gallery, RANK_COLUMN) == [1, 2, 3]  # sorted by rank, best first
    assert column(gallery, ANSWER_COLUMN) == [ANSWER_MARK, "", ""]
    gallery.table.sortItems(COLUMNS.index("id"))  # in the order they were made, from here on
    assert gallery.table.iconSize().width() >= THUMB_MIN
    pm = gallery.table.item(0, 0).icon().pixmap(gallery.table.iconSize())
    assert (
        pm.width() >= THUMB_MIN * 0.9 or pm.height() >= THUMB_MIN * 0.7
    )  # not a small icon scaled up
    origins = column(gallery, 2)
    assert (
        origins
        == ["multimask", "semantic", "AMG"]
        == [ORIGIN_NAMES[c.origin] for c in tr.candidates]
    )
    assert "k-core" in gallery.table.item(1, 2).toolTip()  # what the origin is
    assert column(gallery, RANK_COLUMN) == [3, 1, 2]  # rank from the evaluator's ranking
    # no reviewed mask: the picker offers the imported ground truth only
    assert gallery.against == "gt" and gallery.header_text() == "true IoU vs GT"
    combo = gallery.against_combo
    assert not combo.model().item(combo.findData("reviewed")).isEnabled()
    assert column(gallery, IOU_COLUMN)[0] == 1.0
    gallery.set_candidates(tr, image, gt, reviewed, None)
    assert gallery.against == "reviewed" and gallery.header_text() == "true IoU vs reviewed"
    want = [round(sample_iou(*intersection_union(c.mask, reviewed)), 3) for c in tr.candidates]
    assert column(gallery, IOU_COLUMN) == want and want[1] == 1.0
    gallery.set_against("gt")
    assert (
        gallery.header_text() == "true IoU vs GT"
        and column(gallery, IOU_COLUMN)[0] == 1.0
        and column(gallery, IOU_COLUMN)[1] != 1.0
    )
    # the ignore region is left out of both
    ign = box(0, 60, 0, 20)
    gallery.set_candidates(tr, image, gt, reviewed, ign)
    gallery.set_against("gt")
    assert column(gallery, IOU_COLUMN)[1] == round(
        sample_iou(*intersection_union(tr.candidates[1].mask, gt, ign)), 3
    )


def test_gallery_arrow_keys_step_and_preview_on_hover(gallery, qtbot):
    tr = make_trace()
    gallery.set_candidates(tr, np.full((H, W, 3), 120, np.uint8), None, None, None)
    seen: list = []
    gallery.candidate_selected.connect(seen.append)
    gallery.table.setFocus()
    for key, want in (  # rows in rank order: candidates 1, 2, 0
        (QtCore.Qt.Key.Key_Down, 1),
        (QtCore.Qt.Key.Key_Down, 2),
        (QtCore.Qt.Key.Key_Right, 0),
        (QtCore.Qt.Key.Key_Right, 0),
        (QtCore.Qt.Key.Key_Up, 2),
        (QtCore.Qt.Key.Key_Left, 1),
    ):
        qtbot.keyClick(gallery.table, key)
        assert gallery.selected_candidate().id == want
    assert [c.id for c in seen if c is not None][:3] == [1, 2, 0]
    # a larger preview beside the pointer
    gallery.table.cellEntered.emit(2, 3)
    assert gallery.preview.isVisible()
    assert (
        gallery.preview.pixmap().deviceIndependentSize().width()
        >= 2 * gallery.thumb * W / max(H, W) - 1
    )
    gallery.table.left_table.emit()
    assert not gallery.preview.isVisible()


def test_layer_colours_remembered_outline_and_legend_toggles(qtbot, settings):
    canvas = Canvas()
    qtbot.addWidget(canvas)
    style = LayerStyle(canvas, settings)
    qtbot.addWidget(style)
    assert saved_color(settings, "edited") == LAYER_BY_KEY["edited"].color
    assert style.swatches["initial"].color == LAYER_BY_KEY["initial"].color
    # the colour dialog picks a colour: used on the canvas and remembered
    orig = QtWidgets.QColorDialog.getColor
    try:
        from PySide6 import QtGui

        QtWidgets.QColorDialog.getColor = staticmethod(lambda *a, **k: QtGui.QColor(12, 34, 56))
        style.swatches["edited"].click()
    finally:
        QtWidgets.QColorDialog.getColor = orig
    assert canvas.colors["edited"] == (12, 34, 56)
    assert settings.value(COLOR_KEY.format("edited")) == "#0c2238"
    style.outline_check.setChecked(True)
    assert canvas.outline_mode
    style.legend_check.setChecked(False)
    assert not canvas.legend.isVisible()
    # a new canvas and panel read the remembered choices
    canvas2 = Canvas()
    qtbot.addWidget(canvas2)
    style2 = LayerStyle(canvas2, settings)
    qtbot.addWidget(style2)
    assert canvas2.colors["edited"] == (12, 34, 56) and style2.swatches["edited"].color == (
        12,
        34,
        56,
    )
    assert canvas2.outline_mode and not canvas2.legend.isVisible()
    # the difference counts are shown in the panel
    canvas2.set_image(np.zeros((H, W, 3), np.uint8))
    canvas2.set_mask("gt", box(0, 10, 0, 10))
    canvas2.set_mask("edited", box(0, 10, 0, 12))
    canvas2.set_layer_visible("diff", True)
    assert "added 20 px" in style2.diff_label.text() and "removed 0 px" in style2.diff_label.text()


def test_thumbnails_are_exact_nearest_neighbour():
    from rea2seg_gui.gallery import Thumbnails

    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    t = Thumbnails(img, 12)  # 2x larger: every pixel repeated, nothing blended
    mask = np.zeros((4, 6), bool)
    mask[1, 2] = True
    out = t.image(mask)
    assert out.shape == (8, 12, 3)
    dark = (img.astype(np.uint16) * 55 // 100).astype(np.uint8)
    assert np.array_equal(out[::2, ::2][~mask], dark[~mask]) and np.array_equal(
        out[1::2, 1::2][~mask], dark[~mask]
    )
    assert (out[2:4, 4:6] != dark[1, 2]).any()  # the mask pixel is tinted, as a 2 x 2 block
    # a shrink keeps the pixel under each output pixel's centre, at exactly the requested size
    rows, cols = (np.floor((np.arange(n) + 0.5) * 1000 / 128).astype(int) for n in (128, 64))
    assert rows[:3].tolist() == [3, 11, 19] and cols[-1] == 496
    big = np.zeros((1000, 500), bool)
    big[np.ix_(rows, cols)] = True
    t = Thumbnails(np.zeros((1000, 500, 3), np.uint8), 128)
    out = t.image(big)
    assert out.shape == (128, 64, 3) and (out == t.tinted).all()
    assert (t.image(~big) == t.dark).all()
    # the longer side is the requested size whatever the image's: a stride would give 65 px here
    assert Thumbnails(np.zeros((129, 60, 3), np.uint8), 128).dark.shape[:2] == (128, 59)
