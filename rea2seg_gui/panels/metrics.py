"""The metrics panel: per-category gIoU / cIoU bars and the candidate-coverage curve of a run;
the failure classes, best origins and origin ablations (:class:`AnalyticsView`); the controls
to compare two runs and to order the sample list by doubt; below them, an evaluator adapter's
training loss curve and its predicted-vs-true IoU scatter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
        self.table = QtWidgets.QPlainTextEdit()
        self.table.setReadOnly(True)
        self.table.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        self.table.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        self.analytics = AnalyticsView(self.run_id)
        self.training = EvaluatorTrainingView()
        # three pages, so each plot keeps a readable height in the inspector's width
        self.sections = QtWidgets.QTabWidget()
        overview = QtWidgets.QWidget()
        ov = QtWidgets.QVBoxLayout(overview)
        ov.setContentsMargins(0, 0, 0, 0)
        ov.addWidget(self.bars, 2)
        ov.addWidget(self.curve, 2)
        ov.addWidget(self.table, 1)
        self.sections.addTab(overview, "Overview")
        self.sections.addTab(self.analytics, "Failures, origins, ablations")
        self.sections.addTab(self.training, "Evaluator training")
        v.addWidget(self.sections, 1)
        self.result: dict[str, Any] | None = None

    def show_runs(self, runs: Sequence[tuple[int, str]]) -> None:
        """(run id, title), newest first."""
        self.run_combo.clear()
        for rid, title in runs:
            self.run_combo.addItem(title, rid)
        self.analytics.show_runs(runs)

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
        if "classification" in res:
            self.analytics.show_analytics(res, self.run_id())

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


def _cell(text: str, ids: Sequence[int] | None = None) -> QtWidgets.QTableWidgetItem:
    item = QtWidgets.QTableWidgetItem(text)
    item.setFlags(item.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
    item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
    if ids is not None:
        item.setData(QtCore.Qt.ItemDataRole.UserRole, list(ids))
        if ids:
            item.setToolTip("Click: show these samples in the sample list")
            f = item.font()
            f.setUnderline(True)
            item.setFont(f)
    return item


class AnalyticsView(QtWidgets.QWidget):
    """Failure classes and best origins as tables whose counts, clicked, ask for those samples
    (``samples_requested(ids, label)``); the origin ablations (top-1 and oracle without each
    origin, from the stored candidates, with bootstrap intervals) as bars; and the controls that
    ask for a comparison of two existing runs (``compare_requested(run_a, run_b)``) and for the
    sample list ordered by doubt (``doubt_requested(kind, run_a, run_b or None)``). The numbers
    come from :mod:`core.analytics`; this only draws them."""

    samples_requested = QtCore.Signal(object, str)
    compare_requested = QtCore.Signal(int, int)
    doubt_requested = QtCore.Signal(str, object, object)

    def __init__(self, current_run: Callable[[], int | None] | None = None, parent=None) -> None:
        from core.analytics.doubt import DOUBT_KINDS, DOUBT_LABELS

        super().__init__(parent)
        self._current_run = current_run
        v = QtWidgets.QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        self.other_combo = run_combo()
        self.other_combo.setToolTip("The second run of a comparison or of the 'two runs' doubt")
        self.compare_button = QtWidgets.QPushButton("Compare runs…")
        self.compare_button.setToolTip(
            "The run above against this one: gIoU / cIoU per category with paired bootstrap "
            "intervals, and each sample side by side (as rea2seg compare; nothing is written)"
        )
        self.compare_button.clicked.connect(self._ask_compare)
        self.doubt_combo = QtWidgets.QComboBox()
        for k in DOUBT_KINDS:
            self.doubt_combo.addItem(f"doubt: {DOUBT_LABELS[k]}", k)
        self.doubt_button = QtWidgets.QPushButton("Order samples by doubt")
        self.doubt_button.clicked.connect(self._ask_doubt)
        row.addWidget(QtWidgets.QLabel("vs run"))
        row.addWidget(self.other_combo, 1)
        row.addWidget(self.compare_button)
        row.addWidget(self.doubt_combo)
        row.addWidget(self.doubt_button)
        v.addLayout(row)
        tables = QtWidgets.QHBoxLayout()
        self.classes = QtWidgets.QTableWidget(0, 0)
        self.origins = QtWidgets.QTableWidget(0, 0)
        for t in (self.classes, self.origins):
            t.verticalHeader().setDefaultSectionSize(20)
            t.cellClicked.connect(lambda r, c, t=t: self._clicked(t, r, c))
            tables.addWidget(t, 1)
        v.addLayout(tables, 1)
        self.ablation_plot = pg.PlotWidget(title="Ablations from the stored candidates")
        self.ablation_plot.addLegend(offset=(5, 5), colCount=2)
        v.addWidget(self.ablation_plot, 1)
        self.run_a: int | None = None
        self.result: dict[str, Any] | None = None

    def show_runs(self, runs: Sequence[tuple[int, str]]) -> None:
        self.other_combo.clear()
        for rid, title in runs:
            self.other_combo.addItem(title, rid)
        if self.other_combo.count() > 1:
            self.other_combo.setCurrentIndex(1)  # the run before the newest

    def _ask_compare(self) -> None:
        a, b = self.run_a_or_current(), self.other_combo.currentData()
        if a is not None and b is not None:
            self.compare_requested.emit(int(a), int(b))

    def _ask_doubt(self) -> None:
        self.doubt_requested.emit(
            self.doubt_combo.currentData(), self.run_a_or_current(), self.other_combo.currentData()
        )

    def run_a_or_current(self) -> int | None:
        """The run chosen above (the metrics tab's run), else the run last drawn."""
        run = self._current_run() if self._current_run is not None else None
        return run if run is not None else self.run_a

    def _clicked(self, table: QtWidgets.QTableWidget, r: int, c: int) -> None:
        item = table.item(r, c)
        ids = item.data(QtCore.Qt.ItemDataRole.UserRole) if item is not None else None
        if ids:
            label = f"{table.horizontalHeaderItem(c).text()} ({table.verticalHeaderItem(r).text()}, run {self.run_a})"
            self.samples_requested.emit(list(ids), label)

    def _fill(
        self, table: QtWidgets.QTableWidget, block: dict[str, Any], labels: dict[str, str]
    ) -> None:
        keys = list(block["overall"])
        cats = [*sorted(block["per_category"]), "overall"]
        table.clear()
        table.setColumnCount(len(keys))
        table.setRowCount(len(cats))
        table.setHorizontalHeaderLabels([labels.get(k, k) for k in keys])
        table.setVerticalHeaderLabels(cats)
        ids_by_key = block["samples"]
        cat_of = block.get("_category_of", {})
        for r, cat in enumerate(cats):
            counts = block["overall"] if cat == "overall" else block["per_category"][cat]
            for c, k in enumerate(keys):
                ids = [i for i in ids_by_key.get(k, []) if cat == "overall" or cat_of.get(i) == cat]
                table.setItem(r, c, _cell(str(counts[k]), ids))
        table.resizeColumnsToContents()

    def show_analytics(self, res: dict[str, Any], run_id: int | None) -> None:
        """Draw :func:`core.analytics.runs.analyse_records`' keys of ``res`` (plus
        ``category_of``: sample id → category, for the per-category counts' samples)."""
        from core.analytics.failures import CLASS_LABELS

        self.result, self.run_a = res, run_id
        cat_of = {int(k): v for k, v in res.get("category_of", {}).items()}
        cl = {**res["classification"], "_category_of": cat_of}
        self._fill(self.classes, cl, CLASS_LABELS)
        self._fill(self.origins, {**res["origins"], "_category_of": cat_of}, {})
        self.classes.setToolTip(
            f"IoU threshold {cl['threshold']:g}: generator missed = oracle below it; evaluator "
            "mis-ranked = oracle above, top-1 below; fine = top-1 above. Click a count."
        )
        self.origins.setToolTip("Which origin found each sample's best candidate. Click a count.")
        self._draw_ablations(res)

    def _draw_ablations(self, res: dict[str, Any]) -> None:
        p = self.ablation_plot
        p.clear()
        abl = res["ablations"]
        iv = res["intervals"]
        names = ["all", *(f"w/o {o}" for o in abl)]
        x = np.arange(len(names), dtype=float)
        colours = {"top1": (60, 140, 255), "oracle": (40, 200, 90)}
        for j, m in enumerate(("top1", "oracle")):
            full = iv[m]["overall"]
            vals = [full["giou"] or 0.0] + [abl[o][m]["overall"]["giou"] or 0.0 for o in abl]
            cis = [full["giou_ci"]] + [abl[o]["intervals"][m]["giou_ci"] for o in abl]
            xs = x + (j - 0.5) * 0.4
            p.addItem(
                pg.BarGraphItem(x=xs, height=vals, width=0.38, brush=colours[m], name=f"{m} gIoU")
            )
            lo = np.array([v - (ci[0] if ci else v) for v, ci in zip(vals, cis, strict=True)])
            hi = np.array([(ci[1] if ci else v) - v for v, ci in zip(vals, cis, strict=True)])
            p.addItem(pg.ErrorBarItem(x=xs, y=np.array(vals), top=hi, bottom=lo, beam=0.1))
        p.getAxis("bottom").setTicks([list(zip(x, names, strict=True))])
        p.setXRange(-0.6, len(names) - 0.4, padding=0)
        p.setYRange(0, 1.15)
        p.setTitle(
            "gIoU without each origin (stored candidates; top-1 = best-scored remaining; "
            "whiskers: bootstrap 95%)",
            size="9pt",
        )


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
