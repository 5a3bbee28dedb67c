"""The review panel: question edit, status, note, accept / reject / flag, undo / redo, history."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtWidgets

from rea2seg_gui.question_field import QuestionField

DECISIONS = (("Accept (A)", "accept"), ("Reject (R)", "reject"), ("Flag (F)", "flag"))


class ReviewPanel(QtWidgets.QWidget):
    """Draws one sample's question, status and history; emits what the user asked for.

    ``decision_requested(decision)``: "accept" / "reject" / "flag" (the note is :meth:`note`);
    ``question_submitted(text)``; ``undo_requested`` / ``redo_requested``.
    """

    decision_requested = QtCore.Signal(str)
    question_submitted = QtCore.Signal(str)
    undo_requested = QtCore.Signal()
    redo_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        f = QtWidgets.QFormLayout(self)
        self.question_edit = QuestionField()  # wraps: a long question stays readable
        self.question_edit.setToolTip("Edit and press Enter to save the question (Esc leaves)")
        self.question_edit.returnPressed.connect(
            lambda: self.question_submitted.emit(self.question_edit.text())
        )
        f.addRow("Question", self.question_edit)
        self.status_value = QtWidgets.QLabel("—")
        self.status_value.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        f.addRow("Status", self.status_value)
        self.note_edit = QtWidgets.QLineEdit()
        self.note_edit.setPlaceholderText(
            "Note for accept / reject / flag (Enter accepts, Esc leaves)"
        )
        self.note_edit.returnPressed.connect(lambda: self.decision_requested.emit("accept"))
        f.addRow("Note", self.note_edit)
        row = QtWidgets.QHBoxLayout()
        self.decision_buttons: dict[str, QtWidgets.QPushButton] = {}
        for label, decision in DECISIONS:
            b = QtWidgets.QPushButton(label)
            b.clicked.connect(lambda _=False, d=decision: self.decision_requested.emit(d))
            row.addWidget(b)
            self.decision_buttons[decision] = b
        f.addRow(row)
        row2 = QtWidgets.QHBoxLayout()
        self.undo_button = QtWidgets.QPushButton("Undo (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo_requested)
        self.redo_button = QtWidgets.QPushButton("Redo (Ctrl+Shift+Z)")
        self.redo_button.clicked.connect(self.redo_requested)
        row2.addWidget(self.undo_button)
        row2.addWidget(self.redo_button)
        f.addRow(row2)
        h = self.history_table = QtWidgets.QTableWidget(0, 5)
        h.setHorizontalHeaderLabels(["when", "who", "what", "before → after", "note"])
        h.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        h.horizontalHeader().setStretchLastSection(True)
        h.verticalHeader().setVisible(False)
        f.addRow(QtWidgets.QLabel("History of this sample (newest first)"))
        f.addRow(h)

    def show_sample(
        self, question: str, status: str, category: str, external_id: str, keep_edit: bool = False
    ) -> None:
        """``keep_edit``: leave the question field alone while the user is editing it."""
        if not (keep_edit and self.question_edit.isModified()):
            self.question_edit.setText(question)
        self.status_value.setText(f"{status}   ·   {category}   ·   {external_id}")

    def show_history(self, rows: Sequence[Sequence[str]]) -> None:
        """Rows of (when, who, what, before → after, note), newest first."""
        self.history_table.setRowCount(len(rows))
        for r, vals in enumerate(rows):
            for c, v in enumerate(vals):
                item = QtWidgets.QTableWidgetItem(str(v))
                item.setToolTip(str(v))
                self.history_table.setItem(r, c, item)
        for c in range(self.history_table.columnCount() - 1):  # the note column fills the rest
            self.history_table.resizeColumnToContents(c)

    def history_row(self, row: int) -> list[str]:
        return [
            self.history_table.item(row, c).text() for c in range(self.history_table.columnCount())
        ]

    def history_count(self) -> int:
        return self.history_table.rowCount()

    def note(self) -> str:
        return self.note_edit.text().strip()

    def note_has_focus(self) -> bool:
        return self.note_edit.hasFocus()

    def clear_note(self) -> None:
        self.note_edit.clear()

    def set_accept_enabled(self, on: bool, why: str = "") -> None:
        b = self.decision_buttons["accept"]
        b.setEnabled(on)
        b.setToolTip("" if on else why)

    def accept_enabled(self) -> bool:
        return self.decision_buttons["accept"].isEnabled()
