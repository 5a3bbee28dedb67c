"""The question field of the Review tab: a long question wraps over several lines while it is
edited, and the field keeps the one-line editor's habits (Enter saves, Esc leaves, the text is
one line)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

MIN_LINES = 2
MAX_LINES = 6
"""The field grows with its text from :data:`MIN_LINES` to :data:`MAX_LINES` lines, then scrolls."""


class QuestionField(QtWidgets.QPlainTextEdit):
    """A wrapping, growing text field with the subset of :class:`QtWidgets.QLineEdit` the review
    panel uses: ``returnPressed`` (Enter; Shift+Enter too: a question is one line),
    :meth:`text` / :meth:`setText`, :meth:`isModified` / :meth:`setModified` and :meth:`end`.
    ``escaped`` when Esc leaves the field (the focus goes to the window)."""

    returnPressed = QtCore.Signal()  # noqa: N815 - QLineEdit's name
    escaped = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setWordWrapMode(QtGui.QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setTabChangesFocus(True)
        self.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed
        )
        self.textChanged.connect(self._fit_height)
        self._fit_height()

    # ------------------------------------------------------------------ QLineEdit's subset
    def text(self) -> str:
        return self.toPlainText()

    def setText(self, text: str) -> None:  # noqa: N802 - QLineEdit's name
        """Replace the text (newlines become spaces); the field is then unmodified."""
        self.setPlainText(" ".join(str(text).splitlines()))
        self.document().setModified(False)

    def isModified(self) -> bool:  # noqa: N802
        return self.document().isModified()

    def setModified(self, on: bool) -> None:  # noqa: N802
        self.document().setModified(on)

    def end(self, mark: bool = False) -> None:
        """Put the cursor at the end (``mark``: selecting up to it)."""
        mode = (
            QtGui.QTextCursor.MoveMode.KeepAnchor if mark else QtGui.QTextCursor.MoveMode.MoveAnchor
        )
        self.moveCursor(QtGui.QTextCursor.MoveOperation.End, mode)

    # ------------------------------------------------------------------------------- keys
    def event(self, ev: QtCore.QEvent) -> bool:
        if ev.type() == QtCore.QEvent.Type.ShortcutOverride and isinstance(ev, QtGui.QKeyEvent):
            if ev.key() in (
                QtCore.Qt.Key.Key_Escape,
                QtCore.Qt.Key.Key_Return,
                QtCore.Qt.Key.Key_Enter,
            ):
                ev.accept()  # the field's own keys, not the window's shortcuts
                return True
        return super().event(ev)

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802 - Qt API
        if ev.key() in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
            self.returnPressed.emit()
            return
        if ev.key() == QtCore.Qt.Key.Key_Escape:
            self.clearFocus()
            self.escaped.emit()
            return
        super().keyPressEvent(ev)

    def insertFromMimeData(self, source: QtCore.QMimeData) -> None:  # noqa: N802 - Qt API
        """Pasted text is one line too."""
        if source.hasText():
            self.insertPlainText(" ".join(source.text().splitlines()))
        else:
            super().insertFromMimeData(source)

    # ----------------------------------------------------------------------------- height
    def _lines_shown(self) -> int:
        lines = 0
        block = self.document().begin()
        while block.isValid():
            layout = block.layout()
            lines += max(1, layout.lineCount() if layout is not None else 1)
            block = block.next()
        return min(MAX_LINES, max(MIN_LINES, lines))

    def _fit_height(self) -> None:
        fm = self.fontMetrics()
        margins = self.contentsMargins()
        doc_margin = 2 * self.document().documentMargin()
        h = self._lines_shown() * fm.lineSpacing() + margins.top() + margins.bottom() + doc_margin
        self.setFixedHeight(int(h) + 2)

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(ev)
        self._fit_height()  # the wrap changes with the width

    def lines_shown(self) -> int:
        """How many lines the field is tall now (its text wrapped at its width)."""
        return self._lines_shown()
