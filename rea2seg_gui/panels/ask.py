"""The Ask bar: a question box (Enter asks), Cancel, Add to store and a line saying where the ask
is. It only draws and emits; :class:`rea2seg_gui.controllers.ask.AskController` does the work."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class AskBar(QtWidgets.QWidget):
    """``ask_requested(question)`` (Enter or the Ask button, non-empty question),
    ``cancel_requested``, ``add_requested`` (Add to store) and ``open_requested`` (Image…)."""

    ask_requested = QtCore.Signal(str)
    cancel_requested = QtCore.Signal()
    add_requested = QtCore.Signal()
    open_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        h = QtWidgets.QHBoxLayout(self)
        h.setContentsMargins(4, 2, 4, 2)
        self.open_button = QtWidgets.QPushButton("Image…")
        self.open_button.setToolTip("Open an image to ask about (or paste one, or drop a file)")
        self.question = QtWidgets.QLineEdit()
        self.question.setPlaceholderText("Ask a question about the image, then press Enter")
        self.question.setClearButtonEnabled(True)
        self.ask_button = QtWidgets.QPushButton("Ask")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.add_button = QtWidgets.QPushButton("Add to store")
        self.add_button.setToolTip("Keep this answer: a sample of dataset 'ask' with its trace")
        self.stage = QtWidgets.QLabel()
        self.stage.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.stage.setMinimumWidth(180)
        for w in (self.open_button, self.question, self.ask_button, self.cancel_button):
            h.addWidget(w, 1 if w is self.question else 0)
        h.addWidget(self.stage)
        h.addWidget(self.add_button)
        self.question.returnPressed.connect(self._ask)
        self.ask_button.clicked.connect(self._ask)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.add_button.clicked.connect(self.add_requested)
        self.open_button.clicked.connect(self.open_requested)
        self.set_has_image(False)
        self.set_busy(False)
        self.set_can_add(False)

    def _ask(self) -> None:
        text = self.question.text().strip()
        if text and self.ask_button.isEnabled():
            self.ask_requested.emit(text)

    def set_has_image(self, on: bool) -> None:
        self._has_image = on
        self.ask_button.setEnabled(on and not self.cancel_button.isEnabled())

    def set_busy(self, busy: bool) -> None:
        """While an ask runs: Cancel on, Ask and Add to store off."""
        self.cancel_button.setEnabled(busy)
        self.ask_button.setEnabled(not busy and getattr(self, "_has_image", False))
        if busy:
            self.add_button.setEnabled(False)

    def set_can_add(self, on: bool) -> None:
        self.add_button.setEnabled(on)

    def show_stage(self, text: str) -> None:
        self.stage.setText(text)

    def stage_text(self) -> str:
        return self.stage.text()
