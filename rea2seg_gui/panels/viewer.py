"""The centre of the window: the random-weights banner, the question, an error strip, the canvas."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from rea2seg_gui.canvas import Canvas


def _strip(style: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel()
    label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    label.setStyleSheet(style)
    label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setVisible(False)
    return label


class ViewerPanel(QtWidgets.QWidget):
    """Holds the :class:`~rea2seg_gui.canvas.Canvas` (``canvas``) and draws the texts around it."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        v = QtWidgets.QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        self.banner = _strip("background:#b3261e;color:white;font-weight:bold;padding:4px;")
        v.addWidget(self.banner)
        self.model_note = _strip("background:#1d3b5c;color:white;padding:4px;")
        v.addWidget(self.model_note)
        self.question_label = QtWidgets.QLabel()
        self.question_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.question_label.setWordWrap(True)
        self.question_label.setStyleSheet("font-size:15px;padding:6px;")
        v.addWidget(self.question_label)
        self.image_error = _strip(
            "background:#3b0a0a;color:#ffb4ab;font-size:15px;font-weight:bold;padding:10px;"
        )
        v.addWidget(self.image_error)
        self.canvas = Canvas()
        v.addWidget(self.canvas, 1)

    def show_question(self, question: str) -> None:
        self.question_label.setText(question)

    def question(self) -> str:
        return self.question_label.text()

    def show_banner(self, text: str | None) -> None:
        """A red strip above the image (random weights), or none."""
        self.banner.setText(text or "")
        self.banner.setVisible(bool(text))

    def show_model_note(self, text: str | None) -> None:
        """A blue strip above the image saying what the trace's models are when they are
        neither random nor the paper's (``mini-geometric``), or none."""
        self.model_note.setText(text or "")
        self.model_note.setVisible(bool(text))

    def model_note_text(self) -> str | None:
        return self.model_note.text() if self.model_note.isVisibleTo(self) else None

    def banner_text(self) -> str | None:
        return self.banner.text() if self.banner.isVisibleTo(self) else None

    def show_image_error(self, text: str | None) -> None:
        """An unreadable image: the reason in place of the picture (the canvas shows black)."""
        self.image_error.setText(f"IMAGE NOT READABLE — {text}" if text else "")
        self.image_error.setVisible(bool(text))

    def image_error_text(self) -> str | None:
        return self.image_error.text() if self.image_error.isVisibleTo(self) else None
