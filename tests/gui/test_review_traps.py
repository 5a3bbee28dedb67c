"""The review loop's traps: what is highlighted is what is shown and acted on, keys land where
the user thinks they do, and nothing that cannot be seen changes without a word."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.store import repo, review

_REAL_GET_TEXT = QtWidgets.QInputDialog.getText  # before the fixtures turn dialogs into errors


def _status(store, sid):
    return store.run(lambda s: repo.get_sample(s, sid).status, write=False)


def _coherent(window) -> None:
    """The highlighted row is the shown sample, or nothing is highlighted and nothing shown."""
    shown, selected = window.state.sample_id, window.samples_panel.selected_ids()
    if shown is None:
        assert selected == []
    else:
        assert selected == [shown]
        assert window.review_panel.question_edit.text() == window.samples_panel.cell_text(
            window.samples_panel.row_of(shown), 3
        )


# ------------------------------------------------------------------ what you see is what you act on
def test_a_filter_that_hides_the_shown_sample_moves_the_highlight_and_the_view_together(
    qtbot, window, demo_store
):
    window.samples_panel.select(3)
    assert window.state.sample_id == 3
    question = window.samples_panel.cell_text(window.samples_panel.row_of(7), 3)
    window.samples_panel.text_filter.setText(question)  # sample 3 no longer passes
    assert window.samples_panel.row_of(3) is None
    _coherent(window)
    assert window.state.sample_id != 3
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert _status(demo_store, 3) == "pending"  # never the hidden one


def test_a_filter_that_hides_everything_shows_nothing_and_accepts_nothing(
    qtbot, window, demo_store
):
    window.samples_panel.text_filter.setText("no question says this")
    assert window.samples_panel.row_count() == 0
    _coherent(window)
    assert window.state.sample_id is None and window.state.image is None
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert [_status(demo_store, i) for i in (1, 2)] == ["pending", "pending"]
    window.samples_panel.text_filter.setText("")
    _coherent(window)
    assert window.state.sample_id == 1


def test_a_change_elsewhere_that_moves_the_shown_sample_out_of_the_list(qtbot, window, demo_store):
    window.samples_panel.status_filter.setCurrentText("pending")
    window.samples_panel.select(5)
    review.decide(
        demo_store, 5, "reject", user="someone else", note="elsewhere"
    )  # e.g. re-generated
    window.review.refresh()
    assert window.samples_panel.row_of(5) is None
    _coherent(window)
    assert window.state.sample_id == 6  # its neighbour took its row


# ------------------------------------------------------------------------------- keys and focus
def _frozen_clock(window) -> list[float]:
    """The burst guard's clock, moved by hand: keys sent together arrive at the same instant."""
    now = [10_000.0]
    window.key_burst.clock = lambda: now[0]
    return now


def test_a_sentence_typed_into_the_sample_list_decides_nothing(qtbot, window, demo_store):
    _frozen_clock(window)
    table = window.samples_panel.table
    table.setFocus()
    qtbot.keyClicks(table, "the far ball is green and nice")  # f, a, r, n land on shortcuts
    assert [_status(demo_store, i) for i in range(1, 6)] == ["pending"] * 5
    assert all(review.history(demo_store, i) == [] for i in range(1, 6))
    assert "burst" in window.statusBar().currentMessage()


def test_a_decision_that_starts_a_typed_sentence_is_taken_back(qtbot, window, demo_store):
    _frozen_clock(window)
    table = window.samples_panel.table
    table.setFocus()
    qtbot.keyClicks(table, "a big one")
    assert _status(demo_store, 1) == "pending" and window.state.sample_id == 1
    assert [h.action for h in review.history(demo_store, 1)] == ["edit", "undo"]


def test_deliberate_keys_still_decide_quickly_one_after_another(qtbot, window, demo_store):
    now = _frozen_clock(window)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)  # a second A at once: a review key after one
    assert [_status(demo_store, i) for i in (1, 2)] == ["verified", "verified"]
    qtbot.keyClick(window, QtCore.Qt.Key.Key_D)  # a layer toggle …
    now[0] += 1000  # … and a pause
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert _status(demo_store, 3) == "verified"


def test_the_reject_dialog_opened_by_a_burst_does_not_take_its_enter(
    qtbot, window, demo_store, monkeypatch
):
    _frozen_clock(window)
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", _REAL_GET_TEXT)
    seen = {}

    def type_the_rest() -> None:
        dlg = QtWidgets.QApplication.activeModalWidget()
        field = dlg.findChild(QtWidgets.QLineEdit)
        qtbot.keyClicks(field, "ed ball")
        qtbot.keyClick(field, QtCore.Qt.Key.Key_Return)
        seen["open after Enter"] = dlg.isVisible()
        seen["hint"] = dlg.findChild(QtWidgets.QLabel).text()
        dlg.reject()

    QtCore.QTimer.singleShot(0, type_the_rest)
    window.samples_panel.table.setFocus()
    qtbot.keyClick(window.samples_panel.table, QtCore.Qt.Key.Key_R)
    assert seen["open after Enter"] and "click OK" in seen["hint"]
    assert _status(demo_store, 1) == "pending"


def test_focus_returns_to_the_sample_list_after_a_dialog(qtbot, window):
    from rea2seg_gui.main_window import message

    window.samples_panel.status_filter.setFocus()
    QtCore.QTimer.singleShot(0, lambda: QtWidgets.QApplication.activeModalWidget().accept())
    message(window, "Rea2Seg Studio", "something to read")
    qtbot.waitUntil(lambda: window.samples_panel.table.hasFocus(), timeout=3000)
    qtbot.keyClick(window.samples_panel.table, QtCore.Qt.Key.Key_N)
    assert window.samples_panel.status_filter.currentText() == "all statuses"
    assert window.state.sample_id == 2


def test_next_pending_skips_decided_samples_and_wraps(qtbot, window, demo_store):
    for sid in (2, 3):
        review.decide(demo_store, sid, "accept", user="tester")
    window.review.refresh_samples()
    shift = QtCore.Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, QtCore.Qt.Key.Key_N, shift)
    assert window.state.sample_id == 4
    window.samples_panel.select(40)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_N, shift)
    assert window.state.sample_id == 1
    from rea2seg_gui.shortcuts import SHORTCUTS

    assert any(k == "Shift+N" for k, _ in SHORTCUTS)


def test_the_status_bar_names_the_tool_and_where_keys_go(qtbot, window):
    label = window.keys_label
    window.review_panel.question_edit.setFocus()
    qtbot.waitUntil(lambda: "typing into the question field" in label.text(), timeout=3000)
    window.samples_panel.table.setFocus()
    qtbot.waitUntil(lambda: "shortcuts (sample list)" in label.text(), timeout=3000)
    window.edit_panel.choose_tool("brush")
    assert label.text().startswith("Tool: brush")


# ------------------------------------------------------------------ the target is visible
def test_a_green_target_gets_a_contrasting_outline_and_a_light_fill(qtbot):
    import numpy as np
    import pyqtgraph as pg

    from rea2seg_gui.canvas import Canvas
    from rea2seg_gui.canvas_layers import contrast_color

    img = np.full((60, 80, 3), 120, np.uint8)
    yy, xx = np.mgrid[:60, :80]
    ball = (yy - 30) ** 2 + (xx - 40) ** 2 < 15**2
    img[ball] = (30, 200, 60)  # a green ball
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.set_image(img)
    canvas.set_mask("gt", ball)
    r, g, b = canvas.colors["gt"]
    assert g < max(r, b)  # not green
    fill, outline = canvas.items["gt"]
    assert isinstance(outline, pg.PlotDataItem) and np.isfinite(outline.xData).sum() > 20
    assert fill.lut[1, 3] < 128 and outline.opacity() == 1.0  # a light fill, a full outline
    img[ball] = (150, 80, 40)  # a brown object: not drawn green either
    assert contrast_color(img, ball) != (40, 220, 90)
    canvas.set_layer_color("gt", (10, 20, 30))  # a colour chosen by hand stays
    canvas.set_mask("gt", ball)
    assert canvas.colors["gt"] == (10, 20, 30)
