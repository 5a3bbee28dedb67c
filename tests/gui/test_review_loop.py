"""The review loop without traps: undo across samples, the note field, unreadable images, missing
stores, refreshing from a shared store, and the docs' shortcut table and settings page."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from core.store import open_store, repo, review


def _status(store, sid):
    return store.run(lambda s: repo.get_sample(s, sid).status, write=False)


def _ctrl_z(qtbot, window, shift=False):
    mods = QtCore.Qt.KeyboardModifier.ControlModifier
    if shift:
        mods |= QtCore.Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Z, mods)


# ------------------------------------------------------------------------------------ undo
def test_undo_returns_to_the_decided_sample_and_reverses_the_decision(qtbot, window, demo_store):
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert _status(demo_store, 1) == "verified" and window.state.sample_id == 2
    _ctrl_z(qtbot, window)
    assert window.state.sample_id == 1 and _status(demo_store, 1) == "pending"
    assert window.samples_panel.selected_ids() == [1]  # the row is selected again
    assert "pending" in window.review_panel.status_value.text()
    _ctrl_z(qtbot, window, shift=True)  # redo: verified again, still on sample 1
    assert _status(demo_store, 1) == "verified" and window.samples_panel.selected_ids() == [1]


def test_undo_walks_back_through_several_samples_and_a_mask_edit(qtbot, window, demo_store):
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)  # 1 verified
    window.edit_panel.choose_tool("brush")
    window.canvas.clicked.emit(30.0, 30.0, 1)  # a mask edit on sample 2
    window.edit_panel.choose_tool("none")
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)  # 2 verified
    qtbot.keyClick(window, QtCore.Qt.Key.Key_N)  # on to 4 without a change
    assert window.state.sample_id == 4
    _ctrl_z(qtbot, window)
    assert window.state.sample_id == 2 and _status(demo_store, 2) == "pending"
    assert demo_store.run(lambda s: repo.edited_mask(s, 2), write=False) is not None
    _ctrl_z(qtbot, window)
    assert (
        window.state.sample_id == 2
        and demo_store.run(lambda s: repo.edited_mask(s, 2), write=False) is None
    )
    _ctrl_z(qtbot, window)
    assert window.state.sample_id == 1 and _status(demo_store, 1) == "pending"
    assert window.samples_panel.selected_ids() == [1]


def test_undo_brings_back_a_row_the_status_filter_had_hidden(qtbot, window, demo_store):
    window.samples_panel.status_filter.setCurrentText("pending")
    assert window.samples_panel.row_count() == 40
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert window.samples_panel.row_count() == 39 and window.samples_panel.row_of(1) is None
    _ctrl_z(qtbot, window)
    assert window.samples_panel.row_count() == 40 and window.samples_panel.selected_ids() == [1]
    assert window.state.sample_id == 1


# ------------------------------------------------------------------------------ note field
def test_letters_typed_in_the_note_or_question_field_are_text_not_shortcuts(
    qtbot, window, demo_store
):
    note = window.review_panel.note_edit
    note.setFocus()
    qtbot.keyClicks(note, "far")  # F, A, R: none fires, none is eaten
    assert note.text() == "far" and window.state.sample_id == 1
    assert [_status(demo_store, i) for i in (1, 2, 3)] == ["pending"] * 3
    q = window.review_panel.question_edit
    q.setFocus()
    q.end(False)
    qtbot.keyClicks(q, " ARF")
    assert q.text().endswith(" ARF") and _status(demo_store, 1) == "pending"
    assert review.history(demo_store, 1) == []


def test_after_enter_in_the_note_field_the_next_a_is_a_shortcut_again(qtbot, window, demo_store):
    note = window.review_panel.note_edit
    note.setFocus()
    qtbot.keyClicks(note, "ok")
    qtbot.keyClick(note, QtCore.Qt.Key.Key_Return)
    assert _status(demo_store, 1) == "verified" and window.state.sample_id == 2
    assert not note.hasFocus()
    qtbot.keyClick(QtWidgets.QApplication.focusWidget() or window, QtCore.Qt.Key.Key_A)
    assert _status(demo_store, 2) == "verified" and note.text() == ""
    assert review.history(demo_store, 2)[-1].note == ""


def test_reject_asks_for_a_reason_unless_turned_off_in_settings(
    qtbot, window, demo_store, reasons, settings, tmp_path
):
    from rea2seg_gui.dialogs import SettingsDialog
    from rea2seg_gui.preferences import ASK_REJECT_REASON

    reasons["answers"] = [("", False)]
    qtbot.keyClick(window, QtCore.Qt.Key.Key_R)  # cancelled: nothing changes
    assert _status(demo_store, 1) == "pending" and window.state.sample_id == 1
    window.review_panel.note_edit.setText("blurry")
    qtbot.keyClick(window.canvas, QtCore.Qt.Key.Key_R)  # a typed note is the reason: no question
    assert len(reasons["asked"]) == 1 and review.history(demo_store, 1)[-1].note == "blurry"
    dlg = SettingsDialog(window, path=tmp_path / "cfg.toml", preferences=settings)
    qtbot.addWidget(dlg)
    box = dlg.pref_widgets[ASK_REJECT_REASON.name]
    assert box.isChecked()  # on by default
    box.setChecked(False)
    dlg.save()
    window.apply_preferences()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_R)
    assert _status(demo_store, 2) == "rejected" and len(reasons["asked"]) == 1


# --------------------------------------------------------------------------- bad images
def _break_image(store, sid, path):
    from core.store.models import Sample

    with store.session() as s:
        s.get(Sample, sid).image.path = str(path)


@pytest.mark.parametrize("kind", ["corrupt", "missing"])
def test_an_unreadable_image_is_shown_as_an_error_and_cannot_be_accepted(
    qtbot, window, demo_store, tmp_path, kind
):
    bad = tmp_path / "broken.png"
    if kind == "corrupt":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    _break_image(demo_store, 40, bad)
    window.samples_panel.select(40)
    assert window.state.sample_id == 40 and window.state.image_error
    assert "IMAGE NOT READABLE" in window.viewer.image_error_text()
    assert not window.review_panel.accept_enabled()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert _status(demo_store, 40) == "pending" and window.state.sample_id == 40
    assert "cannot be read" in window.statusBar().currentMessage()
    window.review_panel.note_edit.setFocus()
    qtbot.keyClick(
        window.review_panel.note_edit, QtCore.Qt.Key.Key_Return
    )  # Enter accepts: refused too
    assert _status(demo_store, 40) == "pending"
    window.samples_panel.select(
        1
    )  # a readable sample (another image): the error and the block go away
    assert window.state.image_error is None
    assert window.viewer.image_error_text() is None and window.review_panel.accept_enabled()


# ---------------------------------------------------------------------------- missing stores
def _answer(monkeypatch, yes: bool, asked: list):
    def question(parent, title, text, *a, **k):
        asked.append(text)
        return (
            QtWidgets.QMessageBox.StandardButton.Yes
            if yes
            else QtWidgets.QMessageBox.StandardButton.No
        )

    monkeypatch.setattr(QtWidgets.QMessageBox, "question", question)


def test_opening_a_missing_store_asks_before_creating_it(
    qtbot, window, demo_store, tmp_path, monkeypatch
):
    asked: list[str] = []
    missing = tmp_path / "new.sqlite"
    _answer(monkeypatch, False, asked)
    assert window.open_store(str(missing)) is False
    assert asked and "no store there" in asked[0] and not missing.exists()
    assert window.store is demo_store and window.samples_panel.row_count() == 40
    _answer(monkeypatch, True, asked)
    assert window.open_store(str(missing)) is True
    assert missing.is_file() and window.samples_panel.row_count() == 0 and len(asked) == 2


def test_a_missing_store_on_the_command_line_asks_and_no_exits_cleanly(
    qtbot, tmp_path, monkeypatch, capsys
):
    from rea2seg_gui import app
    from rea2seg_gui.main_window import MainWindow

    asked: list[str] = []
    _answer(monkeypatch, False, asked)
    missing = tmp_path / "nope.sqlite"
    assert app.main([str(missing)]) == 0
    assert asked and not missing.exists() and "nothing was created" in capsys.readouterr().err
    shown = []
    monkeypatch.setattr(MainWindow, "show", lambda self: shown.append(self))
    monkeypatch.setattr(QtWidgets.QApplication, "exec", lambda self=None: 0)
    _answer(monkeypatch, True, asked)
    assert app.main([str(missing)]) == 0
    win = shown[0]
    qtbot.addWidget(win)
    assert missing.is_file() and win.samples_panel.row_count() == 0
    win.close()
    win.store.close()


# -------------------------------------------------------------------------------- refresh
def test_f5_shows_what_another_process_wrote_and_keeps_selection_and_edits(
    qtbot, window, demo_store
):
    other = open_store(demo_store.url)
    try:
        window.samples_panel.select(2)
        window.edit_panel.choose_tool("polygon")
        for x, y in ((10, 10), (60, 10)):
            window.canvas.clicked.emit(float(x), float(y), 1)
        window.review_panel.question_edit.setText("Which one is mine?")
        window.review_panel.question_edit.setModified(True)  # typed, not yet saved
        review.decide(other, 3, "reject", user="other", note="seen elsewhere")
        review.decide(other, 2, "flag", user="other", note="ask the lead")
        row3 = window.samples_panel.row_of(3)
        assert window.samples_panel.cell_text(row3, 2) == "pending"
        qtbot.keyClick(window, QtCore.Qt.Key.Key_F5)
        assert window.samples_panel.cell_text(row3, 2) == "rejected"
        assert "rejected 1" in window.samples_panel.counts_label.text()
        assert window.samples_panel.selected_ids() == [2] and window.state.sample_id == 2
        assert "flagged" in window.review_panel.status_value.text()
        assert (
            window.review_panel.history_row(0)[1] == "other"
            and window.review_panel.history_row(0)[4] == "ask the lead"
        )
        assert window.editing.poly_points == [
            (10.0, 10.0),
            (60.0, 10.0),
        ]  # the polygon in progress survives
        assert window.review_panel.question_edit.text() == "Which one is mine?"
    finally:
        other.close()


def test_refresh_on_a_timer_and_on_activation(qtbot, window, demo_store, settings, monkeypatch):
    from rea2seg_gui.controllers import refresh as refresh_mod
    from rea2seg_gui.preferences import REFRESH_INTERVAL_S

    assert (
        window.refresher.timer.isActive() and window.refresher.timer.interval() == 30_000
    )  # default 30 s
    settings.setValue(REFRESH_INTERVAL_S.name, 0)
    window.apply_preferences()
    assert not window.refresher.timer.isActive()
    settings.setValue(REFRESH_INTERVAL_S.name, 2)
    window.apply_preferences()
    assert window.refresher.timer.interval() == 2000
    other = open_store(demo_store.url)
    try:
        review.decide(other, 5, "reject", user="other")
        with qtbot.waitSignal(window.refresher.refreshed, timeout=5000):
            pass  # the 2 s timer fires
        assert window.samples_panel.cell_text(window.samples_panel.row_of(5), 2) == "rejected"
        review.decide(other, 6, "flag", user="other", note="n")
        monkeypatch.setattr(refresh_mod, "ACTIVATION_GAP_S", 0.0)
        QtWidgets.QApplication.sendEvent(window, QtCore.QEvent(QtCore.QEvent.Type.WindowActivate))
        assert window.samples_panel.cell_text(window.samples_panel.row_of(6), 2) == "flagged"
        assert window.samples_panel.selected_ids() == [1]
    finally:
        other.close()


def test_refresh_keeps_a_brush_stroke_in_progress(qtbot, window, demo_store):
    other = open_store(demo_store.url)
    try:
        window.edit_panel.choose_tool("brush")
        window.edit_panel.set_brush_radius(3)
        window.canvas.dragged.emit(100.0, 100.0, 120.0, 100.0)  # a stroke under way
        review.replace_mask(
            other, 1, np.zeros((360, 480), bool), user="other", provenance={"tool": "clear"}
        )
        window.refresher.refresh()
        with qtbot.waitSignal(window.review.mask_saved, timeout=5000):
            window.canvas.drag_finished.emit()
        saved = demo_store.run(lambda s: repo.edited_mask(s, 1), write=False)
        assert saved[100, 110]  # the stroke was saved, not dropped by the refresh
    finally:
        other.close()


# ------------------------------------------------------------------------------ cheat sheet
def test_docs_shortcut_table_and_cheat_sheet_agree():
    from pathlib import Path

    from rea2seg_gui.canvas_layers import LAYERS
    from rea2seg_gui.key_bindings import TOOL_KEYS
    from rea2seg_gui.shortcuts import SHORTCUTS

    page = (Path(__file__).resolve().parents[2] / "docs/reference/shortcuts.md").read_text()
    for key, what in SHORTCUTS:
        assert f"| {key} | {what} |" in page, key
    for spec in LAYERS:
        assert f"| {spec.shortcut} | {spec.title} |" in page, spec.key
    for key, tool in TOOL_KEYS:
        assert f"| {key} | {tool} |" in page, key


def test_docs_shortcut_page_is_generated_from_the_code():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("gen_docs", root / "scripts" / "gen_docs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (root / gen.SHORTCUTS_MD).read_text(encoding="utf-8") == gen.shortcuts_page(), (
        "docs/reference/shortcuts.md is out of date: run python scripts/gen_docs.py"
    )


def test_docs_name_every_setting_the_app_stores():
    import re
    from pathlib import Path

    from rea2seg_gui import layer_style
    from rea2seg_gui.canvas_layers import MASK_LAYERS
    from rea2seg_gui.preferences import PREFERENCES

    readme = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    for pref in PREFERENCES:
        default = (
            ("on" if pref.default else "off")
            if isinstance(pref.default, bool)
            else str(pref.default)
        )
        assert re.search(rf"\| `{re.escape(pref.name)}` \| {default} \|", readme), pref.name
    for key in (
        layer_style.OUTLINE_KEY,
        layer_style.LEGEND_KEY,
        layer_style.COLOR_KEY.format("<layer>"),
        "window/geometry",
        "window/state",
        "recent",
    ):
        assert f"`{key}`" in readme, key
    assert ", ".join(f"`{k}`" for k in MASK_LAYERS[:-1]) + f" or `{MASK_LAYERS[-1]}`" in readme
    # every key the GUI code writes is one of those
    src = "\n".join(
        p.read_text() for p in (Path(__file__).resolve().parents[2] / "rea2seg_gui").rglob("*.py")
    )
    written = set(re.findall(r'setValue\(\s*"([^"]+)"', src))
    assert written <= {"window/geometry", "window/state", "recent"}, written
