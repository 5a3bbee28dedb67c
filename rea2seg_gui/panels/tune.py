"""The what-if panel: every stage-1 parameter that does not need a new MLLM forward (§4.2, App. B),
the candidates they give with their origins and, where a ground truth exists, true IoUs.

It only draws and emits; :class:`rea2seg_gui.controllers.tune.TuneController` re-tunes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6 import QtCore, QtWidgets

from core.pipeline.settings import SEED_POLICIES
from core.pipeline.tune import format_indices, parse_indices
from core.trace import PipelineTrace

TIPS = {
    "k1": "k1: tokens kept by attention (§4.2)",
    "k2": "k2: tokens kept after the rerank by mean L",
    "top_n": "N: AMG mask budget",
    "seeds_total": "seed points over the k2 tokens (seed policy 'proportional' only; not from the paper)",
    "tau": "τ: cosine threshold of the seed-feature graph (k-core)",
    "delta": "δ: logit threshold of the negative point",
    "pred_iou_thresh": "AMG predicted-IoU filter",
    "stability_score_thresh": "AMG stability filter",
    "stability_score_offset": "AMG stability-score offset",
    "box_nms_thresh": "AMG box NMS threshold",
    "dedupe_iou": "drop a candidate with IoU ≥ this with an earlier one (not from the paper)",
    "seed_policy": "how seed points are spread over the k2 tokens",
    "layers": "MLLM layers averaged, e.g. 14-30 or 2, 3 (blank: the model's default)",
    "heads": "attention heads averaged, e.g. 0-7 (blank: all)",
}
LABELS = {
    "top_n": "N (top_n)",
    "tau": "τ (tau)",
    "delta": "δ (delta)",
    "dedupe_iou": "De-duplicate at IoU",
    "seed_policy": "Seed policy",
    "seeds_total": "Seeds (proportional)",
    "pred_iou_thresh": "AMG predicted IoU ≥",
    "stability_score_thresh": "AMG stability ≥",
    "stability_score_offset": "AMG stability offset",
    "box_nms_thresh": "AMG box NMS",
    "layers": "Layers",
    "heads": "Heads",
}
COLUMNS = ("id", "origin", "rank", "SAM score", "stability", "area", "true IoU")


class CandidateTable(QtCore.QAbstractTableModel):
    """The candidates of one trace: id, origin, rank within the origin, SAM's predicted IoU,
    stability, area (px) and true IoU (blank without a ground truth)."""

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[Any, ...]] = []

    def set_trace(self, trace: PipelineTrace | None, ious: Mapping[int, float] | None) -> None:
        self.beginResetModel()
        self._rows = [
            (
                c.id,
                c.origin,
                c.origin_rank,
                round(float(c.sam_score), 3),
                "" if c.stability is None else round(float(c.stability), 3),
                int(c.area),
                "" if ious is None or c.id not in ious else round(float(ious[c.id]), 3),
            )
            for c in (trace.candidates if trace is not None else [])
        ]
        self.endResetModel()

    def rowCount(self, parent: QtCore.QModelIndex | None = None) -> int:  # noqa: N802 - Qt API
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def columnCount(self, parent: QtCore.QModelIndex | None = None) -> int:  # noqa: N802 - Qt API
        return len(COLUMNS)

    def data(self, index: QtCore.QModelIndex, role: int = QtCore.Qt.ItemDataRole.DisplayRole):
        if role == QtCore.Qt.ItemDataRole.DisplayRole and index.isValid():
            return str(self._rows[index.row()][index.column()])
        return None

    def headerData(  # noqa: N802 - Qt API
        self, section: int, orientation: QtCore.Qt.Orientation, role: int = 0
    ):
        if (
            role == QtCore.Qt.ItemDataRole.DisplayRole
            and orientation == QtCore.Qt.Orientation.Horizontal
        ):
            return COLUMNS[section]
        return None

    def row(self, i: int) -> tuple[Any, ...]:
        return self._rows[i]


class TunePanel(QtWidgets.QWidget):
    """``prepare_requested`` (compute the MLLM forward and the SAM embedding for what the canvas
    shows), ``settings_changed`` (any parameter edited), ``apply_requested`` (Apply to a run).
    :meth:`values` gives the parameters as :class:`core.pipeline.settings.Stage1Settings` names;
    a field that does not parse is a ``ValueError`` with a one-line message."""

    prepare_requested = QtCore.Signal()
    settings_changed = QtCore.Signal()
    apply_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        v = QtWidgets.QVBoxLayout(self)
        self.prepare_button = QtWidgets.QPushButton("Prepare what-if on this image")
        self.prepare_button.setToolTip(
            "Run the MLLM forward and the SAM image embedding once for the image and question "
            "shown (the Run tab's preset); every change below then re-runs only what depends on it"
        )
        self.prepare_button.clicked.connect(self.prepare_requested)
        v.addWidget(self.prepare_button)
        self.source = QtWidgets.QLabel("Nothing prepared yet.")
        self.source.setWordWrap(True)
        self.source.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        v.addWidget(self.source)
        form = QtWidgets.QFormLayout()
        v.addLayout(form)
        self.params: dict[str, QtWidgets.QWidget] = {}
        for name, lo, hi in (("k1", 1, 1000), ("k2", 1, 1000), ("top_n", 0, 100)):
            sb = QtWidgets.QSpinBox()
            sb.setRange(lo, hi)
            sb.valueChanged.connect(self._changed)
            self.params[name] = sb
        self.seed_policy = QtWidgets.QComboBox()
        self.seed_policy.addItems(list(SEED_POLICIES))
        self.seed_policy.currentIndexChanged.connect(self._changed)
        self.params["seed_policy"] = self.seed_policy
        seeds = QtWidgets.QSpinBox()
        seeds.setRange(1, 5000)
        seeds.valueChanged.connect(self._changed)
        self.params["seeds_total"] = seeds
        for name, lo, hi, step in (
            ("tau", -1.0, 1.0, 0.05),
            ("delta", -100.0, 100.0, 0.5),
            ("pred_iou_thresh", 0.0, 1.0, 0.02),
            ("stability_score_thresh", 0.0, 1.0, 0.02),
            ("stability_score_offset", 0.0, 100.0, 0.5),
            ("box_nms_thresh", 0.0, 1.0, 0.05),
        ):
            sb = QtWidgets.QDoubleSpinBox()
            sb.setRange(lo, hi)
            sb.setDecimals(3)
            sb.setSingleStep(step)
            sb.valueChanged.connect(self._changed)
            self.params[name] = sb
        self.dedupe_on = QtWidgets.QCheckBox()
        self.dedupe_on.toggled.connect(self._changed)
        self.dedupe = QtWidgets.QDoubleSpinBox()
        self.dedupe.setRange(0.05, 1.0)
        self.dedupe.setDecimals(2)
        self.dedupe.setSingleStep(0.05)
        self.dedupe.setValue(0.9)
        self.dedupe.valueChanged.connect(self._changed)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.dedupe_on)
        row.addWidget(self.dedupe, 1)
        self.params["dedupe_iou"] = self.dedupe
        for name in ("layers", "heads"):
            le = QtWidgets.QLineEdit()
            le.setPlaceholderText("default" if name == "layers" else "all")
            le.editingFinished.connect(self._changed)
            self.params[name] = le
        for name, w in self.params.items():
            w.setToolTip(TIPS[name])
            if name == "dedupe_iou":
                form.addRow(LABELS[name], row)
            else:
                form.addRow(LABELS.get(name, name), w)
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        v.addWidget(self.summary)
        self.bank = QtWidgets.QLabel()
        self.bank.setWordWrap(True)
        self.bank.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.bank.setStyleSheet("color: palette(mid)")
        self.bank.setToolTip(
            "Each token's centre seed is decoded once, in the background, most attended first: "
            "a change of k1, k2, layers or heads then takes its AMG masks from this bank"
        )
        v.addWidget(self.bank)
        self.table_model = CandidateTable(self)
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.table_model)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        v.addWidget(self.table, 1)
        self.error = QtWidgets.QLabel()
        self.error.setWordWrap(True)
        self.error.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.error.setStyleSheet("color: #b00020")
        v.addWidget(self.error)
        self.apply_button = QtWidgets.QPushButton("Apply to a run")
        self.apply_button.setToolTip(
            "Start a run with these settings on the Run tab's scope (selected samples or the whole "
            "project) and evaluator"
        )
        self.apply_button.clicked.connect(self.apply_requested)
        v.addWidget(self.apply_button)
        self._filling = False
        self.set_ready(False)

    # ----------------------------------------------------------------------- parameters
    def _changed(self, *_: object) -> None:
        if self.apply_button.isEnabled():
            self._enable_dependent()
        if not self._filling:
            self.settings_changed.emit()

    def show_settings(self, settings: Mapping[str, Any]) -> None:
        """Fill the fields from a settings dict (:meth:`Stage1Settings.to_dict`) without emitting
        ``settings_changed``."""
        self._filling = True
        try:
            for name, w in self.params.items():
                value = settings.get(name)
                if name == "dedupe_iou":
                    self.dedupe_on.setChecked(value is not None)
                    if value is not None:
                        w.setValue(float(value))
                elif name == "seed_policy":
                    self.seed_policy.setCurrentText(str(value))
                elif name in ("layers", "heads"):
                    w.setText(format_indices(value))
                else:
                    w.setValue(value)
            self._changed()
        finally:
            self._filling = False

    def set_value(self, name: str, value: Any) -> None:
        """Set one field as a user would (emits ``settings_changed``)."""
        w = self.params[name]
        if name == "seed_policy":
            self.seed_policy.setCurrentText(str(value))
        elif name == "dedupe_iou":
            if value is None:
                self.dedupe_on.setChecked(False)
            else:
                self.dedupe.setValue(float(value))
                self.dedupe_on.setChecked(True)
        elif name in ("layers", "heads"):
            w.setText(value if isinstance(value, str) else format_indices(value))
            w.editingFinished.emit()
        else:
            w.setValue(value)

    def values(self) -> dict[str, Any]:
        """The fields as stage-1 settings (``ValueError`` for a layer or head list that does not
        parse)."""
        out: dict[str, Any] = {}
        for name, w in self.params.items():
            if name == "dedupe_iou":
                out[name] = self.dedupe.value() if self.dedupe_on.isChecked() else None
            elif name == "seed_policy":
                out[name] = self.seed_policy.currentText()
            elif name in ("layers", "heads"):
                out[name] = parse_indices(w.text(), name)
            else:
                out[name] = w.value()
        return out

    # ---------------------------------------------------------------------------- state
    def set_ready(self, on: bool) -> None:
        """Parameters and Apply are usable once something is prepared."""
        for w in (*self.params.values(), self.dedupe_on, self.apply_button):
            w.setEnabled(on)
        if on:
            self._enable_dependent()

    def _enable_dependent(self) -> None:
        """De-duplication's threshold only when it is on; the seed count only for 'proportional'."""
        self.dedupe.setEnabled(self.dedupe_on.isChecked())
        self.params["seeds_total"].setEnabled(self.seed_policy.currentText() == "proportional")

    def set_preparing(self, busy: bool) -> None:
        self.prepare_button.setEnabled(not busy)

    def show_source(self, text: str) -> None:
        self.source.setText(text)

    def show_result(
        self,
        trace: PipelineTrace,
        ious: Mapping[int, float] | None,
        best: tuple[int, float] | None,
        seconds: float,
    ) -> None:
        """The candidates of ``trace`` with their origins; ``ious`` / ``best`` with a ground truth."""
        self.table_model.set_trace(trace, ious)
        counts = {o: 0 for o in ("multimask", "semantic", "amg")}
        for c in trace.candidates:
            counts[c.origin] = counts.get(c.origin, 0) + 1
        parts = [
            f"{len(trace.candidates)} candidates ("
            + ", ".join(f"{n} {o}" for o, n in counts.items())
            + ")"
        ]
        if best is not None:
            origin = trace.candidate(best[0]).origin
            parts.append(f"best true IoU {best[1]:.3f} (#{best[0]}, {origin})")
        elif ious is None:
            parts.append("no ground truth")
        parts.append(f"re-tuned in {seconds * 1000:.0f} ms")
        self.summary.setText(" · ".join(parts))

    def show_bank(self, text: str) -> None:
        self.bank.setText(text)

    def bank_text(self) -> str:
        return self.bank.text()

    def summary_text(self) -> str:
        return self.summary.text()

    def show_error(self, text: str) -> None:
        self.error.setText(text)

    def error_text(self) -> str:
        return self.error.text()

    def origins(self) -> Sequence[str]:
        return [self.table_model.row(i)[1] for i in range(self.table_model.rowCount())]
