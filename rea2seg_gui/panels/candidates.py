"""The candidate gallery of one trace: run picker, thumbnails with scores, true IoU, trace info."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6 import QtCore, QtWidgets

from core.metrics import intersection_union, sample_iou
from core.trace import Candidate, PipelineTrace
from rea2seg_gui.panels.thumbs import Thumbnailer

ROLE = QtCore.Qt.ItemDataRole.DisplayRole


class CandidatesPanel(QtWidgets.QWidget):
    """Draws the trace it is given. ``run_changed(run_id or None)``, ``candidate_selected(candidate
    or None)``, ``use_requested(candidate)``."""

    run_changed = QtCore.Signal(object)
    candidate_selected = QtCore.Signal(object)
    use_requested = QtCore.Signal(object)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        v = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Run"))
        self.run_combo = QtWidgets.QComboBox()
        self.run_combo.currentIndexChanged.connect(lambda _: self.run_changed.emit(self.run_combo.currentData()))
        row.addWidget(self.run_combo, 1)
        v.addLayout(row)
        t = self.table = QtWidgets.QTableWidget(0, 8)
        t.setHorizontalHeaderLabels(["mask", "id", "origin", "SAM", "stability", "eval", "rank", "true IoU"])
        t.horizontalHeaderItem(7).setToolTip(
            "IoU with the sample's current mask (edited, else imported ground truth), ignore region "
            "excluded: the metrics view's definition")
        t.setIconSize(QtCore.QSize(64, 48))
        t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        t.verticalHeader().setVisible(False)
        h = t.horizontalHeader()
        h.setMinimumSectionSize(30)
        h.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Fixed)
        for col in (1, 6):  # id, rank: narrow
            h.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        t.setColumnWidth(0, 70)
        t.setSortingEnabled(True)
        t.itemSelectionChanged.connect(lambda: self.candidate_selected.emit(self.selected_candidate()))
        v.addWidget(t, 1)
        self.use_button = QtWidgets.QPushButton("Use as mask")
        self.use_button.setToolTip("Copy the selected candidate into the edited mask (saved with its provenance)")
        self.use_button.clicked.connect(self._use)
        v.addWidget(self.use_button)
        self.trace_info = QtWidgets.QPlainTextEdit()
        self.trace_info.setReadOnly(True)
        self.trace_info.setMaximumHeight(150)
        v.addWidget(self.trace_info)
        self.trace: PipelineTrace | None = None
        self.thumbs = Thumbnailer()

    def show_runs(self, runs: Sequence[tuple[int, str]]) -> None:
        """(run id, title) newest first; no ``run_changed`` is emitted."""
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for rid, title in runs:
            self.run_combo.addItem(title, rid)
        self.run_combo.blockSignals(False)

    def run_id(self) -> int | None:
        return self.run_combo.currentData()

    def run_ids(self) -> list[int]:
        return [self.run_combo.itemData(i) for i in range(self.run_combo.count())]

    def select_run(self, run_id: int | None) -> bool:
        """Choose ``run_id`` without emitting ``run_changed``; False when it is not listed."""
        i = self.run_combo.findData(run_id)
        if run_id is None or i < 0:
            return False
        self.run_combo.blockSignals(True)
        self.run_combo.setCurrentIndex(i)
        self.run_combo.blockSignals(False)
        return True

    def run_title(self) -> str:
        return self.run_combo.currentText()

    def show_trace(self, trace: PipelineTrace | None, image: np.ndarray | None, reference: np.ndarray | None = None,
                   ignore: np.ndarray | None = None, loading: bool = False) -> None:
        """One row per candidate; true IoU against ``reference`` (bool (H, W)) minus ``ignore``."""
        self.trace = trace
        self.thumbs.set_image(image)
        t = self.table
        t.setSortingEnabled(False)
        t.setRowCount(0 if trace is None else len(trace.candidates))
        self.use_button.setEnabled(trace is not None and bool(trace.candidates))
        if trace is None:
            self.trace_info.setPlainText("Loading the trace…" if loading else "No trace for this sample. Start a run in the Run tab.")
            return
        ev = trace.evaluator
        ranks = {cid: i + 1 for i, cid in enumerate(ev.ranking)} if ev else {}
        for r, c in enumerate(trace.candidates):
            it = QtWidgets.QTableWidgetItem()
            it.setIcon(self.thumbs.icon(c.mask))
            t.setItem(r, 0, it)
            iou = None
            if reference is not None and reference.shape == c.mask.shape:
                iou = sample_iou(*intersection_union(c.mask, reference, ignore))
            vals = (c.id, c.origin, c.sam_score, c.stability, ev.final_scores.get(c.id) if ev else None, ranks.get(c.id), iou)
            for col, v in enumerate(vals, start=1):
                item = QtWidgets.QTableWidgetItem()
                item.setData(ROLE, round(v, 3) if isinstance(v, float) else ("—" if v is None else v))
                t.setItem(r, col, item)
            t.setRowHeight(r, 52)
        t.setSortingEnabled(True)
        self.trace_info.setPlainText(describe_trace(trace))

    def row_count(self) -> int:
        return self.table.rowCount()

    def value(self, row: int, column: str):
        """The cell's value by column name ("id", "rank", "true IoU", …)."""
        col = [self.table.horizontalHeaderItem(c).text() for c in range(self.table.columnCount())].index(column)
        return self.table.item(row, col).data(ROLE)

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def select_candidate(self, cid: int) -> bool:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 1).data(ROLE) == cid:
                self.table.selectRow(r)
                return True
        return False

    def selected_candidate(self) -> Candidate | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        if not rows or self.trace is None:
            return None
        cid = self.table.item(next(iter(rows)), 1).data(ROLE)
        return self.trace.candidate(int(cid))

    def _use(self) -> None:
        self.use_requested.emit(self.selected_candidate())

    def info(self) -> str:
        return self.trace_info.toPlainText()


def describe_trace(t: PipelineTrace) -> str:
    lines = [
        f"preset {t.preset}{'  (RANDOM WEIGHTS)' if t.is_random else ''}; models: {t.model_ids}",
        f"{len(t.candidates)} candidates; generated text: {t.generated_text}",
        "timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in t.timings.items()),
        "settings: " + ", ".join(f"{k}={v}" for k, v in t.settings.items() if k not in ("extra",)),
    ]
    if t.graph is not None:
        g = t.graph
        lines.insert(2, f"feature graph: k = {g.k}, {len(g.core_members)} core points of "
                        f"{len(t.seeds.seeds_xy) if t.seeds else 0} seeds, τ = {g.tau}; negative point "
                        f"{tuple(round(v, 1) for v in g.negative_xy)} (logit {g.negative_logit:.2f}"
                        f"{', fallback' if g.negative_fallback else ''})")
    return "\n".join(lines)
