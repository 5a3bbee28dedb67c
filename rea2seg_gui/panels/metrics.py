"""The metrics panel: per-category gIoU / cIoU bars and the candidate-coverage curve of a run;
below them, an evaluator adapter's training loss curve and its predicted-vs-true IoU scatter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from rea2seg_gui.panels.stale import run_combo

REFERENCES = (("gt", "imported ground truth"), ("reviewed", "reviewed mask (else ground truth)"))


class MetricsView(QtWidgets.QWidget):
    """Per-category gIoU or cIoU bars (one bar per method of :mod:`core.evaluator.evaluate`) and
    the candidate-coverage curve of a run; the numbers come from core, this only draws them."""

    COLORS = ((60, 140, 255), (250, 170, 40), (200, 200, 200), (40, 200, 90))

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        v = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.run_combo = run_combo()
        self.metric_combo = QtWidgets.QComboBox()
        self.metric_combo.addItems(["gIoU", "cIoU"])
        self.metric_combo.currentIndexChanged.connect(lambda _: self._draw_bars())
        self.against_combo = QtWidgets.QComboBox()
        for key, label in REFERENCES:
            self.against_combo.addItem(label, key)
        self.against_combo.setToolTip(
            "The mask each prediction is measured against: the imported ground truth, "
            "or the reviewer's edited mask (the imported ground truth where nobody "
            "edited it) — as rea2seg eval --against gt|reviewed"
        )
        self.compute_button = QtWidgets.QPushButton("Compute")
        row.addWidget(QtWidgets.QLabel("Run"))
        row.addWidget(self.run_combo, 1)
        row.addWidget(self.metric_combo)
        row.addWidget(QtWidgets.QLabel("against"))
        row.addWidget(self.against_combo)
        row.addWidget(self.compute_button)
        v.addLayout(row)
        self.reference_label = QtWidgets.QLabel("")
        self.reference_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.reference_label.setWordWrap(True)
        v.addWidget(self.reference_label)
        self.bars = pg.PlotWidget(title="per category")
        self.bars.addLegend(offset=(5, 5), colCount=4)
        self.curve = pg.PlotWidget(title="Coverage: best true IoU within the first n candidates")
        self.curve.setLabel("bottom", "number of candidates n")
        self.curve.setLabel("left", "mean oracle IoU")
        v.addWidget(self.bars, 1)
        v.addWidget(self.curve, 1)
        self.table = QtWidgets.QPlainTextEdit()
        self.table.setReadOnly(True)
        self.table.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        self.table.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        self.table.setMaximumHeight(150)
        v.addWidget(self.table)
        self.training = EvaluatorTrainingView()
        v.addWidget(self.training, 1)
        self.result: dict[str, Any] | None = None

    def show_runs(self, runs: Sequence[tuple[int, str]]) -> None:
        """(run id, title), newest first."""
        self.run_combo.clear()
        for rid, title in runs:
            self.run_combo.addItem(title, rid)

    def run_id(self) -> int | None:
        return self.run_combo.currentData()

    def against(self) -> str:
        """The chosen reference: ``"gt"`` or ``"reviewed"`` (:func:`core.store.repo.reference_mask`)."""
        return self.against_combo.currentData()

    def set_against(self, key: str) -> None:
        self.against_combo.setCurrentIndex(self.against_combo.findData(key))

    def show_result(self, res: dict[str, Any], coverage: list[float], table_text: str) -> None:
        from core.evaluator.evaluate import reference_line

        self.result = res
        self.reference_label.setText(reference_line(res))
        self._draw_bars()
        note = " — RANDOM WEIGHTS" if res.get("is_random") else ""
        self.curve.clear()
        self.curve.setTitle(f"Coverage: best true IoU in the first n candidates{note}", size="9pt")
        if coverage:
            self.curve.plot(
                np.arange(1, len(coverage) + 1),
                coverage,
                pen=pg.mkPen((40, 200, 90), width=2),
                symbol="o",
            )
            self.curve.setXRange(0.5, len(coverage) + 0.5, padding=0)
            self.curve.setYRange(0, 1)
        if note and "RANDOM WEIGHTS" not in table_text:
            table_text = "RANDOM WEIGHTS — not a result\n" + table_text
        self.table.setPlainText(table_text)

    def _draw_bars(self) -> None:
        from core.evaluator.evaluate import LABELS, METHODS

        res = self.result
        self.bars.clear()
        if res is None:
            return
        metric = self.metric_combo.currentText()
        key = metric.lower()
        note = " — RANDOM WEIGHTS" if res.get("is_random") else ""
        self.bars.setTitle(f"{metric} per category, {res.get('n', 0)} samples{note}", size="9pt")
        methods = [m for m in METHODS if m in res]
        cats = sorted({c for m in methods for c in res[m]["per_category"]}) + ["overall"]
        x = np.arange(len(cats), dtype=float)
        w = 0.8 / max(len(methods), 1)
        for i, m in enumerate(methods):
            vals = [
                (res[m]["overall"] if c == "overall" else res[m]["per_category"].get(c, {})).get(
                    key
                )
                or 0.0
                for c in cats
            ]
            offset = (i - (len(methods) - 1) / 2) * w
            self.bars.addItem(
                pg.BarGraphItem(
                    x=x + offset,
                    height=vals,
                    width=w * 0.95,
                    brush=self.COLORS[i % len(self.COLORS)],
                    name=LABELS.get(m, m),
                )
            )
        self.bars.getAxis("bottom").setTicks([list(zip(x, cats, strict=True))])
        self.bars.setXRange(-0.5, len(cats) - 0.5, padding=0)
        self.bars.setYRange(0, 1.15)  # headroom for the legend


class EvaluatorTrainingView(QtWidgets.QWidget):
    """An evaluator adapter folder (``rea2seg train evaluator --out DIR``): its loss curve
    (``loss_curve.jsonl``) and, when ``rea2seg eval --evaluator DIR --save DIR/quality.json`` has
    been run, the predicted-vs-true IoU scatter. ``adapter_chosen(path)`` asks the window to read
    the folder; :meth:`show_training` draws what it read."""

    adapter_chosen = QtCore.Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        v = QtWidgets.QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        self.choose_button = QtWidgets.QPushButton("Evaluator adapter…")
        self.choose_button.setToolTip("A folder written by rea2seg train evaluator")
        self.choose_button.clicked.connect(self._choose)
        self.path_label = QtWidgets.QLabel("no adapter folder chosen")
        self.path_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        row.addWidget(self.choose_button)
        row.addWidget(self.path_label, 1)
        v.addLayout(row)
        plots = QtWidgets.QHBoxLayout()
        self.loss_plot = pg.PlotWidget(title="Training loss")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.setLabel("left", "loss")
        self.scatter_plot = pg.PlotWidget(title="Predicted vs true IoU")
        self.scatter_plot.setLabel("bottom", "true IoU")
        self.scatter_plot.setLabel("left", "predicted IoU")
        self.scatter_plot.setAspectLocked(True)
        plots.addWidget(self.loss_plot, 1)
        plots.addWidget(self.scatter_plot, 1)
        v.addLayout(plots, 1)
        self.summary = QtWidgets.QLabel("")
        self.summary.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        v.addWidget(self.summary)

    def _choose(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Evaluator adapter folder")
        if path:
            self.adapter_chosen.emit(path)

    def show_training(
        self, path: str, curve: Sequence[dict[str, Any]], quality: dict[str, Any] | None
    ) -> None:
        """Draw ``curve`` (rows with ``step`` and ``loss``) and ``quality``
        (:func:`core.evaluator.quality.assess_evaluator`'s result: ``points`` [[pred, true], …])."""
        from core.evaluator.quality import format_quality

        self.path_label.setText(path)
        self.loss_plot.clear()
        rows = [r for r in curve if "loss" in r and "step" in r]
        if rows:
            self.loss_plot.plot(
                [r["step"] for r in rows],
                [r["loss"] for r in rows],
                pen=pg.mkPen((60, 140, 255), width=2),
            )
        self.loss_plot.setTitle(f"Training loss, {len(rows)} logged steps", size="9pt")
        self.scatter_plot.clear()
        points = np.asarray((quality or {}).get("points") or [], dtype=float).reshape(-1, 2)
        if len(points):
            self.scatter_plot.addItem(
                pg.ScatterPlotItem(
                    x=points[:, 1],
                    y=points[:, 0],
                    size=5,
                    pen=None,
                    brush=pg.mkBrush(250, 170, 40, 160),
                )
            )
            self.scatter_plot.plot(
                [0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), style=QtCore.Qt.PenStyle.DashLine)
            )
            self.scatter_plot.setXRange(0, 1)
            self.scatter_plot.setYRange(0, 1)
        self.scatter_plot.setTitle(
            f"Predicted vs true IoU, {len(points)} candidates"
            if len(points)
            else "Predicted vs true IoU: no quality.json (rea2seg eval --evaluator DIR --save DIR/quality.json)",
            size="9pt",
        )
        self.summary.setText(format_quality(quality) if quality else "")
