"""The text / concept prompt of the Edit tab: type a concept ("cup", "red ball"), SAM 3 returns
every instance of it, and they become the sample's edited mask (then brush, eraser, polygon and
SAM clicks refine it). A widget that only shows and emits; the controller
(:mod:`rea2seg_gui.controllers.text_prompt`) runs SAM 3."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtWidgets

from core.models.sam3_text import THRESHOLD

ALL = -1  # the instance choice "all instances"


class TextPromptBox(QtWidgets.QGroupBox):
    """``segment_requested(text)`` (Enter in the text field or the button), ``instance_chosen(i)``
    (``ALL`` = -1: every instance), ``browse_requested``."""

    segment_requested = QtCore.Signal(str)
    instance_chosen = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Text prompt (SAM 3)", parent)
        f = QtWidgets.QFormLayout(self)
        self.checkpoint_edit = QtWidgets.QLineEdit()
        self.checkpoint_edit.setPlaceholderText("a local SAM 3 checkpoint folder")
        self.checkpoint_edit.setToolTip(
            "The folder of a transformers SAM 3 checkpoint (config.json, weights, processor)"
        )
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.checkpoint_edit, 1)
        row.addWidget(browse)
        f.addRow("Checkpoint", row)
        self.threshold_spin = QtWidgets.QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setValue(THRESHOLD)
        self.threshold_spin.setToolTip("Smallest detection score of an instance kept")
        f.addRow("Score threshold", self.threshold_spin)
        self.text_edit = QtWidgets.QLineEdit()
        self.text_edit.setPlaceholderText("a concept: cup, red ball, person… (Enter)")
        self.text_edit.returnPressed.connect(self._request)
        self.segment_button = QtWidgets.QPushButton("Segment")
        self.segment_button.clicked.connect(self._request)
        row2 = QtWidgets.QHBoxLayout()
        row2.addWidget(self.text_edit, 1)
        row2.addWidget(self.segment_button)
        f.addRow("Concept", row2)
        self.instances_combo = QtWidgets.QComboBox()
        self.instances_combo.setEnabled(False)
        self.instances_combo.setToolTip("Which of the returned instances is the edited mask")
        self.instances_combo.activated.connect(
            lambda i: self.instance_chosen.emit(int(self.instances_combo.itemData(i)))
        )
        f.addRow("Use", self.instances_combo)
        self.state_label = QtWidgets.QLabel()
        self.state_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.state_label.setWordWrap(True)
        f.addRow(self.state_label)

    def _request(self) -> None:
        text = self.text_edit.text().strip()
        if not text:
            self.show_state("Type a concept to segment first.")
            return
        self.segment_requested.emit(text)

    def _browse(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(
            self, "SAM 3 checkpoint folder", self.checkpoint_edit.text()
        )
        if path:
            self.checkpoint_edit.setText(path)

    def checkpoint(self) -> str:
        return self.checkpoint_edit.text().strip()

    def threshold(self) -> float:
        return round(self.threshold_spin.value(), 2)

    def show_instances(self, scores: Sequence[float]) -> None:
        """Offer *all instances* (chosen) and each instance with its score; none: disabled."""
        c = self.instances_combo
        c.clear()
        if scores:
            c.addItem(f"all {len(scores)} instance{'' if len(scores) == 1 else 's'}", ALL)
            for i, s in enumerate(scores):
                c.addItem(f"instance {i + 1} (score {s:.2f})", i)
        c.setEnabled(len(scores) > 1)

    def set_busy(self, busy: bool) -> None:
        self.segment_button.setEnabled(not busy)

    def show_state(self, text: str) -> None:
        self.state_label.setText(text)

    def state(self) -> str:
        return self.state_label.text()
