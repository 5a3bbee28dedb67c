"""The status bar's memory read-out: what the loaded models hold on the GPU (when torch is in use
and sees one) and the process's resident memory, refreshed every few seconds."""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtWidgets

from core.models.memory import memory_in_use

REFRESH_MS = 2000


class MemoryLabel(QtWidgets.QLabel):
    """``read()`` returns the text after ``Memory:`` (:func:`core.models.memory.memory_in_use`;
    cheap, never imports torch); read every ``interval_ms`` on the GUI thread."""

    def __init__(
        self,
        parent: QtWidgets.QWidget | None = None,
        read: Callable[[], str] = memory_in_use,
        interval_ms: int = REFRESH_MS,
    ) -> None:
        super().__init__(parent)
        self._read = read
        self.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.setToolTip("Memory in use: GPU memory held by loaded models, and this process's RAM")
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(interval_ms)
        self.refresh()

    def refresh(self) -> None:
        text = self._read()
        self.setText(f"Memory: {text}" if text else "")
