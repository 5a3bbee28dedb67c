"""SAM box and clicks in one prompt: the box stays drawn while it is part of the prompt, every
change sends box + clicks in one SAM call, Esc clears both; the box tool drags without a brush."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from core.store import repo
from core.store.models import Mask
from rea2seg_gui.canvas import DragMode
from rea2seg_gui.models import tiny_lisa_preset

BOX = (90.0, 60.0, 220.0, 160.0)


@pytest.fixture
def sam_calls(window, monkeypatch):
    """The tiny random SAM the window uses, its ``predict_points`` spied on: the calls' arguments."""
    window.edit_panel.sam_preset.setCurrentText(tiny_lisa_preset())
    sam, _ = window.models.sam(tiny_lisa_preset())
    calls: list[dict] = []
    real = sam.predict_points

    def spy(points_xy, labels, mask_logits, multimask, *, box_xyxy=None):
        calls.append(
            {
                "points": np.asarray(points_xy).tolist(),
                "labels": np.asarray(labels).tolist(),
                "mask": mask_logits,
                "box": None if box_xyxy is None else list(box_xyxy),
            }
        )
        return real(points_xy, labels, mask_logits, multimask, box_xyxy=box_xyxy)

    monkeypatch.setattr(sam, "predict_points", spy)
    return sam, calls


def _sam(qtbot, window, act) -> None:
    with qtbot.waitSignal(window.editing.sam_finished, timeout=60_000):
        act()
    assert not window.jobs.busy


def _drag_box(canvas) -> None:
    canvas.dragged.emit(BOX[2], BOX[3], 150.0, 100.0)  # from the bottom-right corner
    canvas.dragged.emit(150.0, 100.0, BOX[0], BOX[1])
    canvas.drag_finished.emit()


def _provenance(store):
    return store.run(
        lambda s: s.get(Mask, repo.get_sample(s, 1).edited_mask_id).provenance, write=False
    )


def _saved(store):
    return store.run(lambda s: repo.edited_mask(s, 1), write=False)


@pytest.mark.slow  # builds the tiny random models
def test_box_then_clicks_go_to_sam_together(qtbot, window, demo_store, sam_calls):
    sam, calls = sam_calls
    c = window.canvas
    qtbot.keyClick(window, QtCore.Qt.Key.Key_X)
    _sam(qtbot, window, lambda: _drag_box(c))
    assert calls[-1]["box"] == list(BOX) and calls[-1]["points"] == [] and calls[-1]["mask"] is None
    _sam(qtbot, window, lambda: c.clicked.emit(150.0, 110.0, 1))  # a positive click in the box tool
    assert len(calls) == 2  # one SAM call for the box and the click together
    assert (
        calls[1]["box"] == list(BOX)
        and calls[1]["points"] == [[150.0, 110.0]]
        and calls[1]["labels"] == [1]
    )
    assert (
        calls[1]["mask"] is None
    )  # with a box, no mask prompt (the default one is the current mask)
    prov = _provenance(demo_store)
    assert prov["tool"] == "sam_box" and prov["box_xyxy"] == list(BOX)
    assert (
        prov["points_xy"] == [[150.0, 110.0]]
        and prov["labels"] == [1]
        and prov["mask_prompt"] is None
    )
    # the saved mask is what SAM makes of box + click (known answer from the same tiny SAM)
    with window.models.sam_lock(sam):
        sam.set_image(window.state.image)
        logits, _ = sam.predict_points(
            np.array([[150.0, 110.0]]), np.array([1]), None, False, box_xyxy=BOX
        )
    assert np.array_equal(_saved(demo_store), logits[0] > 0)
    assert (
        "SAM box (90, 60, 220, 160) + 1 click"
        in window.review_panel.history_table.item(0, 3).text()
    )
    _sam(qtbot, window, lambda: c.clicked.emit(30.0, 30.0, 2))  # negative
    assert calls[-1]["box"] == list(BOX) and calls[-1]["labels"] == [1, 0]
    assert _provenance(demo_store)["labels"] == [1, 0]
    assert c.tools.box() == BOX and c.clicks_item.data.shape[0] == 2  # drawn while in the prompt
    # Backspace undoes the last click, then the box
    _sam(qtbot, window, lambda: qtbot.keyClick(window, QtCore.Qt.Key.Key_Backspace))
    assert calls[-1]["points"] == [[150.0, 110.0]] and calls[-1]["box"] == list(BOX)
    # Esc clears the prompt: clicks and box, on the canvas too
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Escape)
    assert window.editing.sam_points == [] and window.editing.sam_box_xyxy is None
    assert c.tools.box() is None and not c.box_item.isVisible() and c.clicks_item.data.shape[0] == 0
    assert c.drag_mode is DragMode.PAN


@pytest.mark.slow  # builds the tiny random models
def test_clicks_then_a_box_and_backspace_drops_the_box_last(qtbot, window, demo_store, sam_calls):
    _sam_, calls = sam_calls
    c = window.canvas
    window.edit_panel.set_sam_prompt("none")
    qtbot.keyClick(window, QtCore.Qt.Key.Key_S)
    _sam(qtbot, window, lambda: c.clicked.emit(150.0, 110.0, 1))
    assert _provenance(demo_store)["tool"] == "sam" and "box_xyxy" not in _provenance(demo_store)
    assert c.tools.box() is None
    qtbot.keyClick(window, QtCore.Qt.Key.Key_X)  # the SAM tools share the session: the click stays
    assert window.editing.sam_points == [(150.0, 110.0, 1)]
    _sam(qtbot, window, lambda: _drag_box(c))
    assert (
        len(calls) == 2 and calls[1]["box"] == list(BOX) and calls[1]["points"] == [[150.0, 110.0]]
    )
    prov = _provenance(demo_store)
    assert (
        prov["tool"] == "sam_box"
        and prov["box_xyxy"] == list(BOX)
        and prov["points_xy"] == [[150.0, 110.0]]
    )
    _sam(qtbot, window, lambda: qtbot.keyClick(window, QtCore.Qt.Key.Key_Backspace))  # the click
    assert calls[-1]["points"] == [] and calls[-1]["box"] == list(BOX) and c.tools.box() == BOX
    qtbot.keyClick(
        window, QtCore.Qt.Key.Key_Backspace
    )  # then the box: the mask from before the session
    assert (
        _saved(demo_store) is None and c.tools.box() is None and window.editing.sam_box_xyxy is None
    )


class _Drag:
    """A left-button drag event as pyqtgraph hands it to the image item."""

    def __init__(self, x: float, y: float, start: bool = False, finish: bool = False) -> None:
        self._p, self._start, self._finish, self.accepted = (
            QtCore.QPointF(x, y),
            start,
            finish,
            None,
        )

    def pos(self):
        return self._p

    def button(self):
        return QtCore.Qt.MouseButton.LeftButton

    def isStart(self):  # noqa: N802 - pyqtgraph API
        return self._start

    def isFinish(self):  # noqa: N802 - pyqtgraph API
        return self._finish

    def accept(self):
        self.accepted = True

    def ignore(self):
        self.accepted = False


def test_box_mode_drags_without_a_brush_outline(qtbot, window):
    c = window.canvas
    window.edit_panel.choose_tool("box")
    assert c.drag_mode is DragMode.BOX
    assert c.viewport().cursor().shape() == QtCore.Qt.CursorShape.CrossCursor
    got: list[tuple] = []
    c.dragged.connect(lambda *a: got.append(a))
    c.drag_finished.connect(lambda: got.append(("end",)))
    for ev in (_Drag(10, 20, start=True), _Drag(40, 50), _Drag(60, 70, finish=True)):
        c.image_item.mouseDragEvent(ev)
        assert ev.accepted
    assert got == [
        (10.0, 20.0, 10.0, 20.0),
        (10.0, 20.0, 40.0, 50.0),
        (40.0, 50.0, 60.0, 70.0),
        ("end",),
    ]
    assert not c.brush_outline.isVisible() and c.tools.box() == (10.0, 20.0, 60.0, 70.0)
    window.editing.end_sam_session()
    # the pointer over the image: no brush outline in box mode, one with the brush
    pos = c.mapFromScene(c.view.mapViewToScene(QtCore.QPointF(200, 150)))
    qtbot.mouseMove(c.viewport(), pos)
    qtbot.mouseMove(c.viewport(), pos + QtCore.QPoint(1, 1))
    qtbot.waitUntil(lambda: c.readout_label.text() != "", timeout=2000)
    assert not c.brush_outline.isVisible()
    c.show_brush_at(200.0, 150.0)  # what a hover does: nothing shows in box mode
    assert not c.brush_outline.isVisible()
    window.edit_panel.choose_tool("brush")
    c.show_brush_at(200.0, 150.0)
    assert c.brush_outline.isVisible()
    assert c.viewport().cursor().shape() != QtCore.Qt.CursorShape.CrossCursor
    # pan mode: drags are left to the view (ignored by the image item)
    window.edit_panel.choose_tool("none")
    ev = _Drag(10, 20, start=True)
    c.image_item.mouseDragEvent(ev)
    assert ev.accepted is False
