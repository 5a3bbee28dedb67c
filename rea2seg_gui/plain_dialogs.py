"""Small dialogs several windows share: a non-modal plain-text report box and a checkpoint /
folder picker that fills a line edit (a low layer, so that sibling modules need not import each
other for them)."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

CHECKPOINT_FILTER = "Checkpoints (*.pth *.pt *.safetensors);;All files (*)"


def report_box(
    parent: QtWidgets.QWidget | None, title: str, text: str, *, error: bool = False
) -> QtWidgets.QMessageBox:
    """Show a non-modal message whose text is plain (file names, model text and reasons may hold
    any text) and return it."""
    box = QtWidgets.QMessageBox(parent)
    box.setIcon(
        QtWidgets.QMessageBox.Icon.Warning if error else QtWidgets.QMessageBox.Icon.Information
    )
    box.setWindowTitle(title)
    box.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    box.setText(text)
    box.setModal(False)
    box.show()
    return box


def browse_into(
    parent: QtWidgets.QWidget,
    edit: QtWidgets.QLineEdit,
    directory: bool,
    folder_title: str = "Choose a folder",
) -> None:
    """Ask for a folder (``directory``) or a checkpoint file, starting where ``edit`` points
    (else the home folder), and put the choice into ``edit``; nothing changes on Cancel."""
    start = edit.text().strip() or str(Path.home())
    if directory:
        path = QtWidgets.QFileDialog.getExistingDirectory(parent, folder_title, start)
    else:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            parent, "Choose a checkpoint", start, CHECKPOINT_FILTER
        )
    if path:
        edit.setText(path)
