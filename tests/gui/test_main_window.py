"""The real widgets driven like a user would: keys, clicks, paint, runs."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from core.store import repo, review
from rea2seg_gui.canvas import LAYERS, DragMode
from rea2seg_gui.models import tiny_lisa_preset


def _status(store, sid):
    return store.run(lambda s: repo.get_sample(s, sid).status, write=False)


def test_opens_demo_and_navigates_with_keys(qtbot, window):
    assert window.samples_panel.row_count() == 40
    assert (
        window.isVisible() and window.questions_dock.isHidden()
    )  # the demo has no generated questions
    assert window.state.sample_id == 1
    assert window.state.image is not None and window.state.image.shape == (360, 480, 3)
    assert window.state.gt is not None and window.state.gt.any()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_N)
    assert window.state.sample_id == 2
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Down)
    assert window.state.sample_id == 3
    qtbot.keyClick(window, QtCore.Qt.Key.Key_P)
    assert window.state.sample_id == 2


def test_accept_reject_flag_keys_write_the_store_and_advance(qtbot, window, demo_store, reasons):
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)
    assert _status(demo_store, 1) == "verified" and window.state.sample_id == 2
    reasons["answers"] = [("two cups match", True)]
    qtbot.keyClick(window, QtCore.Qt.Key.Key_R)
    assert _status(demo_store, 2) == "rejected" and window.state.sample_id == 3
    assert (
        reasons["asked"] == ["Why is sample 2 rejected?"]
        and review.history(demo_store, 2)[-1].note == "two cups match"
    )
    window.review_panel.note_edit.setText("two objects match")
    qtbot.keyClick(window, QtCore.Qt.Key.Key_F)
    assert _status(demo_store, 3) == "flagged"
    hist = review.history(demo_store, 3)
    assert hist[-1].note == "two objects match" and hist[-1].user == "tester"
    # filter by status
    window.samples_panel.status_filter.setCurrentText("verified")
    assert window.samples_panel.row_count() == 1


def test_edit_question_inline_then_undo_redo(qtbot, window, demo_store):
    window.review_panel.question_edit.setText("Which cylinder is the tallest?")
    qtbot.keyClick(window.review_panel.question_edit, QtCore.Qt.Key.Key_Return)
    q = lambda: demo_store.run(lambda s: repo.get_sample(s, 1).question, write=False)  # noqa: E731
    assert q() == "Which cylinder is the tallest?"
    assert window.viewer.question() == "Which cylinder is the tallest?"
    window.setFocus()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert q() != "Which cylinder is the tallest?"
    qtbot.keyClick(
        window,
        QtCore.Qt.Key.Key_Z,
        QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier,
    )
    assert q() == "Which cylinder is the tallest?"
    assert window.review_panel.history_count() == 3


def test_empty_question_is_refused_plainly(qtbot, window, demo_store, monkeypatch):
    import rea2seg_gui.main_window as mw

    shown = []
    monkeypatch.setattr(mw, "message", lambda parent, title, text, **k: shown.append(text))
    window.review_panel.question_edit.setText("   ")
    window.review_panel.question_edit.returnPressed.emit()
    assert shown and "empty" in shown[0]
    assert review.history(demo_store, 1) == []


def test_flag_without_a_note_asks_for_one(qtbot, window, demo_store, monkeypatch):
    from PySide6 import QtWidgets

    answers = iter([("", False), ("the mask misses the handle", True)])
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", lambda *a, **k: next(answers))
    qtbot.keyClick(window, QtCore.Qt.Key.Key_F)  # cancelled: nothing changes
    assert _status(demo_store, 1) == "pending" and window.state.sample_id == 1
    qtbot.keyClick(window, QtCore.Qt.Key.Key_F)
    assert _status(demo_store, 1) == "flagged" and window.state.sample_id == 2
    assert review.history(demo_store, 1)[-1].note == "the mask misses the handle"


def _saved(store, sid=1):
    return store.run(lambda s: repo.edited_mask(s, sid), write=False)


def _provenance(store, sid=1):
    from core.store.models import Mask, Sample

    def q(s):
        mask_id = s.get(Sample, sid).edited_mask_id
        return None if mask_id is None else s.get(Mask, mask_id).provenance

    return store.run(q, write=False)


def test_paint_strokes_are_saved_at_once_and_undone_with_ctrl_z(qtbot, window, demo_store):
    gt = window.state.gt.copy()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_B)
    assert window.editing.tool == "brush" and window.canvas.drag_mode is DragMode.PAINT
    window.edit_panel.set_brush_radius(5)
    with qtbot.waitSignal(window.review.mask_saved, timeout=5000):
        window.canvas.dragged.emit(100.0, 100.0, 140.0, 100.0)
        assert window.canvas.items["edited"][0].image[
            100, 120
        ]  # drawn live, saved when the stroke ends
        window.canvas.drag_finished.emit()
    painted = _saved(demo_store)
    assert painted[100, 120] and painted[100, 100] and not painted[100, 150]
    assert np.array_equal(painted | gt, painted)  # painting starts from the ground truth
    assert _provenance(demo_store) == {"tool": "brush", "radius": 5, "base": "ground truth"}
    qtbot.keyClick(window, QtCore.Qt.Key.Key_E)
    window.canvas.clicked.emit(120.0, 100.0, 1)  # one eraser dab
    assert not _saved(demo_store)[100, 120]
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(_saved(demo_store), painted) and np.array_equal(
        window.state.edit_mask, painted
    )
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert _saved(demo_store) is None and window.state.edit_mask is None
    hist = review.history(demo_store, 1)
    assert [(h.field, h.action) for h in hist] == [("edited_mask", "edit")] * 2 + [
        ("edited_mask", "undo")
    ] * 2


def test_polygon_tool_fills_and_erases_and_cleanups_apply(qtbot, window, demo_store):
    window.edit_panel.cleanup_buttons["clear"].click()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_L)
    assert window.editing.tool == "polygon"
    for x, y in ((10, 10), (60, 10), (60, 40)):
        window.canvas.clicked.emit(float(x), float(y), 1)
    window.canvas.clicked.emit(10.0, 40.0, 1)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Backspace)  # drop the last vertex: a triangle is left
    assert len(window.editing.poly_points) == 3 and window.canvas.polygon_item.xData is not None
    window.canvas.clicked.emit(10.0, 40.0, 1)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Return)
    m = _saved(demo_store)
    assert m[11:40, 11:60].all() and m.sum() == (51 * 31) and window.editing.poly_points == []
    assert _provenance(demo_store)["points_xy"] == [[10, 10], [60, 10], [60, 40], [10, 40]]
    # a hole (erased polygon) and a speck
    for x, y in ((20, 20), (30, 20), (30, 30), (20, 30)):
        window.canvas.clicked.emit(float(x), float(y), 1)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Return, QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert not _saved(demo_store)[25, 25]
    window.edit_panel.cleanup_buttons["fill_holes"].click()
    assert _saved(demo_store)[25, 25] and _provenance(demo_store)["tool"] == "fill_holes"
    window.edit_panel.choose_tool("brush")
    window.edit_panel.set_brush_radius(1)
    window.canvas.clicked.emit(200.0, 200.0, 1)
    assert _saved(demo_store)[200, 200]
    window.edit_panel.cleanup_buttons["remove_specks"].click()
    assert not _saved(demo_store)[200, 200] and _saved(demo_store)[25, 25]
    # Enter in the question field still saves the question with the polygon tool active
    window.edit_panel.choose_tool("polygon")
    window.review_panel.question_edit.setFocus()
    window.review_panel.question_edit.setText("Which object is the widest?")
    qtbot.keyClick(window.review_panel.question_edit, QtCore.Qt.Key.Key_Return)
    assert (
        demo_store.run(lambda s: repo.get_sample(s, 1).question, write=False)
        == "Which object is the widest?"
    )


def test_every_layer_toggles_with_its_shortcut(qtbot, window):
    for spec in LAYERS:
        before = window.canvas.visible[spec.key]
        qtbot.keyClick(window, spec.shortcut)
        assert window.canvas.visible[spec.key] is (not before)
        assert window.layers_panel.checks[spec.key].isChecked() is (not before)


@pytest.mark.slow  # builds the tiny random models
def test_tiny_random_run_from_the_gui_fills_the_trace_views(qtbot, window, demo_store):
    window.samples_panel.select_row(0)
    window.run_panel.set_preset(tiny_lisa_preset())
    with qtbot.waitSignal(window.run_finished, timeout=120_000) as blocker:
        window.run_panel.start_button.click()
        assert (
            not window.run_panel.start_button.isEnabled()
            and window.run_panel.cancel_button.isEnabled()
        )
    run_id = blocker.args[0]
    assert demo_store.run(lambda s: repo.finished_sample_ids(s, run_id), write=False) == {1}
    assert window.state.trace is not None and window.viewer.banner_text() is not None
    assert (
        window.candidates_panel.table.rowCount() == 0
    )  # the gallery is built when its tab is shown
    window.tabs.setCurrentWidget(window.candidates_panel)
    assert window.candidates_panel.table.rowCount() == len(window.state.trace.candidates) > 0
    assert (
        window.canvas.items["attention"]
        and window.canvas.items["seeds"]
        and window.canvas.items["graph"]
    )
    lo, hi = window.canvas.attention_range
    assert window.canvas.colorbar.isVisible() and window.canvas.colorbar.levels() == pytest.approx(
        (lo, hi)
    )
    window.layers_panel.checks["attention"].setChecked(False)
    assert not window.canvas.colorbar.isVisible()
    assert "RANDOM WEIGHTS" in window.candidates_panel.trace_info.toPlainText()
    # a candidate shows on the canvas and can become the edited mask, with provenance
    window.candidates_panel.table.selectRow(0)
    assert window.canvas.items["candidate"]
    window.candidates_panel.use_button.click()
    hist = review.history(demo_store, 1)
    assert hist[-1].field == "edited_mask"


def test_unconfigured_presets_are_disabled_with_the_reason(qtbot, window):
    model = window.run_panel.preset.model()
    idx = window.run_panel.preset.findText("lisa-7b")
    assert not model.item(idx).isEnabled() and "mllm_path" in model.item(idx).toolTip()
    assert model.item(window.run_panel.preset.findText(tiny_lisa_preset())).isEnabled()
    sam_model = window.edit_panel.sam_preset.model()
    assert (
        "sam2_checkpoint"
        in sam_model.item(window.edit_panel.sam_preset.findText("lens-3b")).toolTip()
    )
    ev = window.run_panel.eval_preset.model()
    assert "base_url" in ev.item(window.run_panel.eval_preset.findText("openai")).toolTip()


def test_a_broken_checkpoint_is_shown_not_raised(qtbot, window, tmp_path):
    from rea2seg_gui.models import save_config

    (tmp_path / "lisa").mkdir()
    (tmp_path / "sam.pth").write_bytes(b"not a checkpoint")
    save_config(
        {
            "presets": {
                "lisa-7b": {
                    "mllm_path": str(tmp_path / "lisa"),
                    "sam_checkpoint": str(tmp_path / "sam.pth"),
                }
            }
        }
    )
    window.refresh_presets()
    assert (
        window.run_panel.preset.model()
        .item(window.run_panel.preset.findText("lisa-7b"))
        .isEnabled()
    )
    window.run_panel.set_preset("lisa-7b")
    window.samples_panel.select_row(0)
    with qtbot.waitSignal(window.run_failed, timeout=60_000) as blocker:
        window.run_panel.start_button.click()
    assert "lisa" in blocker.args[0] and "Traceback" not in blocker.args[0]
    assert "Run failed" in window.run_panel.error.toPlainText()
    assert window.run_panel.start_button.isEnabled() and not window.jobs.busy


def test_window_layout_and_recent_stores_are_remembered(qtbot, window, settings, demo_store):
    window.close()
    assert settings.value("window/geometry") is not None
    assert settings.value("recent")[0] == demo_store.url


def _wait_sam(qtbot, window, click):
    with qtbot.waitSignal(window.editing.sam_finished, timeout=60_000):
        click()
    assert not window.jobs.busy


@pytest.mark.slow  # builds the tiny random models
def test_sam_clicks_refine_the_mask_and_backspace_undoes_a_click(qtbot, window, demo_store):
    window.edit_panel.sam_preset.setCurrentText(tiny_lisa_preset())
    window.edit_panel.sam_prompt.setCurrentIndex(0)  # no mask prompt
    qtbot.keyClick(window, QtCore.Qt.Key.Key_S)
    assert window.editing.tool == "sam" and window.canvas.drag_mode is DragMode.PAN
    _wait_sam(qtbot, window, lambda: window.canvas.clicked.emit(200.0, 150.0, 1))  # positive
    first = _saved(demo_store)
    _wait_sam(qtbot, window, lambda: window.canvas.clicked.emit(20.0, 20.0, 2))  # negative
    prov = _provenance(demo_store)
    assert (
        prov["tool"] == "sam" and prov["labels"] == [1, 0] and prov["points_xy"][1] == [20.0, 20.0]
    )
    assert (
        prov["is_random"] is True
        and prov["mask_prompt"] is None
        and "RANDOM" in window.edit_panel.state()
    )
    assert window.canvas.clicks_item.data.shape[0] == 2
    assert (
        "SAM, 2 clicks (random weights)" in window.review_panel.history_table.item(0, 3).text()
    )  # newest first
    sam, _ = window.models.sam(tiny_lisa_preset())
    assert sam.embed_calls == 1  # the image embedding is computed once for every click
    _wait_sam(qtbot, window, lambda: qtbot.keyClick(window, QtCore.Qt.Key.Key_Backspace))
    assert _provenance(demo_store)["points_xy"] == [[200.0, 150.0]]
    assert np.array_equal(_saved(demo_store), first)  # same prompts, same mask
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Backspace)  # every click undone: the mask from before
    assert _saved(demo_store) is None and window.editing.sam_points == []


@pytest.mark.slow  # builds the tiny random models
def test_sam_reprompted_with_a_candidate_mask(qtbot, window, demo_store):
    window.samples_panel.select_row(0)
    with qtbot.waitSignal(window.run_finished, timeout=120_000) as blocker:
        window.run_panel.start_button.click()
    window.tabs.setCurrentWidget(window.candidates_panel)
    window.candidates_panel.table.selectRow(1)
    cid = window.candidates_panel.selected_candidate().id
    window.edit_panel.sam_preset.setCurrentText(tiny_lisa_preset())
    window.edit_panel.sam_prompt.setCurrentIndex(window.edit_panel.sam_prompt.findData("candidate"))
    _wait_sam(qtbot, window, lambda: qtbot.keyClick(window, QtCore.Qt.Key.Key_M))  # the mask alone
    prov = _provenance(demo_store)
    assert prov["points_xy"] == [] and prov["mask_prompt"] == {
        "source": "candidate",
        "from_candidate": cid,
        "run": blocker.args[0],
    }
    _wait_sam(qtbot, window, lambda: window.canvas.clicked.emit(100.0, 100.0, 1))
    prov = _provenance(demo_store)
    assert prov["points_xy"] == [[100.0, 100.0]] and prov["mask_prompt"]["from_candidate"] == cid
    # the run and the click tool share one SAM and its embedding cache
    assert (
        window.models.sam(tiny_lisa_preset())[0]
        is window.models.loaded_segmenter(tiny_lisa_preset()).sam
    )


def test_open_a_store_by_url_and_a_bad_one_is_explained(qtbot, window, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    from core.demo import ensure_demo_store

    other = ensure_demo_store(tmp_path / "other.sqlite")
    monkeypatch.setattr(
        QtWidgets.QInputDialog, "getText", lambda *a, **k: (f"sqlite:///{other}", True)
    )
    window._open_url_dialog()
    assert window.store.url == f"sqlite:///{other}" and window.samples_panel.row_count() == 40
    import rea2seg_gui.main_window as mw

    shown = []
    monkeypatch.setattr(mw, "message", lambda parent, title, text, **k: shown.append(text))
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database at all" * 50)
    yes = QtWidgets.QMessageBox.StandardButton.Yes  # "move it aside?" (asked first)
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", lambda *a, **k: yes)
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
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)[
        :, : img.width()
    ]
    assert arr.shape[:2] == (360, 480)
    assert np.array_equal(arr[..., 3] > 0, m)
    assert tuple(arr[10, 20, :3]) == LAYER_BY_KEY["edited"].color


def test_masks_stay_pixel_exact_on_screen_at_high_zoom(qtbot, window):
    """Zoomed in so one image pixel covers many screen pixels: a mask edge stays a hard step."""
    window.layers_panel.checks["image"].setChecked(
        False
    )  # the image hidden: only the mask is drawn
    window.canvas.set_legend_visible(False)  # its swatch would count as mask pixels
    for key in ("gt", "attention", "seeds", "candidate"):
        window.layers_panel.checks[key].setChecked(False)
    m = np.zeros((360, 480), bool)
    m[100, 100] = True
    window.canvas.set_mask("edited", m)
    window.layers_panel.sliders["edited"].setValue(100)
    window.canvas.view.setRange(QtCore.QRectF(97, 97, 6, 6), padding=0)
    qtbot.wait(50)
    img = (
        window.canvas.grab()
        .toImage()
        .convertToFormat(window.canvas.grab().toImage().Format.Format_RGB888)
    )
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[
        :, : img.width() * 3
    ]
    arr = arr.reshape(img.height(), img.width(), 3).astype(int)
    red = (arr[..., 0] > 200) & (arr[..., 1] < 100)
    ys, xs = np.nonzero(red)
    assert len(ys) > 100  # the one pixel is a big square
    block = arr[ys.min() + 1 : ys.max(), xs.min() + 1 : xs.max()]
    assert (np.abs(block - block[0, 0]).max()) <= 2  # one flat colour, no interpolation
    row = arr[(ys.min() + ys.max()) // 2, xs.min() - 6 : xs.max() + 6]
    colours = {tuple(c // 8) for c in row}
    assert len(colours) <= 3  # background and mask (and at most one edge pixel), no ramp


def test_hidden_image_layer_still_takes_clicks(qtbot, window, demo_store):
    qtbot.keyClick(window, "I")
    assert window.canvas.visible["image"] is False and window.canvas.image_item.opacity() == 0
    window.edit_panel.choose_tool("brush")
    window.canvas.clicked.emit(30.0, 30.0, 1)
    assert _saved(demo_store)[30, 30]
    window.layers_panel.sliders["image"].setValue(40)
    assert window.canvas.image_item.opacity() == 0  # stays hidden until toggled back
    qtbot.keyClick(window, "I")
    assert window.canvas.image_item.opacity() == pytest.approx(0.4)


def test_cheat_sheet_opens_with_f1_and_question_mark(qtbot, window):
    qtbot.keyClick(window, QtCore.Qt.Key.Key_F1)
    assert window.cheatsheet.isVisible() and "Backspace" in window.cheatsheet.text()
    window.cheatsheet.close()
    qtbot.keyClick(window, "?")
    assert window.cheatsheet.isVisible()


def _ended(thread) -> bool:
    import shiboken6

    return not shiboken6.isValid(thread) or thread.isFinished()  # deleted once finished


def test_worker_reports_progress_result_and_errors_on_signals(qtbot):
    from rea2seg_gui import worker as workers

    parent = QtCore.QObject()
    seen = []

    def job(progress, should_cancel):
        for i in range(3):
            progress(i + 1, 3, f"step {i}")
            if should_cancel():
                return "cancelled"
        return "ok"

    w = workers.Worker(job)
    w.progress.connect(lambda d, t, label: seen.append((d, t, label)))
    with qtbot.waitSignal(w.finished, timeout=5000) as blocker:
        thread = workers.start(w, parent)
    assert blocker.args == ["ok"] and seen == [(1, 3, "step 0"), (2, 3, "step 1"), (3, 3, "step 2")]
    qtbot.waitUntil(lambda: _ended(thread), timeout=5000)

    def bad(progress, should_cancel):
        raise FileNotFoundError("/models/x.pth: no such checkpoint")

    w2 = workers.Worker(bad)
    with qtbot.waitSignal(w2.failed, timeout=5000) as blocker:
        t2 = workers.start(w2, parent)
    assert blocker.args[0] == "FileNotFoundError: /models/x.pth: no such checkpoint"
    qtbot.waitUntil(lambda: _ended(t2), timeout=5000)


@pytest.mark.slow  # builds the tiny random models
def test_a_slow_trace_is_drawn_when_it_arrives(qtbot, window, demo_store, monkeypatch):
    """Switching samples does not wait for a slow trace: image and masks first, the trace after."""
    import time

    from core.store import repo as repo_mod

    with qtbot.waitSignal(window.run_finished, timeout=120_000):
        window.run_panel.start_button.click()
    window.review.step(1)
    slow = repo_mod.load_trace

    def load_trace(*a, **k):
        time.sleep(0.3)
        return slow(*a, **k)

    monkeypatch.setattr(repo_mod, "load_trace", load_trace)
    window.loader.forget_read_ahead()
    window.loader.trace_wait_s = 0.0
    with qtbot.waitSignal(window.review.trace_shown, timeout=10_000) as blocker:
        window.review.show_sample(1)
        assert window.state.trace is None  # not waited for (the latency: bench/gui_latency.py)
        assert window.state.image is not None and window.canvas.items["gt"]
        assert "loading" in window.layers_panel.legend()
    assert blocker.args == [1] and window.state.trace is not None and window.canvas.items["seeds"]
    # a trace that arrives after the user moved on is not drawn
    window.review.show_sample(1)
    window.review.show_sample(2)
    qtbot.wait(600)
    assert window.state.sample_id == 2 and window.state.trace is None


def test_review_keys_work_wherever_the_focus_is(qtbot, window, demo_store, reasons):
    window.samples_panel.table.setFocus()
    qtbot.keyClick(window.samples_panel.table, QtCore.Qt.Key.Key_A)
    assert _status(demo_store, 1) == "verified" and window.state.sample_id == 2
    qtbot.keyClick(window.samples_panel.table, QtCore.Qt.Key.Key_Down)
    assert window.state.sample_id == 3
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, QtCore.Qt.Key.Key_R)
    assert _status(demo_store, 3) == "rejected"
    # typing in the note field types; it does not review
    window.review_panel.note_edit.setFocus()
    qtbot.keyClicks(window.review_panel.note_edit, "RAF")
    assert window.review_panel.note_edit.text() == "RAF" and _status(demo_store, 4) == "pending"


def test_note_field_enter_accepts_and_esc_leaves(qtbot, window, demo_store, reasons):
    from core.store import review

    window.samples_panel.select_row(0)
    sid = window.state.sample_id
    window.review_panel.note_edit.setFocus()
    qtbot.keyClicks(window.review_panel.note_edit, "looks right")
    qtbot.keyClick(window.review_panel.note_edit, QtCore.Qt.Key.Key_Return)
    assert _status(demo_store, sid) == "verified" and window.state.sample_id != sid
    assert (
        review.history(demo_store, sid)[-1].note == "looks right"
        and window.review_panel.note_edit.text() == ""
    )
    window.review_panel.note_edit.setFocus()
    qtbot.keyClick(window.review_panel.note_edit, QtCore.Qt.Key.Key_Escape)
    assert not window.review_panel.note_edit.hasFocus()
    nxt = window.state.sample_id
    qtbot.keyClick(window.canvas, QtCore.Qt.Key.Key_R)
    assert _status(demo_store, nxt) == "rejected" and window.review_panel.note_edit.text() == ""


def test_brush_outline_follows_the_pointer(qtbot, window):
    window.edit_panel.choose_tool("brush")
    window.edit_panel.set_brush_radius(10)
    c = window.canvas
    centre = c.view.mapViewToScene(QtCore.QPointF(200, 150))
    pos = c.mapFromScene(centre)
    qtbot.mouseMove(c.viewport(), pos)
    qtbot.mouseMove(c.viewport(), pos + QtCore.QPoint(1, 1))
    qtbot.waitUntil(c.brush_outline.isVisible, timeout=2000)
    r = c.brush_outline.rect()
    assert (
        r.width() == pytest.approx(21)
        and abs(r.center().x() - 200.5) <= 2
        and abs(r.center().y() - 150.5) <= 2
    )
    window.edit_panel.choose_tool("none")
    assert not c.brush_outline.isVisible()
