"""The window on a small screen: at 1024 × 700 the canvas keeps a usable width and no Inspector
tab is squeezed (they scroll); the window never opens larger than its screen (the offscreen
screen is 800 × 800); a long question wraps while it is edited."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as hst
from PySide6 import QtCore, QtWidgets

from rea2seg_gui.window_layout import clamp_rect
from tests.gui.test_questions_panel import generated_store  # noqa: F401 - a fixture

LONG = (
    "Which of the three cylinders standing behind the large red cube, counted from the left "
    "edge of the table, is the one whose shadow falls on the small green sphere near the back?"
)


def _settle(qtbot, window) -> None:
    qtbot.wait(50)  # the dock layout and the canvas guard run from the event loop
    QtWidgets.QApplication.processEvents()


def _no_page_squeezed(window) -> None:
    tabs = window.tabs
    for i in range(tabs.count()):
        tabs.setCurrentIndex(i)
        QtWidgets.QApplication.processEvents()
        area, panel = tabs.page(i), tabs.widget(i)
        assert isinstance(area, QtWidgets.QScrollArea) and area.widget() is panel
        need = panel.minimumSizeHint()
        assert panel.width() >= need.width() and panel.height() >= need.height(), (
            tabs.tabText(i),
            panel.size(),
            need,
        )
        if need.height() > area.viewport().height():  # taller than the dock: it scrolls
            assert area.verticalScrollBar().maximum() > 0, tabs.tabText(i)


def test_at_1024x700_the_canvas_keeps_its_width_and_the_inspector_scrolls(qtbot, window):
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: window.canvas.width() >= 400, timeout=3000)
    _settle(qtbot, window)
    assert window.width() == 1024 and window.height() == 700
    assert window.canvas.width() >= 400 and window.canvas.height() >= 300
    # both side docks stay open and usable
    assert window.samples_dock.isVisible() and window.samples_panel.table.width() >= 180
    assert window.inspector_dock.isVisible() and window.inspector_dock.width() >= 220
    _no_page_squeezed(window)
    # the tabs still speak of the panels
    window.tabs.setCurrentWidget(window.candidates_panel)
    assert window.tabs.currentWidget() is window.candidates_panel
    assert window.tabs.indexOf(window.candidates_panel) == window.tabs.currentIndex()


def test_at_1024x700_with_the_generated_question_dock(qtbot, generated_store, settings):  # noqa: F811
    from rea2seg_gui.main_window import MainWindow

    st, _server = generated_store
    w = MainWindow(st, user="ann", settings=settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(20)
    w.resize(1024, 700)  # larger than the offscreen screen: a test may
    w.samples_panel.select_row(0)
    qtbot.waitUntil(lambda: w.canvas.width() >= 400, timeout=3000)
    _settle(qtbot, w)
    assert w.questions_dock.isVisible()
    assert w.canvas.width() >= 400 and w.canvas.height() >= 200, w.canvas.size()
    _no_page_squeezed(w)
    w.close()


def test_the_window_never_opens_larger_than_its_screen(qtbot, demo_store, settings):
    from rea2seg_gui.main_window import MainWindow

    def opened() -> MainWindow:
        w = MainWindow(demo_store, user="t", settings=settings)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        qtbot.wait(20)  # the frame's margins are known once shown
        return w

    w = opened()  # the default size, on the 800 × 800 offscreen screen
    avail = w.screen().availableGeometry()
    assert avail.width() < 1500  # the default width does not fit: this test can fail
    assert avail.contains(w.frameGeometry()), (avail, w.frameGeometry())
    # a geometry saved on a larger screen (or a second one, now gone) comes back clamped
    w.setMinimumSize(0, 0)
    w.setGeometry(2500, 1800, 2400, 1400)
    w.close()
    assert settings.value("window/geometry") is not None
    w2 = opened()
    assert avail.contains(w2.frameGeometry()), (avail, w2.frameGeometry())
    assert w2.width() <= avail.width() and w2.height() <= avail.height()
    w2.close()


@given(
    hst.tuples(*[hst.integers(-5000, 5000)] * 2, *[hst.integers(1, 6000)] * 2),
    hst.tuples(*[hst.integers(-100, 100)] * 2, *[hst.integers(100, 4000)] * 2),
)
def test_clamp_rect_lies_inside_the_available_area(rect, avail):
    r = clamp_rect(QtCore.QRect(*rect), QtCore.QRect(*avail))
    a = QtCore.QRect(*avail)
    assert a.contains(r)
    assert r.width() == min(rect[2], avail[2]) and r.height() == min(rect[3], avail[3])
    if a.contains(QtCore.QRect(*rect)):
        assert r == QtCore.QRect(*rect)  # a rectangle that fits is left alone


def test_a_long_question_wraps_while_edited_and_enter_saves_it(qtbot, window, demo_store):
    from core.store import repo

    window.resize(1024, 700)
    window.tabs.setCurrentWidget(window.review_panel)
    _settle(qtbot, window)
    q = window.review_panel.question_edit
    assert isinstance(q, QtWidgets.QPlainTextEdit)  # several lines, not a one-line field
    q.setFocus()
    q.setText(LONG)
    q.setModified(True)
    _settle(qtbot, window)
    line = q.fontMetrics().lineSpacing()
    assert q.fontMetrics().horizontalAdvance(LONG) > q.viewport().width()  # longer than a line
    assert q.height() >= 2 * line and q.lines_shown() >= 2
    assert q.horizontalScrollBar().maximum() == 0  # wrapped, never scrolled sideways
    assert q.verticalScrollBar().maximum() == 0  # every line of it is shown
    qtbot.keyClick(q, QtCore.Qt.Key.Key_Return)  # Enter saves, it is no new line
    assert demo_store.run(lambda s: repo.get_sample(s, 1).question, write=False) == LONG
    assert "\n" not in q.text()
    qtbot.keyClick(q, QtCore.Qt.Key.Key_Escape)
    assert not q.hasFocus()
