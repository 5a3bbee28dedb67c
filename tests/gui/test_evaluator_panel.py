"""The evaluator panel's mask thumbnails: the gallery's size and hover preview, the predicted IoU
and rank under each mask, and a click that shows the candidate on the canvas."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from core.trace import Candidate, EvaluatorGroup, EvaluatorTrace, PipelineTrace
from rea2seg_gui.gallery import PREVIEW_FACTOR, THUMB_MIN
from rea2seg_gui.panels.evaluator import EvaluatorPanel

H, W = 60, 80


def box(y0: int, y1: int, x0: int, x1: int, hw: tuple[int, int] = (H, W)) -> np.ndarray:
    m = np.zeros(hw, bool)
    m[y0:y1, x0:x1] = True
    return m


def make_trace(hw: tuple[int, int] = (H, W)) -> PipelineTrace:
    """Three candidates in two groups of two; the last group padded with candidate 0."""
    h, w = hw
    cands = [
        Candidate(0, "multimask", 0, box(0, h // 2, 0, w // 2, hw), 0.9),
        Candidate(1, "semantic", 0, box(h // 4, h, w // 4, w, hw), 0.8),
        Candidate(2, "amg", 0, box(h // 2, h, w // 2, w, hw), 0.7),
    ]
    groups = [
        EvaluatorGroup(0, [1, 0], "p", "0.85, 0.10", None, [0.85, 0.1]),
        EvaluatorGroup(1, [2, 0], "p", "0.40, 0.30", None, [0.4, 0.3], padded=1),
    ]
    ev = EvaluatorTrace(
        "hand", "m", True, 2, 0, False, groups, {0: 0.1, 1: 0.85, 2: 0.4}, [1, 2, 0]
    )
    return PipelineTrace("q", hw, "hand", {}, True, {}, None, None, None, None, None, cands, ev)


@pytest.fixture
def panel(qtbot):
    p = EvaluatorPanel()
    qtbot.addWidget(p)
    p.resize(900, 700)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_thumbnails_are_gallery_sized_with_predicted_iou_and_rank_readable(panel):
    tr = make_trace()
    panel.show_trace(tr, np.full((H, W, 3), 120, np.uint8))
    g = panel.groups
    assert g.count() == 4
    assert g.iconSize().width() >= THUMB_MIN and g.iconSize().height() >= THUMB_MIN
    pm = g.item(0).icon().pixmap(g.iconSize())
    assert (
        max(pm.deviceIndependentSize().width(), pm.deviceIndependentSize().height())
        >= THUMB_MIN * 0.95
    )  # not upscaled
    assert panel.item_labels() == [
        "G0 · mask 1\n#1 · pred. IoU 0.85\nrank 1 of 3",
        "G0 · mask 2\n#0 · pred. IoU 0.10\nrank 3 of 3",
        "G1 · mask 1\n#2 · pred. IoU 0.40\nrank 2 of 3",
        "G1 · mask 2 (pad)\n#0 · pred. IoU 0.30\nscored in G0",
    ]
    # each item is laid out whole inside its grid cell: the thumbnail, then every label line in full
    fm = panel.fontMetrics()
    cell = g.gridSize()
    for i, label in enumerate(panel.item_labels()):
        rect = g.visualItemRect(g.item(i))
        thumb = g.item(i).icon().actualSize(g.iconSize())
        assert all(fm.horizontalAdvance(line) <= rect.width() for line in label.split("\n"))
        assert rect.height() >= thumb.height() + 3 * fm.height()
        assert rect.width() <= cell.width() and rect.height() <= cell.height()


def test_a_large_image_gives_the_same_thumbnail_size(panel):
    hw = (900, 1200)
    panel.show_trace(make_trace(hw), np.zeros((*hw, 3), np.uint8))
    pm = panel.groups.item(2).icon().pixmap(panel.groups.iconSize())
    side = max(pm.deviceIndependentSize().width(), pm.deviceIndependentSize().height())
    assert THUMB_MIN * 0.95 <= side <= panel.groups.iconSize().width()


def test_preview_appears_on_hover_and_goes_on_leaving(panel, qtbot):
    panel.show_trace(make_trace(), np.full((H, W, 3), 120, np.uint8))
    g = panel.groups
    assert not panel.preview.isVisible()
    qtbot.mouseMove(g.viewport(), g.visualItemRect(g.item(2)).center())
    qtbot.waitUntil(panel.preview.isVisible, timeout=2000)
    size = panel.preview.pixmap().deviceIndependentSize()
    assert size.width() >= (PREVIEW_FACTOR - 0.1) * panel.thumb  # three thumbnails wide
    assert "#2" in panel.preview.toolTip() and "rank 2 of 3" in panel.preview.toolTip()
    # empty space between or after the items hides it, and so does leaving the list
    last = g.visualItemRect(g.item(g.count() - 1))
    qtbot.mouseMove(g.viewport(), QtCore.QPoint(last.right() + 20, last.center().y()))
    qtbot.waitUntil(lambda: not panel.preview.isVisible(), timeout=2000)
    g.entered.emit(g.model().index(0, 0))
    assert panel.preview.isVisible()
    QtCore.QCoreApplication.sendEvent(g, QtCore.QEvent(QtCore.QEvent.Type.Leave))
    assert not panel.preview.isVisible()


def test_click_announces_the_candidate_even_when_already_selected(panel, qtbot):
    panel.show_trace(make_trace(), np.full((H, W, 3), 120, np.uint8))
    g = panel.groups
    seen: list[int] = []
    panel.candidate_chosen.connect(seen.append)
    qtbot.mouseClick(
        g.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=g.visualItemRect(g.item(2)).center()
    )
    assert seen == [2]
    qtbot.mouseClick(
        g.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=g.visualItemRect(g.item(2)).center()
    )
    assert seen == [2, 2]  # shown again: the canvas may show another candidate by now
    panel.select_item(3)  # a padding slot shows its candidate too
    assert seen == [2, 2, 0]


def test_clicking_a_mask_shows_its_candidate_on_the_canvas(qtbot, window, demo_store):
    from core.store import repo

    hw = (360, 480)  # the demo images' size
    tr = make_trace(hw)
    with demo_store.session() as s:
        run_id = repo.create_run(
            s, name="hand", preset="hand", config={}, model_ids={}, is_random=False
        )
        repo.save_trace(s, run_id, 1, tr)
    window.review.show_sample(1)
    window.tabs.setCurrentWidget(window.evaluator_panel)
    g = window.evaluator_panel.groups
    assert g.count() == 4 and g.iconSize().width() >= THUMB_MIN

    def shown() -> np.ndarray | None:
        item = window.canvas.items["candidate"][0]
        return None if item.image is None else item.image.astype(bool)

    qtbot.mouseClick(
        g.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=g.visualItemRect(g.item(2)).center()
    )
    assert np.array_equal(shown(), tr.candidate(2).mask)
    # as the candidates panel's selection does; and a click on the same mask brings it back
    window.tabs.setCurrentWidget(window.candidates_panel)
    window.candidates_panel.select_candidate(1)
    assert np.array_equal(shown(), tr.candidate(1).mask)
    window.tabs.setCurrentWidget(window.evaluator_panel)
    qtbot.mouseClick(
        g.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=g.visualItemRect(g.item(2)).center()
    )
    assert np.array_equal(shown(), tr.candidate(2).mask)
