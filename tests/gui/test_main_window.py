"""The real widgets driven like a user would: keys, clicks, paint, runs."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from core.store import repo, review
from rea2seg_gui.canvas import LAYERS


def _status(store, sid):
    return store.run(lambda s: repo.get_sample(s, sid).status, write=False)


def test_opens_demo_and_navigates_with_keys(qtbot, window):
    assert window.sample_table.rowCount() == 40
    assert window.current_id == 1
    assert window.image is not None and window.image.shape == (360, 480, 3)
    assert window.gt is not None and window.gt.any()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_N)
    assert window.current_id == 2
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Down)
    assert window.current_id == 3
    qtbot.keyClick(window, QtCore.Qt.Key.Key_P)
    assert window.current_id == 2


def test_accept_reject_flag_keys_write_the_store_and_advance(qtbot, window, demo_store):
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert _status(demo_store, 1) == "verified" and window.current_id == 2
    qtbot.keyClick(window, QtCore.Qt.Key.Key_R)
    assert _status(demo_store, 2) == "rejected" and window.current_id == 3
    window.note_edit.setText("two objects match")
    qtbot.keyClick(window, QtCore.Qt.Key.Key_F)
    assert _status(demo_store, 3) == "flagged"
    hist = review.history(demo_store, 3)
    assert hist[-1].note == "two objects match" and hist[-1].user == "tester"
    # filter by status
    window.status_filter.setCurrentText("verified")
    assert window.sample_table.rowCount() == 1


def test_edit_question_inline_then_undo_redo(qtbot, window, demo_store):
    window.question_edit.setText("Which cylinder is the tallest?")
    qtbot.keyClick(window.question_edit, QtCore.Qt.Key.Key_Return)
    q = lambda: demo_store.run(lambda s: repo.get_sample(s, 1).question, write=False)  # noqa: E731
    assert q() == "Which cylinder is the tallest?"
    assert window.question_label.text() == "Which cylinder is the tallest?"
    window.setFocus()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert q() != "Which cylinder is the tallest?"
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert q() == "Which cylinder is the tallest?"
    assert window.history_table.rowCount() == 3


def test_empty_question_is_refused_plainly(qtbot, window, demo_store, monkeypatch):
    from PySide6 import QtWidgets

    shown = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    window.question_edit.setText("   ")
    window.question_edit.returnPressed.emit()
    assert shown and "empty" in shown[0]
    assert review.history(demo_store, 1) == []


def test_paint_a_mask_save_and_undo(qtbot, window, demo_store):
    window._check_tool("brush")
    assert window.canvas.paint_mode
    window.brush_size.setValue(5)
    window.canvas.dragged.emit(100.0, 100.0, 140.0, 100.0)
    assert window.edit_dirty and window.edit_mask[100, 120] and not window.edit_mask[0, 0]
    painted = window.edit_mask.copy()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_S, QtCore.Qt.KeyboardModifier.ControlModifier)
    saved = demo_store.run(lambda s: repo.edited_mask(s, 1), write=False)
    assert np.array_equal(saved, painted)
    window._check_tool("eraser")
    window.canvas.dragged.emit(120.0, 100.0, 120.0, 100.0)
    assert not window.edit_mask[100, 120]
    window.save_mask()
    window.undo()
    assert np.array_equal(demo_store.run(lambda s: repo.edited_mask(s, 1), write=False), painted)
    # provenance is kept with the mask
    hist = review.history(demo_store, 1)
    assert [h.field for h in hist] == ["edited_mask", "edited_mask", "edited_mask"]


def test_every_layer_toggles_with_its_shortcut(qtbot, window):
    for spec in LAYERS:
        before = window.canvas.visible[spec.key]
        qtbot.keyClick(window, spec.shortcut)
        assert window.canvas.visible[spec.key] is (not before)
        assert window.layer_checks[spec.key].isChecked() is (not before)


def test_tiny_random_run_from_the_gui_fills_the_trace_views(qtbot, window, demo_store):
    window._select_row(0)
    window.run_preset.setCurrentText("tiny-random")
    with qtbot.waitSignal(window.run_finished, timeout=120_000) as blocker:
        window.start_button.click()
        assert not window.start_button.isEnabled() and window.cancel_button.isEnabled()
    run_id = blocker.args[0]
    assert demo_store.run(lambda s: repo.finished_sample_ids(s, run_id), write=False) == {1}
    assert window.trace is not None and window.banner.isVisibleTo(window)
    assert window.cand_table.rowCount() == 0  # the gallery is built when its tab is shown
    window.tabs.setCurrentWidget(window.candidates_tab)
    assert window.cand_table.rowCount() == len(window.trace.candidates) > 0
    assert window.canvas.items["attention"] and window.canvas.items["seeds"] and window.canvas.items["graph"]
    lo, hi = window.canvas.attention_range
    assert window.canvas.colorbar.isVisible() and window.canvas.colorbar.levels() == pytest.approx((lo, hi))
    window.layer_checks["attention"].setChecked(False)
    assert not window.canvas.colorbar.isVisible()
    assert "RANDOM WEIGHTS" in window.trace_info.toPlainText()
    # a candidate shows on the canvas and can become the edited mask, with provenance
    window.cand_table.selectRow(0)
    assert window.canvas.items["candidate"]
    window.use_candidate()
    hist = review.history(demo_store, 1)
    assert hist[-1].field == "edited_mask"


def test_run_errors_are_shown_not_raised(qtbot, window, monkeypatch):
    window.run_preset.setCurrentText("lisa-7b")  # no config file here: a clear error
    window._select_row(0)
    with qtbot.waitSignal(window.run_failed, timeout=60_000) as blocker:
        window.start_button.click()
    assert "lisa-7b" in blocker.args[0] and "does not exist" in blocker.args[0]
    assert "does not exist" in window.run_error.toPlainText()
    assert window.start_button.isEnabled()


def test_window_layout_and_recent_stores_are_remembered(qtbot, window, settings, demo_store):
    window.close()
    assert settings.value("window/geometry") is not None
    assert settings.value("recent")[0] == demo_store.url


def test_sam_clicks_refine_the_mask_and_backspace_undoes_a_click(qtbot, window, demo_store):
    window.sam_preset.setCurrentText("tiny-random")
    window.sam_use_mask.setChecked(False)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_S)
    assert window.tool == "sam" and not window.canvas.paint_mode
    window.canvas.clicked.emit(200.0, 150.0, 1)  # positive
    qtbot.waitUntil(lambda: window.active_worker is None and window.edit_provenance.get("tool") == "sam", timeout=60_000)
    window.canvas.clicked.emit(20.0, 20.0, 2)  # negative
    qtbot.waitUntil(lambda: window.active_worker is None and len(window.edit_provenance.get("labels", [])) == 2, timeout=60_000)
    prov = window.edit_provenance
    assert prov["labels"] == [1, 0] and prov["points_xy"][1] == [20.0, 20.0] and prov["is_random"] is True
    assert window.edit_mask is not None and window.edit_mask.shape == (360, 480)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Backspace)
    qtbot.waitUntil(lambda: window.active_worker is None and window.edit_provenance.get("labels") == [1], timeout=60_000)
    window.save_mask()
    from core.store.models import Mask

    prov_saved = demo_store.run(lambda s: s.query(Mask).filter(Mask.kind == "edited").one().provenance, write=False)
    assert prov_saved["tool"] == "sam" and prov_saved["points_xy"] == [[200.0, 150.0]]


def test_open_a_store_by_url_and_a_bad_one_is_explained(qtbot, window, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    from core.demo import ensure_demo_store

    other = ensure_demo_store(tmp_path / "other.sqlite")
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", lambda *a, **k: (f"sqlite:///{other}", True))
    window._open_url_dialog()
    assert window.store.url == f"sqlite:///{other}" and window.sample_table.rowCount() == 40
    shown = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", lambda *a, **k: shown.append(a[2]))
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database at all" * 50)
    window.open_store(str(bad))
    assert shown and "moved aside" in shown[0]
    assert window.store.url == f"sqlite:///{other}"  # the open store is unchanged


def test_mask_layers_are_pixel_exact(qtbot, window):
    from rea2seg_gui.canvas import LAYER_BY_KEY

    m = np.zeros((360, 480), bool)
    m[10:12, 20:23] = True
    window.canvas.set_mask("edited", m)
    item = window.canvas.items["edited"][0]
    item.render()  # the item's own image through its lookup table, compared with the mask
    img = item.qimage.convertToFormat(item.qimage.Format.Format_RGBA8888)
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)[:, : img.width()]
    assert arr.shape[:2] == (360, 480)
    assert np.array_equal(arr[..., 3] > 0, m)
    assert tuple(arr[10, 20, :3]) == LAYER_BY_KEY["edited"].color
