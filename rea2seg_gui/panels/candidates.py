"""The candidate gallery of one trace: run picker, thumbnails with scores, true IoU, trace info."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6 import QtCore, QtWidgets

from core.trace import Candidate, PipelineTrace
from rea2seg_gui.gallery import CandidateGallery
from rea2seg_gui.panels.stale import run_combo, show_stale, stale_label

ROLE = QtCore.Qt.ItemDataRole.DisplayRole


class CandidatesPanel(QtWidgets.QWidget):
    """Draws the trace it is given. ``run_changed(run_id or None)``, ``candidate_selected(candidate
    or None)``, ``use_requested(candidate)``. The gallery (:class:`~rea2seg_gui.gallery.CandidateGallery`)
    holds the thumbnails, the "true IoU against" picker and the arrow-key stepping."""

    run_changed = QtCore.Signal(object)
    candidate_selected = QtCore.Signal(object)
    use_requested = QtCore.Signal(object)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        v = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Run"))
        self.run_combo = run_combo()
        self.run_combo.currentIndexChanged.connect(
            lambda _: self.run_changed.emit(self.run_combo.currentData())
        )
        row.addWidget(self.run_combo, 1)
        v.addLayout(row)
        self.stale_label = stale_label()
        v.addWidget(self.stale_label)
        self.gallery = CandidateGallery()
        self.table = self.gallery.table
        self.gallery.candidate_selected.connect(self.candidate_selected)
        v.addWidget(self.gallery, 1)
        self.use_button = QtWidgets.QPushButton("Use as mask")
        self.use_button.setToolTip(
            "Copy the selected candidate into the edited mask (saved with its provenance)"
        )
        self.use_button.clicked.connect(self._use)
        v.addWidget(self.use_button)
        self.trace_info = QtWidgets.QPlainTextEdit()
        self.trace_info.setReadOnly(True)
        self.trace_info.setMaximumHeight(9 * self.fontMetrics().height())
        v.addWidget(self.trace_info)
        self.trace: PipelineTrace | None = None

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

    def set_stale(self, asked: str | None) -> None:
        """Mark the trace stale (``asked``: the question the run was given) or clear the mark (``None``)."""
        show_stale(self.stale_label, asked)

    def stale_text(self) -> str:
        return self.stale_label.text() if not self.stale_label.isHidden() else ""

    def show_trace(
        self,
        trace: PipelineTrace | None,
        image: np.ndarray | None,
        gt: np.ndarray | None = None,
        reviewed: np.ndarray | None = None,
        ignore: np.ndarray | None = None,
        loading: bool = False,
    ) -> None:
        """One row per candidate; true IoU against the imported ground truth ``gt`` or the
        ``reviewed`` (edited) mask, as picked in the gallery, minus ``ignore`` (bool (H, W))."""
        self.trace = trace
        self.gallery.set_candidates(trace, image, gt, reviewed, ignore)
        self.use_button.setEnabled(trace is not None and bool(trace.candidates))
        if trace is None:
            self.trace_info.setPlainText(
                "Loading the trace…"
                if loading
                else "No trace for this sample. Start a run in the Run tab."
            )
            return
        self.trace_info.setPlainText(describe_trace(trace))

    def row_count(self) -> int:
        return self.table.rowCount()

    def value(self, row: int, column: str):
        """The cell's value by column name ("id", "rank", "true IoU", …; the IoU column's header
        names its reference, "true IoU vs GT", and is found by its start)."""
        heads = [
            self.table.horizontalHeaderItem(c).text().replace("\n", " ")
            for c in range(self.table.columnCount())
        ]
        col = next(c for c, h in enumerate(heads) if h == column or h.startswith(column + " vs"))
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
        return self.gallery.selected_candidate()

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
        lines.insert(
            2,
            f"feature graph: k = {g.k}, {len(g.core_members)} core points of "
            f"{len(t.seeds.seeds_xy) if t.seeds else 0} seeds, τ = {g.tau}; negative point "
            f"{tuple(round(v, 1) for v in g.negative_xy)} (logit {g.negative_logit:.2f}"
            f"{', fallback' if g.negative_fallback else ''})",
        )
    return "\n".join(lines)
