"""Keeping a shared store's changes in view: F5, window activation and a timer re-read it.

Another process (a second annotator, a batch run) may write to the same store; the window
re-reads the sample list, the counts and the shown sample's status and history on F5, when it is
activated again, and every ``review/refresh_interval_s`` seconds (a preference, default 30;
0 turns the timer off). :meth:`ReviewController.refresh` keeps the selection and any edit in
progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6 import QtCore

ACTIVATION_GAP_S = (
    1.0  # activations closer than this re-read once (focus ping-pong between windows)
)


class RefreshController(QtCore.QObject):
    """``refreshed`` after each re-read."""

    refreshed = QtCore.Signal()

    def __init__(
        self,
        refresh: Callable[[], None],
        window: QtCore.QObject,
        can_refresh: Callable[[], bool] | None = None,
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._refresh = refresh
        self._can = can_refresh or (lambda: True)
        self._last = 0.0
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        window.installEventFilter(self)

    def set_interval(self, seconds: int) -> None:
        """Re-read every ``seconds`` (0: never on a timer)."""
        self.timer.stop()
        if seconds > 0:
            self.timer.start(int(seconds * 1000))

    def refresh(self) -> bool:
        """Re-read now; False when skipped (e.g. a modal question is open)."""
        if not self._can():
            return False
        self._last = time.monotonic()
        self._refresh()
        self.refreshed.emit()
        return True

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802 - Qt's name
        if (
            ev.type() == QtCore.QEvent.Type.WindowActivate
            and time.monotonic() - self._last >= ACTIVATION_GAP_S
        ):
            self.refresh()
        return False
