"""Keys land where the user thinks they do.

* :class:`KeyBurst` watches the printable keys that reach the window's shortcuts (not those typed
  into a text field) and refuses a review key (A / R / F / N / P / Shift+N) that arrives within
  ``interval_ms`` of a previous printable key that was not itself an honoured review key: a
  sentence typed while the focus was not in a text field is a burst of letters, and none of it
  decides a sample. A decision honoured just before such a burst (the burst's first letter) is
  reported through ``typing_after_decision`` (the window undoes it). While a reason is asked
  for (:meth:`KeyBurst.guard_dialog`), a dialog that keys reached before anyone could have
  read it does not take Enter: its OK button must be clicked.
* :class:`FocusKeeper` gives the focus back to the sample list whenever a modal dialog closes
  (a dialog otherwise hands it to whichever widget had it, or to the first in the chain: the
  status filter, where N and P change the filter).
* :class:`KeysLabel` is a status-bar label naming the current tool and where keys go.

:class:`AppFilter` is the one application-wide event filter that feeds the first two.

The interval is a preference (:data:`rea2seg_gui.preferences.KEY_BURST_MS`); not from the paper.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

from PySide6 import QtCore, QtGui, QtWidgets

Key = QtCore.Qt.Key
REVIEW_KEYS = frozenset({Key.Key_A, Key.Key_R, Key.Key_F, Key.Key_N, Key.Key_P})
DECISION_KEYS = frozenset({Key.Key_A, Key.Key_R, Key.Key_F})
_TEXT_INPUTS = (
    QtWidgets.QLineEdit,
    QtWidgets.QPlainTextEdit,
    QtWidgets.QTextEdit,
    QtWidgets.QAbstractSpinBox,
)
_COMMAND_MODS = (
    QtCore.Qt.KeyboardModifier.ControlModifier
    | QtCore.Qt.KeyboardModifier.AltModifier
    | QtCore.Qt.KeyboardModifier.MetaModifier
)
BLIND_HINT = (
    "\n\nKeys were arriving as this opened: check the text, then click OK (Enter is off here)."
)


def is_text_input(w: QtWidgets.QWidget | None) -> bool:
    return isinstance(w, _TEXT_INPUTS) and not getattr(w, "isReadOnly", lambda: False)()


def _printable(ev: QtGui.QKeyEvent) -> bool:
    return bool(ev.text()) and ev.text().isprintable() and not (ev.modifiers() & _COMMAND_MODS)


class KeyBurst(QtCore.QObject):
    """See the module docstring. ``clock()`` returns milliseconds (monotonic; tests pass their
    own); ``interval_ms`` 0 turns the guard off."""

    typing_after_decision = QtCore.Signal()

    def __init__(
        self,
        window: QtWidgets.QWidget,
        interval_ms: int,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(window)
        self._main = window
        self.interval_ms = interval_ms
        self.clock = clock or (lambda: time.monotonic() * 1000.0)
        self._last_t = -math.inf  # the newest printable key that reached the shortcuts
        self._last_honoured = False  # … was a review key that acted
        self._prev_t = -math.inf
        self._prev_honoured = False
        self._decided_t = -math.inf  # when the newest honoured decision acted
        self._dialog: _DialogGuard | None = None

    # ----------------------------------------------------------------------- events
    def key_event(self, obj: QtCore.QObject, ev: QtGui.QKeyEvent) -> bool:
        """A ShortcutOverride or KeyPress event on its way to ``obj``; True eats it."""
        t = ev.type()
        if self._dialog is not None:
            return self._dialog.key(obj, ev, self.clock())
        # ShortcutOverride goes first to the focus object, then up its parents: count it once
        if t == QtCore.QEvent.Type.ShortcutOverride and obj is QtWidgets.QApplication.focusObject():
            self._key(ev)
        return False

    def _key(self, ev: QtGui.QKeyEvent) -> None:
        fw = QtWidgets.QApplication.focusWidget()
        if not _printable(ev) or is_text_input(fw):
            return  # text typed into a field is text
        if fw is not None and fw.window() is not self._main:
            return
        now = self.clock()
        self._prev_t, self._prev_honoured = self._last_t, self._last_honoured
        self._last_t, self._last_honoured = now, False
        if (
            Key(ev.key()) not in REVIEW_KEYS
            and (ev.text().isalpha() or ev.text() == " ")  # words, not a layer digit or [ ]
            and self.interval_ms
            and now - self._decided_t < self.interval_ms
        ):
            self._decided_t = -math.inf
            self.typing_after_decision.emit()

    # ---------------------------------------------------------------------- the guard
    def allow(self) -> bool:
        """Whether the review key that just arrived may act (call it from the key's shortcut)."""
        burst = (
            self.interval_ms > 0
            and self.clock() - self._prev_t < self.interval_ms
            and not self._prev_honoured
        )
        if not burst:
            self._last_honoured = True
        return not burst

    def decided(self) -> None:
        """The key just allowed changed a sample: more letters right after it take it back."""
        self._decided_t = self.clock()

    @contextlib.contextmanager
    def guard_dialog(self) -> Iterator[None]:
        """While a modal dialog runs in the block: if a printable key reaches it within the
        interval of its opening (typing that started before it), its Enter is swallowed."""
        if not self.interval_ms:
            yield
            return
        self._dialog = _DialogGuard(self.clock(), self.interval_ms)
        try:
            yield
        finally:
            self._dialog = None


class _DialogGuard:
    def __init__(self, opened: float, interval_ms: int) -> None:
        self.last = opened
        self.interval_ms = interval_ms
        self.blind = False

    def key(self, obj: QtCore.QObject, ev: QtGui.QKeyEvent, now: float) -> bool:
        dialog = QtWidgets.QApplication.activeModalWidget()
        if dialog is None or not (obj is dialog or _inside(obj, dialog)):
            return False
        if ev.key() in (Key.Key_Return, Key.Key_Enter):
            if self.blind:
                return True  # swallowed: the OK button must be clicked
            return False
        if ev.type() != QtCore.QEvent.Type.KeyPress or not _printable(ev):
            return False
        if not self.blind and now - self.last < self.interval_ms:
            self.blind = True
            label = dialog.findChild(QtWidgets.QLabel)
            if label is not None:
                label.setText(label.text() + BLIND_HINT)
        self.last = now
        return False


def _inside(obj: QtCore.QObject, dialog: QtWidgets.QWidget) -> bool:
    return isinstance(obj, QtWidgets.QWidget) and dialog.isAncestorOf(obj)


class FocusKeeper(QtCore.QObject):
    """Focus ``target`` (and activate ``window``) when a modal dialog over ``window`` closes."""

    def __init__(self, window: QtWidgets.QWidget, target: QtWidgets.QWidget) -> None:
        super().__init__(window)
        self._main, self.target = window, target

    def hidden(self, obj: QtCore.QObject) -> None:
        """``obj`` was hidden: when it is a modal dialog over the window, restore the focus."""
        if (
            isinstance(obj, QtWidgets.QDialog)
            and (obj.isModal() or obj.windowModality() != QtCore.Qt.WindowModality.NonModal)
            and obj.parentWidget() is not None
            and obj.parentWidget().window() is self._main
        ):
            # after Qt has handed the focus back to whichever widget had it
            QtCore.QTimer.singleShot(0, self.restore)

    @QtCore.Slot()
    def restore(self) -> None:
        if QtWidgets.QApplication.activeModalWidget() is not None or not self.target.isVisible():
            return
        active = QtWidgets.QApplication.activeWindow()
        if active is None or not active.isVisible():
            self._main.activateWindow()
        self.target.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)


_KEY_TYPES = (QtCore.QEvent.Type.ShortcutOverride, QtCore.QEvent.Type.KeyPress)
_HIDE = QtCore.QEvent.Type.Hide


class AppFilter(QtCore.QObject):
    """One application-wide event filter for the burst guard and the focus keeper: every event
    of the application passes through it, so it is one Python call that looks at the type only."""

    def __init__(self, parent: QtCore.QObject, burst: KeyBurst, keeper: FocusKeeper) -> None:
        super().__init__(parent)
        self.burst, self.keeper = burst, keeper
        QtWidgets.QApplication.instance().installEventFilter(self)

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802 - Qt API
        t = ev.type()
        if t in _KEY_TYPES:
            return self.burst.key_event(obj, ev)
        if t == _HIDE:
            self.keeper.hidden(obj)
        return False


class KeysLabel(QtWidgets.QLabel):
    """ "Tool: brush · keys → sample list (shortcuts)": the tool and where keys go, kept current."""

    def __init__(
        self, window: QtWidgets.QWidget, names: dict[QtWidgets.QWidget, str], tool: str = "pan"
    ) -> None:
        super().__init__()
        self._main, self.names, self.tool = window, names, tool
        self.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.setToolTip(
            "The current editing tool, and where the keyboard goes: to the shortcuts, or as text "
            "into a field (Esc leaves a field)"
        )
        QtWidgets.QApplication.instance().focusChanged.connect(self._focus_changed)
        self.update_text()

    @QtCore.Slot(object, object)
    def _focus_changed(self, _old: object, _new: object) -> None:
        self.update_text()

    def set_tool(self, name: str) -> None:
        self.tool = "pan" if name == "none" else name
        self.update_text()

    def update_text(self) -> None:
        fw = QtWidgets.QApplication.focusWidget()
        if is_text_input(fw):
            where = f"typing into {self._name(fw)} (Esc leaves)"
        elif fw is None:
            where = "nowhere (click the sample list)"
        elif fw.window() is not self._main:
            where = "another window"
        else:
            where = f"shortcuts ({self._name(fw)})"
        self.setText(f"Tool: {self.tool} · keys → {where}")

    def _name(self, w: QtWidgets.QWidget) -> str:
        p: QtWidgets.QWidget | None = w
        while p is not None:
            if p in self.names:
                return self.names[p]
            p = p.parentWidget()
        return (
            w.accessibleName()
            or getattr(w, "placeholderText", lambda: "")()
            or w.toolTip().split("\n")[0]
            or type(w).__name__
        )
