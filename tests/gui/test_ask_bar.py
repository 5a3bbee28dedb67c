"""The Ask bar: open, paste or drop an image, type a question, Enter asks; progressive drawing,
cancel and Add to store (tiny random presets: the answers are noise)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from core.store import repo
from rea2seg_gui.models import tiny_lisa_preset


def _image(path, hw=(48, 64)) -> np.ndarray:
    img = np.random.default_rng(0).integers(0, 255, (*hw, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img[:, :, ::-1])
    return img


def test_open_and_paste_show_the_image_and_enable_ask(qtbot, window, tmp_path):
    bar = window.ask_bar
    assert not bar.ask_button.isEnabled() and not bar.add_button.isEnabled()
    img = _image(tmp_path / "mine.png")
    assert window.asking.open_image(tmp_path / "mine.png")
    assert np.array_equal(window.asking.image, img) and window.canvas.hw == (48, 64)
    assert bar.ask_button.isEnabled() and "mine.png, 64x48" in bar.stage_text()
    # the clipboard's image, alpha dropped
    q = QtGui.QImage(5, 4, QtGui.QImage.Format.Format_ARGB32)
    q.fill(QtGui.QColor(10, 20, 30, 128))
    QtWidgets.QApplication.clipboard().setImage(q)
    assert window.paste_ask_image()
    assert window.asking.image.shape == (4, 5, 3) and window.asking.image_path is None
    assert tuple(window.asking.image[0, 0]) == (10, 20, 30)


def test_an_ask_image_leaves_the_store_sample_and_a_sample_takes_the_canvas_back(
    qtbot, window, demo_store, tmp_path
):
    assert window.state.sample_id == 1
    _image(tmp_path / "mine.png")
    window.asking.open_image(tmp_path / "mine.png")
    assert window.state.sample_id is None and window.state.image is None
    qtbot.keyClick(window, QtCore.Qt.Key.Key_A)  # no sample: the review key does nothing
    assert demo_store.run(lambda s: repo.get_sample(s, 1).status, write=False) == "pending"
    window.samples_panel.select_row(1)
    assert window.state.sample_id == 2 and window.canvas.hw == (360, 480)
    assert not window.asking._on_canvas


def test_unreadable_image_is_reported_and_nothing_changes(qtbot, window, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with qtbot.waitSignal(window.asking.status, timeout=2000) as blocker:
        assert not window.asking.open_image(bad)
    assert str(bad) in blocker.args[0] and window.asking.image is None


def test_drop_of_an_image_file_opens_it(qtbot, window, tmp_path):
    _image(tmp_path / "dropped.png")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(tmp_path / "dropped.png"))])
    ev = QtGui.QDropEvent(
        QtCore.QPointF(10, 10),
        QtCore.Qt.DropAction.CopyAction,
        mime,
        QtCore.Qt.MouseButton.LeftButton,
        QtCore.Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(ev)
    assert window.asking.image_path == tmp_path / "dropped.png"


def test_enter_without_image_or_question_does_nothing(qtbot, window):
    with qtbot.assertNotEmitted(window.ask_bar.ask_requested):
        qtbot.keyClick(window.ask_bar.question, QtCore.Qt.Key.Key_Return)


def test_letters_typed_in_the_question_are_not_review_keys(qtbot, window, demo_store):
    window.ask_bar.question.setFocus()
    qtbot.keyClicks(window.ask_bar.question, "a red fan")
    assert window.ask_bar.question.text() == "a red fan"
    assert demo_store.run(lambda s: repo.get_sample(s, 1).status, write=False) == "pending"
    assert window.state.sample_id == 1


@pytest.mark.slow  # builds the tiny random models
def test_enter_asks_draws_progressively_and_add_to_store_saves_a_sample(
    qtbot, window, demo_store, tmp_path
):
    window.run_panel.set_preset(tiny_lisa_preset())
    window.run_panel.set_evaluator("tiny-random")
    _image(tmp_path / "mine.png")
    window.asking.open_image(tmp_path / "mine.png")
    partial = []
    window.asking.partial.connect(partial.append)
    bar = window.ask_bar
    bar.question.setText("the thing on the left")
    with qtbot.waitSignal(window.asking.answered, timeout=120_000) as blocker:
        qtbot.keyClick(bar.question, QtCore.Qt.Key.Key_Return)
        assert bar.cancel_button.isEnabled() and not bar.ask_button.isEnabled()
    trace = blocker.args[0]
    assert partial and partial[0] is trace  # stage 1 was drawn before stage 2 ended
    assert trace.evaluator is not None and trace.question == "the thing on the left"
    assert window.canvas.items["attention"] and window.canvas.items["seeds"]
    assert window.canvas.masks["candidate"] is not None
    assert "RANDOM WEIGHTS" in (window.viewer.banner_text() or "")
    assert bar.stage_text().startswith("answer:") and bar.add_button.isEnabled()
    before = window.samples_panel.row_count()
    with qtbot.waitSignal(window.asking.saved, timeout=5000) as saved:
        bar.add_button.click()
    sid, run_id = saved.args
    q, ds = demo_store.run(
        lambda s: (repo.get_sample(s, sid).question, repo.get_sample(s, sid).dataset.name),
        write=False,
    )
    assert q == "the thing on the left" and ds == "ask"
    back = demo_store.run(lambda s: repo.load_trace(s, run_id, sid), write=False)
    assert back.evaluator.ranking == trace.evaluator.ranking
    assert window.samples_panel.row_count() == before + 1 and not bar.add_button.isEnabled()
    # the kept answer is shown as the ordinary sample it now is, with its run and trace
    assert window.state.sample_id == sid and window.candidates_panel.run_id() == run_id
    qtbot.waitUntil(lambda: window.state.trace is not None, timeout=10_000)
    assert window.state.trace.evaluator.ranking == trace.evaluator.ranking


@pytest.mark.slow  # builds the tiny random models
def test_cancel_stops_an_ask(qtbot, window, tmp_path, monkeypatch):
    import core.pipeline.ask as ask_mod

    window.run_panel.set_preset(tiny_lisa_preset())
    window.run_panel.set_evaluator(None)
    _image(tmp_path / "mine.png")
    window.asking.open_image(tmp_path / "mine.png")
    real_ask = ask_mod.ask

    def slow_ask(*a, should_cancel, **k):  # waits for the cancel before stage 1 starts
        import time

        t0 = time.monotonic()
        while not should_cancel() and time.monotonic() - t0 < 20:
            time.sleep(0.01)
        return real_ask(*a, should_cancel=should_cancel, **k)

    monkeypatch.setattr(ask_mod, "ask", slow_ask)
    window.ask_bar.question.setText("q")
    with qtbot.waitSignal(
        window.jobs.busy_changed, timeout=60_000, check_params_cb=lambda b, _: not b
    ):
        window.ask_bar.ask_button.click()
        window.ask_bar.cancel_button.click()
    assert window.asking.trace is None and window.ask_bar.stage_text() == "cancelled"
    assert not window.ask_bar.add_button.isEnabled() and window.ask_bar.ask_button.isEnabled()
