"""The window's keyboard shortcuts (the keys :data:`rea2seg_gui.shortcuts.SHORTCUTS` lists) and
the cheat sheet that shows that table."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from rea2seg_gui import preferences as prefs
from rea2seg_gui.canvas_layers import LAYERS
from rea2seg_gui.key_guard import AppFilter, FocusKeeper, KeyBurst, KeysLabel, is_text_input
from rea2seg_gui.layer_style import LEGEND_SHORTCUT, OUTLINE_SHORTCUT
from rea2seg_gui.shortcuts import SHORTCUTS

if TYPE_CHECKING:
    from rea2seg_gui.main_window import MainWindow

NEXT_PENDING_KEY = "Shift+N"
TOOL_KEYS = (("B", "brush"), ("E", "eraser"), ("L", "polygon"), ("S", "sam"), ("X", "box"))


def bind_keys(window: MainWindow) -> list[QtGui.QShortcut]:
    """Bind every shortcut on ``window``; returns the polygon's Enter shortcuts (enabled only
    with the polygon tool, so that Enter in the question field keeps saving the question)."""

    def sc(key: str, fn: Callable[[], object]) -> QtGui.QShortcut:
        s = QtGui.QShortcut(QtGui.QKeySequence(key), window)
        s.activated.connect(fn)
        return s

    ed, ep, rv = window.editing, window.edit_panel, window.review
    burst = install_key_guards(window)

    def guarded(key: str, fn: Callable[[], object], decision: bool = True) -> None:
        def act() -> None:
            if burst.allow():
                before = len(rv.undo_log)
                fn()
                if decision and len(rv.undo_log) > before:
                    burst.decided()
            else:
                window.statusBar().showMessage(
                    f"{key} ignored: it came in a burst of typed letters (click the field you "
                    "meant to type into; the interval is a setting)"
                )

        sc(key, act)

    guarded("A", lambda: rv.decide("accept"))
    guarded("R", lambda: rv.decide("reject"))
    guarded("F", lambda: rv.decide("flag"))
    guarded("N", lambda: rv.step(1), decision=False)
    guarded("P", lambda: rv.step(-1), decision=False)
    guarded(NEXT_PENDING_KEY, rv.next_pending, decision=False)
    sc("Down", lambda: rv.step(1))
    sc("Up", lambda: rv.step(-1))
    sc("F5", window.refresher.refresh)
    sc("Ctrl+Z", rv.undo)
    sc("Ctrl+Shift+Z", rv.redo)
    sc("Ctrl+0", window.canvas.fit)
    sc("Ctrl+Shift+O", window.open_ask_image)
    sc("Ctrl+Shift+V", window.paste_ask_image)
    sc("F1", window.show_cheatsheet)
    sc("?", window.show_cheatsheet)
    for key, tool in TOOL_KEYS:
        sc(key, lambda t=tool: ep.choose_tool(t))
    sc("Esc", lambda: _escape(window))
    sc("[", lambda: ep.set_brush_radius(ep.brush_radius() - 2))
    sc("]", lambda: ep.set_brush_radius(ep.brush_radius() + 2))
    sc("Backspace", ed.undo_click)
    sc("M", ed.sam_prompt_mask_only)
    poly_fill = [
        sc("Return", lambda: _close_polygon(window, True)),
        sc("Enter", lambda: _close_polygon(window, True)),
        sc("Shift+Return", lambda: _close_polygon(window, False)),
    ]
    for s in poly_fill:
        s.setEnabled(False)
    ep.tool_chosen.connect(lambda name: [s.setEnabled(name == "polygon") for s in poly_fill])
    for spec in LAYERS:
        sc(spec.shortcut, lambda k=spec.key: window.layers_panel.toggle(k))
    style = window.layers_panel.style_controls
    sc(OUTLINE_SHORTCUT, style.outline_check.toggle)
    sc(LEGEND_SHORTCUT, style.legend_check.toggle)
    return poly_fill


def install_key_guards(window: MainWindow) -> KeyBurst:
    """The burst guard (``window.key_burst``), the focus keeper that returns the focus to the
    sample list after every modal dialog, and the status-bar label of the tool and of where keys
    go (``window.keys_label``)."""
    burst = window.key_burst = KeyBurst(
        window, int(prefs.read(window.settings, prefs.KEY_BURST_MS))
    )
    burst.typing_after_decision.connect(lambda: _undo_typed_decision(window))
    table = window.samples_panel.table
    window.focus_keeper = FocusKeeper(window, table)
    window.key_filter = AppFilter(window, burst, window.focus_keeper)
    names = {
        table: "sample list",
        window.canvas: "canvas",
        window.review_panel.question_edit: "the question field",
        window.review_panel.note_edit: "the note field",
        window.samples_panel: "sample filters",
    }
    window.keys_label = KeysLabel(window, names)
    window.statusBar().addPermanentWidget(window.keys_label)
    window.edit_panel.tool_chosen.connect(window.keys_label.set_tool)
    return burst


def _undo_typed_decision(window: MainWindow) -> None:
    """The decision just made was the first letter of typed text: take it back."""
    window.review.undo()
    window.statusBar().showMessage(
        "a decision followed at once by more letters was typed text: it was undone"
    )


def _escape(window: MainWindow) -> None:
    fw = QtWidgets.QApplication.focusWidget()
    if is_text_input(fw):  # Esc leaves a text field; the review keys work again
        window.samples_panel.table.setFocus()
        return
    window.editing.escape()


def _close_polygon(window: MainWindow, add: bool) -> None:
    fw = QtWidgets.QApplication.focusWidget()
    if isinstance(fw, QtWidgets.QLineEdit):  # Enter in a text field keeps its meaning
        fw.returnPressed.emit()
        return
    window.editing.close_polygon(add)


def cheatsheet(parent: QtWidgets.QWidget) -> QtWidgets.QMessageBox:
    """The shortcut table in a non-modal message box, shown."""
    rows = "".join(
        f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in SHORTCUTS
    )
    box = QtWidgets.QMessageBox(parent)
    box.setWindowTitle("Keyboard shortcuts")
    box.setTextFormat(QtCore.Qt.TextFormat.RichText)  # our own escaped table, no user or model text
    box.setText(f"<table cellpadding=4>{rows}</table>")
    box.setModal(False)
    box.show()
    return box
