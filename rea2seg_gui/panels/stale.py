"""The "stale" marker shared by the candidates and evaluator panels: shown when the sample's
question was edited after the run whose trace is on screen (:func:`core.trace.question_is_stale`)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.trace import STALE_NOTE


def stale_label() -> QtWidgets.QLabel:
    """A hidden, plain-text, highlighted label for :func:`show_stale`."""
    label = QtWidgets.QLabel()
    label.setObjectName("stale_label")
    label.setTextFormat(QtCore.Qt.TextFormat.PlainText)  # the question is user text
    label.setWordWrap(True)
    label.setStyleSheet(
        "QLabel { background: #f6c343; color: #222; padding: 3px; font-weight: bold; }"
    )
    label.hide()
    return label


def show_stale(label: QtWidgets.QLabel, asked: str | None) -> None:
    """Show the marker with the question the run was given, or hide it for ``None``."""
    if asked is None:
        label.hide()
        label.setText("")
        return
    label.setText(
        f"{STALE_NOTE} — the run answered: “{asked}”. Run it again for the current question."
    )
    label.setToolTip(
        "The trace below was computed for the question as it was when the run was made."
    )
    label.show()


RUN_COMBO_CHARS = 24  # the run picker's width in characters, whatever its runs are called


def run_combo() -> QtWidgets.QComboBox:
    """A run picker whose width does not follow its longest run name (a long name is cut in
    the box and shown whole in the tooltip), so a run's title never widens the dock."""
    combo = QtWidgets.QComboBox()
    combo.setSizeAdjustPolicy(
        QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
    )
    combo.setMinimumContentsLength(RUN_COMBO_CHARS)
    combo.currentTextChanged.connect(combo.setToolTip)
    return combo
