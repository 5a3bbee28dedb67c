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
    assert window.review_panel.history_count() == 0 and window.canvas.trace is None
    assert window.candidates_panel.row_count() == 0
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


# ------------------------------------------------------------------------- the candidates table
def _trace(fell_back: bool):
    import numpy as np

    from core.trace import Candidate, EvaluatorTrace, PipelineTrace

    def box(y0, y1, x0, x1):
        m = np.zeros((40, 60), bool)
        m[y0:y1, x0:x1] = True
        return m

    cands = [
        Candidate(0, "multimask", 0, box(0, 20, 0, 30), 0.9),
        Candidate(1, "semantic", 0, box(5, 30, 5, 40), 0.8),
        Candidate(2, "amg", 0, box(20, 40, 30, 60), 0.7),
    ]
    scores = {0: None, 1: None, 2: None} if fell_back else {0: 0.2, 1: 0.9, 2: 0.5}
    ev = EvaluatorTrace("hand", "m", False, 3, 0, False, [], scores, [1, 2, 0], 3, fell_back)
    m0 = box(0, 40, 0, 60)
    return PipelineTrace(
        "q", (40, 60), "hand", {}, False, {}, None, m0, None, None, None, cands, ev
    )


def test_candidates_sorted_by_rank_with_the_answer_marked(qtbot):
    import numpy as np

    from rea2seg_gui.gallery import ANSWER_COLUMN, ANSWER_MARK, RANK_COLUMN, CandidateGallery

    g = CandidateGallery()
    qtbot.addWidget(g)
    g.set_candidates(_trace(False), np.zeros((40, 60, 3), np.uint8), None, None, None)
    ranks = [
        g.table.item(r, RANK_COLUMN).data(QtCore.Qt.ItemDataRole.DisplayRole) for r in range(3)
    ]
    assert ranks == [1, 2, 3] and g.candidate_at(0).id == 1
    assert g.answer_row() == 0 and g.table.item(0, ANSWER_COLUMN).text() == ANSWER_MARK
    assert "evaluator's ranking" in g.rank_note.text()
    g.set_candidates(_trace(True), np.zeros((40, 60, 3), np.uint8), None, None, None)
    assert g.answer_row() is None  # the answer is M, no candidate
    assert "NO READABLE SCORE" in g.rank_note.text() and "initial mask M" in g.rank_note.text()


# ------------------------------------------------------------------- confirm what cannot be seen
def test_opening_a_wrong_file_asks_before_moving_it_aside(qtbot, window, tmp_path, monkeypatch):
    import rea2seg_gui.main_window as mw

    shown, asked = [], []
    monkeypatch.setattr(mw, "message", lambda parent, title, text, **k: shown.append(text))
    answer = {"button": QtWidgets.QMessageBox.StandardButton.No}

    def question(parent, title, text, *a, **k):
        asked.append(text)
        return answer["button"]

    monkeypatch.setattr(QtWidgets.QMessageBox, "question", question)
    bad = tmp_path / "notes.sqlite"
    bad.write_bytes(b"my notes, not a database" * 50)
    before = window.store.url
    assert not window.open_store(str(bad))
    assert asked and "Move it aside" in asked[0]
    assert bad.exists() and not list(tmp_path.glob("notes.sqlite.corrupt-*"))  # untouched
    assert "nothing was moved" in shown[-1] and window.store.url == before
    answer["button"] = QtWidgets.QMessageBox.StandardButton.Yes
    assert not window.open_store(str(bad))
    assert not bad.exists() and list(tmp_path.glob("notes.sqlite.corrupt-*"))
    assert "moved aside" in shown[-1]


def test_editing_the_mask_of_a_verified_sample_returns_it_to_pending(qtbot, window, demo_store):
    review.decide(demo_store, 1, "accept", user="tester")
    window.review.refresh()
    assert _status(demo_store, 1) == "verified" and window.state.sample_id == 1
    window.edit_panel.choose_tool("brush")
    window.canvas.clicked.emit(30.0, 30.0, 1)
    assert _status(demo_store, 1) == "pending"
    assert "back to pending" in window.statusBar().currentMessage()
    assert window.samples_panel.cell_text(window.samples_panel.row_of(1), 2) == "pending"
    notes = [h.note for h in review.history(demo_store, 1)]
    assert review.REOPENED_NOTE in notes


def test_an_empty_store_offers_import_and_empty_filters_say_so(qtbot, tmp_path, settings):
    from core.store import open_store
    from rea2seg_gui.main_window import MainWindow

    st = open_store(tmp_path / "empty.sqlite")
    w = MainWindow(st, user="tester", settings=settings)
    qtbot.addWidget(w)
    w.show()
    sp = w.samples_panel
    assert sp.empty_box.isVisible() and "no samples yet" in sp.empty_label.text()
    assert sp.empty_buttons["reasonseg"].isVisible() and sp.empty_buttons["sgdr"].isVisible()
    called = []
    w.file_actions.import_sgdr = lambda: called.append("sgdr")
    sp.empty_buttons["sgdr"].click()
    assert called == ["sgdr"]
    w.close()
    st.close()


def test_a_filter_that_hides_everything_says_so_and_clears(qtbot, window):
    sp = window.samples_panel
    sp.text_filter.setText("no question says this")
    assert sp.empty_box.isVisible() and "No sample passes the filters" in sp.empty_label.text()
    sp.empty_buttons["clear"].click()
    assert sp.row_count() == 40 and not sp.empty_box.isVisible()
    _coherent(window)


def test_greyed_out_presets_say_why_and_what_to_do(qtbot, window):
    text = window.run_panel.unavailable.text()
    assert "File → Settings" in text and "evaluator" in text


# --------------------------------------------------------------- generated questions: boxes, re-generate
from tests.gui.test_questions_panel import generated_store  # noqa: E402, F401 - a fixture


def test_question_review_shows_the_prompt_boxes_and_regenerate_asks_over_an_edit(
    qtbot,
    generated_store,  # noqa: F811 - the fixture imported above
    settings,
    monkeypatch,
):
    from rea2seg_gui.main_window import MainWindow

    st, _server = generated_store
    w = MainWindow(st, user="ann", settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.samples_panel.select_row(0)
    sid = w.state.sample_id
    g = w.questions_panel.generation
    assert g is not None and g.target_box_xyxy is not None and len(g.other_boxes_xyxy) == 2
    assert w.questions_panel.prompt_boxes_check.isChecked()  # on by default
    items = w.canvas.items["prompt"]
    assert len(items) == 2 and all(it.isVisible() for it in items)
    red = [it for it in items if it.opts["pen"].color().getRgb()[:3] == (255, 0, 0)][0]
    x0, y0, x1, y1 = g.target_box_xyxy
    assert (min(red.xData), min(red.yData), max(red.xData), max(red.yData)) == (x0, y0, x1, y1)
    assert any("Prompt box" in e.title for e in w.canvas.legend_entries())
    w.questions_panel.prompt_boxes_check.setChecked(False)  # one switch with the Layers tab
    assert not w.layers_panel.is_visible("prompt") and not any(it.isVisible() for it in items)
    w.questions_panel.prompt_boxes_check.setChecked(True)
    # a question edited by hand: re-generating asks first, No changes nothing
    review.edit_question(st, sid, "Which cup is on the left?", user="ann")
    w.review.after_change(sid)
    assert w.questions_panel.hand_edited
    asked = []

    def no(parent, title, text, *a, **k):
        asked.append(text)
        return QtWidgets.QMessageBox.StandardButton.No

    monkeypatch.setattr(QtWidgets.QMessageBox, "question", no)
    started = []
    w.questions_panel.regenerate_requested.connect(started.append)
    w.questions_panel.regenerate_button.click()
    assert asked and "edited by hand" in asked[0] and started == []
    assert st.run(lambda s: repo.get_sample(s, sid).question, write=False) == (
        "Which cup is on the left?"
    )
    w.close()


def test_a_layer_digit_right_after_a_decision_does_not_undo_it(qtbot, window, demo_store):
    _frozen_clock(window)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_1)  # the ground-truth layer, at once
    assert _status(demo_store, 1) == "verified"


def test_the_review_keys_work_as_soon_as_the_window_is_activated(qtbot, window):
    """The sample list has the focus on opening (not the first filter box, which would take a
    typed letter as a filter value)."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QtWidgets.QApplication.focusWidget() is not None, timeout=5000)
    assert QtWidgets.QApplication.focusWidget() is window.samples_panel.table
    assert "keys → shortcuts (sample list)" in window.keys_label.text()
