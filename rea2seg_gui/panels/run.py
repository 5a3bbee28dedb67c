"""The run panel: preset, stage-1 parameters (the preset's defaults or edited), evaluator, scope,
start / cancel / re-run-and-compare, progress and errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6 import QtCore, QtWidgets

OPEN_CHOICES = (
    "seed_policy",
    "dedupe_iou",
    "mask_prompt",
    "attention_renorm",
    "layer_base",
    "box_nms_thresh",
)
NO_EVALUATOR = "none (stage 1 only)"
BUILDING = "building models"  # the start of a progress label while a run loads its models
TIPS = {
    "k1": "tokens kept by attention (§4.2)",
    "k2": "tokens kept after the logit rerank",
    "top_n": "N: AMG mask budget",
    "seeds_total": "seed points over the k2 tokens (only with seed_policy 'proportional', not from the paper)",
    "tau": "τ: cosine threshold of the seed-feature graph",
    "delta": "δ: logit threshold of the negative point",
    "pred_iou_thresh": "AMG predicted-IoU filter",
    "stability_score_thresh": "AMG stability filter",
}
LABELS = {"top_n": "N (top_n)", "tau": "τ (tau)", "delta": "δ (delta)"}


def unavailable_text(
    presets: Sequence[str],
    problem: Callable[[str], str | None],
    evaluators: Sequence[str],
    eval_problem: Callable[[str], str | None],
) -> str:
    """One line per greyed-out preset: why, and that File → Settings sets its paths."""
    lines = [
        f"{kind} {name}: {why}"
        for kind, names, check in (
            ("preset", presets, problem),
            ("evaluator", evaluators, eval_problem),
        )
        for name in names
        if (why := check(name))
    ]
    if not lines:
        return ""
    return "Greyed out — set their paths or endpoints in File → Settings:\n" + "\n".join(lines)


def fill_presets(
    combo: QtWidgets.QComboBox,
    names: Sequence[str],
    problem: Callable[[str], str | None],
    first: str | None = None,
) -> None:
    """Fill a preset picker; a preset with a problem is disabled with the reason as its tooltip."""
    keep = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    if first is not None:
        combo.addItem(first)
    model = combo.model()
    for name in names:
        combo.addItem(name)
        why = problem(name)
        item = model.item(combo.count() - 1)
        item.setEnabled(why is None)
        item.setToolTip(why or f"{name}: ready")
    idx = combo.findText(keep)
    if idx < 0 or not model.item(idx).isEnabled():  # else the first usable one
        idx = next((i for i in range(combo.count()) if model.item(i).isEnabled()), 0)
    combo.setCurrentIndex(idx)
    combo.blockSignals(False)


class RunPanel(QtWidgets.QWidget):
    """Emits ``start_requested``, ``cancel_requested``, ``compare_requested`` and
    ``preset_changed`` (the window then calls :meth:`show_defaults`)."""

    start_requested = QtCore.Signal()
    cancel_requested = QtCore.Signal()
    compare_requested = QtCore.Signal()
    preset_changed = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        f = QtWidgets.QFormLayout(self)
        self.preset = QtWidgets.QComboBox()
        self.preset.setToolTip(
            "Greyed-out presets are not configured (hover for why; File → Settings)"
        )
        self.preset.currentIndexChanged.connect(lambda _: self.preset_changed.emit())
        f.addRow("Preset", self.preset)
        self.use_defaults = QtWidgets.QCheckBox(
            "Use the preset's defaults (paper defaults; open filters for random weights)"
        )
        self.use_defaults.setChecked(True)
        self.use_defaults.toggled.connect(lambda _: self.preset_changed.emit())
        f.addRow(self.use_defaults)
        self.params: dict[str, QtWidgets.QAbstractSpinBox] = {}
        for name, lo, hi in (
            ("k1", 1, 1000),
            ("k2", 1, 1000),
            ("top_n", 0, 50),
            ("seeds_total", 1, 2000),
        ):
            sb = QtWidgets.QSpinBox()
            sb.setRange(lo, hi)
            self.params[name] = sb
        for name, lo, hi in (
            ("tau", -1, 1),
            ("delta", -100, 100),
            ("pred_iou_thresh", 0, 1),
            ("stability_score_thresh", 0, 1),
        ):
            sb = QtWidgets.QDoubleSpinBox()
            sb.setRange(lo, hi)
            sb.setDecimals(3)
            sb.setSingleStep(0.05)
            self.params[name] = sb
        for name, sb in self.params.items():
            sb.setToolTip(TIPS[name])
            f.addRow(LABELS.get(name, name), sb)
        self.open_choices = (
            QtWidgets.QLabel()
        )  # the stage-1 choices the paper leaves open (docs/pipeline.md)
        self.open_choices.setWordWrap(True)
        self.open_choices.setToolTip(
            "Choices the paper leaves open, as this run makes them (not from the paper; "
            "see the docs' pipeline page, docs/pipeline.md)"
        )
        f.addRow("Not from the paper", self.open_choices)
        self.eval_preset = QtWidgets.QComboBox()
        self.eval_preset.setToolTip(
            "Stage 2 evaluator; greyed-out presets are not configured (hover for why)"
        )
        f.addRow("Evaluator (stage 2)", self.eval_preset)
        self.unavailable = QtWidgets.QLabel()  # why presets are greyed out, and what to do
        self.unavailable.setWordWrap(True)
        self.unavailable.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        f.addRow(self.unavailable)
        self.eval_cot = QtWidgets.QCheckBox("Chain of thought before the scores")
        self.eval_cot.setChecked(True)
        f.addRow(self.eval_cot)
        self.group_size = QtWidgets.QSpinBox()
        self.group_size.setRange(1, 15)
        self.group_size.setValue(5)
        f.addRow("Group size s", self.group_size)
        self.scope_selected = QtWidgets.QRadioButton("Selected samples")
        self.scope_all = QtWidgets.QRadioButton("Whole project")
        self.scope_selected.setChecked(True)
        row0 = QtWidgets.QHBoxLayout()
        row0.addWidget(self.scope_selected)
        row0.addWidget(self.scope_all)
        f.addRow("Run on", row0)
        row = QtWidgets.QHBoxLayout()
        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.clicked.connect(self.start_requested)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        f.addRow(row)
        self.compare_button = QtWidgets.QPushButton(
            "Re-run this sample with these parameters and compare"
        )
        self.compare_button.clicked.connect(self.compare_requested)
        f.addRow(self.compare_button)
        self.progress = QtWidgets.QProgressBar()
        f.addRow(self.progress)
        self.progress_label = QtWidgets.QLabel()  # what the job does now: building models, running
        self.progress_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.progress_label.setWordWrap(True)
        f.addRow(self.progress_label)
        self.error = QtWidgets.QPlainTextEdit()
        self.error.setReadOnly(True)
        self.error.setMaximumHeight(120)
        self.error.setPlaceholderText("Errors from runs appear here.")
        f.addRow(self.error)

    # ------------------------------------------------------------------------- choices
    def set_presets(
        self,
        presets: Sequence[str],
        problem: Callable[[str], str | None],
        evaluators: Sequence[str],
        eval_problem: Callable[[str], str | None],
    ) -> None:
        fill_presets(self.preset, presets, problem)
        fill_presets(self.eval_preset, evaluators, eval_problem, first=NO_EVALUATOR)
        self.unavailable.setText(unavailable_text(presets, problem, evaluators, eval_problem))

    def preset_name(self) -> str:
        return self.preset.currentText()

    def set_preset(self, name: str) -> None:
        self.preset.setCurrentText(name)

    def evaluator(self) -> str | None:
        return None if self.eval_preset.currentIndex() == 0 else self.eval_preset.currentText()

    def set_evaluator(self, name: str | None) -> None:
        self.eval_preset.setCurrentText(name or NO_EVALUATOR)

    def cot(self) -> bool:
        return self.eval_cot.isChecked()

    def whole_project(self) -> bool:
        return self.scope_all.isChecked()

    def uses_defaults(self) -> bool:
        return self.use_defaults.isChecked()

    def set_param(self, name: str, value: float) -> None:
        self.use_defaults.setChecked(False)
        self.params[name].setValue(value)

    def values(self) -> dict[str, Any]:
        return {k: w.value() for k, w in self.params.items()}

    def overrides(self) -> dict[str, Any]:
        """The edited parameters, or none when the preset's defaults are used."""
        return {} if self.uses_defaults() else self.values()

    def show_defaults(self, defaults: Mapping[str, Any]) -> None:
        """Show the parameters the preset runs with; editable once 'use the preset's defaults' is off."""
        use = self.uses_defaults()
        for name, w in self.params.items():
            if use:
                w.setValue(defaults[name])
            w.setEnabled(not use)
        self.open_choices.setText(", ".join(f"{k} = {defaults[k]}" for k in OPEN_CHOICES))

    # --------------------------------------------------------------------------- state
    def set_busy(self, busy: bool, cancellable: bool = True) -> None:
        self.start_button.setEnabled(not busy)
        self.compare_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy and cancellable)
        if not busy and self.progress.maximum() == 0:  # a job ended while building models
            self.progress.setRange(0, 1)

    def show_progress(self, done: int, total: int, label: str = "") -> None:
        """``done`` of ``total``; ``label`` says what the job does (building models: a busy bar)."""
        building = label.startswith(BUILDING)
        self.progress.setRange(0, 0 if building else max(total, 1))
        self.progress.setValue(done)
        if label:
            self.progress_label.setText(label)

    def show_error(self, text: str) -> None:
        self.error.setPlainText(text)

    def error_text(self) -> str:
        return self.error.toPlainText()
